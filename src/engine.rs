//! The engine: open the stores a request names, load the images, build the plan, and execute
//! it.
//!
//! Execution streams every selected layer once, layers in parallel (rayon), and each large layer
//! through a three-stage pipeline of its own (`engine/pipeline.rs`): the source digest is verified
//! as it is read, the cipher and HMAC run in place, and the output blob is hashed as it is written,
//! each stage on its own thread, through a fixed set of buffers. Decrypted data is published only
//! after the HMAC and the source digest have been verified at the end of the stream. Then manifests
//! and indexes are rewritten bottom-up (only those whose content changed), blobs the destination
//! lacks are copied, and the top-level index is committed last. Blobs the old index referenced and
//! the new one does not (the plaintext of an image encrypted in place, say) are removed after the
//! commit.
//!
//! Nothing is written before the plan exists; an error at any point leaves the destination as
//! it was.

use std::collections::HashSet;
use std::path::Path;

use rayon::prelude::*;

use crate::cipher::{Decryptor, Encryptor, LayerSecrets, public_options};
use crate::digest::Digest;
use crate::error::{Error, LayerError};
use crate::format::json::JsonObject;
use crate::format::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ENC_ANNOTATION_PREFIX, OCI_CONFIG,
    OCI_INDEX, OCI_MANIFEST, PUBOPTS_ANNOTATION, REF_NAME_ANNOTATION, encode_base64,
};
use crate::image::{Descriptor, GraphBudget, Image, Node, TopIndex, load_node_within, reachable};
use crate::keywrap::{Recipient, Registry, wrap_for};
use crate::plan::{self, ImagePlan, Job, JobWork, LayerAction, Operation, Plan, Selection};
use crate::progress::{Item, Progress, Silent};
use crate::store::oci::LockMode;
use crate::store::{self, BlobSource, ImageRef, Overlay, StoreError, StoreWriter};

pub(crate) mod pipeline;

/// Size of the buffers a layer is streamed through.
pub const CHUNK_SIZE: usize = crate::store::AlignedBuf::CAPACITY;

/// A request to encrypt or decrypt images.
#[derive(Debug)]
pub struct Request {
    /// Where the images come from.
    pub source: ImageRef,
    /// Where the result goes; `None` rewrites the source in place.
    pub destination: Option<ImageRef>,
    /// Which platforms and layers.
    pub selection: Selection,
    /// What to do.
    pub operation: Operation,
    /// Worker threads (default: one per core).
    pub jobs: Option<usize>,
    /// Build and return the plan, change nothing.
    pub dry_run: bool,
    /// The key-wrap schemes of this run.
    pub registry: Registry,
}

/// Something worth telling the user while the engine works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A warning: the run continues, but something is off.
    Warning(String),
    /// Detail for `-v`: which key opened which layer, what was copied.
    Detail(String),
}

/// What a run did, for the human summary and `--json`.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// `encrypt` or `decrypt`.
    pub operation: &'static str,
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

/// What a run produced.
#[derive(Debug)]
pub enum Outcome {
    /// A dry run: the plan, nothing written.
    Planned(Plan, Report),
    /// The run's report.
    Done(Report),
}

/// The result of one job: the new blob and what its descriptor must say.
#[derive(Debug)]
struct JobOutput {
    digest: Digest,
    size: u64,
    media_type: String,
    /// Annotations to add (encryption); decryption only removes.
    annotations: Vec<(String, String)>,
}

/// Run a request to the end.
pub fn run(request: &Request, events: &(dyn Fn(Event) + Sync)) -> Result<Outcome, Error> {
    run_with_progress(request, events, &Silent)
}

/// [`run`], reporting the bytes of every streamed blob to `progress` as they go.
pub fn run_with_progress(
    request: &Request,
    events: &(dyn Fn(Event) + Sync),
    progress: &dyn Progress,
) -> Result<Outcome, Error> {
    let dst = request.destination.as_ref();
    // Where the result lands: the destination, or the source rewritten in place.
    let target = dst.unwrap_or(&request.source);
    let to_docker = matches!(target, ImageRef::DockerArchive { .. });
    if let (true, Operation::Encrypt { .. } | Operation::Rekey { .. }) =
        (to_docker, &request.operation)
    {
        return Err(Error::EncryptedToDockerArchive {
            destination: target.to_string(),
        });
    }
    if let Operation::Encrypt { recipients } = &request.operation
        && recipients.is_empty()
    {
        return Err(Error::NoRecipients);
    }
    if let Operation::Rekey {
        rotate: true, set, ..
    } = &request.operation
        && set.is_empty()
    {
        return Err(Error::NoRecipients);
    }
    if let Operation::Decrypt { keys } | Operation::Rekey { keys, .. } = &request.operation
        && keys.is_empty()
        && keys.providers.is_empty()
        && !keys.use_gpg
        && request
            .registry
            .wrappers()
            .all(|w| !w.id().starts_with("provider."))
    {
        return Err(Error::NoKeys);
    }

    let same_dir = match dst {
        None => true,
        Some(d) => same_directory(request.source.path(), d.path()),
    };
    if same_dir && dst.is_some_and(|d| transport_name(d) != transport_name(&request.source)) {
        return Err(Error::Destination {
            destination: target.to_string(),
            reason: format!("it is the source, {}, under another format", request.source),
        });
    }
    let lock = if same_dir && !request.dry_run {
        LockMode::Exclusive
    } else {
        LockMode::Shared
    };
    let source = store::open_source(&request.source, lock)?;
    let source = source.as_ref();
    let src_ref = request
        .source
        .reference()
        .map(|r| source.resolve_reference(r))
        .transpose()
        .map_err(|reason| Error::Selection {
            image: source.name().to_string(),
            reason,
        })?;
    let top_bytes = source.read_index()?;
    let top = TopIndex::parse(&top_bytes).map_err(|e| Error::image(source.name(), e))?;
    let images = load_images(source, &top, src_ref.as_deref())?;
    if let (Some(d), true) = (dst.and_then(ImageRef::reference), images.len() > 1) {
        return Err(Error::Destination {
            destination: dst.map(ToString::to_string).unwrap_or_default(),
            reason: format!(
                "it names one reference ({d}) but the source holds {} images; name one source image with SRC:REF",
                images.len()
            ),
        });
    }
    let plan = plan::build(
        source.name(),
        images,
        &request.selection,
        &request.operation,
        &request.registry,
    )?;
    let destination_name = dst.map_or_else(|| request.source.to_string(), ToString::to_string);
    if to_docker {
        check_docker_destination(&plan, &destination_name)?;
    }
    for w in &plan.warnings {
        events(Event::Warning(w.clone()));
    }

    if request.dry_run {
        let report = dry_report(&plan, &request.source.to_string(), &destination_name);
        return Ok(Outcome::Planned(plan, report));
    }

    // Nothing to change in place: leave the layout alone (but for what an interrupted run
    // left, which opening it removed).
    if !plan.changes() && dst.is_none() {
        let report = dry_report(&plan, &request.source.to_string(), &destination_name);
        return Ok(Outcome::Done(Report {
            dry_run: false,
            removed_blobs: report_recovered(source.recovered(), events),
            ..report
        }));
    }

    // From here on the run has files to clean up: a stop request is honoured by unwinding
    // (the checks below and in every blob read), never by exiting on the spot. Declared
    // before the writer, so that it ends after the writer has removed what it wrote.
    let _cleanup = crate::interrupt::Deferred::new()?;
    let writer: Box<dyn StoreWriter> = if same_dir {
        source.writer_in_place()?
    } else {
        store::open_destination(dst.expect("not the same store"))?
    };
    let recovered = report_recovered(
        if same_dir {
            source.recovered()
        } else {
            writer.recovered()
        },
        events,
    );
    let threads = request.jobs.unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Unsupported(format!("starting {threads} worker threads ({e})")))?;

    let execution = Execution {
        warnings: std::sync::Mutex::default(),
        source,
        dest: writer.as_ref(),
        operation: &request.operation,
        registry: &request.registry,
        events,
        progress,
    };
    // Declared sizes, which a hostile descriptor may set to anything: add without overflow.
    let streamed = plan.jobs.iter().filter(|j| j.work.streams_data());
    progress.expect(
        streamed.clone().count(),
        streamed.map(|j| j.source.size).fold(0, u64::saturating_add),
    );
    let outputs = pool.install(|| {
        plan.jobs
            .par_iter()
            .map(|job| execution.run_job(job))
            .collect::<Result<Vec<_>, Error>>()
    })?;

    let mut report = Report {
        operation: plan.operation,
        source: request.source.to_string(),
        destination: destination_name,
        dry_run: false,
        images: Vec::new(),
        removed_blobs: Vec::new(),
        warnings: plan.warnings.clone(),
    };
    let mut needed: Vec<Descriptor> = Vec::new();
    let mut new_entries = Vec::new();
    for image_plan in &plan.images {
        let (mut entry, image_report) =
            execution.rewrite_image(image_plan, &outputs, &mut needed)?;
        if to_docker {
            entry = docker_entry(image_plan, &image_report, &entry)?;
        }
        new_entries.push((image_plan.image.position, entry));
        report.images.push(image_report);
    }

    if !same_dir {
        if to_docker {
            // Only the chosen platform goes into a docker-archive: copy just what it uses.
            let overlay = Overlay {
                top: writer.as_ref(),
                bottom: source,
            };
            let chosen = TopIndex::parse(
                &top.to_bytes_with(
                    &new_entries
                        .iter()
                        .map(|(_, e)| e.clone())
                        .collect::<Vec<_>>(),
                ),
            )
            .and_then(|index| reachable(&overlay, &index))
            .map_err(|e| Error::image(source.name(), e))?;
            needed.retain(|d| chosen.contains(&d.digest));
        }
        pool.install(|| execution.copy_missing(&needed))?;
    }

    // Compose the new index.json.
    let dst_ref = dst.and_then(ImageRef::reference);
    let (base, old_index) = if same_dir {
        (top.clone(), Some(top.clone()))
    } else {
        match writer.existing_index()? {
            Some(bytes) => {
                let existing = TopIndex::parse(&bytes)
                    .map_err(|source| Error::image(writer.name().to_string(), source))?;
                (existing.clone(), Some(existing))
            }
            None => {
                let mut fresh = top.clone();
                fresh.entries.clear();
                (fresh, None)
            }
        }
    };
    let entries = if dst.is_none() {
        let mut entries = base.entries.clone();
        for (position, entry) in new_entries {
            entries[position] = entry;
        }
        entries
    } else {
        let mut entries = base.entries.clone();
        for ((_, mut entry), image_report) in new_entries.into_iter().zip(&mut report.images) {
            if let Some(r) = dst_ref {
                let mut annotations = entry.annotations().unwrap_or_default();
                annotations.set(REF_NAME_ANNOTATION, r);
                entry.set_annotations(&annotations);
            }
            image_report.reference = entry.ref_name();
            merge_entry(&mut entries, entry);
        }
        entries
    };
    let new_index_bytes = base.to_bytes_with(&entries);
    let new_index = TopIndex::parse(&new_index_bytes)
        .map_err(|source| Error::image(writer.name().to_string(), source))?;

    let garbage = match &old_index {
        Some(old) => match garbage(writer.as_ref(), old, &new_index) {
            Ok(g) => g,
            Err(e) => {
                let msg = format!("not removing unreferenced blobs: {e}");
                events(Event::Warning(msg.clone()));
                report.warnings.push(msg);
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    report.warnings.extend(
        execution
            .warnings
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
    );
    // The last moment to stop with nothing changed; past the commit the run completes (it
    // only removes what the new index no longer references).
    if crate::interrupt::requested() {
        return Err(crate::interrupt::Interrupted.into());
    }
    let commit = writer.commit(&new_index_bytes, &garbage)?;
    for w in commit.warnings {
        events(Event::Warning(w.clone()));
        report.warnings.push(w);
    }
    report.removed_blobs = recovered;
    report.removed_blobs.extend(commit.removed);
    Ok(Outcome::Done(report))
}

/// Tell (`-v`) which blobs an interrupted run had left unreferenced and opening the store
/// removed; they are reported with the blobs the run itself removed.
fn report_recovered(blobs: Vec<Digest>, events: &(dyn Fn(Event) + Sync)) -> Vec<Digest> {
    for digest in &blobs {
        events(Event::Detail(format!(
            "removed blob {digest}, which an interrupted run had left unreferenced"
        )));
    }
    blobs
}

/// Before any blob is read: a docker-archive holds one manifest per image and no
/// encrypted layer, so every image must come down to one chosen platform whose layers are
/// all plain afterwards.
fn check_docker_destination(plan: &Plan, destination: &str) -> Result<(), Error> {
    let refuse = |reason: String| Error::Destination {
        destination: destination.to_string(),
        reason,
    };
    for image in &plan.images {
        let chosen: Vec<&plan::ManifestPlan> =
            image.manifests.iter().filter(|m| m.selected).collect();
        let [manifest] = chosen.as_slice() else {
            let platforms: Vec<&str> = chosen.iter().map(|m| m.platform.as_str()).collect();
            return Err(refuse(format!(
                "a docker-archive holds one platform per image, and {} has {} selected ({}); choose one with --platform",
                image.name,
                chosen.len(),
                platforms.join(", ")
            )));
        };
        for layer in &manifest.layers {
            let stays_encrypted = matches!(layer.action, LayerAction::Keep(_))
                && matches!(
                    crate::format::classify_layer(&layer.descriptor.media_type),
                    crate::format::LayerType::Encrypted { .. }
                );
            if stays_encrypted {
                return Err(refuse(format!(
                    "layer {} of {} ({}) would stay encrypted, and a docker-archive cannot carry encrypted layers; decrypt every layer (drop --layer) or write to oci:/oci-archive:",
                    layer.index, image.name, manifest.platform
                )));
            }
        }
    }
    Ok(())
}

/// The index entry of an image written to a docker-archive: its one chosen manifest, named
/// like the image's entry.
fn docker_entry(
    image: &ImagePlan,
    report: &ImageReport,
    entry: &Descriptor,
) -> Result<Descriptor, Error> {
    let position = image
        .manifests
        .iter()
        .position(|m| m.selected)
        .expect("checked: one selected manifest");
    let chosen = &report.manifests[position].new;
    let mut json = JsonObject::new();
    json.set("mediaType", &chosen.media_type);
    json.set("digest", &chosen.digest.to_string());
    json.set("size", &chosen.size);
    let mut desc = Descriptor::parse(json, "manifest descriptor")
        .map_err(|e| Error::image(image.name.clone(), e))?;
    if let Some(name) = entry.ref_name() {
        let mut annotations = JsonObject::new();
        annotations.set(REF_NAME_ANNOTATION, &name);
        desc.set_annotations(&annotations);
    }
    Ok(desc)
}

fn transport_name(r: &ImageRef) -> &'static str {
    match r {
        ImageRef::Oci { .. } => "oci:",
        ImageRef::OciArchive { .. } => "oci-archive:",
        ImageRef::DockerArchive { .. } => "docker-archive:",
    }
}

/// Whether two paths name the same directory (the second may not exist yet).
fn same_directory(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Load the images of `top` selected by `reference` (all when `None`).
pub fn load_images(
    store: &dyn BlobSource,
    top: &TopIndex,
    reference: Option<&str>,
) -> Result<Vec<Image>, Error> {
    let mut images = Vec::new();
    let mut total = GraphBudget::store_wide();
    for (position, entry) in top.entries.iter().enumerate() {
        let ref_name = entry.ref_name();
        if reference.is_some() && ref_name.as_deref() != reference {
            continue;
        }
        let image_name = || match &ref_name {
            Some(r) => format!("{}:{r}", store.name()),
            None => format!("{}@{}", store.name(), entry.digest),
        };
        // Each image within its own budget, and all of them within the store's.
        let mut budget = GraphBudget::new();
        let root = load_node_within(store, entry.clone(), 0, &mut budget)
            .and_then(|root| total.absorb(&budget, "image", entry).map(|()| root))
            .map_err(|e| Error::image(image_name(), e))?;
        images.push(Image {
            position,
            ref_name,
            root,
        });
    }
    if images.is_empty() {
        let mut names: Vec<String> = top
            .entries
            .iter()
            .filter_map(Descriptor::ref_name)
            .collect();
        names.sort();
        let reason = match reference {
            Some(r) => format!(
                "no image named `{r}` (available: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
            None => "the layout holds no images".into(),
        };
        return Err(Error::Selection {
            image: store.name().to_string(),
            reason,
        });
    }
    Ok(images)
}

/// Put `entry` into `entries` as skopeo does: replace the first entry with the same reference
/// name, or append.
fn merge_entry(entries: &mut Vec<Descriptor>, entry: Descriptor) {
    let name = entry.ref_name();
    match entries.iter().position(|e| e.ref_name() == name) {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
}

/// Blobs the old index reached and the new one does not.
fn garbage(
    store: &dyn BlobSource,
    old: &TopIndex,
    new: &TopIndex,
) -> Result<Vec<Digest>, crate::image::ImageError> {
    let before = reachable(store, old)?;
    let after = reachable(store, new)?;
    let mut out: Vec<Digest> = before.difference(&after).cloned().collect();
    out.sort();
    Ok(out)
}

/// A report for a plan that is not executed.
fn dry_report(plan: &Plan, source: &str, destination: &str) -> Report {
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

fn action_name(action: LayerAction) -> &'static str {
    match action {
        LayerAction::Encrypt(_) => "encrypt",
        LayerAction::Decrypt(_) => "decrypt",
        LayerAction::Rewrap(_) => "rewrap",
        LayerAction::Rotate(_) => "rotate",
        LayerAction::Keep(_) => "keep",
    }
}

struct Execution<'a> {
    /// Warnings raised while executing, for the report.
    warnings: std::sync::Mutex<Vec<String>>,
    source: &'a dyn BlobSource,
    dest: &'a dyn StoreWriter,
    operation: &'a Operation,
    registry: &'a Registry,
    events: &'a (dyn Fn(Event) + Sync),
    progress: &'a dyn Progress,
}

impl Execution<'_> {
    /// Tell the user now, and keep the warning for the report.
    fn warn(&self, message: String) {
        (self.events)(Event::Warning(message.clone()));
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }

    fn run_job(&self, job: &Job) -> Result<JobOutput, Error> {
        let layer_err = |source| Error::layer(&job.at, source);
        match (&job.work, self.operation) {
            (JobWork::Encrypt { media_type }, Operation::Encrypt { recipients }) => {
                let secrets =
                    LayerSecrets::generate().map_err(|e| layer_err(LayerError::Cipher(e)))?;
                // Wrap first: it needs only the key, nonce and source digest, and a recipient
                // problem should fail before any data is written.
                let private = secrets.private_options(&job.source.digest.to_string());
                let mut annotations = wrap_for(self.registry, recipients, &private.to_json())
                    .map_err(|e| layer_err(LayerError::Wrap(e)))?;
                let mut encryptor = Encryptor::new(&secrets);
                let (digest, size) = self
                    .stream(job, |chunk| encryptor.apply(chunk))
                    .map_err(layer_err)?
                    .commit()
                    .map_err(|e| layer_err(LayerError::Store(e)))?;
                let hmac = encryptor.finish();
                annotations.push((
                    PUBOPTS_ANNOTATION.to_string(),
                    encode_base64(&public_options(hmac).to_json()),
                ));
                annotations.sort();
                (self.events)(Event::Detail(format!("{}: encrypted to {digest}", job.at)));
                Ok(JobOutput {
                    digest,
                    size,
                    media_type: media_type.clone(),
                    annotations,
                })
            }
            (
                JobWork::Decrypt {
                    params,
                    media_type,
                    recorded_digest,
                    opened_with,
                },
                // Also `rekey --rotate` of an empty layer, which it stores plain.
                Operation::Decrypt { .. } | Operation::Rekey { .. },
            ) => {
                (self.events)(Event::Detail(format!(
                    "{}: opened with {opened_with}",
                    job.at
                )));
                let mut decryptor = Decryptor::new(params);
                let sink = self
                    .stream(job, |chunk| decryptor.apply(chunk))
                    .map_err(layer_err)?;
                // The HMAC is checked before the plaintext is published; on failure the
                // temporary file is dropped and removed.
                decryptor
                    .verify()
                    .map_err(|e| layer_err(LayerError::Cipher(e)))?;
                let (digest, size) = sink.commit().map_err(|e| layer_err(LayerError::Store(e)))?;
                if !recorded_digest.is_empty() && *recorded_digest != digest.to_string() {
                    self.warn(format!(
                        "{}: decrypted blob is {digest}, but the encrypting tool recorded {recorded_digest} (skopeo records the source digest even when it recompressed)",
                        job.at
                    ));
                }
                Ok(JobOutput {
                    digest,
                    size,
                    media_type: media_type.clone(),
                    annotations: Vec::new(),
                })
            }
            (
                JobWork::Rewrap {
                    keys,
                    other,
                    options,
                    wrap,
                },
                Operation::Rekey { add, set, .. },
            ) => {
                let from = if set.is_empty() { add } else { set };
                let recipients: Vec<Recipient> = wrap.iter().map(|&i| from[i].clone()).collect();
                let mut edited = keys.clone();
                if !recipients.is_empty() {
                    let wrapped = wrap_for(self.registry, &recipients, &options.options)
                        .map_err(|e| layer_err(LayerError::Wrap(e)))?;
                    edited
                        .append(wrapped)
                        .map_err(|e| layer_err(LayerError::Rekey(e)))?;
                }
                let mut annotations = edited.annotations;
                annotations.extend(other.iter().cloned());
                annotations.sort();
                (self.events)(Event::Detail(format!(
                    "{}: opened with {} key {}; wrapped keys rewritten, data untouched",
                    job.at, options.scheme, options.key
                )));
                Ok(JobOutput {
                    digest: job.source.digest.clone(),
                    size: job.source.size,
                    media_type: job.source.media_type.clone(),
                    annotations,
                })
            }
            (
                JobWork::Rotate {
                    params,
                    media_type,
                    opened_with,
                },
                Operation::Rekey { set, .. },
            ) => {
                (self.events)(Event::Detail(format!(
                    "{}: opened with {opened_with}",
                    job.at
                )));
                let secrets =
                    LayerSecrets::generate().map_err(|e| layer_err(LayerError::Cipher(e)))?;
                let mut decryptor = Decryptor::new(params);
                let mut encryptor = Encryptor::new(&secrets);
                let mut plain = crate::digest::Hasher::new(crate::digest::Algorithm::Sha256);
                let sink = self
                    .stream(job, |chunk| {
                        decryptor.apply(chunk);
                        plain.update(chunk);
                        encryptor.apply(chunk);
                    })
                    .map_err(layer_err)?;
                // The old HMAC is checked before the new blob is published; on failure the
                // temporary file is dropped and removed.
                decryptor
                    .verify()
                    .map_err(|e| layer_err(LayerError::Cipher(e)))?;
                let private = secrets.private_options(&plain.finish().to_string());
                let mut annotations = wrap_for(self.registry, set, &private.to_json())
                    .map_err(|e| layer_err(LayerError::Wrap(e)))?;
                let (digest, size) = sink.commit().map_err(|e| layer_err(LayerError::Store(e)))?;
                annotations.push((
                    PUBOPTS_ANNOTATION.to_string(),
                    encode_base64(&public_options(encryptor.finish()).to_json()),
                ));
                annotations.sort();
                (self.events)(Event::Detail(format!(
                    "{}: re-encrypted to {digest}",
                    job.at
                )));
                Ok(JobOutput {
                    digest,
                    size,
                    media_type: media_type.clone(),
                    annotations,
                })
            }
            _ => unreachable!("jobs are planned for the request's operation"),
        }
    }

    /// Stream a job's source blob through `transform` into a new destination blob, returned
    /// unpublished. The source is verified (digest and size) when its end is reached.
    fn stream(
        &self,
        job: &Job,
        mut transform: impl FnMut(&mut [u8]) + Send,
    ) -> Result<Box<dyn crate::store::BlobSink + '_>, LayerError> {
        let digest = &job.source.digest;
        let mut reader = self
            .source
            .open_blob(digest, job.source.size)
            .map_err(LayerError::Store)?;
        let mut sink = self
            .dest
            // The transform works in place: the new blob has the source's size.
            .create_blob_sized(crate::digest::Algorithm::Sha256, job.source.size)
            .map_err(LayerError::Store)?;
        let mut progress = self.progress.start(Item::Layer(&job.at), job.source.size);
        let mut step = |chunk: &mut [u8]| {
            transform(chunk);
            progress.advance(chunk.len() as u64);
        };
        pipeline::pump(&mut *reader, &mut *sink, job.source.size, &mut step).map_err(
            |e| match e {
                pipeline::PumpError::Read(e) => {
                    LayerError::Store(StoreError::from_blob_read(self.source.name(), digest, e))
                }
                pipeline::PumpError::Write(e) => LayerError::Store(StoreError::io(
                    "writing to",
                    self.dest.name().to_string(),
                    e,
                )),
            },
        )?;
        progress.finish();
        Ok(sink)
    }

    /// Rewrite one image's graph with the job outputs. Returns the new top-level descriptor
    /// and the image's report; adds to `needed` every descriptor whose blob the destination
    /// must hold.
    fn rewrite_image(
        &self,
        image: &ImagePlan,
        outputs: &[JobOutput],
        needed: &mut Vec<Descriptor>,
    ) -> Result<(Descriptor, ImageReport), Error> {
        let mut report = ImageReport {
            name: image.name.clone(),
            reference: image.image.ref_name.clone(),
            old_digest: image.image.root.descriptor().digest.clone(),
            new_digest: image.image.root.descriptor().digest.clone(),
            indexes: Vec::new(),
            manifests: Vec::new(),
        };
        let mut manifests = image.manifests.iter();
        let (desc, _) = self.rewrite_node(
            &image.name,
            &image.image.root,
            &mut manifests,
            outputs,
            needed,
            &mut report,
        )?;
        report.new_digest = desc.digest.clone();
        Ok((desc, report))
    }

    /// Rewrite a node; returns its new descriptor and whether its manifest type changed to
    /// OCI (so a parent Docker list must become an OCI index).
    fn rewrite_node<'p>(
        &self,
        image: &str,
        node: &Node,
        manifests: &mut impl Iterator<Item = &'p plan::ManifestPlan>,
        outputs: &[JobOutput],
        needed: &mut Vec<Descriptor>,
        report: &mut ImageReport,
    ) -> Result<(Descriptor, bool), Error> {
        let store_err = |source: StoreError| Error::image(image.to_string(), source);
        match node {
            Node::Other(desc) => {
                needed.push(desc.clone());
                Ok((desc.clone(), false))
            }
            Node::Manifest(m) => {
                let mp = manifests.next().expect("one plan per manifest, in order");
                needed.push(m.config.clone());
                let mut layer_reports = Vec::with_capacity(m.layers.len());
                let mut layers = Vec::with_capacity(m.layers.len());
                for (lp, desc) in mp.layers.iter().zip(&m.layers) {
                    let mut new = desc.clone();
                    match lp.action {
                        LayerAction::Encrypt(job) => {
                            apply_output(&mut new, &outputs[job]);
                            let dropped = drop_chunked_annotations(&mut new);
                            if !dropped.is_empty() {
                                self.warn(format!(
                                    "{image}: layer {} ({}): dropped its partial-pull annotations ({}): an encrypted layer cannot be read in chunks, and they would reveal the layout of the encrypted data; it stays a valid {} stream",
                                    lp.index,
                                    mp.platform,
                                    dropped.join(", "),
                                    if desc.media_type.ends_with("zstd") { "zstd" } else { "gzip" },
                                ));
                            }
                        }
                        LayerAction::Decrypt(job) | LayerAction::Rotate(job) => {
                            apply_output(&mut new, &outputs[job])
                        }
                        LayerAction::Rewrap(job) => {
                            // Same blob, new annotations: the blob itself is copied as it is.
                            apply_output(&mut new, &outputs[job]);
                            needed.push(desc.clone());
                        }
                        LayerAction::Keep(_) => needed.push(desc.clone()),
                    }
                    layer_reports.push(LayerReport {
                        index: lp.index,
                        action: action_name(lp.action),
                        reason: match lp.action {
                            LayerAction::Keep(r) => Some(r),
                            _ => None,
                        },
                        note: lp.note.clone(),
                        old: desc.into(),
                        new: (!matches!(lp.action, LayerAction::Keep(_))).then(|| (&new).into()),
                    });
                    layers.push(new);
                }
                if !mp.changes() {
                    needed.push(m.desc.clone());
                    report.manifests.push(ManifestReport {
                        platform: mp.platform.clone(),
                        old: (&m.desc).into(),
                        new: (&m.desc).into(),
                        layers: layer_reports,
                    });
                    return Ok((m.desc.clone(), false));
                }
                let mut doc = m.doc.clone();
                let mut converted = false;
                if m.desc.media_type == DOCKER_MANIFEST
                    && matches!(self.operation, Operation::Encrypt { .. })
                {
                    // Only an OCI manifest can carry encrypted layers (as containers/image does).
                    converted = true;
                    doc.set_after("mediaType", OCI_MANIFEST, &["schemaVersion"]);
                    let mut config = m.config.clone();
                    if config.media_type == DOCKER_CONFIG {
                        config.set_media_type(OCI_CONFIG);
                    }
                    doc.set_object("config", &config.json);
                    for layer in &mut layers {
                        if let Some(oci) = crate::format::docker_layer_to_oci(&layer.media_type) {
                            layer.set_media_type(oci);
                        }
                    }
                }
                let items: Vec<JsonObject> = layers.iter().map(|l| l.json.clone()).collect();
                doc.set_object_array("layers", &items);
                let (digest, size) = self.dest.put_blob(&doc.to_go_bytes()).map_err(store_err)?;
                let mut desc = m.desc.clone();
                desc.set_content(&digest, size);
                if converted {
                    desc.set_media_type(OCI_MANIFEST);
                }
                report.manifests.push(ManifestReport {
                    platform: mp.platform.clone(),
                    old: (&m.desc).into(),
                    new: (&desc).into(),
                    layers: layer_reports,
                });
                Ok((desc, converted))
            }
            Node::Index(ix) => {
                let mut children = Vec::with_capacity(ix.children.len());
                let mut changed = false;
                let mut any_converted = false;
                for child in &ix.children {
                    let (desc, converted) =
                        self.rewrite_node(image, child, manifests, outputs, needed, report)?;
                    changed |= desc.digest != child.descriptor().digest;
                    any_converted |= converted;
                    children.push(desc);
                }
                if !changed {
                    needed.push(ix.desc.clone());
                    return Ok((ix.desc.clone(), false));
                }
                let mut doc = ix.doc.clone();
                let converted = any_converted && ix.desc.media_type == DOCKER_MANIFEST_LIST;
                if converted {
                    doc.set_after("mediaType", OCI_INDEX, &["schemaVersion"]);
                }
                let items: Vec<JsonObject> = children.iter().map(|c| c.json.clone()).collect();
                doc.set_object_array("manifests", &items);
                let (digest, size) = self.dest.put_blob(&doc.to_go_bytes()).map_err(store_err)?;
                let mut desc = ix.desc.clone();
                desc.set_content(&digest, size);
                if converted {
                    desc.set_media_type(OCI_INDEX);
                }
                report.indexes.push(Change {
                    old: (&ix.desc).into(),
                    new: (&desc).into(),
                });
                Ok((desc, converted))
            }
        }
    }

    /// Copy from the source every needed blob the destination lacks.
    fn copy_missing(&self, needed: &[Descriptor]) -> Result<(), Error> {
        let mut seen = HashSet::new();
        let missing: Vec<&Descriptor> = needed
            .iter()
            .filter(|d| seen.insert(d.digest.clone()) && !self.dest.has_blob(&d.digest))
            // A foreign layer's blob lives at its `urls`; copy it only if it is here anyway.
            .filter(|d| !d.json.contains("urls") || self.source.has_blob(&d.digest))
            .collect();
        self.progress.expect(
            missing.len(),
            missing.iter().map(|d| d.size).fold(0, u64::saturating_add),
        );
        missing.par_iter().try_for_each(|desc| {
            let mut reader = self.source.open_blob(&desc.digest, desc.size)?;
            let mut sink = self
                .dest
                .create_blob_sized(desc.digest.algorithm(), desc.size)?;
            let mut progress = self.progress.start(Item::Copy(&desc.digest), desc.size);
            // Reading verifies the source digest and writing hashes the copy: two hashes that
            // the pipeline runs on two threads for a large blob.
            let mut step = |chunk: &mut [u8]| progress.advance(chunk.len() as u64);
            pipeline::pump(&mut *reader, &mut *sink, desc.size, &mut step).map_err(
                |e| match e {
                    pipeline::PumpError::Read(e) => {
                        StoreError::from_blob_read(self.source.name(), &desc.digest, e)
                    }
                    pipeline::PumpError::Write(e) => {
                        StoreError::io("writing to", self.dest.name().to_string(), e)
                    }
                },
            )?;
            progress.finish();
            sink.commit()?;
            (self.events)(Event::Detail(format!("copied {}", desc.digest)));
            Ok::<(), StoreError>(())
        })?;
        Ok(())
    }
}

/// Annotation prefixes of partial-pull formats (zstd:chunked, eStargz): they locate the
/// table of contents inside the compressed stream and are meaningless, and revealing, once
/// the stream is encrypted. containers/image likewise refuses to keep zstd:chunked when it
/// encrypts.
const CHUNKED_ANNOTATION_PREFIXES: &[&str] = &[
    "io.github.containers.zstd-chunked.",
    "containerd.io/snapshot/stargz/",
    "io.containers.estargz.",
];

/// Remove partial-pull annotations from an encrypted layer's descriptor; returns their keys.
fn drop_chunked_annotations(desc: &mut Descriptor) -> Vec<String> {
    let Ok(mut annotations) = desc.annotations() else {
        return Vec::new();
    };
    let dropped: Vec<String> = annotations
        .keys()
        .filter(|k| CHUNKED_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(str::to_string)
        .collect();
    if !dropped.is_empty() {
        annotations.retain(|k| !CHUNKED_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)));
        desc.set_annotations(&annotations);
    }
    dropped
}

/// Point a layer descriptor at a job's output and fix its media type and annotations.
fn apply_output(desc: &mut Descriptor, output: &JobOutput) {
    let mut annotations = desc.annotations().unwrap_or_default();
    annotations.retain(|k| !k.starts_with(ENC_ANNOTATION_PREFIX));
    if !output.annotations.is_empty() {
        for (k, v) in &output.annotations {
            annotations.set(k, v);
        }
        // Go writes map[string]string with sorted keys.
        annotations.sort_keys();
    }
    desc.set_media_type(&output.media_type);
    desc.set_content(&output.digest, output.size);
    desc.set_annotations(&annotations);
}
