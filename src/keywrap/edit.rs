//! Editing a layer's recipients without its keys: removing recipients named with `--remove`
//! ([`RecipientMatcher`], [`remove_from_layer`]), appending blobs wrapped for new recipients
//! ([`EditedKeys::append`]), and the checks a re-key makes before it replaces every recipient
//! ([`check_all_schemes_handled`], [`has_recipient`]).
//!
//! Untouched annotations are kept byte for byte. It must never guess: an entry that might be
//! the named recipient but cannot be told apart is an error, and wrapped keys of a scheme this
//! run cannot handle are refused before they could be dropped silently.

use super::{Recipient, Registry, scheme_envelopes, unknown_scheme_reason};
use crate::format::json::JsonObject;
use crate::format::{Envelope, keys_annotation};

/// What `--remove` names: recipients resolved as for `-r`, a bare key id, or a key provider.
#[derive(Clone, Debug)]
pub struct RecipientMatcher {
    /// The string as the user wrote it, for messages.
    pub spec: String,
    /// What it names.
    pub target: MatchTarget,
}

/// The recipients a [`RecipientMatcher`] names.
#[derive(Clone, Debug)]
pub enum MatchTarget {
    /// Recipients resolved from a recipient string (`jwe:FILE`, `pgp:EMAIL`, `pkcs7:CERT`, …);
    /// an OpenPGP name may resolve to several certificates.
    Recipients(Vec<Recipient>),
    /// A bare identifier: a JWE `kid`, an OpenPGP key id or fingerprint (hex, `0x` optional),
    /// a PKCS#7 subject key identifier (hex).
    KeyId(String),
    /// `provider:NAME`: every wrapped key of that provider (its blobs are opaque).
    Provider(String),
}

/// What [`KeyWrapper::remove`](super::KeyWrapper::remove) did to a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// Nothing in the blob is the named recipient.
    Unchanged,
    /// `removed` entries were dropped; `blob` holds the others, otherwise as it was.
    Edited {
        /// The blob without the removed entries.
        blob: Vec<u8>,
        /// How many entries were dropped.
        removed: usize,
    },
    /// Every entry of the blob was the named recipient: the blob goes.
    Emptied {
        /// How many entries there were.
        removed: usize,
    },
}

/// Why recipients could not be removed from a blob.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoveError {
    /// The scheme's blobs cannot be edited.
    #[error("this scheme cannot remove single recipients from its wrapped keys")]
    Unsupported,
    /// Some entry might be the recipient, but nothing in it says whose it is.
    #[error("{0}")]
    Unidentifiable(String),
    /// The blob is not valid for the scheme.
    #[error("malformed wrapped key: {0}")]
    Malformed(String),
}

/// Why a layer's recipients cannot be changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RekeyError {
    /// Wrapped keys of a scheme this run cannot read or write (an unconfigured key provider,
    /// a scheme compiled out, an invalid annotation): replacing every recipient would drop
    /// them silently.
    #[error(
        "it has wrapped keys for {scheme}, which this run cannot handle ({reason}); replacing every recipient would drop them"
    )]
    UnhandledScheme {
        /// The scheme id.
        scheme: String,
        /// Why it cannot be handled.
        reason: String,
    },
    /// A `--remove` cannot be carried out on one scheme's wrapped keys.
    #[error("cannot remove {spec} from its {scheme} wrapped keys: {reason}")]
    Remove {
        /// The `--remove` value.
        spec: String,
        /// The scheme id.
        scheme: String,
        /// Why.
        reason: RemoveError,
    },
    /// Adding would put more wrapped keys in one annotation than readers accept.
    #[error(
        "adding would give {annotation} {count} wrapped keys, more than the {} readers accept; replacing every recipient at once wraps the key once for each",
        crate::format::MAX_ENVELOPE_ENTRIES
    )]
    TooManyEntries {
        /// The annotation.
        annotation: String,
        /// How many entries it would hold.
        count: usize,
    },
    /// The removals would leave nobody able to open the layer.
    #[error("removing {} would leave it with no recipient at all", specs.join(", "))]
    NoneLeft {
        /// The `--remove` values that matched.
        specs: Vec<String>,
    },
}

/// A layer's wrapped-key annotations after removals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EditedKeys {
    /// (annotation key, value) of every wrapped-key annotation that remains; untouched
    /// values are kept byte for byte.
    pub annotations: Vec<(String, String)>,
    /// Per matcher, in order: how many entries it removed.
    pub removed: Vec<usize>,
}

impl EditedKeys {
    /// Append blobs wrapped for more recipients (`wrap_for` output) to their schemes'
    /// annotations, as `,base64(blob)`, creating the annotations that do not exist yet.
    ///
    /// Fails when a scheme's annotation would hold more than
    /// [`MAX_ENVELOPE_ENTRIES`](crate::format::MAX_ENVELOPE_ENTRIES) wrapped keys, which no
    /// reader (this one included) would accept.
    pub fn append(&mut self, wrapped: Vec<(String, String)>) -> Result<(), RekeyError> {
        for (key, value) in wrapped {
            match self.annotations.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => {
                    let count = existing.split(',').count() + value.split(',').count();
                    if count > crate::format::MAX_ENVELOPE_ENTRIES {
                        return Err(RekeyError::TooManyEntries {
                            annotation: key,
                            count,
                        });
                    }
                    existing.push(',');
                    existing.push_str(&value);
                }
                None => self.annotations.push((key, value)),
            }
        }
        Ok(())
    }
}

/// Remove the recipients `matchers` name from a layer's wrapped keys, scheme by scheme
/// ([`KeyWrapper::remove`](super::KeyWrapper::remove)); annotations of schemes this registry lacks are kept untouched
/// unless a `provider:NAME` matcher names them. The result may hold no annotation at all:
/// the caller decides whether recipients added in the same run make up for that.
pub fn remove_from_layer(
    registry: &Registry,
    annotations: &JsonObject,
    matchers: &[RecipientMatcher],
) -> Result<EditedKeys, RekeyError> {
    let mut out = EditedKeys {
        annotations: Vec::new(),
        removed: vec![0; matchers.len()],
    };
    for (scheme, envelope) in scheme_envelopes(registry, annotations) {
        let key = keys_annotation(&scheme);
        let raw = annotations.get_str(&key).ok().flatten().unwrap_or_default();
        let provider = matchers.iter().position(|m| {
            matches!(&m.target, MatchTarget::Provider(name) if scheme == format!("provider.{name}"))
        });
        if let Some(i) = provider {
            out.removed[i] += envelope.as_ref().map_or(1, |e| e.entries().len());
            continue;
        }
        let (Some(wrapper), Ok(envelope)) = (registry.get(&scheme), envelope) else {
            out.annotations.push((key, raw));
            continue;
        };
        let mut blobs = Vec::new();
        let mut changed = false;
        'blobs: for blob in envelope.entries() {
            let mut current = blob.clone();
            for (i, m) in matchers.iter().enumerate() {
                let removal = wrapper
                    .remove(&current, m)
                    .map_err(|reason| RekeyError::Remove {
                        spec: m.spec.clone(),
                        scheme: scheme.clone(),
                        reason,
                    })?;
                match removal {
                    Removal::Unchanged => {}
                    Removal::Edited { blob, removed } => {
                        out.removed[i] += removed;
                        current = blob;
                        changed = true;
                    }
                    Removal::Emptied { removed } => {
                        out.removed[i] += removed;
                        changed = true;
                        continue 'blobs;
                    }
                }
            }
            blobs.push(current);
        }
        if !changed {
            out.annotations.push((key, raw));
        } else if !blobs.is_empty() {
            out.annotations
                .push((key, Envelope::new(blobs).to_annotation()));
        }
    }
    Ok(out)
}

/// Whether a layer's wrapped keys certainly include `recipient` (as far as its scheme can
/// identify entries; an entry that cannot be attributed does not count).
pub fn has_recipient(registry: &Registry, annotations: &JsonObject, recipient: &Recipient) -> bool {
    let Some(wrapper) = registry.get(&recipient.scheme) else {
        return false;
    };
    let matcher = RecipientMatcher {
        spec: recipient.spec.clone(),
        target: MatchTarget::Recipients(vec![recipient.clone()]),
    };
    scheme_envelopes(registry, annotations)
        .into_iter()
        .filter(|(s, _)| *s == recipient.scheme)
        .filter_map(|(_, e)| e.ok())
        .any(|e| {
            e.entries().iter().any(|b| {
                matches!(
                    wrapper.remove(b, &matcher),
                    Ok(Removal::Edited { .. } | Removal::Emptied { .. })
                )
            })
        })
}

/// Refuse a layer with wrapped keys that this run cannot handle, before they are replaced.
pub fn check_all_schemes_handled(
    registry: &Registry,
    annotations: &JsonObject,
) -> Result<(), RekeyError> {
    for (scheme, envelope) in scheme_envelopes(registry, annotations) {
        let reason = match (registry.get(&scheme), envelope) {
            (None, _) => unknown_scheme_reason(&scheme),
            (_, Err(e)) => e.to_string(),
            _ => continue,
        };
        return Err(RekeyError::UnhandledScheme { scheme, reason });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_refuses_more_wrapped_keys_than_readers_accept() {
        let key = "org.opencontainers.image.enc.keys.jwe".to_string();
        let full = vec!["AAE="; crate::format::MAX_ENVELOPE_ENTRIES - 1].join(",");
        let mut edited = EditedKeys {
            annotations: vec![(key.clone(), full)],
            removed: Vec::new(),
        };
        edited.append(vec![(key.clone(), "AAI=".into())]).unwrap();
        let err = edited
            .append(vec![(key.clone(), "AAM=".into())])
            .unwrap_err();
        assert!(
            matches!(err, RekeyError::TooManyEntries { count, .. } if count == crate::format::MAX_ENVELOPE_ENTRIES + 1)
        );
        // A scheme without an annotation yet gets a new one.
        edited
            .append(vec![(
                "org.opencontainers.image.enc.keys.pgp".into(),
                "AAQ=".into(),
            )])
            .unwrap();
        assert_eq!(edited.annotations.len(), 2);
    }
}
