//! `layercrypt rekey`: turn its arguments into one request per image, and run a batch so that
//! one failing image does not stop the others.
//!
//! Which positionals mean what: with `--from-file`, `--in-place` or more than two images,
//! every image is re-keyed in place; with exactly two, they are SRC and DST; one is SRC, in
//! place.

use std::io::{self, Write};
use std::path::Path;

use super::{
    EXIT_ERROR, EXIT_OK, Failure, RekeyArgs, key_ring, parse_ref, print_report, registry,
    run_request, run_request_on, selection,
};
use layercrypt::engine::{Report, Request};
use layercrypt::error::Error;
use layercrypt::plan::Operation;

/// Run `rekey`.
pub(super) fn rekey(args: RekeyArgs) -> Result<u8, Failure> {
    if args.add.is_empty() && args.remove.is_empty() && args.set.is_empty() && !args.rotate {
        return Err(Failure::Usage(
            "nothing to do: name recipients to change".into(),
            "use --add RECIPIENT, --remove RECIPIENT-OR-ID, --set RECIPIENT, or --rotate --set RECIPIENT",
        ));
    }
    if args.rotate && args.set.is_empty() {
        return Err(Failure::Usage(
            "--rotate needs the recipients of the new layer key: --set RECIPIENT...".into(),
            "a fresh layer key must be wrapped for every recipient, and the public keys of the current recipients are not in the image; name them all with --set",
        ));
    }
    let mut images = args.images.clone();
    if let Some(file) = &args.from_file {
        images.extend(read_list(file)?);
    }
    let batch = args.from_file.is_some() || args.in_place || images.len() > 2;
    if images.is_empty() {
        return Err(Failure::Usage(
            "no image to re-key".into(),
            "name SRC [DST], several images to re-key in place, or --from-file FILE",
        ));
    }

    let registry = registry(&args.keys.gpg, args.common.quiet)?;
    let recipients = |specs: &[String]| registry.load_recipients(specs).map_err(Error::from);
    let add = recipients(&args.add)?;
    let set = recipients(&args.set)?;
    let remove = args
        .remove
        .iter()
        .map(|spec| registry.load_matcher(spec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::from)?;
    let keys = key_ring(
        &args.keys,
        &registry,
        args.common.quiet,
        args.common.verbose,
    )?;
    let refs = images
        .iter()
        .map(|i| parse_ref(i))
        .collect::<Result<Vec<_>, _>>();
    let access = match &refs {
        Ok(refs) => args
            .registry
            .access(&refs.iter().collect::<Vec<_>>(), args.delete_old)?,
        // Each image's own error is reported where it is re-keyed.
        Err(_) => args.registry.access(&[], args.delete_old)?,
    };
    let parse_ref = |text: &str| parse_ref(text).map(|r| r.with_access(&access));
    let destination = match (batch, images.as_slice()) {
        (false, [_, dst]) => Some(parse_ref(dst)?),
        _ => None,
    };
    let request = Request {
        registry,
        source: parse_ref(&images[0])?,
        destination,
        selection: selection(&args.selection)?,
        operation: Operation::Rekey {
            keys,
            add,
            remove,
            set,
            rotate: args.rotate,
        },
        jobs: args.common.jobs.map(usize::from),
        dry_run: args.common.dry_run,
    };
    if !batch {
        let report = run_request(&request, &args.common)?;
        print_report(&report, &args.common)?;
        old_manifests_note(&args, &[report]);
        return Ok(EXIT_OK);
    }

    let outcomes = run_batch(&request, &images, &args, &access);
    let mut done: Vec<Report> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for (image, outcome) in images.iter().zip(outcomes) {
        match outcome {
            Some(Ok(report)) => done.push(report),
            Some(Err(e)) => failed.push((image.clone(), e.to_string())),
            // Not started: a stop was requested.
            None => {}
        }
    }
    if layercrypt::interrupt::requested() {
        // The images before the stop stay re-keyed, the one it reached is as it was, the
        // rest were not started.
        return Err(Error::from(layercrypt::interrupt::Interrupted).into());
    }
    old_manifests_note(&args, &done);
    let mut out = io::stdout().lock();
    if args.common.json {
        let failures: Vec<serde_json::Value> = failed
            .iter()
            .map(|(image, error)| serde_json::json!({ "source": image, "error": error }))
            .collect();
        let summary = serde_json::json!({
            "operation": "rekey",
            "reports": done,
            "failed": failures,
        });
        serde_json::to_writer_pretty(&mut out, &summary).map_err(io::Error::from)?;
        writeln!(out)?;
    } else if !args.common.quiet {
        writeln!(
            out,
            "{} of {} image{} re-keyed{}",
            done.len(),
            images.len(),
            if images.len() == 1 { "" } else { "s" },
            if args.common.dry_run {
                " (dry run, nothing written)"
            } else {
                ""
            }
        )?;
    }
    if failed.is_empty() {
        return Ok(EXIT_OK);
    }
    let names: Vec<&str> = failed.iter().map(|(image, _)| image.as_str()).collect();
    eprintln!(
        "error: {} of {} images failed and were left as they were: {}",
        failed.len(),
        images.len(),
        names.join(", ")
    );
    Ok(EXIT_ERROR)
}

/// Re-key each of `images` in place with `request`, reporting each as it finishes (human
/// output; `--json` prints the summary after). Registry images run `-j` at a time (each is
/// a few small requests, bound by the network's latency); images on disk run one after
/// another, each with `-j` workers. A failure does not stop the others; a stop request
/// stops the batch. `None`: not started.
fn run_batch(
    request: &Request,
    images: &[String],
    args: &RekeyArgs,
    access: &std::sync::Arc<layercrypt::store::registry::Access>,
) -> Vec<Option<Result<Report, Error>>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let parallel = images.iter().all(|i| i.starts_with("docker://"));
    let threads = if parallel {
        args.common
            .jobs
            .map(usize::from)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .max(4)
            })
            .min(images.len())
    } else {
        1
    };
    let results: Vec<Mutex<Option<Result<Report, Error>>>> =
        images.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let printing = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= images.len() || layercrypt::interrupt::requested() {
                        return;
                    }
                    let image = &images[i];
                    let outcome = parse_ref(image).and_then(|source| {
                        let source = source.with_access(access);
                        run_request_on(request, &source, None, &args.common, !parallel)
                    });
                    {
                        let _line = printing.lock().unwrap_or_else(|p| p.into_inner());
                        match &outcome {
                            Err(_) if layercrypt::interrupt::requested() => {}
                            Ok(report) if !args.common.json => {
                                let _ = print_report(report, &args.common);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                super::diagnostic("error", &format!("{image}: {e}"));
                                if let Some(hint) = super::hint::hint(e) {
                                    super::diagnostic("hint", &hint);
                                }
                            }
                        }
                    }
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

/// After recipients were dropped from a registry's images without `--delete-old`: the
/// replaced manifests stay readable by digest, and with them the dropped recipients' wrapped
/// keys. Say so, once.
fn old_manifests_note(args: &RekeyArgs, reports: &[Report]) {
    let drops = !args.remove.is_empty() || !args.set.is_empty();
    if !drops || args.delete_old || args.common.quiet || args.common.dry_run {
        return;
    }
    let old: Vec<String> = reports
        .iter()
        .flat_map(|r| &r.images)
        .filter(|i| i.name.starts_with("docker://") && i.old_digest != i.new_digest)
        .map(|i| format!("{} (was {})", i.name, i.old_digest))
        .collect();
    if old.is_empty() {
        return;
    }
    super::diagnostic(
        "note",
        &format!(
            "the replaced manifests still exist in the registry by digest, and whoever can pull them can still read the removed recipients' wrapped keys: {}. --delete-old deletes them where the registry allows it; only --rotate revokes (README: Registries)",
            old.join(", ")
        ),
    );
}

/// The image references listed in a file: one per line, blank lines and `#` comments skipped.
fn read_list(file: &Path) -> Result<Vec<String>, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::Usage(
            format!("cannot read the image list {}: {e}", file.display()),
            "--from-file takes a text file with one image reference per line",
        )
    })?;
    Ok(text
        .lines()
        .map(|l| l.split_once('#').map_or(l, |(before, _)| before).trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
