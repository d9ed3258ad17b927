//! `layercrypt verify`: builds a [`VerifyRequest`] from the arguments, runs the library's
//! [`verify`](layercrypt::verify::verify), and prints its report: one line per checked layer and a
//! summary, or `--json`. The exit status is 0 when every check passed, 1 when one failed.

use std::io::{self, Write};

use super::{
    EXIT_CHECK_FAILED, EXIT_OK, Failure, VerifyArgs, key_ring, parse_ref, registry, selection,
};
use layercrypt::verify::{
    Mode, Status, VerifyReport, VerifyRequest, verify_on, verify_with_progress,
};

/// `verify --help` epilogue.
pub(super) const AFTER_HELP: &str = "\
Examples:
  layercrypt verify oci:app-enc:v1                              (structure only, no keys)
  layercrypt verify -k alice.pem oci:app-enc:v1                 (the keys open every layer)
  layercrypt verify -k alice.pem --full oci-archive:app-enc.tar  (decrypt to nowhere, check all)
  layercrypt verify --require-encrypted --layer -1 oci:app-enc:v1

Without keys, encrypted layers must have valid public options and a wrapped key of a known
scheme. With keys, every encrypted layer's key must unwrap (no layer blob is read or needed:
a layout of manifests and configs alone verifies). --full also
streams every selected layer: the blob must match its digest and size, the ciphertext its HMAC,
the plaintext the digest the encrypting tool recorded (a difference is only a warning when the
content still matches the config's diff_id: skopeo records the digest from before it
recompressed), and the decompressed content the config's rootfs.diff_ids.

Exit status: 0 every check passed; 1 a check failed (a plain layer under --require-encrypted,
a layer no key opens, a missing or corrupt layer blob (--full), a bad HMAC, a digest or diff_id
mismatch); 2 verify could not run (bad usage, unreadable index or manifest, I/O error);
130, 143, 129 interrupted by a signal. Nothing is ever written.";

/// Run `verify` and print its report; the exit status says whether every check passed.
pub(super) fn run(args: VerifyArgs) -> Result<u8, Failure> {
    let registry = registry(&args.keys.gpg, args.quiet || args.json)?;
    let keys = if args.keys.any() {
        Some(key_ring(&args.keys, &registry, args.quiet, args.verbose)?)
    } else {
        None
    };
    let items = super::items(args.source.as_deref(), None, &args.batch)?;
    let refs = items
        .iter()
        .map(|i| parse_ref(&i.source))
        .collect::<Result<Vec<_>, _>>()?;
    let access = args
        .registry
        .access(&refs.iter().collect::<Vec<_>>(), false)?;
    let request = VerifyRequest {
        source: refs[0].clone().with_access(&access),
        selection: layercrypt::plan::Selection {
            base: super::base(args.base.as_deref(), &args.registry, &refs)?,
            ..selection(&args.selection)?
        },
        keys,
        full: args.full,
        require_encrypted: args.require_encrypted,
        jobs: args.jobs.map(usize::from),
        registry,
    };
    if items.len() == 1 && !args.batch.any() {
        // Only --full reads layer data, so only it shows progress.
        let bars = args
            .full
            .then(|| super::bars::Bars::new(args.progress, args.quiet))
            .flatten();
        let report = match &bars {
            Some(bars) => verify_with_progress(&request, bars)?,
            None => verify_with_progress(&request, &layercrypt::progress::Silent)?,
        };
        drop(bars);
        return show(&args, &report).map(|()| exit_status(&report));
    }
    let output = super::batch::Output {
        json: args.json,
        quiet: args.quiet,
        threads: super::batch_threads(&items, args.jobs),
    };
    let human = !args.json && !args.batch.json_lines;
    let (code, _) = super::batch::run("verify", items, &args.batch, &output, &|item, printing| {
        let source = parse_ref(&item.source)?.with_access(&access);
        let report = verify_on(&request, &source, &layercrypt::progress::Silent)?;
        if human {
            let _line = printing.lock().unwrap_or_else(|p| p.into_inner());
            let _ = show(&args, &report);
        }
        Ok(super::batch::Done {
            status: if report.ok {
                super::batch::Status::Unchanged
            } else {
                super::batch::Status::Failed
            },
            report: serde_json::to_value(&report).unwrap_or_default(),
            digests: None,
        })
    })?;
    Ok(code)
}

/// 0 when every check passed, 1 when one failed.
fn exit_status(report: &VerifyReport) -> u8 {
    if report.ok {
        EXIT_OK
    } else {
        EXIT_CHECK_FAILED
    }
}

/// Print a report's warnings and the report, as the options ask.
fn show(args: &VerifyArgs, report: &VerifyReport) -> Result<(), Failure> {
    if !args.quiet {
        for w in &report.warnings {
            super::diagnostic("warning", w);
        }
    }
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        print_report(&mut out, report, args.quiet, args.verbose)?;
    }
    Ok(())
}

/// One line per checked layer (`ok`, `FAILED: reason`, `skipped: reason`) and a summary;
/// `quiet` prints only failures.
fn print_report(
    out: &mut impl Write,
    report: &VerifyReport,
    quiet: bool,
    verbose: bool,
) -> io::Result<()> {
    for image in &report.images {
        for m in &image.manifests {
            if let Some(reason) = &m.reason {
                writeln!(
                    out,
                    "{}  {}  manifest {}  FAILED: {reason}",
                    image.name,
                    m.platform,
                    m.digest.short()
                )?;
            }
            for l in &m.layers {
                let result = match (l.status, &l.reason) {
                    (Status::Failed, r) => format!("FAILED: {}", r.as_deref().unwrap_or("")),
                    (_, _) if quiet => continue,
                    (Status::Skipped, r) => format!("skipped: {}", r.as_deref().unwrap_or("")),
                    (Status::Ok, _) if verbose => {
                        let checks: Vec<String> =
                            l.checks.iter().map(ToString::to_string).collect();
                        match &l.opened_with {
                            Some(k) => format!("ok ({}; opened with {k})", checks.join(", ")),
                            None => format!("ok ({})", checks.join(", ")),
                        }
                    }
                    (Status::Ok, _) => "ok".to_string(),
                };
                writeln!(
                    out,
                    "{}  {}  layer {}  {}  {result}",
                    image.name,
                    m.platform,
                    l.index,
                    l.digest.short()
                )?;
            }
        }
    }
    if quiet {
        return Ok(());
    }
    let c = report.counts;
    let depth = match report.mode {
        Mode::Structure => "structure only, no keys given",
        Mode::Unwrap => "layer keys unwrapped, no layer data read",
        Mode::Full => "decrypted and checked: blob digests, HMACs, recorded digests, diff_ids",
    };
    writeln!(
        out,
        "{}: {} ok, {} failed, {} skipped ({depth})",
        if report.ok { "verified" } else { "FAILED" },
        c.ok,
        c.failed,
        c.skipped
    )
}
