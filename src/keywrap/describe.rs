//! Describing a layer's wrapped keys without any key, for `inspect` and `verify`: per scheme,
//! who each entry is for ([`RecipientInfo`]), named as well as the context allows
//! ([`DescribeContext`]: certificates for PKCS#7 subjects, the GnuPG home for OpenPGP user
//! ids).
//!
//! It reads only what the blobs say about their recipients; it must never decrypt anything
//! or fail the whole layer because one scheme's annotation cannot be listed (that scheme gets
//! its reason instead).

use std::fmt;
use std::path::PathBuf;

use super::{Registry, scheme_envelopes, unknown_scheme_reason};
use crate::format::json::JsonObject;
use crate::keys::Certificate;

/// What helps `describe` name recipients: certificates (PKCS#7 subjects) and the GnuPG home
/// (OpenPGP user ids).
#[derive(Debug, Default)]
pub struct DescribeContext {
    /// Certificates whose subjects can be shown for matching PKCS#7 entries.
    pub certificates: Vec<Certificate>,
    /// Look up OpenPGP user ids in this GnuPG home (or the default one when `use_gpg`).
    pub gpg_homedir: Option<PathBuf>,
    /// Whether asking `gpg` for user ids is allowed.
    pub use_gpg: bool,
}

/// Who a wrapped blob is for, as far as its bytes (and the context) tell.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecipientInfo {
    /// The scheme id.
    pub scheme: String,
    /// Key algorithm (`RSA-OAEP`, `ECDH-ES+A256KW`, `RSA`, `ECDH`, `RSA-OAEP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Key id: JWE `kid`, OpenPGP key id (`0x…`, as Go prints it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Curve of an elliptic-curve recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// PKCS#7: the certificate issuer (RFC 4514 string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// PKCS#7: the certificate serial number (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// PKCS#7: the certificate subject, when a matching certificate is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// OpenPGP: user ids of the key, when the GnuPG home knows it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_ids: Vec<String>,
    /// The OAEP hash of the entry (PKCS#11; PKCS#7 entries with OAEP key transport).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
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
        if let Some(h) = &self.hash {
            parts.push(h.clone());
        }
        if let Some(k) = &self.key_id {
            parts.push(if self.scheme == "jwe" {
                format!("kid={k}")
            } else {
                k.clone()
            });
        }
        for u in &self.user_ids {
            parts.push(format!("\"{u}\""));
        }
        if let Some(s) = &self.subject {
            parts.push(format!("subject={s}"));
        } else if let Some(i) = &self.issuer {
            parts.push(format!("issuer={i}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={s}"));
        }
        if !parts.is_empty() {
            write!(f, "[{}]", parts.join(" "))?;
        }
        Ok(())
    }
}

/// Describe every wrapped-key annotation of a layer: per scheme, its recipients (or why they
/// cannot be listed).
pub fn describe_layer(
    registry: &Registry,
    annotations: &JsonObject,
    context: &DescribeContext,
) -> Vec<(String, Result<Vec<RecipientInfo>, String>)> {
    scheme_envelopes(registry, annotations)
        .into_iter()
        .map(|(scheme, envelope)| {
            let described = match (registry.get(&scheme), envelope) {
                (_, Err(e)) => Err(e.to_string()),
                // A provider's blob is opaque; its name is all there is to show.
                (None, Ok(_)) if scheme.starts_with("provider.") => Ok(vec![RecipientInfo {
                    scheme: scheme.clone(),
                    ..Default::default()
                }]),
                (None, Ok(_)) => Err(unknown_scheme_reason(&scheme)),
                (Some(w), Ok(env)) => env
                    .entries()
                    .iter()
                    .map(|b| w.describe(b, context))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.into_iter().flatten().collect()),
            };
            (scheme, described)
        })
        .collect()
}
