//! Key wrapping: protecting a layer's private options for recipients, and recovering them with
//! keys.
//!
//! Each scheme (`jwe` today) is one module behind the [`KeyWrapper`] trait: wrap for its
//! recipients, unwrap with the keys it can use, and describe a wrapped blob for `inspect`.
//! Adding a scheme means one module and one line in [`wrappers`].
//!
//! Unwrapping follows ocicrypt, but does not give up early: every scheme annotation on the
//! layer, every comma-separated entry and every key is tried before reporting failure, and the
//! failure says which schemes were present and why each failed. Unwrapped options are returned
//! in zeroizing buffers; nothing here logs key material.

pub mod jwe;

use std::fmt;

use zeroize::Zeroizing;

use crate::format::json::JsonObject;
use crate::format::{Envelope, EnvelopeError, keys_annotation, scheme_of_annotation};
use crate::keys::{KeyError, PrivateKey, PublicKey};

/// A key-wrap scheme.
pub trait KeyWrapper: Send + Sync {
    /// The scheme id, the suffix of its annotation (`jwe`).
    fn id(&self) -> &'static str;

    /// Wrap `options` for all `recipients` (all of this scheme) into one blob.
    fn wrap(&self, recipients: &[&Recipient], options: &[u8]) -> Result<Vec<u8>, WrapError>;

    /// Whether `keys` holds any key this scheme can use.
    fn has_keys(&self, keys: &KeyRing) -> bool;

    /// Unwrap one blob with the keys, returning the options and the key that opened them.
    fn unwrap(&self, keys: &KeyRing, blob: &[u8]) -> Result<Unwrapped, String>;

    /// Describe a blob's recipients, without keys.
    fn describe(&self, blob: &[u8]) -> Result<Vec<RecipientInfo>, String>;
}

/// The registered schemes.
pub fn wrappers() -> &'static [&'static dyn KeyWrapper] {
    &[&jwe::JweWrapper]
}

/// The wrapper for a scheme id, if it is registered.
pub fn wrapper(id: &str) -> Option<&'static dyn KeyWrapper> {
    wrappers().iter().copied().find(|w| w.id() == id)
}

/// Schemes ocicrypt defines that this build cannot use yet.
const KNOWN_UNSUPPORTED: &[&str] = &["pgp", "pkcs7", "pkcs11", "provider"];

/// A wrapping failure.
#[derive(Debug, thiserror::Error)]
#[error("wrapping the layer key for {scheme} recipients failed: {reason}")]
pub struct WrapError {
    /// The scheme.
    pub scheme: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// Unwrapped private options and which key opened them.
pub struct Unwrapped {
    /// The private options JSON.
    pub options: Zeroizing<Vec<u8>>,
    /// The scheme that was used.
    pub scheme: String,
    /// A description of the key that opened it (its file), for verbose output.
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
    /// Keys were tried and none opened it.
    #[error("none of the given keys can open it{}", details(attempts))]
    NoKeyOpened {
        /// What was tried, per scheme and entry.
        attempts: Vec<String>,
    },
}

fn details(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(" ({})", lines.join("; "))
    }
}

/// Who a wrapped blob is for, as far as its bytes tell.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecipientInfo {
    /// The scheme id.
    pub scheme: String,
    /// Key algorithm (`RSA-OAEP`, `ECDH-ES+A256KW`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Key id (JWE `kid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Curve of an elliptic-curve recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
}

impl fmt::Display for RecipientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.scheme)?;
        let mut parts = Vec::new();
        if let Some(a) = &self.algorithm {
            parts.push(a.clone());
        }
        if let Some(c) = &self.curve {
            parts.push(c.clone());
        }
        if let Some(k) = &self.key_id {
            parts.push(format!("kid={k}"));
        }
        if !parts.is_empty() {
            write!(f, "[{}]", parts.join(" "))?;
        }
        Ok(())
    }
}

/// A recipient of an encrypted layer.
#[derive(Clone, Debug)]
pub struct Recipient {
    /// The recipient as the user wrote it (`jwe:alice.pub.pem`).
    pub spec: String,
    /// The scheme-specific recipient.
    pub kind: RecipientKind,
}

/// Scheme-specific recipient data.
#[derive(Clone, Debug)]
pub enum RecipientKind {
    /// A JWE recipient public key.
    Jwe(PublicKey),
}

/// Why a recipient string could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecipientError {
    /// No `scheme:` prefix.
    #[error("a recipient is SCHEME:VALUE, e.g. jwe:key.pub.pem")]
    NoScheme,
    /// A prefix ocicrypt does not define.
    #[error("unknown scheme `{0}` (expected jwe, pgp, pkcs7, pkcs11 or provider)")]
    UnknownScheme(String),
    /// A scheme ocicrypt defines that this build does not implement.
    #[error("the {0} scheme is not supported by this version of layercrypt")]
    UnsupportedScheme(String),
    /// The key file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a usable public key.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
}

impl RecipientError {
    /// A likely fix, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            RecipientError::NoScheme | RecipientError::UnknownScheme(_) => {
                Some("write the recipient as jwe:PUBLIC-KEY-FILE".into())
            }
            RecipientError::Key { source, .. } => source.hint(),
            _ => None,
        }
    }
}

impl Recipient {
    /// Parse and load a recipient string (`jwe:FILE`).
    pub fn load(spec: &str) -> Result<Recipient, RecipientError> {
        let (scheme, value) = spec.split_once(':').ok_or(RecipientError::NoScheme)?;
        match scheme {
            "jwe" => {
                let data = std::fs::read(value).map_err(|source| RecipientError::Io {
                    path: value.to_string(),
                    source,
                })?;
                let key = PublicKey::from_bytes(&data).map_err(|source| RecipientError::Key {
                    path: value.to_string(),
                    source,
                })?;
                Ok(Recipient {
                    spec: spec.to_string(),
                    kind: RecipientKind::Jwe(key),
                })
            }
            s if KNOWN_UNSUPPORTED.contains(&s) => {
                Err(RecipientError::UnsupportedScheme(s.to_string()))
            }
            other => Err(RecipientError::UnknownScheme(other.to_string())),
        }
    }

    /// The scheme id this recipient belongs to.
    pub fn scheme(&self) -> &'static str {
        match self.kind {
            RecipientKind::Jwe(_) => "jwe",
        }
    }
}

/// A private key and where it came from.
#[derive(Debug)]
pub struct NamedKey {
    /// Its source, for messages (a file path).
    pub source: String,
    /// The key.
    pub key: PrivateKey,
}

/// The keys available for unwrapping.
#[derive(Debug, Default)]
pub struct KeyRing {
    /// Private keys usable by JWE (and, later, PKCS#7).
    pub private_keys: Vec<NamedKey>,
}

impl KeyRing {
    /// Whether the ring holds no keys at all.
    pub fn is_empty(&self) -> bool {
        self.private_keys.is_empty()
    }
}

/// The wrapped-key annotations of a layer, parsed: scheme id → envelope (or why it is unusable).
fn scheme_envelopes(annotations: &JsonObject) -> Vec<(String, Result<Envelope, EnvelopeError>)> {
    let mut out: Vec<(String, Result<Envelope, EnvelopeError>)> = annotations
        .keys()
        .filter_map(|k| {
            let scheme = scheme_of_annotation(k)?.to_string();
            let value = annotations.get_str(k).ok().flatten().unwrap_or_default();
            Some((scheme, Envelope::parse(&value)))
        })
        .collect();
    // Deterministic order: registered schemes first, in registry order.
    out.sort_by_key(|(s, _)| {
        wrappers()
            .iter()
            .position(|w| w.id() == s)
            .unwrap_or(usize::MAX)
    });
    out
}

/// Recover a layer's private options from its annotations with `keys`, trying every scheme
/// present, every entry and every key.
pub fn unwrap_layer(annotations: &JsonObject, keys: &KeyRing) -> Result<Unwrapped, UnwrapError> {
    let envelopes = scheme_envelopes(annotations);
    if envelopes.is_empty() {
        return Err(UnwrapError::NoWrappedKeys);
    }
    let mut problems = Vec::new();
    let mut attempts = Vec::new();
    let mut tried_any = false;
    for (scheme, envelope) in &envelopes {
        let Some(wrapper) = wrapper(scheme) else {
            problems.push(format!("{scheme}: not supported by this version"));
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
        for (i, blob) in envelope.entries().iter().enumerate() {
            match wrapper.unwrap(keys, blob) {
                Ok(u) => return Ok(u),
                Err(reason) => attempts.push(if envelope.entries().len() > 1 {
                    format!("{scheme} entry {i}: {reason}")
                } else {
                    format!("{scheme}: {reason}")
                }),
            }
        }
    }
    if !tried_any {
        return Err(UnwrapError::NoUsableKeys {
            schemes: envelopes.iter().map(|(s, _)| s.clone()).collect(),
            problems,
        });
    }
    attempts.extend(problems);
    Err(UnwrapError::NoKeyOpened { attempts })
}

/// Wrap `options` for every recipient: one blob per scheme. Returns (annotation key, value)
/// pairs, sorted by key.
pub fn wrap_for(
    recipients: &[Recipient],
    options: &[u8],
) -> Result<Vec<(String, String)>, WrapError> {
    let mut out = Vec::new();
    for wrapper in wrappers() {
        let mine: Vec<&Recipient> = recipients
            .iter()
            .filter(|r| r.scheme() == wrapper.id())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let blob = wrapper.wrap(&mine, options)?;
        out.push((
            keys_annotation(wrapper.id()),
            Envelope::new(vec![blob]).to_annotation(),
        ));
    }
    out.sort();
    Ok(out)
}

/// Describe every wrapped-key annotation of a layer: per scheme, its recipients (or why they
/// cannot be listed).
pub fn describe_layer(
    annotations: &JsonObject,
) -> Vec<(String, Result<Vec<RecipientInfo>, String>)> {
    scheme_envelopes(annotations)
        .into_iter()
        .map(|(scheme, envelope)| {
            let described = match (wrapper(&scheme), envelope) {
                (_, Err(e)) => Err(e.to_string()),
                (None, Ok(_)) => Err("not supported by this version".to_string()),
                (Some(w), Ok(env)) => env
                    .entries()
                    .iter()
                    .map(|b| w.describe(b))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.into_iter().flatten().collect()),
            };
            (scheme, described)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_strings_are_checked() {
        assert!(matches!(
            Recipient::load("key.pem"),
            Err(RecipientError::NoScheme)
        ));
        assert!(matches!(
            Recipient::load("rsa:key.pem"),
            Err(RecipientError::UnknownScheme(s)) if s == "rsa"
        ));
        assert!(matches!(
            Recipient::load("pgp:alice@example.com"),
            Err(RecipientError::UnsupportedScheme(s)) if s == "pgp"
        ));
        assert!(matches!(
            Recipient::load("jwe:/nonexistent/key.pem"),
            Err(RecipientError::Io { .. })
        ));
    }

    #[test]
    fn unwrap_reports_what_it_found() {
        let keys = KeyRing::default();
        let none =
            JsonObject::parse(br#"{"org.opencontainers.image.enc.pubopts":"e30="}"#).unwrap();
        assert_eq!(
            unwrap_layer(&none, &keys).unwrap_err(),
            UnwrapError::NoWrappedKeys
        );
        let pgp_only =
            JsonObject::parse(br#"{"org.opencontainers.image.enc.keys.pgp":"AAE="}"#).unwrap();
        let err = unwrap_layer(&pgp_only, &keys).unwrap_err();
        assert!(err.to_string().contains("pgp"), "{err}");
    }
}
