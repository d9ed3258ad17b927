//! Unwrapping a layer: recovering its private options from its wrapped-key annotations with
//! the keys of a run ([`unwrap_layer`]), and the vocabulary schemes report with ([`Unwrapped`],
//! [`Attempt`], [`UnwrapFailure`]).
//!
//! It follows ocicrypt, but does not give up early: every scheme annotation on the layer,
//! every comma-separated entry and every key is tried before failure is reported, and the
//! failure names each key tried and why it did not open the layer. It must never return
//! options that no scheme unwrapped, nor show them: they stay in zeroizing buffers and
//! `Debug` of [`Unwrapped`] redacts them.

use std::fmt;

use zeroize::Zeroizing;

use super::{KeyRing, Registry, scheme_envelopes, unknown_scheme_reason};
use crate::format::json::JsonObject;

/// Unwrapped private options and which key opened them.
pub struct Unwrapped {
    /// The private options JSON.
    pub options: Zeroizing<Vec<u8>>,
    /// The scheme that was used.
    pub scheme: String,
    /// A description of the key that opened it (its file, key id, provider), for messages.
    pub key: String,
}

impl fmt::Debug for Unwrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unwrapped")
            .field("options", &"<redacted>")
            .field("scheme", &self.scheme)
            .field("key", &self.key)
            .finish()
    }
}

/// One key tried on a wrapped blob, and why it did not open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The key (file, key id, token object, provider).
    pub key: String,
    /// Why it failed.
    pub reason: String,
}

/// Why a scheme could not unwrap a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnwrapFailure {
    /// The blob is not valid for the scheme.
    Malformed(String),
    /// Keys were tried; none worked.
    NotOpened(Vec<Attempt>),
}

/// Why a layer's private options could not be unwrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The layer carries no wrapped-key annotation at all.
    #[error("it carries no wrapped keys (no org.opencontainers.image.enc.keys.* annotation)")]
    NoWrappedKeys,
    /// None of the given keys is of a type any present scheme can use.
    #[error("it is encrypted for {}, and none of the given keys can be used for that{}", schemes.join(", "), details(problems))]
    NoUsableKeys {
        /// The schemes present on the layer.
        schemes: Vec<String>,
        /// Per-scheme problems (unsupported scheme, malformed annotation).
        problems: Vec<String>,
    },
    /// No key was given at all (no key file, no provider), and GnuPG cannot open it either.
    #[error("it is encrypted for {}, and no key was given to open it{}", schemes.join(", "), details(problems))]
    NoKeysGiven {
        /// The schemes present on the layer.
        schemes: Vec<String>,
        /// Per-scheme problems (unsupported scheme, malformed annotation).
        problems: Vec<String>,
    },
    /// Keys were tried and none opened it.
    #[error("none of the given keys can open it (encrypted for {}){}", schemes.join(", "), details(attempts))]
    NoKeyOpened {
        /// The schemes present on the layer.
        schemes: Vec<String>,
        /// What was tried: `scheme, key: reason`, and per-scheme problems.
        attempts: Vec<String>,
    },
}

fn details(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join("; "))
    }
}

/// Recover a layer's private options from its annotations with `keys`, trying every scheme
/// present, every entry and every key.
pub fn unwrap_layer(
    registry: &Registry,
    annotations: &JsonObject,
    keys: &KeyRing,
) -> Result<Unwrapped, UnwrapError> {
    let envelopes = scheme_envelopes(registry, annotations);
    if envelopes.is_empty() {
        return Err(UnwrapError::NoWrappedKeys);
    }
    let schemes: Vec<String> = envelopes.iter().map(|(s, _)| s.clone()).collect();
    let mut problems = Vec::new();
    let mut attempts = Vec::new();
    let mut tried_any = false;
    for (scheme, envelope) in &envelopes {
        let Some(wrapper) = registry.get(scheme) else {
            problems.push(format!("{scheme}: {}", unknown_scheme_reason(scheme)));
            continue;
        };
        let envelope = match envelope {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("{scheme}: {e}"));
                continue;
            }
        };
        if !wrapper.has_keys(keys) {
            continue;
        }
        tried_any = true;
        let many = envelope.entries().len() > 1;
        for (i, blob) in envelope.entries().iter().enumerate() {
            let label = if many {
                format!("{scheme} entry {i}")
            } else {
                scheme.clone()
            };
            match wrapper.unwrap(keys, blob) {
                Ok(u) => return Ok(u),
                Err(UnwrapFailure::Malformed(reason)) => {
                    attempts.push(format!("{label}: malformed: {reason}"))
                }
                Err(UnwrapFailure::NotOpened(tried)) => attempts.extend(
                    tried
                        .into_iter()
                        .map(|a| format!("{label} with {}: {}", a.key, a.reason)),
                ),
            }
        }
    }
    if !tried_any && keys.is_empty() && keys.providers.is_empty() {
        return Err(UnwrapError::NoKeysGiven { schemes, problems });
    }
    if !tried_any {
        return Err(UnwrapError::NoUsableKeys { schemes, problems });
    }
    attempts.extend(problems);
    Err(UnwrapError::NoKeyOpened { schemes, attempts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_reports_what_it_found() {
        let registry = Registry::builtin();
        let keys = KeyRing::default();
        let none =
            JsonObject::parse(br#"{"org.opencontainers.image.enc.pubopts":"e30="}"#).unwrap();
        assert_eq!(
            unwrap_layer(&registry, &none, &keys).unwrap_err(),
            UnwrapError::NoWrappedKeys
        );
        let other =
            JsonObject::parse(br#"{"org.opencontainers.image.enc.keys.future":"AAE="}"#).unwrap();
        let err = unwrap_layer(&registry, &other, &keys).unwrap_err();
        assert!(err.to_string().contains("future"), "{err}");
    }
}
