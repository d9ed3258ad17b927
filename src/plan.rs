//! Plans: what will happen to every layer, decided before any layer blob is read.
//!
//! A plan is built from the loaded image graphs, the selection (`--platform`, `--layer`) and
//! the operation. It refuses impossible requests (a layer index out of range, a platform no
//! image has, a layer that cannot be decrypted with the given keys) up front, so a failing run
//! writes nothing. For decryption the layer keys are unwrapped here: a plan that exists can be
//! executed. Identical blobs are processed once (a job) however many manifests use them.
//!
//! Planning does no I/O beyond what unwrapping needs (key providers, later), and never reads
//! layer data.

use std::collections::HashMap;
use std::fmt;

use crate::cipher::DecryptionParams;
use crate::digest::Digest;
use crate::error::{Error, LayerError};
use crate::format::{
    ENC_ANNOTATION_PREFIX, LayerType, PUBOPTS_ANNOTATION, PrivateOptions, PublicOptions,
    classify_layer, decode_base64_go,
};
use crate::image::{Descriptor, Image, ManifestNode, Platform};
use crate::keywrap::{
    EditedKeys, KeyRing, Recipient, RecipientMatcher, Registry, Unwrapped, unwrap_layer,
};

mod rekey;

/// Which layers of which manifests to work on.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Platforms to select; empty means all.
    pub platforms: Vec<Platform>,
    /// Layers to select in each selected manifest; empty means all.
    pub layers: Vec<LayerSelector>,
}

/// One `--layer` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSelector {
    /// A position: 0 is the bottom layer, negative counts from the top (-1 is the top).
    Index(i64),
    /// A layer digest.
    Digest(Digest),
}

impl LayerSelector {
    /// Parse `N`, `-N` or `sha256:HEX`.
    pub fn parse(s: &str) -> Result<LayerSelector, String> {
        if s.contains(':') {
            return s
                .parse()
                .map(LayerSelector::Digest)
                .map_err(|e| format!("{e}"));
        }
        s.parse().map(LayerSelector::Index).map_err(|_| {
            format!("`{s}` is not a layer (expected an index like 0 or -1, or a digest sha256:…)")
        })
    }
}

impl fmt::Display for LayerSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSelector::Index(i) => write!(f, "{i}"),
            LayerSelector::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// What to do with the selected layers.
#[derive(Debug)]
pub enum Operation {
    /// Encrypt plain layers for these recipients.
    Encrypt {
        /// Every recipient, of any scheme.
        recipients: Vec<Recipient>,
    },
    /// Decrypt encrypted layers with these keys.
    Decrypt {
        /// The available keys.
        keys: KeyRing,
    },
    /// Change who can open encrypted layers: unwrap each layer key with `keys`, then remove,
    /// add or replace recipients by editing the wrapped keys only (the layer data stays
    /// byte-identical), or, with `rotate`, re-encrypt the data under a fresh layer key for the
    /// `set` recipients.
    Rekey {
        /// The keys that open the layers.
        keys: KeyRing,
        /// Recipients to add (`--add`); one already present is skipped with a warning.
        add: Vec<Recipient>,
        /// Recipients to remove (`--remove`).
        remove: Vec<RecipientMatcher>,
        /// If not empty, the only recipients afterwards (`--set`); `add` and `remove` are then
        /// empty.
        set: Vec<Recipient>,
        /// Re-encrypt the data under a fresh key (`--rotate`); needs `set`.
        rotate: bool,
    },
}

impl Operation {
    /// `encrypt` or `decrypt`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Encrypt { .. } => "encrypt",
            Operation::Decrypt { .. } => "decrypt",
            Operation::Rekey { .. } => "rekey",
        }
    }
}

/// A layer's position, for messages: image, platform, index and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRef {
    /// The image (`oci:/srv/app:v1`).
    pub image: String,
    /// The platform (`linux/amd64`).
    pub platform: String,
    /// The layer index, 0 = bottom.
    pub index: usize,
    /// The layer digest.
    pub digest: Digest,
}

impl fmt::Display for LayerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, layer {} ({})",
            self.image,
            self.platform,
            self.index,
            self.digest.short()
        )
    }
}

/// Why a layer is left as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// Not chosen by `--layer`.
    LayerNotSelected,
    /// Its manifest's platform is not chosen by `--platform`.
    PlatformNotSelected,
    /// Encrypting, and it is already encrypted.
    AlreadyEncrypted,
    /// Decrypting, and it is not encrypted.
    NotEncrypted,
    /// A foreign (non-distributable, external) Docker layer.
    Foreign,
    /// Not a filesystem layer (attestation, artifact, unknown type).
    NotALayer,
    /// Re-keying, and its recipients already are what was asked.
    RecipientsUnchanged,
    /// Encrypting, and it is the empty blob (0 bytes, the digest of nothing). There is nothing
    /// to protect, and its ciphertext would be the same 0 bytes under the same digest: skopeo
    /// (1.9 to 1.22) and containerd then copy it without decrypting it, leaving a layer marked
    /// encrypted in the image they call decrypted. So it stays plain.
    Empty,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeepReason::LayerNotSelected => "layer not selected",
            KeepReason::PlatformNotSelected => "platform not selected",
            KeepReason::AlreadyEncrypted => "already encrypted",
            KeepReason::NotEncrypted => "not encrypted",
            KeepReason::Foreign => "foreign layer",
            KeepReason::NotALayer => "not a filesystem layer",
            KeepReason::RecipientsUnchanged => "recipients unchanged",
            KeepReason::Empty => "empty layer, nothing to encrypt",
        })
    }
}

/// What `rekey` and `verify` say of an encrypted layer that is the empty blob, which they
/// leave as it is (see [`KeepReason::Empty`]).
pub const ENCRYPTED_EMPTY_LAYER: &str = "this encrypted layer is empty (0 bytes), which skopeo and containerd leave encrypted when they decrypt the image; `layercrypt rekey --rotate` or `layercrypt decrypt` stores it plain";

/// The decision for one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerAction {
    /// Encrypted by job `n`.
    Encrypt(usize),
    /// Decrypted by job `n`.
    Decrypt(usize),
    /// Its wrapped keys are rewritten by job `n`; the blob stays as it is.
    Rewrap(usize),
    /// Re-encrypted under a fresh layer key by job `n`.
    Rotate(usize),
    /// Left as it is.
    Keep(KeepReason),
}

/// The plan for one layer of one manifest.
#[derive(Clone, Debug)]
pub struct LayerPlan {
    /// Position, 0 = bottom.
    pub index: usize,
    /// The layer's descriptor as it is now.
    pub descriptor: Descriptor,
    /// What happens to it.
    pub action: LayerAction,
    /// What re-keying changes on it, in words, for the plan and `-v`.
    pub note: Option<String>,
}

/// The plan for one manifest.
#[derive(Clone, Debug)]
pub struct ManifestPlan {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its platform for messages.
    pub platform: String,
    /// Whether `--platform` chose it.
    pub selected: bool,
    /// One entry per layer.
    pub layers: Vec<LayerPlan>,
}

impl ManifestPlan {
    /// Whether any layer of this manifest changes.
    pub fn changes(&self) -> bool {
        self.layers
            .iter()
            .any(|l| !matches!(l.action, LayerAction::Keep(_)))
    }
}

/// The plan for one image (one `index.json` entry).
#[derive(Clone, Debug)]
pub struct ImagePlan {
    /// The image and its loaded graph.
    pub image: Image,
    /// Its name for messages.
    pub name: String,
    /// Its manifests, in depth-first order (the order of [`crate::image::Node::manifests`]).
    pub manifests: Vec<ManifestPlan>,
}

/// Work on one distinct blob.
#[derive(Debug)]
pub struct Job {
    /// The blob as its (first) descriptor names it.
    pub source: Descriptor,
    /// Its first use, for messages.
    pub at: LayerRef,
    /// What to do.
    pub work: JobWork,
}

/// The work of a job.
#[derive(Debug)]
pub enum JobWork {
    /// Encrypt; the result gets `media_type`.
    Encrypt {
        /// Media type of the encrypted layer.
        media_type: String,
    },
    /// Decrypt with unwrapped, checked parameters.
    Decrypt {
        /// Key, nonce and expected HMAC.
        params: DecryptionParams,
        /// Media type of the decrypted layer.
        media_type: String,
        /// The digest the encrypting tool recorded for the plaintext (may be empty).
        recorded_digest: String,
        /// The scheme and key that opened it, for verbose output.
        opened_with: String,
    },
    /// Rewrite the wrapped keys; the blob stays as it is.
    Rewrap {
        /// The layer's wrapped keys after removals (empty with `--set`).
        keys: EditedKeys,
        /// Its other encryption annotations (the public options), kept as they are.
        other: Vec<(String, String)>,
        /// The unwrapped private options, to wrap for new recipients.
        options: Unwrapped,
        /// Positions in the operation's `add` (or `set`) of the recipients to wrap for.
        wrap: Vec<usize>,
    },
    /// Decrypt and encrypt again under a fresh layer key, for the operation's `set`.
    Rotate {
        /// Key, nonce and expected HMAC of the current encryption.
        params: DecryptionParams,
        /// Media type of the layer (it stays encrypted).
        media_type: String,
        /// The scheme and key that opened it, for verbose output.
        opened_with: String,
    },
}

impl JobWork {
    /// Whether the job reads and writes the layer's data (everything but a re-wrap).
    pub fn streams_data(&self) -> bool {
        !matches!(self, JobWork::Rewrap { .. })
    }
}

/// A complete plan.
#[derive(Debug)]
pub struct Plan {
    /// The operation.
    pub operation: &'static str,
    /// Per image.
    pub images: Vec<ImagePlan>,
    /// Distinct blobs to process.
    pub jobs: Vec<Job>,
    /// Things worth a warning that did not stop the plan (a recipient to add that a layer
    /// already has).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether executing the plan changes anything.
    pub fn changes(&self) -> bool {
        !self.jobs.is_empty()
    }
}

/// The name of an image for messages: `oci:/path:ref`, or `oci:/path@sha256:…` when unnamed.
pub fn image_name(store: &str, image: &Image) -> String {
    match &image.ref_name {
        Some(r) => format!("{store}:{r}"),
        None => format!("{store}@{}", image.root.descriptor().digest),
    }
}

/// Build the plan for `operation` over `images`.
pub fn build(
    store: &str,
    images: Vec<Image>,
    selection: &Selection,
    operation: &Operation,
    registry: &Registry,
) -> Result<Plan, Error> {
    check_platforms_exist(store, &images, selection)?;
    let mut plans = Vec::with_capacity(images.len());
    let mut jobs: Vec<Job> = Vec::new();
    let mut job_of: HashMap<Digest, usize> = HashMap::new();
    let mut digest_selector_used = vec![false; selection.layers.len()];
    let mut warnings = Vec::new();

    for image in images {
        let name = image_name(store, &image);
        let mut manifests = Vec::new();
        for manifest in image.root.manifests() {
            let chosen = selected_layers(&name, manifest, selection, &mut digest_selector_used)?;
            let selected = chosen.is_some();
            let chosen = chosen.unwrap_or_default();
            let mut layers = Vec::with_capacity(manifest.layers.len());
            for (index, desc) in manifest.layers.iter().enumerate() {
                let at = LayerRef {
                    image: name.clone(),
                    platform: manifest.platform_name(),
                    index,
                    digest: desc.digest.clone(),
                };
                let mut note = None;
                let action = if !selected {
                    LayerAction::Keep(KeepReason::PlatformNotSelected)
                } else if !chosen[index] {
                    LayerAction::Keep(KeepReason::LayerNotSelected)
                } else if let Operation::Rekey { .. } = operation {
                    let decided = rekey::decide(desc, &at, operation, registry, &mut jobs)?;
                    warnings.extend(decided.warnings);
                    note = decided.note;
                    decided.action
                } else {
                    decide(desc, &at, operation, registry, &mut jobs, &mut job_of)?
                };
                layers.push(LayerPlan {
                    index,
                    descriptor: desc.clone(),
                    action,
                    note,
                });
            }
            manifests.push(ManifestPlan {
                digest: manifest.desc.digest.clone(),
                platform: manifest.platform_name(),
                selected,
                layers,
            });
        }
        plans.push(ImagePlan {
            image,
            name,
            manifests,
        });
    }
    check_digest_selectors_used(store, selection, &digest_selector_used)?;
    if let Operation::Rekey { remove, .. } = operation {
        rekey::check_removals_matched(store, remove, &jobs)?;
    }
    Ok(Plan {
        operation: operation.name(),
        images: plans,
        jobs,
        warnings,
    })
}

/// Fail unless every `--layer sha256:…` matched a layer of a selected manifest.
pub fn check_digest_selectors_used(
    store: &str,
    selection: &Selection,
    used: &[bool],
) -> Result<(), Error> {
    for (selector, used) in selection.layers.iter().zip(used) {
        if let (LayerSelector::Digest(d), false) = (selector, used) {
            return Err(Error::Selection {
                image: store.to_string(),
                reason: format!("no selected manifest has a layer {d}"),
            });
        }
    }
    Ok(())
}

/// Fail unless every `--platform` matches some manifest.
pub fn check_platforms_exist(
    store: &str,
    images: &[Image],
    selection: &Selection,
) -> Result<(), Error> {
    let available: Vec<Platform> = images
        .iter()
        .flat_map(|i| i.root.manifests())
        .filter_map(|m| m.platform.clone())
        .collect();
    for pattern in &selection.platforms {
        if !available.iter().any(|p| p.matches(pattern)) {
            let mut names: Vec<String> = available.iter().map(ToString::to_string).collect();
            names.sort();
            names.dedup();
            return Err(Error::Selection {
                image: store.to_string(),
                reason: format!(
                    "no image has platform {pattern} (available: {})",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            });
        }
    }
    Ok(())
}

/// Which layers of a manifest the selection chooses: `None` when its platform is not
/// selected, else one flag per layer. Index selectors are checked against every selected
/// manifest (as skopeo does); out of range is an error. `digest_used` records which digest
/// selectors matched.
pub fn selected_layers(
    image: &str,
    manifest: &ManifestNode,
    selection: &Selection,
    digest_used: &mut [bool],
) -> Result<Option<Vec<bool>>, Error> {
    let selected = selection.platforms.is_empty()
        || manifest
            .platform
            .as_ref()
            .is_some_and(|p| selection.platforms.iter().any(|s| p.matches(s)));
    if !selected {
        return Ok(None);
    }
    let n = manifest.layers.len();
    if selection.layers.is_empty() {
        return Ok(Some(vec![true; n]));
    }
    let mut chosen = vec![false; n];
    for (k, selector) in selection.layers.iter().enumerate() {
        match selector {
            LayerSelector::Index(i) => {
                let position = if *i >= 0 {
                    Some(*i)
                } else {
                    (n as i64).checked_add(*i)
                };
                match position.filter(|p| (0..n as i64).contains(p)) {
                    Some(p) => chosen[p as usize] = true,
                    None => {
                        return Err(Error::Selection {
                            image: image.to_string(),
                            reason: format!(
                                "layer index {i} is out of range for manifest {} ({}), which has {n} layer{}",
                                manifest.desc.digest.short(),
                                manifest.platform_name(),
                                if n == 1 { "" } else { "s" }
                            ),
                        });
                    }
                }
            }
            LayerSelector::Digest(d) => {
                for (p, layer) in manifest.layers.iter().enumerate() {
                    if &layer.digest == d {
                        chosen[p] = true;
                        digest_used[k] = true;
                    }
                }
            }
        }
    }
    Ok(Some(chosen))
}

fn has_encryption_annotations(desc: &Descriptor) -> bool {
    desc.annotations()
        .map(|a| a.keys().any(|k| k.starts_with(ENC_ANNOTATION_PREFIX)))
        .unwrap_or(false)
}

/// Decide what happens to one selected layer, creating or reusing a job.
fn decide(
    desc: &Descriptor,
    at: &LayerRef,
    operation: &Operation,
    registry: &Registry,
    jobs: &mut Vec<Job>,
    job_of: &mut HashMap<Digest, usize>,
) -> Result<LayerAction, Error> {
    // A layer with `urls` is fetched from elsewhere and usually absent here: leave it be.
    if desc.json.contains("urls") {
        return Ok(LayerAction::Keep(KeepReason::Foreign));
    }
    let layer_type = classify_layer(&desc.media_type);
    match (operation, layer_type) {
        (_, LayerType::Foreign) => Ok(LayerAction::Keep(KeepReason::Foreign)),
        (_, LayerType::Other) => Ok(LayerAction::Keep(KeepReason::NotALayer)),
        (Operation::Encrypt { .. }, LayerType::Encrypted { .. }) => {
            Ok(LayerAction::Keep(KeepReason::AlreadyEncrypted))
        }
        (Operation::Decrypt { .. } | Operation::Rekey { .. }, LayerType::Plain { .. }) => {
            Ok(LayerAction::Keep(KeepReason::NotEncrypted))
        }
        (Operation::Encrypt { .. }, LayerType::Plain { encrypted }) => {
            if has_encryption_annotations(desc) {
                return Err(Error::layer(at, LayerError::StrayEncryptionAnnotations));
            }
            if desc.is_empty_blob() {
                return Ok(LayerAction::Keep(KeepReason::Empty));
            }
            if let Some(&job) = job_of.get(&desc.digest) {
                return Ok(LayerAction::Encrypt(job));
            }
            jobs.push(Job {
                source: desc.clone(),
                at: at.clone(),
                work: JobWork::Encrypt {
                    media_type: encrypted,
                },
            });
            job_of.insert(desc.digest.clone(), jobs.len() - 1);
            Ok(LayerAction::Encrypt(jobs.len() - 1))
        }
        (Operation::Decrypt { keys }, LayerType::Encrypted { plain }) => {
            if let Some(&job) = job_of.get(&desc.digest) {
                return Ok(LayerAction::Decrypt(job));
            }
            let layer_err = |source| Error::layer(at, source);
            let work = unwrap_for_decryption(registry, desc, keys, plain).map_err(layer_err)?;
            jobs.push(Job {
                source: desc.clone(),
                at: at.clone(),
                work,
            });
            job_of.insert(desc.digest.clone(), jobs.len() - 1);
            Ok(LayerAction::Decrypt(jobs.len() - 1))
        }
        (Operation::Rekey { .. }, LayerType::Encrypted { .. }) => {
            unreachable!("re-keying is decided by rekey::decide")
        }
    }
}

/// Unwrap and check everything needed to decrypt a layer.
pub fn unwrap_for_decryption(
    registry: &Registry,
    desc: &Descriptor,
    keys: &KeyRing,
    plain_media_type: String,
) -> Result<JobWork, LayerError> {
    let (params, private, unwrapped) = open_layer(registry, desc, keys)?;
    Ok(JobWork::Decrypt {
        params,
        media_type: plain_media_type,
        recorded_digest: private.digest.clone(),
        opened_with: format!("{} key {}", unwrapped.scheme, unwrapped.key),
    })
}

/// Unwrap a layer's private options with `keys` and check them against its public options:
/// the cipher parameters, the options themselves, and which key opened them.
pub fn open_layer(
    registry: &Registry,
    desc: &Descriptor,
    keys: &KeyRing,
) -> Result<(DecryptionParams, PrivateOptions, Unwrapped), LayerError> {
    let annotations = desc.annotations().map_err(LayerError::Annotations)?;
    let pubopts_b64 = annotations
        .get_str(PUBOPTS_ANNOTATION)
        .map_err(LayerError::Annotations)?
        .ok_or(LayerError::MissingPublicOptions)?;
    let pubopts_json = decode_base64_go(&pubopts_b64)
        .map_err(|e| LayerError::BadPublicOptionsBase64(e.to_string()))?;
    let public = PublicOptions::from_json(&pubopts_json).map_err(LayerError::Options)?;
    let unwrapped = unwrap_layer(registry, &annotations, keys).map_err(LayerError::Unwrap)?;
    let private = PrivateOptions::from_json(&unwrapped.options).map_err(LayerError::Options)?;
    let params = DecryptionParams::from_options(&private, &public).map_err(LayerError::Cipher)?;
    Ok((params, private, unwrapped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_selectors() {
        assert_eq!(LayerSelector::parse("0").unwrap(), LayerSelector::Index(0));
        assert_eq!(
            LayerSelector::parse("-1").unwrap(),
            LayerSelector::Index(-1)
        );
        assert!(matches!(
            LayerSelector::parse(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
            Ok(LayerSelector::Digest(_))
        ));
        assert!(LayerSelector::parse("top").is_err());
        assert!(LayerSelector::parse("sha256:xyz").is_err());
    }
}
