//! `inspect`: who can open what, read from the image alone (no keys).
//!
//! Per image, platform and layer it reports the digest, size, media type, whether the layer is
//! encrypted, the key-wrap schemes present and their recipients as far as the wrapped blobs
//! tell (JWE `alg`, curve and `kid`). The JSON form of [`InspectReport`] is a stable,
//! documented interface (see the README).

use crate::digest::Digest;
use crate::error::Error;
use crate::format::{ENC_ANNOTATION_PREFIX, LayerType, classify_layer};
use crate::keywrap::{DescribeContext, RecipientInfo, Registry, describe_layer};
use crate::plan::select::{self, Selection};

use crate::store::{ImageRef, LockMode};

/// Version of the `inspect --json` schema; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `inspect` found.
#[derive(Debug, serde::Serialize)]
pub struct InspectReport {
    /// Schema version of this document.
    pub schema_version: u32,
    /// The source reference.
    pub source: String,
    /// Per image.
    pub images: Vec<InspectImage>,
}

/// One image (an `index.json` entry).
#[derive(Debug, serde::Serialize)]
pub struct InspectImage {
    /// Its name (`oci:/path:ref`).
    pub name: String,
    /// Its reference name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Digest of its top-level manifest or index.
    pub digest: Digest,
    /// Media type of that blob.
    pub media_type: String,
    /// The selected manifests.
    pub manifests: Vec<InspectManifest>,
}

/// One manifest.
#[derive(Debug, serde::Serialize)]
pub struct InspectManifest {
    /// Its platform (`linux/amd64`, or `unknown platform`).
    pub platform: String,
    /// Its digest.
    pub digest: Digest,
    /// The selected layers.
    pub layers: Vec<InspectLayer>,
}

/// One layer.
#[derive(Debug, serde::Serialize)]
pub struct InspectLayer {
    /// Position, 0 = bottom.
    pub index: usize,
    /// Digest of the blob.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// Whether the media type marks it encrypted.
    pub encrypted: bool,
    /// Key-wrap schemes present (`jwe`, …), sorted.
    pub schemes: Vec<String>,
    /// Recipients, as far as they can be identified.
    pub recipients: Vec<RecipientInfo>,
    /// Problems found while reading the wrapped keys (unsupported scheme, bad encoding).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Inspect the images of `source` selected by `selection`; `context` helps to name
/// recipients (certificates for PKCS#7 subjects, the GnuPG home for OpenPGP user ids).
pub fn inspect(
    source: &ImageRef,
    selection: &Selection,
    registry: &Registry,
    context: &DescribeContext,
) -> Result<InspectReport, Error> {
    let opened = crate::source::open(source, LockMode::Shared)?;
    // The planner's selection rules apply: unknown platforms and out-of-range layers are errors.
    let chosen = select::choose(opened.name(), &opened.images, selection)?;
    let mut report = InspectReport {
        schema_version: SCHEMA_VERSION,
        source: source.to_string(),
        images: Vec::new(),
    };
    for (image, choice) in opened.images.iter().zip(&chosen) {
        let mut manifests = Vec::new();
        for (manifest, chosen) in select::selected_manifests(image, choice) {
            let layers = manifest
                .layers
                .iter()
                .enumerate()
                .filter(|(i, _)| chosen[*i])
                .map(|(index, desc)| {
                    let annotations = desc.annotations().unwrap_or_default();
                    let mut schemes = Vec::new();
                    let mut recipients = Vec::new();
                    let mut problems = Vec::new();
                    for (scheme, described) in describe_layer(registry, &annotations, context) {
                        match described {
                            Ok(r) => recipients.extend(r),
                            Err(e) => problems.push(format!("{scheme}: {e}")),
                        }
                        schemes.push(scheme);
                    }
                    schemes.sort();
                    let encrypted = matches!(
                        classify_layer(&desc.media_type),
                        LayerType::Encrypted { .. }
                    );
                    if encrypted && schemes.is_empty() {
                        problems.push("encrypted media type but no wrapped keys".into());
                    }
                    if !encrypted
                        && annotations
                            .keys()
                            .any(|k| k.starts_with(ENC_ANNOTATION_PREFIX))
                    {
                        problems.push("plain media type but encryption annotations".into());
                    }
                    InspectLayer {
                        index,
                        digest: desc.digest.clone(),
                        size: desc.size,
                        media_type: desc.media_type.clone(),
                        encrypted,
                        schemes,
                        recipients,
                        problems,
                    }
                })
                .collect();
            manifests.push(InspectManifest {
                platform: manifest.platform_name(),
                digest: manifest.desc.digest.clone(),
                layers,
            });
        }
        let root = image.root.descriptor();
        report.images.push(InspectImage {
            name: choice.name.clone(),
            reference: image.ref_name.clone(),
            digest: root.digest.clone(),
            media_type: root.media_type.clone(),
            manifests,
        });
    }
    Ok(report)
}
