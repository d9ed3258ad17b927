//! `layercrypt rekey`: turn its arguments into one request per image, and run a batch so that
//! one failing image does not stop the others.
//!
//! Which positionals mean what: with `--in-place`, a batch option (`--from-file`, `--shard`,
//! `--json-lines`, `--journal`) or more than two images, every image named is re-keyed in
//! place (a list's lines may name a DST); with exactly two, they are SRC and DST; one is SRC,
//! in place.

use super::batch::{Item, read_list};
use super::{
    EXIT_OK, Failure, RekeyArgs, engine_batch, key_ring, parse_ref, print_report, registry,
    run_request, selection,
};
use layercrypt::engine::Request;
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
    let batch_mode = args.batch.any() || args.in_place || args.images.len() > 2;
    let mut items: Vec<Item> = match (batch_mode, args.images.as_slice()) {
        (false, [src, dst]) => vec![Item {
            source: src.clone(),
            destination: Some(dst.clone()),
        }],
        _ => args
            .images
            .iter()
            .map(|i| Item {
                source: i.clone(),
                destination: None,
            })
            .collect(),
    };
    if let Some(list) = &args.batch.from_file {
        items.extend(read_list(list, &|r| {
            layercrypt::store::ImageRef::parse(r).map(|_| ())
        })?);
    }
    if items.is_empty() {
        return Err(Failure::Usage(
            "no image to re-key".into(),
            "name SRC [DST], several images to re-key in place, or --from-file LIST",
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
    let refs = items
        .iter()
        .flat_map(|i| std::iter::once(&i.source).chain(&i.destination))
        .map(|r| parse_ref(r))
        .collect::<Result<Vec<_>, _>>()?;
    let access = args
        .registry
        .access(&refs.iter().collect::<Vec<_>>(), args.delete_old)?;
    let parse_ref = |text: &str| parse_ref(text).map(|r| r.with_access(&access));
    let request = Request {
        registry,
        source: parse_ref(&items[0].source)?,
        destination: items[0].destination.as_deref().map(parse_ref).transpose()?,
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
    if !batch_mode && items.len() == 1 {
        let report = run_request(&request, &args.common)?;
        print_report(&report, &args.common)?;
        old_manifests_note(
            &args,
            report.images.iter().map(|i| {
                (
                    i.name.clone(),
                    i.old_digest.to_string(),
                    i.new_digest.to_string(),
                )
            }),
        );
        return Ok(EXIT_OK);
    }
    let (code, lines) = engine_batch(&request, items, &args.batch, &args.common, &access)?;
    old_manifests_note(
        &args,
        lines.iter().flat_map(|line| {
            line["images"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    let text = |k: &str| i[k].as_str().unwrap_or_default().to_string();
                    (text("name"), text("old_digest"), text("new_digest"))
                })
                .collect::<Vec<_>>()
        }),
    );
    Ok(code)
}

/// After recipients were dropped from a registry's images without `--delete-old`: the
/// replaced manifests stay readable by digest, and with them the dropped recipients' wrapped
/// keys. Say so, once.
fn old_manifests_note(args: &RekeyArgs, images: impl Iterator<Item = (String, String, String)>) {
    let drops = !args.remove.is_empty() || !args.set.is_empty();
    if !drops || args.delete_old || args.common.quiet || args.common.dry_run {
        return;
    }
    let old: Vec<String> = images
        .filter(|(name, old, new)| name.starts_with("docker://") && old != new)
        .map(|(name, old, _)| format!("{name} (was {old})"))
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
