//! Plans: what will happen to every layer, decided before any layer blob is read.
//!
//! A plan is built from the loaded image graphs, the selection (`--platform`, `--layer`) and
//! the operation. It refuses impossible requests (a layer index out of range, a platform no
//! image has, a layer that cannot be decrypted with the given keys) up front, so a failing run
//! writes nothing. For decryption the layer keys are unwrapped here: a plan that exists can be
//! executed. Identical blobs are processed once (a job) however many manifests use them.
//!
//! Every impossible request is refused here, from the request and from what the output store
//! [declares it can hold](crate::store::Capabilities), before any blob is read: no
//! recipients, no keys, `--rotate` without `--set`, an output that cannot carry encrypted
//! layers or several platforms, a selection that matches nothing ([`select`]). The engine
//! executes a plan and never asks which kind of store it writes to.
//!
//! Planning does no I/O beyond what unwrapping needs (key providers, tokens, gpg), and never
//! reads layer data.

use std::collections::HashMap;
use std::fmt;

use crate::cipher::DecryptionParams;
use crate::digest::Digest;
use crate::error::{Error, LayerError};
use crate::format::classify_descriptor;
use crate::format::json::JsonObject;
use crate::format::{
    ENC_ANNOTATION_PREFIX, LayerType, PUBOPTS_ANNOTATION, PrivateOptions, PublicOptions,
    classify_layer, decode_base64_go,
};
use crate::image::{Descriptor, Image, LayerRef, ManifestNode};
use crate::keywrap::{
    EditedKeys, KeyRing, Recipient, RecipientMatcher, Registry, Unwrapped, unwrap_layer,
};
use crate::store::Capabilities;

pub mod base;
mod rekey;
pub mod select;

pub use select::{LayerSelector, Selection};

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
    /// Which operation this is.
    pub fn kind(&self) -> OperationKind {
        match self {
            Operation::Encrypt { .. } => OperationKind::Encrypt,
            Operation::Decrypt { .. } => OperationKind::Decrypt,
            Operation::Rekey { .. } => OperationKind::Rekey,
        }
    }

    /// Whether the result may hold encrypted layers: it makes them, or keeps them encrypted.
    fn writes_encrypted_layers(&self) -> bool {
        !matches!(self, Operation::Decrypt { .. })
    }
}

/// The kind of an [`Operation`], as reports name it (`encrypt`, `decrypt`, `rekey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// [`Operation::Encrypt`].
    Encrypt,
    /// [`Operation::Decrypt`].
    Decrypt,
    /// [`Operation::Rekey`].
    Rekey,
}

impl OperationKind {
    /// The command's name: `encrypt`, `decrypt` or `rekey`.
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::Encrypt => "encrypt",
            OperationKind::Decrypt => "decrypt",
            OperationKind::Rekey => "rekey",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a run's images come from, as far as planning needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Its name for messages (`oci:/srv/app`).
    pub name: &'a str,
    /// What it holds.
    pub capabilities: Capabilities,
}

/// Where a run's result goes, as far as planning needs to know it.
#[derive(Clone, Debug)]
pub struct Output {
    /// Its name for messages (`docker-archive:app.tar`).
    pub name: String,
    /// The one reference it names for the result (`oci:DIR:REF`), if any.
    pub reference: Option<String>,
    /// Whether the result replaces the source in its own store (no destination named).
    pub in_place: bool,
    /// Whether the result lands in another store than the source (another layout, archive or
    /// repository), so every blob it keeps is copied there.
    pub other_store: bool,
    /// What it can hold.
    pub capabilities: Capabilities,
}

/// Refuse, before any store is opened, an operation that streams layer data (encrypt, decrypt,
/// rotate) where the source or the output holds none, and a result in another store than the
/// source (which copies every layer) where either holds none.
pub fn check_layer_stores(
    operation: &Operation,
    source_name: &str,
    source: Capabilities,
    output: &Output,
) -> Result<(), Error> {
    if output.other_store && !(source.layer_data && output.capabilities.layer_data) {
        let without = if source.layer_data {
            output.name.as_str()
        } else {
            source_name
        };
        return Err(Error::CrossStore {
            source_image: source_name.to_string(),
            destination: output.name.clone(),
            without: without.to_string(),
        });
    }
    let rotate = matches!(operation, Operation::Rekey { rotate: true, .. });
    let streams = rotate || !matches!(operation, Operation::Rekey { .. });
    if !streams {
        return Ok(());
    }
    let store = if !source.layer_data {
        source_name
    } else if !output.capabilities.layer_data {
        output.name.as_str()
    } else {
        return Ok(());
    };
    Err(Error::NeedsLayerData {
        store: store.to_string(),
        operation: operation.kind().name(),
        rotate,
    })
}

/// Refuse a request that cannot succeed whatever the images hold, before any store is opened:
/// a source that cannot be rewritten in place rewritten in place, an output that cannot carry
/// the encrypted layers the operation writes, encryption with no recipient, rotation with no
/// recipient to rotate to, or decryption with no key and no other way to one (GnuPG, a key
/// provider).
pub fn check_request(
    operation: &Operation,
    registry: &Registry,
    output: &Output,
) -> Result<(), Error> {
    if output.in_place && !output.capabilities.in_place {
        return Err(Error::Destination {
            destination: output.name.clone(),
            reason: "it cannot be rewritten in place; name a destination".into(),
        });
    }
    if operation.writes_encrypted_layers() && !output.capabilities.encrypted_layers {
        return Err(Error::EncryptedToDockerArchive {
            destination: output.name.clone(),
        });
    }
    match operation {
        Operation::Encrypt { recipients } if recipients.is_empty() => Err(Error::NoRecipients),
        Operation::Rekey {
            rotate: true, set, ..
        } if set.is_empty() => Err(Error::NoRecipients),
        Operation::Decrypt { keys } | Operation::Rekey { keys, .. }
            if keys.is_empty()
                && keys.providers.is_empty()
                && !keys.use_gpg
                && registry
                    .wrappers()
                    .all(|w| !w.id().starts_with("provider.")) =>
        {
            Err(Error::NoKeys)
        }
        _ => Ok(()),
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
    /// Encrypting, and the image shares it with the base image given (`--base`), which stays
    /// public so that registries keep deduplicating it.
    SharedWithBase,
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
            KeepReason::SharedWithBase => "shared with the base image",
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
    pub operation: OperationKind,
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

/// Build the plan for `operation` over the `images` of `input`, to be written to `output`.
/// Fails, having read no layer, when the selection matches nothing, a layer cannot be opened
/// with the keys, a layer's data would have to be read from or written to a store that holds
/// none, or the output cannot hold the result.
pub fn build(
    input: &Input<'_>,
    images: Vec<Image>,
    selection: &Selection,
    operation: &Operation,
    registry: &Registry,
    output: &Output,
) -> Result<Plan, Error> {
    if let (Some(r), true) = (&output.reference, images.len() > 1) {
        return Err(Error::Destination {
            destination: output.name.clone(),
            reason: format!(
                "it names one reference ({r}) but the source holds {} images; name one source image with SRC:REF",
                images.len()
            ),
        });
    }
    let store = input.name;
    let choices = select::choose(store, &images, selection)?;
    let mut plans = Vec::with_capacity(images.len());
    let mut jobs: Vec<Job> = Vec::new();
    let mut job_of: HashMap<Digest, usize> = HashMap::new();
    let mut warnings = Vec::new();

    for (image, choice) in images.into_iter().zip(choices) {
        let name = choice.name;
        let mut manifests = Vec::new();
        for (manifest, chosen) in image.root.manifests().into_iter().zip(choice.manifests) {
            let selected = chosen.is_some();
            let chosen = chosen.unwrap_or_default();
            let shared = match (&selection.base, operation) {
                (Some(base), Operation::Encrypt { .. }) if selected => {
                    base_layers(base, &name, manifest)?
                }
                _ => 0,
            };
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
                    let shared = index < shared;
                    decide(
                        desc,
                        &at,
                        operation,
                        registry,
                        shared,
                        &mut jobs,
                        &mut job_of,
                    )?
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
    if let Operation::Rekey { remove, .. } = operation {
        rekey::check_removals_matched(store, remove, &jobs)?;
    }
    let plan = Plan {
        operation: operation.kind(),
        images: plans,
        jobs,
        warnings,
    };
    check_layer_data(&plan, input, output)?;
    check_output(&plan, output)?;
    Ok(plan)
}

/// How many bottom layers of `manifest` (of image `image`) are the base image's; an error
/// when its bottom layers are not the base's.
pub fn base_layers(
    base: &base::Base,
    image: &str,
    manifest: &ManifestNode,
) -> Result<usize, Error> {
    base::shared_layers(base, manifest, manifest.diff_ids.as_deref()).map_err(|e| {
        Error::NotOnBase {
            image: image.to_string(),
            platform: manifest.platform_name(),
            base: base.name.clone(),
            reason: e.0,
        }
    })
}

/// Refuse a plan that must read or write layer data where a store holds none (a registry's
/// manifests alone): only re-wrapping keys works there.
fn check_layer_data(plan: &Plan, input: &Input<'_>, output: &Output) -> Result<(), Error> {
    let Some(job) = plan.jobs.iter().find(|j| j.work.streams_data()) else {
        return Ok(());
    };
    let store = if !input.capabilities.layer_data {
        input.name
    } else if !output.capabilities.layer_data {
        output.name.as_str()
    } else {
        return Ok(());
    };
    Err(Error::NoLayerData {
        store: store.to_string(),
        at: job.at.clone(),
    })
}

/// Refuse a plan whose result the output cannot hold: an output that holds one manifest per
/// image needs exactly one selected platform in each, and one that holds no encrypted layer
/// needs every layer plain afterwards.
fn check_output(plan: &Plan, output: &Output) -> Result<(), Error> {
    let caps = output.capabilities;
    for image in &plan.images {
        let chosen: Vec<&ManifestPlan> = image.manifests.iter().filter(|m| m.selected).collect();
        if !caps.multi_platform && chosen.len() != 1 {
            return Err(Error::OnePlatformPerImage {
                destination: output.name.clone(),
                image: image.name.clone(),
                platforms: chosen.iter().map(|m| m.platform.clone()).collect(),
            });
        }
        if caps.encrypted_layers {
            continue;
        }
        for manifest in &chosen {
            for layer in &manifest.layers {
                let stays_encrypted = matches!(layer.action, LayerAction::Keep(_))
                    && matches!(
                        classify_layer(&layer.descriptor.media_type),
                        LayerType::Encrypted { .. }
                    );
                if stays_encrypted {
                    return Err(Error::LayerStaysEncrypted {
                        destination: output.name.clone(),
                        image: image.name.clone(),
                        platform: manifest.platform.clone(),
                        index: layer.index,
                    });
                }
            }
        }
    }
    Ok(())
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
    shared_with_base: bool,
    jobs: &mut Vec<Job>,
    job_of: &mut HashMap<Digest, usize>,
) -> Result<LayerAction, Error> {
    // A layer with `urls` is fetched from elsewhere and usually absent here: leave it be.
    let layer_type = classify_descriptor(&desc.media_type, &desc.json);
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
            if shared_with_base {
                return Ok(LayerAction::Keep(KeepReason::SharedWithBase));
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
    let (annotations, public) = public_options(desc)?;
    let unwrapped = unwrap_layer(registry, &annotations, keys).map_err(LayerError::Unwrap)?;
    let private = PrivateOptions::from_json(&unwrapped.options).map_err(LayerError::Options)?;
    let params = DecryptionParams::from_options(&private, &public).map_err(LayerError::Cipher)?;
    Ok((params, private, unwrapped))
}

/// A layer's annotations and the public options they carry (decoded as Go decodes them).
pub fn public_options(desc: &Descriptor) -> Result<(JsonObject, PublicOptions), LayerError> {
    let annotations = desc.annotations().map_err(LayerError::Annotations)?;
    let pubopts_b64 = annotations
        .get_str(PUBOPTS_ANNOTATION)
        .map_err(LayerError::Annotations)?
        .ok_or(LayerError::MissingPublicOptions)?;
    let pubopts_json = decode_base64_go(&pubopts_b64)
        .map_err(|e| LayerError::BadPublicOptionsBase64(e.to_string()))?;
    let public = PublicOptions::from_json(&pubopts_json).map_err(LayerError::Options)?;
    Ok((annotations, public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keywrap::Environment;
    use crate::store::ImageRef;

    fn output(name: &str, in_place: bool) -> Output {
        Output {
            name: name.to_string(),
            reference: None,
            in_place,
            other_store: !in_place,
            capabilities: ImageRef::parse(name).unwrap().capabilities(),
        }
    }

    fn registry() -> Registry {
        Registry::new(&Environment::default()).unwrap()
    }

    #[test]
    fn requests_that_cannot_succeed_are_refused_before_anything_is_opened() {
        let registry = registry();
        let oci = output("oci:/x", false);
        let no_recipients = Operation::Encrypt {
            recipients: Vec::new(),
        };
        assert!(matches!(
            check_request(&no_recipients, &registry, &oci),
            Err(Error::NoRecipients)
        ));
        // The output's declared capabilities come first: a docker-archive holds no encrypted
        // layer, whoever the recipients are.
        assert!(matches!(
            check_request(
                &no_recipients,
                &registry,
                &output("docker-archive:/x.tar", false)
            ),
            Err(Error::EncryptedToDockerArchive { .. })
        ));
        let rotate_to_nobody = Operation::Rekey {
            keys: KeyRing::default(),
            add: Vec::new(),
            remove: Vec::new(),
            set: Vec::new(),
            rotate: true,
        };
        assert!(matches!(
            check_request(&rotate_to_nobody, &registry, &oci),
            Err(Error::NoRecipients)
        ));
        let no_keys = Operation::Decrypt {
            keys: KeyRing::default(),
        };
        assert!(matches!(
            check_request(&no_keys, &registry, &oci),
            Err(Error::NoKeys)
        ));
        // Decrypting into a docker-archive is what it is for.
        let with_gpg = Operation::Decrypt {
            keys: KeyRing {
                use_gpg: true,
                ..KeyRing::default()
            },
        };
        assert!(
            check_request(
                &with_gpg,
                &registry,
                &output("docker-archive:/x.tar", false)
            )
            .is_ok()
        );
    }

    #[test]
    fn an_output_that_cannot_be_rewritten_in_place_is_refused_in_place() {
        let mut fixed = output("oci:/x", true);
        assert!(
            check_request(
                &Operation::Decrypt {
                    keys: KeyRing {
                        use_gpg: true,
                        ..KeyRing::default()
                    }
                },
                &registry(),
                &fixed
            )
            .is_ok()
        );
        fixed.capabilities.in_place = false;
        let err = check_request(
            &Operation::Decrypt {
                keys: KeyRing {
                    use_gpg: true,
                    ..KeyRing::default()
                },
            },
            &registry(),
            &fixed,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("cannot be rewritten in place"),
            "{err}"
        );
    }

    #[test]
    fn stores_without_layer_data_are_refused_where_layers_would_move() {
        let rekey = Operation::Rekey {
            keys: KeyRing::default(),
            add: Vec::new(),
            remove: Vec::new(),
            set: Vec::new(),
            rotate: false,
        };
        let rotate = Operation::Rekey {
            rotate: true,
            keys: KeyRing::default(),
            add: Vec::new(),
            remove: Vec::new(),
            set: Vec::new(),
        };
        let full = ImageRef::parse("oci:/x").unwrap().capabilities();
        let manifests_only = Capabilities {
            layer_data: false,
            ..full
        };
        let mut elsewhere = output("oci:/y", false);
        let mut in_place = output("oci:/x", true);
        // Re-wrapping keys in the store itself needs no layer data.
        assert!(check_layer_stores(&rekey, "src", manifests_only, &in_place).is_ok());
        // Rotation streams every layer: refused where the source holds none.
        assert!(matches!(
            check_layer_stores(&rotate, "src", manifests_only, &in_place),
            Err(Error::NeedsLayerData { rotate: true, .. })
        ));
        // Another store: every blob is copied, so both sides must hold layer data.
        assert!(check_layer_stores(&rekey, "src", full, &elsewhere).is_ok());
        match check_layer_stores(&rekey, "src", manifests_only, &elsewhere) {
            Err(Error::CrossStore { without, .. }) => assert_eq!(without, "src"),
            other => panic!("{other:?}"),
        }
        elsewhere.capabilities.layer_data = false;
        match check_layer_stores(&rekey, "src", full, &elsewhere) {
            Err(Error::CrossStore { without, .. }) => assert_eq!(without, "oci:/y"),
            other => panic!("{other:?}"),
        }
        // The same store under another name (another tag of a repository) is not a copy.
        in_place.in_place = false;
        in_place.capabilities.layer_data = false;
        assert!(check_layer_stores(&rekey, "src", manifests_only, &in_place).is_ok());
    }

    #[test]
    fn layer_data_is_needed_only_by_jobs_that_stream_it() {
        let desc = Descriptor::parse(
            JsonObject::parse(br#"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#).unwrap(),
            "layer",
        )
        .unwrap();
        let at = LayerRef {
            image: "oci:/x:a".into(),
            platform: "linux/amd64".into(),
            index: 0,
            digest: desc.digest.clone(),
        };
        let mut plan = Plan {
            operation: OperationKind::Encrypt,
            images: Vec::new(),
            jobs: vec![Job {
                source: desc,
                at,
                work: JobWork::Encrypt {
                    media_type: "m".into(),
                },
            }],
            warnings: Vec::new(),
        };
        let mut manifests_only = ImageRef::parse("oci:/x").unwrap().capabilities();
        manifests_only.layer_data = false;
        let full = Input {
            name: "oci:/x",
            capabilities: ImageRef::parse("oci:/x").unwrap().capabilities(),
        };
        let bare = Input {
            name: "registry/x",
            capabilities: manifests_only,
        };
        let out = output("oci:/y", false);
        assert!(check_layer_data(&plan, &full, &out).is_ok());
        let err = check_layer_data(&plan, &bare, &out).unwrap_err();
        assert!(matches!(err, Error::NoLayerData { ref store, .. } if store == "registry/x"));
        let mut bare_out = output("oci:/y", false);
        bare_out.capabilities = manifests_only;
        assert!(check_layer_data(&plan, &full, &bare_out).is_err());
        // Nothing streams: a plan with no jobs needs no layer data anywhere.
        plan.jobs.clear();
        assert!(check_layer_data(&plan, &bare, &bare_out).is_ok());
    }
}
