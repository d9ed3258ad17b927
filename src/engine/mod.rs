//! The engine: execute a request, as source → plan → execute → rewrite → commit.
//!
//! [`run`] opens the source ([`crate::source`]), has [`crate::plan`] decide every layer and
//! refuse what cannot be done, then streams each job's blob once, layers in parallel (rayon)
//! and each large layer through the three-stage [`crate::pipeline`] ([`jobs`]); rewrites the
//! manifests and indexes whose content changed, bottom-up ([`rewrite`]); copies the blobs the
//! destination lacks; composes the new top-level index ([`index`]) and commits it last.
//! Blobs the old index referenced and the new one does not (the plaintext of an image
//! encrypted in place, say) are removed after the commit.
//!
//! What the engine must never do: write before the plan exists, publish decrypted data before
//! its HMAC and source digest are verified, or ask which kind of store it writes to (what a
//! store can hold is its declared [`Capabilities`](crate::store::Capabilities), which the plan
//! has already checked). An error at any point leaves the destination as it was.

use crate::digest::Digest;
use crate::error::Error;
use crate::keywrap::Registry;
use crate::plan::{self, Operation, Output, Plan, Selection};
use crate::progress::{Progress, Silent};
use crate::source::{self, Source};
use crate::store::{self, BlobSource, ImageRef, LockMode, StoreWriter};

mod index;
mod jobs;
mod report;
mod rewrite;

pub use report::{BlobRef, Change, ImageReport, LayerReport, ManifestReport, Report};

/// A request to encrypt, decrypt or re-key images.
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

/// What a run produced.
#[derive(Debug)]
pub enum Outcome {
    /// A dry run: the plan, nothing written.
    Planned(Plan, Report),
    /// The run's report.
    Done(Report),
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
    run_on(
        request,
        &request.source,
        request.destination.as_ref(),
        events,
        progress,
    )
}

/// [`run_with_progress`] with another source and destination than the request's: one
/// request (its keys, recipients and selection, loaded once) serves every image of a batch,
/// which may run on several threads at once.
pub fn run_on(
    request: &Request,
    source: &ImageRef,
    destination: Option<&ImageRef>,
    events: &(dyn Fn(Event) + Sync),
    progress: &dyn Progress,
) -> Result<Outcome, Error> {
    let target = Target::of(source, destination)?;
    plan::check_layer_stores(
        &request.operation,
        &source.to_string(),
        source.capabilities(),
        &target.output,
    )?;
    plan::check_request(&request.operation, &request.registry, &target.output)?;
    let Source {
        store,
        top,
        mut images,
    } = source::open(source, target.lock(request.dry_run))?;
    if request.selection.base.is_some() && matches!(request.operation, Operation::Encrypt { .. }) {
        // Layers compressed otherwise than the base's are recognised by their diff_ids.
        source::read_image_diff_ids(store.as_ref(), &mut images);
    }
    let input = plan::Input {
        name: store.name(),
        capabilities: source.capabilities(),
    };
    let plan = plan::build(
        &input,
        images,
        &request.selection,
        &request.operation,
        &request.registry,
        &target.output,
    )?;
    for w in &plan.warnings {
        events(Event::Warning(w.clone()));
    }
    let source_name = source.to_string();
    if request.dry_run {
        let report = report::dry_report(&plan, &source_name, &target.output.name);
        return Ok(Outcome::Planned(plan, report));
    }
    // Nothing to change in place: leave the store alone (but for what an interrupted run
    // left, which opening it removed).
    if !plan.changes() && destination.is_none() {
        let report = report::dry_report(&plan, &source_name, &target.output.name);
        return Ok(Outcome::Done(Report {
            dry_run: false,
            removed_blobs: report_recovered(store.recovered(), events),
            ..report
        }));
    }

    // From here on the run has files to clean up: a stop request is honoured by unwinding
    // (the checks below and in every blob read), never by exiting on the spot. Declared
    // before the writer, so that it ends after the writer has removed what it wrote.
    let _cleanup = crate::interrupt::Deferred::new()?;
    let writer: Box<dyn StoreWriter> = match &target.elsewhere {
        None => store.writer_in_place()?,
        Some(dst) => store::open_destination(dst, crate::image::reachable_from_index)?,
    };
    let recovered = report_recovered(
        match target.elsewhere {
            None => store.recovered(),
            Some(_) => writer.recovered(),
        },
        events,
    );
    let pool = crate::pipeline::worker_pool(request.jobs)?;
    let execution = Execution {
        warnings: std::sync::Mutex::default(),
        source: store.as_ref(),
        dest: writer.as_ref(),
        operation: &request.operation,
        registry: &request.registry,
        events,
        progress,
    };

    // Execute: every job's blob, streamed once; then rewrite each image's graph, bottom-up,
    // and copy what the destination lacks.
    let outputs = pool.install(|| execution.run_jobs(&plan))?;
    let mut report = report::Report::for_run(&plan, source_name, &target.output.name);
    let rewritten = execution.rewrite_images(&plan, &outputs, &mut report, &target.output)?;
    if target.elsewhere.is_some() {
        let needed = rewritten.needed_by_output(&target.output, &execution, &top)?;
        pool.install(|| execution.copy_missing(&needed))?;
    }

    // Compose the new index.
    let base = match target.elsewhere {
        None => index::Base::Source(top),
        Some(_) => index::Base::for_destination(writer.existing_index()?, &top, writer.name())?,
    };
    let placement = match destination {
        None => index::Placement::Replace,
        Some(_) => index::Placement::Merge(target.output.reference.as_deref()),
    };
    let new = index::compose(&base, rewritten.entries, placement, writer.name())?;
    if destination.is_some() {
        for (image, reference) in report.images.iter_mut().zip(&new.references) {
            image.reference = reference.clone();
        }
    }
    let garbage = index::garbage(writer.as_ref(), &base, &new.index).unwrap_or_else(|e| {
        let msg = format!("not removing unreferenced blobs: {e}");
        events(Event::Warning(msg.clone()));
        report.warnings.push(msg);
        Vec::new()
    });
    report.warnings.extend(
        execution
            .warnings
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
    );

    // Commit. The last moment to stop with nothing changed; past the commit the run completes
    // (it only removes what the new index no longer references).
    if crate::interrupt::requested() {
        return Err(crate::interrupt::Interrupted.into());
    }
    let commit = writer.commit(&new.bytes, &garbage)?;
    for w in commit.warnings {
        events(Event::Warning(w.clone()));
        report.warnings.push(w);
    }
    report.removed_blobs = recovered;
    report.removed_blobs.extend(commit.removed);
    Ok(Outcome::Done(report))
}

/// Where a request's result lands, decided from the references alone.
struct Target {
    /// The output as the plan sees it.
    output: Output,
    /// The destination store, when it is not the source rewritten in place.
    elsewhere: Option<ImageRef>,
    /// Whether the result goes into the source's own store (in place, or another reference
    /// in the same layout), which must then be locked exclusively.
    same_store: bool,
}

impl Target {
    /// Refuses a destination that is the source's own directory under another format.
    fn of(source: &ImageRef, dst: Option<&ImageRef>) -> Result<Target, Error> {
        let same_store = match dst {
            None => true,
            Some(d) => source.same_store(d),
        };

        let landing = dst.unwrap_or(source);
        if same_store && dst.is_some_and(|d| d.transport() != source.transport()) {
            return Err(Error::Destination {
                destination: landing.to_string(),
                reason: format!("it is the source, {}, under another format", source),
            });
        }
        Ok(Target {
            output: Output {
                name: landing.to_string(),
                reference: dst.and_then(ImageRef::reference).map(str::to_string),
                in_place: dst.is_none(),
                other_store: !same_store,
                capabilities: landing.capabilities(),
            },
            elsewhere: if same_store { None } else { dst.cloned() },
            same_store,
        })
    }

    /// How the source must be locked: exclusively when the run will rewrite it.
    fn lock(&self, dry_run: bool) -> LockMode {
        if self.same_store && !dry_run {
            LockMode::Exclusive
        } else {
            LockMode::Shared
        }
    }
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

/// What every job and rewrite of one run shares.
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
