//! What a run did, for the human summary and `--json`: per image, manifest and layer, the
//! blob before and after. A dry run reports its plan in the same shape, with nothing changed.
//!
//! Pure values: building a report never touches a store.

use crate::digest::Digest;
use crate::image::Descriptor;
use crate::plan::{self, LayerAction, OperationKind, Plan};

/// What a run did, for the human summary and `--json`.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// `encrypt`, `decrypt` or `rekey`.
    pub operation: OperationKind,
    /// The source reference.
    pub source: String,
    /// The destination reference.
    pub destination: String,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Per image.
    pub images: Vec<ImageReport>,
    /// Blobs removed because nothing references them any more.
    pub removed_blobs: Vec<Digest>,
    /// Warnings raised during the run.
    pub warnings: Vec<String>,
}

impl Report {
    /// The report of a run of `plan` about to execute, with no image reported yet.
    pub(super) fn for_run(plan: &Plan, source: String, destination: &str) -> Report {
        Report {
            operation: plan.operation,
            source,
            destination: destination.to_string(),
            dry_run: false,
            images: Vec::new(),
            removed_blobs: Vec::new(),
            warnings: plan.warnings.clone(),
        }
    }

    /// Number of layers encrypted or decrypted (counting each manifest's use).
    pub fn changed_layers(&self) -> usize {
        self.images
            .iter()
            .flat_map(|i| &i.manifests)
            .flat_map(|m| &m.layers)
            .filter(|l| l.new.is_some())
            .count()
    }
}

/// One image in a report.
#[derive(Debug, serde::Serialize)]
pub struct ImageReport {
    /// Its name (`oci:/path:ref`).
    pub name: String,
    /// The reference it is stored under in the destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Digest of its top-level manifest or index before.
    pub old_digest: Digest,
    /// And after.
    pub new_digest: Digest,
    /// Indexes that were rewritten.
    pub indexes: Vec<Change>,
    /// Per manifest.
    pub manifests: Vec<ManifestReport>,
}

/// A blob replaced by another.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Change {
    /// The old blob.
    pub old: BlobRef,
    /// The new blob.
    pub new: BlobRef,
}

/// A blob, as a descriptor names it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlobRef {
    /// Media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest.
    pub digest: Digest,
    /// Size.
    pub size: u64,
}

impl From<&Descriptor> for BlobRef {
    fn from(d: &Descriptor) -> Self {
        BlobRef {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
        }
    }
}

/// One manifest in a report.
#[derive(Debug, serde::Serialize)]
pub struct ManifestReport {
    /// Its platform.
    pub platform: String,
    /// The manifest before.
    pub old: BlobRef,
    /// The manifest after (same as `old` if unchanged).
    pub new: BlobRef,
    /// Per layer.
    pub layers: Vec<LayerReport>,
}

/// One layer in a report.
#[derive(Debug, serde::Serialize)]
pub struct LayerReport {
    /// Position, 0 = bottom.
    pub index: usize,
    /// `encrypt`, `decrypt` or `keep`.
    pub action: &'static str,
    /// Why it was kept, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<plan::KeepReason>,
    /// What re-keying changes on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The layer before.
    pub old: BlobRef,
    /// The layer after, if it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<BlobRef>,
}

/// A report for a plan that is not executed.
pub(super) fn dry_report(plan: &Plan, source: &str, destination: &str) -> Report {
    Report {
        operation: plan.operation,
        source: source.to_string(),
        destination: destination.to_string(),
        dry_run: true,
        images: plan
            .images
            .iter()
            .map(|i| {
                let d = i.image.root.descriptor();
                ImageReport {
                    name: i.name.clone(),
                    reference: i.image.ref_name.clone(),
                    old_digest: d.digest.clone(),
                    new_digest: d.digest.clone(),
                    indexes: Vec::new(),
                    manifests: i
                        .manifests
                        .iter()
                        .zip(i.image.root.manifests())
                        .map(|(m, node)| ManifestReport {
                            platform: m.platform.clone(),
                            old: (&node.desc).into(),
                            new: (&node.desc).into(),
                            layers: m
                                .layers
                                .iter()
                                .map(|l| LayerReport {
                                    index: l.index,
                                    action: action_name(l.action),
                                    reason: match l.action {
                                        LayerAction::Keep(r) => Some(r),
                                        _ => None,
                                    },
                                    note: l.note.clone(),
                                    old: (&l.descriptor).into(),
                                    new: None,
                                })
                                .collect(),
                        })
                        .collect(),
                }
            })
            .collect(),
        removed_blobs: Vec::new(),
        warnings: plan.warnings.clone(),
    }
}

pub(super) fn action_name(action: LayerAction) -> &'static str {
    match action {
        LayerAction::Encrypt(_) => "encrypt",
        LayerAction::Decrypt(_) => "decrypt",
        LayerAction::Rewrap(_) => "rewrap",
        LayerAction::Rotate(_) => "rotate",
        LayerAction::Keep(_) => "keep",
    }
}
