//! `verify`: check, without writing anything, that the selected layers of images can be
//! opened and are intact.
//!
//! A run checks at one of three depths ([`Mode`]):
//!
//! - **structure** (no keys): every encrypted layer has public options naming the one cipher
//!   ocicrypt defines with a 32-byte HMAC, and at least one wrapped-key annotation of a scheme
//!   this build knows, whose envelope and recipients parse. No layer data is read.
//! - **unwrap** (keys): every encrypted layer's key is unwrapped with the given keys and its
//!   options checked, exactly as `decrypt` plans it. No layer data is read, so this is fast.
//! - **full** (keys and [`VerifyRequest::full`]): every selected layer is also streamed once,
//!   in parallel, through a fixed-size buffer and decrypted to nowhere: the stored blob must
//!   match its descriptor's digest and size, the ciphertext its HMAC, the plaintext the digest
//!   the encrypting tool recorded, and the decompressed content the config's
//!   `rootfs.diff_ids[i]`. Plain layers get the blob and diff_id checks.
//!
//! The digest recorded in the private options is the blob the encrypting tool *read*; skopeo
//! records it even when it recompressed the layer on the way, so the decrypted blob can differ
//! from it while being exactly the content the image promises. A difference is therefore only
//! a warning when the decrypted content matches the config's diff_id, and a failure when it
//! does not (or when the image has no diff_id to confirm it).
//!
//! Problems with what verify is for (a key that opens nothing, a missing or corrupt layer blob,
//! a bad HMAC, a digest or diff_id mismatch, a plain layer under
//! [`VerifyRequest::require_encrypted`]) are findings in the [`VerifyReport`]; an `Err` means
//! verify could not run (an unreadable index or manifest, a bad selection, an I/O failure).
//!
//! What this module must never do: write to the store, or let decrypted data leave it. Plaintext
//! is only hashed and decompressed, and a result computed from it is reported only after the
//! HMAC over the whole ciphertext has been checked.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, Read};

use rayon::prelude::*;

use crate::cipher::{CipherError, DecryptionParams, Decryptor, check_cipher, expected_hmac};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, LayerError};
use crate::format::LayerType;
use crate::format::classify_descriptor;
use crate::image::{Descriptor, ManifestNode, read_diff_ids};
use crate::keywrap::{DescribeContext, KeyRing, Registry, UnwrapError, describe_layer};
use crate::pipeline::{self, CHUNK_SIZE, ChannelSink};
use crate::plan::select::{self, Selection};
use crate::plan::{self, KeepReason};
use crate::progress::{Item, Progress, Silent};
use crate::store::{BlobSource, ImageRef, LockMode, StoreError};

/// Version of the `verify --json` schema; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// What to verify, and with which keys.
#[derive(Debug)]
pub struct VerifyRequest {
    /// The images to check.
    pub source: ImageRef,
    /// Which platforms and layers (the planner's rules: unknown platforms and out-of-range
    /// layers are errors).
    pub selection: Selection,
    /// The keys to unwrap with; `None` checks structure only.
    pub keys: Option<KeyRing>,
    /// Also decrypt every selected layer to nowhere and check HMACs, digests and diff_ids.
    /// Needs keys.
    pub full: bool,
    /// A selected plain filesystem layer is a failure (foreign and non-filesystem layers
    /// are skipped, not failed).
    pub require_encrypted: bool,
    /// Worker threads for `full` (default: one per core).
    pub jobs: Option<usize>,
    /// The key-wrap schemes of this run.
    pub registry: Registry,
}

/// How deep a run checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No keys: options and wrapped-key annotations are well formed.
    Structure,
    /// Keys: every encrypted layer's key unwraps. No layer data is read.
    Unwrap,
    /// Keys and `full`: every layer is read, decrypted to nowhere and checked.
    Full,
}

/// The verdict on a layer, manifest or image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every check that applies passed.
    Ok,
    /// A check failed; `reason` says which and why.
    Failed,
    /// Nothing applied (a plain layer without `full`, a foreign or non-filesystem layer).
    Skipped,
}

/// A check that passed, as listed in [`VerifyLayer::checks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Public options and wrapped-key annotations are well formed (no keys given).
    Structure,
    /// A given key unwrapped the layer key, and the options it protects are valid.
    Unwrap,
    /// The stored blob has the digest and size its descriptor names.
    Blob,
    /// The ciphertext matches the HMAC in the public options.
    Hmac,
    /// The decrypted blob has the digest the encrypting tool recorded.
    Digest,
    /// The decompressed content matches the config's `rootfs.diff_ids` entry.
    DiffId,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Structure => "structure",
            Check::Unwrap => "unwrap",
            Check::Blob => "blob",
            Check::Hmac => "hmac",
            Check::Digest => "digest",
            Check::DiffId => "diff_id",
        })
    }
}

/// Everything `verify` found. Its JSON form is a stable, documented interface (see the
/// README).
#[derive(Debug, serde::Serialize)]
pub struct VerifyReport {
    /// Schema version of this document.
    pub schema_version: u32,
    /// The source reference.
    pub source: String,
    /// How deep the checks went.
    pub mode: Mode,
    /// Whether plain filesystem layers counted as failures.
    pub require_encrypted: bool,
    /// Whether every check passed (no layer or manifest failed).
    pub ok: bool,
    /// Layers by status, counting each manifest's use of a layer.
    pub counts: Counts,
    /// Per image.
    pub images: Vec<VerifyImage>,
    /// Things worth knowing that are not failures, each naming its layer.
    pub warnings: Vec<String>,
}

/// Layers by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Layers that passed.
    pub ok: usize,
    /// Layers that failed.
    pub failed: usize,
    /// Layers with nothing to check.
    pub skipped: usize,
}

/// One image (an `index.json` entry).
#[derive(Debug, serde::Serialize)]
pub struct VerifyImage {
    /// Its name (`oci:/path:ref`).
    pub name: String,
    /// Its reference name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Digest of its top-level manifest or index.
    pub digest: Digest,
    /// `failed` if any manifest failed, else `ok` if any passed, else `skipped`.
    pub status: Status,
    /// The selected manifests.
    pub manifests: Vec<VerifyManifest>,
}

/// One manifest.
#[derive(Debug, serde::Serialize)]
pub struct VerifyManifest {
    /// Its platform (`linux/amd64`, or `unknown platform`).
    pub platform: String,
    /// Its digest.
    pub digest: Digest,
    /// `failed` if the manifest itself or any layer failed, else `ok` if any layer passed,
    /// else `skipped`.
    pub status: Status,
    /// Why the manifest itself failed (with `full`: its config cannot be read or does not list
    /// one diff_id per layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The selected layers.
    pub layers: Vec<VerifyLayer>,
}

/// One layer of one manifest.
#[derive(Debug, serde::Serialize)]
pub struct VerifyLayer {
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
    /// The verdict.
    pub status: Status,
    /// Why it failed or was skipped; several problems are joined with `; `.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The checks that passed, in the order they ran.
    pub checks: Vec<Check>,
    /// The scheme and key that opened it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_with: Option<String>,
    /// Warnings about this layer (also in [`VerifyReport::warnings`], with its position).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// Every layer with its image and platform, in report order.
    pub fn layers(&self) -> impl Iterator<Item = (&VerifyImage, &VerifyManifest, &VerifyLayer)> {
        self.images.iter().flat_map(|i| {
            i.manifests
                .iter()
                .flat_map(move |m| m.layers.iter().map(move |l| (i, m, l)))
        })
    }
}

/// Verify the images of `request.source`. Findings go into the report (check
/// [`VerifyReport::ok`]); `Err` means the run could not be done.
pub fn verify(request: &VerifyRequest) -> Result<VerifyReport, Error> {
    verify_with_progress(request, &Silent)
}

/// [`verify`], reporting to `progress` the bytes of every layer blob `full` reads.
pub fn verify_with_progress(
    request: &VerifyRequest,
    progress: &dyn Progress,
) -> Result<VerifyReport, Error> {
    verify_on(request, &request.source, progress)
}

/// [`verify_with_progress`] of another source than the request's: one request (its keys and
/// selection, loaded once) serves every image of a batch.
pub fn verify_on(
    request: &VerifyRequest,
    source_ref: &ImageRef,
    progress: &dyn Progress,
) -> Result<VerifyReport, Error> {
    let mode = match (&request.keys, request.full) {
        (None, true) => return Err(Error::NoKeys),
        (None, false) => Mode::Structure,
        (Some(_), false) => Mode::Unwrap,
        (Some(_), true) => Mode::Full,
    };
    let mut opened = crate::source::open(source_ref, LockMode::Shared)?;
    if request.selection.base.is_some() {
        crate::source::read_image_diff_ids(opened.store.as_ref(), &mut opened.images);
    }
    let source: &dyn BlobSource = opened.store.as_ref();
    let chosen = select::choose(source.name(), &opened.images, &request.selection)?;

    // Each distinct blob of the selected layers becomes one task.
    let mut tasks: Vec<Task> = Vec::new();
    let mut task_of: HashMap<Digest, usize> = HashMap::new();
    let mut skeleton: Vec<(String, &crate::image::Image, Vec<ManifestUse>)> = Vec::new();
    for (image, choice) in opened.images.iter().zip(&chosen) {
        let mut manifests = Vec::new();
        for (manifest, chosen) in select::selected_manifests(image, choice) {
            let mut layers = Vec::new();
            for (index, desc) in manifest.layers.iter().enumerate() {
                if !chosen[index] {
                    continue;
                }
                let task = match task_of.get(&desc.digest) {
                    Some(&t) => t,
                    None => {
                        tasks.push(Task::prepare(desc, request));
                        task_of.insert(desc.digest.clone(), tasks.len() - 1);
                        tasks.len() - 1
                    }
                };
                layers.push((index, task));
            }
            manifests.push(ManifestUse { manifest, layers });
        }
        skeleton.push((choice.name.clone(), image, manifests));
    }

    if mode == Mode::Full {
        // Progress bars and reading threads are best stopped by unwinding (at the next chunk)
        // rather than by exiting on the spot.
        let _stop_by_unwinding = crate::interrupt::Deferred::new()?;
        let pool = pipeline::worker_pool(request.jobs)?;
        let read = tasks.iter().filter(|t| t.reads_data());
        progress.expect(
            read.clone().count(),
            read.map(|t| t.desc.size).fold(0, u64::saturating_add),
        );
        let streamed = pool.install(|| {
            tasks
                .par_iter()
                .map(|t| t.stream(source, progress))
                .collect::<Result<Vec<_>, Error>>()
        })?;
        for (task, streamed) in tasks.iter_mut().zip(streamed) {
            task.streamed = streamed;
        }
    }

    let mut report = VerifyReport {
        schema_version: SCHEMA_VERSION,
        source: source_ref.to_string(),
        mode,
        require_encrypted: request.require_encrypted,
        ok: true,
        counts: Counts::default(),
        images: Vec::new(),
        warnings: Vec::new(),
    };
    for (name, image, manifests) in skeleton {
        let mut out = Vec::new();
        for m in manifests {
            let (diff_ids, mut reason) = if mode == Mode::Full {
                // Already read when comparing with a base image.
                let read = match &m.manifest.diff_ids {
                    Some(d) => Ok(Some(d.clone())),
                    None => read_diff_ids(source, m.manifest),
                };
                match read {
                    Ok(d) => (d, None),
                    Err(reason) => (None, Some(reason)),
                }
            } else {
                (None, None)
            };
            // The bottom layers shared with the base image may be plain; an image not built
            // on it fails.
            let shared = match &request.selection.base {
                None => 0,
                Some(base) => plan::base_layers(base, &name, m.manifest).unwrap_or_else(|e| {
                    let e = e.to_string();
                    reason = Some(match reason.take() {
                        Some(r) => format!("{r}; {e}"),
                        None => e,
                    });
                    0
                }),
            };
            let layers: Vec<VerifyLayer> = m
                .layers
                .iter()
                .map(|&(index, t)| {
                    let diff_id = diff_ids.as_ref().map(|d| &d[index]);
                    tasks[t].verdict(index, diff_id, request.require_encrypted, index < shared)
                })
                .collect();
            for l in &layers {
                for w in &l.warnings {
                    report.warnings.push(format!(
                        "{name}, {}, layer {} ({}): {w}",
                        m.manifest.platform_name(),
                        l.index,
                        l.digest.short()
                    ));
                }
                match l.status {
                    Status::Ok => report.counts.ok += 1,
                    Status::Failed => report.counts.failed += 1,
                    Status::Skipped => report.counts.skipped += 1,
                }
            }
            let status = if reason.is_some() {
                Status::Failed
            } else {
                combine(layers.iter().map(|l| l.status))
            };
            out.push(VerifyManifest {
                platform: m.manifest.platform_name(),
                digest: m.manifest.desc.digest.clone(),
                status,
                reason,
                layers,
            });
        }
        let status = combine(out.iter().map(|m| m.status));
        report.ok &= status != Status::Failed;
        report.images.push(VerifyImage {
            name,
            reference: image.ref_name.clone(),
            digest: image.root.descriptor().digest.clone(),
            status,
            manifests: out,
        });
    }
    Ok(report)
}

/// A selected manifest and its selected layers (position, task).
struct ManifestUse<'a> {
    manifest: &'a ManifestNode,
    layers: Vec<(usize, usize)>,
}

/// `failed` if any is, else `ok` if any is, else `skipped`.
fn combine(statuses: impl Iterator<Item = Status>) -> Status {
    let mut out = Status::Skipped;
    for s in statuses {
        match s {
            Status::Failed => return Status::Failed,
            Status::Ok => out = Status::Ok,
            Status::Skipped => {}
        }
    }
    out
}

/// What a layer blob is, for verification.
enum Kind {
    /// Not checked: foreign, or not a filesystem layer.
    Skip(&'static str),
    /// A plain filesystem layer.
    Plain,
    /// An encrypted layer, with the outcome of the structure or unwrap check.
    Encrypted(Option<DecryptionParams>),
}

/// One distinct layer blob: what was found before reading it, and what streaming found.
struct Task {
    desc: Descriptor,
    kind: Kind,
    /// Checks that passed before streaming.
    checks: Vec<Check>,
    /// Problems found before streaming.
    problems: Vec<String>,
    opened_with: Option<String>,
    /// The digest the encrypting tool recorded for the plaintext.
    recorded: String,
    /// Set when the blob was read (full mode): what was found, or why the blob is missing
    /// or does not match its descriptor.
    streamed: Option<Result<Streamed, String>>,
}

/// What reading an intact layer blob to its end found.
struct Streamed {
    /// For encrypted layers: whether the HMAC matched.
    hmac: Option<bool>,
    /// Digest of the (decrypted) blob.
    plain: Digest,
    /// Digest of the decompressed content, or why it could not be decompressed.
    content: Result<Digest, String>,
}

impl Task {
    /// Classify a layer and run the checks that need no layer data.
    fn prepare(desc: &Descriptor, request: &VerifyRequest) -> Task {
        let mut task = Task {
            desc: desc.clone(),
            kind: Kind::Plain,
            checks: Vec::new(),
            problems: Vec::new(),
            opened_with: None,
            recorded: String::new(),
            streamed: None,
        };
        let layer_type = classify_descriptor(&desc.media_type, &desc.json);
        task.kind = match layer_type {
            LayerType::Foreign => Kind::Skip("foreign layer"),
            LayerType::Other => Kind::Skip("not a filesystem layer"),
            LayerType::Plain { .. } => Kind::Plain,
            LayerType::Encrypted { .. } => match &request.keys {
                None => {
                    match check_structure(&request.registry, desc) {
                        Ok(()) => task.checks.push(Check::Structure),
                        Err(e) => task.problems.push(e),
                    }
                    Kind::Encrypted(None)
                }
                Some(keys) => match plan::open_layer(&request.registry, desc, keys) {
                    Ok((params, private, unwrapped)) => {
                        task.checks.push(Check::Unwrap);
                        task.opened_with =
                            Some(format!("{} key {}", unwrapped.scheme, unwrapped.key));
                        task.recorded = private.digest.clone();
                        Kind::Encrypted(Some(params))
                    }
                    Err(e) => {
                        task.problems.push(e.to_string());
                        Kind::Encrypted(None)
                    }
                },
            },
        };
        // Without `full` no layer blob is looked at, not even for its presence: the structure
        // and the wrapped keys are all in the manifest, and a layout that holds only manifests
        // and configs (what a registry-side tool fetches) is verified as well as a whole one.
        task
    }

    /// Whether [`Task::stream`] reads this blob (a plain layer, or an encrypted one that opened).
    fn reads_data(&self) -> bool {
        matches!(self.kind, Kind::Plain | Kind::Encrypted(Some(_)))
    }

    /// Read the blob to its end (decrypting it if it was opened), hashing and decompressing
    /// it. Layers that cannot be read usefully (skipped, or encrypted and not opened) are
    /// left alone. Missing and corrupt blobs are findings; other read failures are errors.
    fn stream(
        &self,
        source: &dyn BlobSource,
        progress: &dyn Progress,
    ) -> Result<Option<Result<Streamed, String>>, Error> {
        let decryptor = match &self.kind {
            Kind::Skip(_) | Kind::Encrypted(None) => return Ok(None),
            Kind::Plain => None,
            Kind::Encrypted(Some(params)) => Some(Decryptor::new(params)),
        };
        let digest = &self.desc.digest;
        let finding = |e: StoreError| match e {
            StoreError::MissingBlob { .. } | StoreError::Corrupt { .. } => {
                Ok(Some(Err(e.to_string())))
            }
            other => Err(Error::Store(other)),
        };
        let blob = match source.open_blob(digest, self.desc.size) {
            Ok(b) => b,
            Err(e) => return finding(e),
        };
        let mut blob = blob;
        let mut decryptor = decryptor;
        let mut plain = Hasher::new(Algorithm::Sha256);
        let mut progress = progress.start(Item::Check(digest), self.desc.size);
        // Three stages, as the engine streams a layer: read (and the blob's digest), decrypt
        // and hash the plaintext, decompress and hash the content. The last runs on a thread
        // of its own, fed through a channel, because a decompressor reads at its own pace.
        let (pumped, content) = std::thread::scope(|scope| {
            let (mut sink, feed) = ChannelSink::new();
            let decompressor = scope.spawn(move || {
                let mut content = Hasher::new(Algorithm::Sha256);
                let mut feed = feed;
                let decoded = decompress_into(&mut feed, &mut content);
                // Whatever the decompressor made of it, take the rest: the blob's digest, size
                // and HMAC cover every byte, so the reading goes on to the end.
                feed.drain();
                decoded.map(|()| content.finish())
            });
            let mut step = |chunk: &mut [u8]| {
                if let Some(d) = &mut decryptor {
                    d.apply(chunk);
                }
                plain.update(chunk);
                progress.advance(chunk.len() as u64);
            };
            let pumped = pipeline::pump(&mut *blob, &mut sink, self.desc.size, &mut step);
            drop(sink);
            let content = match decompressor.join() {
                Ok(content) => content,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            (pumped, content)
        });
        match pumped {
            Ok(_) => {}
            // Missing and corrupt blobs are findings; other read failures are errors.
            Err(pipeline::PumpError::Read(e)) => {
                return finding(StoreError::from_blob_read(source.name(), digest, e));
            }
            Err(pipeline::PumpError::Write(e)) => {
                return Err(Error::Store(StoreError::io(
                    "decompressing",
                    digest.to_string(),
                    e,
                )));
            }
        }
        progress.finish();
        let hmac = decryptor.map(|d| d.verify().is_ok());
        Ok(Some(Ok(Streamed {
            hmac,
            plain: plain.finish(),
            content,
        })))
    }

    /// The verdict for one use of this blob: layer `index` of a manifest whose config names
    /// `diff_id` for it (`None`: no image config), which it shares with the base image given
    /// when `shared_with_base` (then it may be plain).
    fn verdict(
        &self,
        index: usize,
        diff_id: Option<&Digest>,
        require_encrypted: bool,
        shared_with_base: bool,
    ) -> VerifyLayer {
        let mut checks = self.checks.clone();
        let mut problems = self.problems.clone();
        let mut warnings = Vec::new();
        let mut skipped = None;
        let encrypted = matches!(self.kind, Kind::Encrypted(_));
        // The empty blob is never encrypted (see `KeepReason::Empty`), so it passes
        // `require_encrypted`; an encrypted one is worth a warning, since peers mishandle it.
        let empty = self.desc.is_empty_blob();
        match self.kind {
            Kind::Skip(why) => skipped = Some(why.to_string()),
            Kind::Plain if require_encrypted && !empty && !shared_with_base => {
                problems.push("not encrypted".into())
            }
            Kind::Plain if self.streamed.is_none() => {
                skipped = Some(if empty {
                    KeepReason::Empty.to_string()
                } else if shared_with_base {
                    KeepReason::SharedWithBase.to_string()
                } else {
                    "not encrypted".into()
                })
            }
            Kind::Encrypted(_) if empty => warnings.push(plan::ENCRYPTED_EMPTY_LAYER.into()),
            _ => {}
        }
        match &self.streamed {
            None => {}
            Some(Err(e)) => problems.push(e.clone()),
            Some(Ok(s)) => {
                checks.push(Check::Blob);
                self.content_checks(s, diff_id, &mut checks, &mut problems, &mut warnings);
            }
        }
        let status = if !problems.is_empty() {
            Status::Failed
        } else if checks.is_empty() {
            Status::Skipped
        } else {
            Status::Ok
        };
        let reason = match status {
            Status::Failed => Some(problems.join("; ")),
            Status::Skipped => skipped,
            Status::Ok => None,
        };
        VerifyLayer {
            index,
            digest: self.desc.digest.clone(),
            size: self.desc.size,
            media_type: self.desc.media_type.clone(),
            encrypted,
            status,
            reason,
            checks,
            opened_with: self.opened_with.clone(),
            warnings,
        }
    }

    /// The checks on a blob that was read intact: HMAC, recorded digest and diff_id. Nothing
    /// computed from plaintext counts unless the HMAC matched.
    fn content_checks(
        &self,
        s: &Streamed,
        diff_id: Option<&Digest>,
        checks: &mut Vec<Check>,
        problems: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) {
        match s.hmac {
            Some(false) => {
                problems.push(LayerError::Cipher(CipherError::HmacMismatch).to_string());
                return;
            }
            Some(true) => checks.push(Check::Hmac),
            None => {}
        }
        // The diff_id first: it decides how a recorded digest that differs is judged.
        let mut content_confirmed = false;
        match (&s.content, diff_id) {
            (Err(e), _) => problems.push(format!("its content cannot be decompressed: {e}")),
            (Ok(_), None) => {}
            (Ok(actual), Some(expected)) if expected.algorithm() != actual.algorithm() => {
                warnings.push(format!(
                    "the config's diff_id {expected} uses an algorithm layercrypt does not check"
                ));
            }
            (Ok(actual), Some(expected)) if actual == expected => {
                checks.push(Check::DiffId);
                content_confirmed = true;
            }
            (Ok(actual), Some(expected)) => problems.push(format!(
                "its content is {actual}, but the config's diff_id is {expected}"
            )),
        }
        if s.hmac.is_none() || self.recorded.is_empty() {
            return;
        }
        if self.recorded == s.plain.to_string() {
            checks.push(Check::Digest);
        } else if content_confirmed {
            warnings.push(format!(
                "decrypted blob is {}, but the encrypting tool recorded {} (skopeo records the source digest even when it recompressed); its content matches the config's diff_id",
                s.plain, self.recorded
            ));
        } else {
            problems.push(format!(
                "decrypted blob is {}, but the encrypting tool recorded {}{}",
                s.plain,
                self.recorded,
                if diff_id.is_none() {
                    ", and no diff_id confirms its content"
                } else {
                    ""
                }
            ));
        }
    }
}

/// Check an encrypted layer's public options and wrapped-key annotations without keys.
fn check_structure(registry: &Registry, desc: &Descriptor) -> Result<(), String> {
    // The same decoding and cipher checks as decryption plans, without the keys.
    let (annotations, public) = plan::public_options(desc).map_err(|e| e.to_string())?;
    check_cipher(&public)
        .and_then(|()| expected_hmac(&public))
        .map_err(|e| e.to_string())?;
    let described = describe_layer(registry, &annotations, &DescribeContext::default());
    if described.is_empty() {
        return Err(LayerError::Unwrap(UnwrapError::NoWrappedKeys).to_string());
    }
    let usable = described
        .iter()
        .any(|(scheme, d)| registry.get(scheme).is_some() && d.is_ok());
    if usable {
        return Ok(());
    }
    let problems: Vec<String> = described
        .iter()
        .map(|(scheme, d)| match d {
            Err(e) => format!("{scheme}: {e}"),
            Ok(_) => format!("{scheme}: not a scheme this build can open"),
        })
        .collect();
    Err(format!(
        "it has no usable wrapped key: {}",
        problems.join("; ")
    ))
}

/// Decompress what `reader` yields (gzip, zstd, or nothing, as its first bytes say: the way
/// container runtimes compute a diff_id) into `content`.
fn decompress_into(reader: &mut impl BufRead, content: &mut Hasher) -> Result<(), String> {
    let result = (|| -> io::Result<()> {
        let head = reader.fill_buf()?;
        let (gzip, zstd) = (
            head.starts_with(&[0x1f, 0x8b]),
            head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        );
        let mut decoder: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::bufread::MultiGzDecoder::new(&mut *reader))
        } else if zstd {
            Box::new(zstd::stream::read::Decoder::with_buffer(&mut *reader)?)
        } else {
            Box::new(&mut *reader)
        };
        let mut buf = vec![0u8; CHUNK_SIZE];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => content.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })();
    result.map_err(|e| e.to_string())
}
