//! Planning `rekey` for one layer: unwrap its key once, then decide its new wrapped keys
//! (`--remove` by editing the blobs of each scheme, `--add` by appending blobs, `--set` by
//! replacing them all) or a rotation under a fresh layer key.
//!
//! Everything that can be refused is refused here, before anything is written: a layer the
//! keys cannot open, a removal that cannot tell entries apart, a removal that would leave a
//! layer with no recipient, wrapped keys of a scheme this run cannot handle that `--set` or
//! `--rotate` would drop, and a `--remove` that matches nothing at all. Nothing here reads
//! layer data or wraps keys: the jobs do the wrapping.

use crate::error::{Error, LayerError};
use crate::format::classify_descriptor;
use crate::format::{ENC_ANNOTATION_PREFIX, KEYS_ANNOTATION_PREFIX, LayerType, json::JsonObject};
use crate::image::Descriptor;
use crate::keywrap::{
    EditedKeys, RecipientMatcher, Registry, RekeyError, check_all_schemes_handled, has_recipient,
    remove_from_layer,
};

use super::{
    ENCRYPTED_EMPTY_LAYER, Job, JobWork, KeepReason, LayerAction, LayerRef, Operation, open_layer,
};

/// The decision for one selected layer.
pub(super) struct Decided {
    pub action: LayerAction,
    pub note: Option<String>,
    pub warnings: Vec<String>,
}

impl Decided {
    fn keep(reason: KeepReason) -> Decided {
        Decided {
            action: LayerAction::Keep(reason),
            note: None,
            warnings: Vec::new(),
        }
    }
}

/// Decide what re-keying does to one selected layer, adding a job when it changes.
pub(super) fn decide(
    desc: &Descriptor,
    at: &LayerRef,
    operation: &Operation,
    registry: &Registry,
    jobs: &mut Vec<Job>,
) -> Result<Decided, Error> {
    let Operation::Rekey {
        keys,
        add,
        remove,
        set,
        rotate,
    } = operation
    else {
        unreachable!("only for rekey");
    };
    let plain_media_type = match classify_descriptor(&desc.media_type, &desc.json) {
        LayerType::Foreign => return Ok(Decided::keep(KeepReason::Foreign)),
        LayerType::Other => return Ok(Decided::keep(KeepReason::NotALayer)),
        LayerType::Plain { .. } => return Ok(Decided::keep(KeepReason::NotEncrypted)),
        LayerType::Encrypted { plain } => plain,
    };
    let layer_err = |source| Error::layer(at, source);
    let rekey_err = |e: RekeyError| layer_err(LayerError::Rekey(e));
    let annotations = desc
        .annotations()
        .map_err(|e| layer_err(LayerError::Annotations(e)))?;

    // The same blob with the same annotations in another manifest: one job for both.
    let same = |j: &Job| {
        j.source.digest == desc.digest
            && j.source.annotations().ok().map(|a| a.to_go_bytes())
                == Some(annotations.to_go_bytes())
    };
    if let Some(i) = jobs.iter().position(same) {
        let action = match jobs[i].work {
            JobWork::Rotate { .. } => LayerAction::Rotate(i),
            _ => LayerAction::Rewrap(i),
        };
        return Ok(Decided {
            action,
            note: Some(format!("as {}", jobs[i].at)),
            warnings: Vec::new(),
        });
    }

    if !set.is_empty() {
        check_all_schemes_handled(registry, &annotations).map_err(rekey_err)?;
    }
    let (params, private, unwrapped) = open_layer(registry, desc, keys).map_err(layer_err)?;
    let opened_with = format!("{} key {}", unwrapped.scheme, unwrapped.key);
    let specs = |list: &[crate::keywrap::Recipient]| {
        let mut v: Vec<&str> = list.iter().map(|r| r.spec.as_str()).collect();
        v.dedup();
        v.join(", ")
    };
    if *rotate && desc.is_empty_blob() {
        // A fresh key would encrypt the same 0 bytes into the same empty blob, which peers
        // copy without decrypting (see `KeepReason::Empty`): there is nothing to protect, so
        // rotating stores it plain, as `encrypt` leaves it.
        jobs.push(Job {
            source: desc.clone(),
            at: at.clone(),
            work: JobWork::Decrypt {
                params,
                media_type: plain_media_type,
                recorded_digest: private.digest.clone(),
                opened_with,
            },
        });
        return Ok(Decided {
            action: LayerAction::Decrypt(jobs.len() - 1),
            note: Some("empty layer, stored plain: nothing to protect".into()),
            warnings: Vec::new(),
        });
    }
    if *rotate {
        jobs.push(Job {
            source: desc.clone(),
            at: at.clone(),
            work: JobWork::Rotate {
                params,
                media_type: desc.media_type.clone(),
                opened_with,
            },
        });
        return Ok(Decided {
            action: LayerAction::Rotate(jobs.len() - 1),
            note: Some(format!("fresh layer key for {}", specs(set))),
            warnings: Vec::new(),
        });
    }

    let mut warnings = Vec::new();
    if desc.is_empty_blob() {
        warnings.push(format!("{at}: {ENCRYPTED_EMPTY_LAYER}"));
    }
    let mut notes = Vec::new();
    let (keys_after, wrap) = if set.is_empty() {
        let edited = remove_from_layer(registry, &annotations, remove).map_err(rekey_err)?;
        for (m, n) in remove.iter().zip(&edited.removed) {
            if *n > 0 {
                notes.push(format!(
                    "remove {} ({n} entr{})",
                    m.spec,
                    if *n == 1 { "y" } else { "ies" }
                ));
            }
        }
        let mut wrap = Vec::new();
        for (i, r) in add.iter().enumerate() {
            if has_recipient(registry, &annotations, r) {
                warnings.push(format!(
                    "{at}: {} is already a recipient; not adding it again",
                    r.spec
                ));
            } else {
                wrap.push(i);
            }
        }
        if !wrap.is_empty() {
            let added: Vec<_> = wrap.iter().map(|&i| add[i].clone()).collect();
            notes.push(format!("add {}", specs(&added)));
        }
        if edited.annotations.is_empty() && wrap.is_empty() {
            return Err(rekey_err(RekeyError::NoneLeft {
                specs: matched(remove, &edited),
            }));
        }
        if notes.is_empty() {
            return Ok(Decided {
                warnings,
                ..Decided::keep(KeepReason::RecipientsUnchanged)
            });
        }
        (edited, wrap)
    } else {
        notes.push(format!("replace every recipient with {}", specs(set)));
        (
            EditedKeys {
                annotations: Vec::new(),
                removed: vec![0; remove.len()],
            },
            (0..set.len()).collect(),
        )
    };
    jobs.push(Job {
        source: desc.clone(),
        at: at.clone(),
        work: JobWork::Rewrap {
            keys: keys_after,
            other: other_encryption_annotations(&annotations),
            options: unwrapped,
            wrap,
        },
    });
    Ok(Decided {
        action: LayerAction::Rewrap(jobs.len() - 1),
        note: Some(notes.join("; ")),
        warnings,
    })
}

/// The `--remove` values that removed something.
fn matched(remove: &[RecipientMatcher], edited: &EditedKeys) -> Vec<String> {
    remove
        .iter()
        .zip(&edited.removed)
        .filter(|(_, n)| **n > 0)
        .map(|(m, _)| m.spec.clone())
        .collect()
}

/// The encryption annotations that are not wrapped keys (the public options), as they are.
fn other_encryption_annotations(annotations: &JsonObject) -> Vec<(String, String)> {
    annotations
        .keys()
        .filter(|k| k.starts_with(ENC_ANNOTATION_PREFIX) && !k.starts_with(KEYS_ANNOTATION_PREFIX))
        .filter_map(|k| Some((k.to_string(), annotations.get_str(k).ok().flatten()?)))
        .collect()
}

/// Fail for a `--remove` that removed nothing in any selected layer (a typo, most likely).
pub(super) fn check_removals_matched(
    store: &str,
    remove: &[RecipientMatcher],
    jobs: &[Job],
) -> Result<(), Error> {
    for (i, m) in remove.iter().enumerate() {
        let removed: usize = jobs
            .iter()
            .filter_map(|j| match &j.work {
                JobWork::Rewrap { keys, .. } => keys.removed.get(i).copied(),
                _ => None,
            })
            .sum();
        if removed == 0 {
            return Err(Error::RemovedNothing {
                image: store.to_string(),
                spec: m.spec.clone(),
            });
        }
    }
    Ok(())
}
