//! Reading a JWE: the compact, flattened and general serializations split into their parts
//! ([`ParsedJwe`]), base64url-decoded, each recipient's protected, shared and own headers
//! merged (RFC 7516 §7.2.1: they must be disjoint), and each recipient checked for what josekit
//! would otherwise trust or assert on (encrypted-key lengths, the ECDH-ES ephemeral key).
//!
//! Nothing here decrypts. It must never panic on any input, never accept more than
//! [`MAX_RECIPIENTS`] recipients, and never pass an ephemeral key that is not a point on the
//! curve it names.

use base64::Engine as _;
use josekit::jwe::JweHeader;
use josekit::{Map, Value};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};

use super::algorithms::{ContentAlg, KeyAlg};
use super::{JweError, JweSerialization, MAX_RECIPIENTS};
use crate::keys::{B64URL_LENIENT, EcCurve};

/// A JWE split into its parts, base64 decoded, headers merged per recipient.
pub(super) struct ParsedJwe {
    pub(super) serialization: JweSerialization,
    /// The additional authenticated data exactly as RFC 7516 §5.2 step 14
    /// defines it: the protected header as written, plus "." and `aad`.
    pub(super) authenticated: String,
    pub(super) iv: Vec<u8>,
    pub(super) ciphertext: Vec<u8>,
    pub(super) tag: Vec<u8>,
    pub(super) recipients: Vec<ParsedRecipient>,
}

pub(super) struct ParsedRecipient {
    /// Protected, shared unprotected and per-recipient header, merged.
    pub(super) header: Map<String, Value>,
    encrypted_key: Option<Vec<u8>>,
}

impl ParsedRecipient {
    pub(super) fn alg(&self) -> Result<KeyAlg, JweError> {
        match self.header.get("alg") {
            Some(Value::String(name)) => KeyAlg::parse(name)
                .ok_or_else(|| JweError::UnsupportedAlgorithm { alg: name.clone() }),
            Some(_) => Err(JweError::Malformed("\"alg\" is not a string".into())),
            None => Err(JweError::Malformed("a recipient has no \"alg\"".into())),
        }
    }
}

impl ParsedJwe {
    pub(super) fn parse(blob: &[u8]) -> Result<ParsedJwe, JweError> {
        let blob = blob.trim_ascii();
        match blob.first() {
            None => Err(JweError::Malformed("the input is empty".into())),
            Some(b'{') => ParsedJwe::parse_json(blob),
            Some(_) => ParsedJwe::parse_compact(blob),
        }
    }

    fn parse_compact(blob: &[u8]) -> Result<ParsedJwe, JweError> {
        let text = std::str::from_utf8(blob)
            .map_err(|_| JweError::Malformed("neither JSON nor a compact JWE (not text)".into()))?;
        let parts: Vec<&str> = text.split('.').collect();
        let [protected_b64, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
            return Err(JweError::Malformed(format!(
                "a compact JWE has 5 parts separated by \".\"; this has {}",
                parts.len()
            )));
        };
        let header = decode_header(protected_b64, "protected header")?;
        let encrypted_key = if encrypted_key.is_empty() {
            None
        } else {
            Some(decode_b64(encrypted_key, "encrypted_key")?)
        };
        Ok(ParsedJwe {
            serialization: JweSerialization::Compact,
            authenticated: protected_b64.to_string(),
            iv: decode_b64(iv, "iv")?,
            ciphertext: decode_b64(ciphertext, "ciphertext")?,
            tag: decode_b64(tag, "tag")?,
            recipients: vec![ParsedRecipient {
                header,
                encrypted_key,
            }],
        })
    }

    fn parse_json(blob: &[u8]) -> Result<ParsedJwe, JweError> {
        let top: Map<String, Value> = serde_json::from_slice(blob)
            .map_err(|e| JweError::Malformed(format!("not valid JSON: {e}")))?;
        let (protected_b64, protected) = match top.get("protected") {
            Some(Value::String(b64)) => (b64.clone(), decode_header(b64, "protected header")?),
            Some(_) => return Err(JweError::Malformed("\"protected\" is not a string".into())),
            None => (String::new(), Map::new()),
        };
        let shared = match top.get("unprotected") {
            Some(Value::Object(map)) => map.clone(),
            Some(_) => {
                return Err(JweError::Malformed(
                    "\"unprotected\" is not an object".into(),
                ));
            }
            None => Map::new(),
        };
        let mut authenticated = protected_b64;
        match top.get("aad") {
            Some(Value::String(aad)) => {
                decode_b64(aad, "aad")?;
                authenticated.push('.');
                authenticated.push_str(aad);
            }
            Some(_) => return Err(JweError::Malformed("\"aad\" is not a string".into())),
            None => {}
        }
        let required = |name: &str| match top.get(name) {
            Some(Value::String(b64)) => decode_b64(b64, name),
            Some(_) => Err(JweError::Malformed(format!("\"{name}\" is not a string"))),
            None => Err(JweError::Malformed(format!("\"{name}\" is missing"))),
        };
        let iv = required("iv")?;
        let ciphertext = required("ciphertext")?;
        let tag = required("tag")?;

        let (serialization, entries): (_, Vec<&Map<String, Value>>) = match top.get("recipients") {
            Some(Value::Array(list)) => {
                if list.is_empty() {
                    return Err(JweError::Malformed("\"recipients\" is empty".into()));
                }
                if list.len() > MAX_RECIPIENTS {
                    return Err(JweError::Malformed(format!(
                        "\"recipients\" lists {} entries, more than {MAX_RECIPIENTS} recipients",
                        list.len()
                    )));
                }
                let entries = list
                    .iter()
                    .map(|entry| match entry {
                        Value::Object(map) => Ok(map),
                        _ => Err(JweError::Malformed(
                            "an entry of \"recipients\" is not an object".into(),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // go-jose v2 also writes the first recipient's
                // encrypted_key at the top level of general JSON; it is
                // redundant and ignored here, as go-jose ignores it.
                (JweSerialization::General, entries)
            }
            Some(_) => return Err(JweError::Malformed("\"recipients\" is not an array".into())),
            None => (JweSerialization::Flattened, vec![&top]),
        };
        let recipients = entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let own = match entry.get("header") {
                    Some(Value::Object(map)) => map.clone(),
                    Some(_) => {
                        return Err(JweError::Malformed(format!(
                            "the \"header\" of recipient {} is not an object",
                            index + 1
                        )));
                    }
                    None => Map::new(),
                };
                let encrypted_key = match entry.get("encrypted_key") {
                    Some(Value::String(b64)) if b64.is_empty() => None,
                    Some(Value::String(b64)) => Some(decode_b64(b64, "encrypted_key")?),
                    Some(_) => {
                        return Err(JweError::Malformed(
                            "\"encrypted_key\" is not a string".into(),
                        ));
                    }
                    None => None,
                };
                let header = merge_headers(&[&protected, &shared, &own])?;
                Ok(ParsedRecipient {
                    header,
                    encrypted_key,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParsedJwe {
            serialization,
            authenticated,
            iv,
            ciphertext,
            tag,
            recipients,
        })
    }

    /// The `enc` shared by all recipients (RFC 7516 requires one value).
    pub(super) fn enc(&self) -> Result<&str, JweError> {
        let mut found: Option<&str> = None;
        for recipient in &self.recipients {
            let enc = match recipient.header.get("enc") {
                Some(Value::String(enc)) => enc.as_str(),
                Some(_) => return Err(JweError::Malformed("\"enc\" is not a string".into())),
                None => return Err(JweError::Malformed("the header has no \"enc\"".into())),
            };
            match found {
                Some(previous) if previous != enc => {
                    return Err(JweError::Malformed(format!(
                        "recipients disagree on \"enc\" ({previous} and {enc})"
                    )));
                }
                _ => found = Some(enc),
            }
        }
        found.ok_or_else(|| JweError::Malformed("no recipients".into()))
    }

    pub(super) fn content_alg(&self) -> Result<ContentAlg, JweError> {
        let enc = self.enc()?;
        ContentAlg::parse(enc).ok_or_else(|| JweError::UnsupportedEncryption {
            enc: enc.to_string(),
        })
    }

    /// Refuse what ocicrypt never writes and what would change the meaning
    /// of the content: compression (also a decompression-bomb risk) and
    /// critical extensions we do not implement.
    pub(super) fn check_unsupported_features(&self) -> Result<(), JweError> {
        for recipient in &self.recipients {
            if let Some(zip) = recipient.header.get("zip") {
                return Err(JweError::UnsupportedFeature(format!(
                    "compressed payload (\"zip\": {zip}); ocicrypt never compresses JWE payloads"
                )));
            }
            if let Some(crit) = recipient.header.get("crit") {
                return Err(JweError::UnsupportedFeature(format!(
                    "critical header parameters (\"crit\": {crit})"
                )));
            }
        }
        Ok(())
    }

    /// josekit hands these to OpenSSL, whose Rust bindings assert on IV
    /// length; a wrong length is a malformed JWE, not a panic.
    pub(super) fn check_content_lengths(&self, content: ContentAlg) -> Result<(), JweError> {
        if self.iv.len() != content.iv_len() {
            return Err(JweError::Malformed(format!(
                "the iv has {} bytes; {content:?} needs {}",
                self.iv.len(),
                content.iv_len()
            )));
        }
        if self.tag.len() != content.tag_len() {
            return Err(JweError::Malformed(format!(
                "the authentication tag has {} bytes; {content:?} needs {}",
                self.tag.len(),
                content.tag_len()
            )));
        }
        Ok(())
    }
}

/// Merge header maps; RFC 7516 §7.2.1 requires them to be disjoint.
fn merge_headers(parts: &[&Map<String, Value>]) -> Result<Map<String, Value>, JweError> {
    let mut merged = Map::new();
    for part in parts {
        for (name, value) in part.iter() {
            if merged.insert(name.clone(), value.clone()).is_some() {
                return Err(JweError::Malformed(format!(
                    "header parameter \"{name}\" appears in more than one header"
                )));
            }
        }
    }
    Ok(merged)
}

fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, JweError> {
    B64URL_LENIENT
        .decode(text.as_bytes())
        .map_err(|e| JweError::Malformed(format!("\"{what}\" is not valid base64url: {e}")))
}

fn decode_header(b64: &str, what: &str) -> Result<Map<String, Value>, JweError> {
    let bytes = decode_b64(b64, what)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| JweError::Malformed(format!("the {what} is not a JSON object: {e}")))
}

/// A recipient checked for the algorithm it uses, ready for josekit.
pub(super) struct PreparedRecipient {
    pub(super) encrypted_key: Vec<u8>,
    /// The ephemeral key's curve (ECDH-ES only).
    pub(super) curve: Option<EcCurve>,
    /// The header josekit's decrypter reads: only `alg`, and for ECDH-ES a
    /// validated, re-encoded `epk` (and `apu`/`apv`). Everything else in the
    /// JWE header is irrelevant to key decryption.
    pub(super) header: JweHeader,
}

/// Check what josekit would otherwise trust or assert on: encrypted-key
/// length (josekit underflows on AES-KW input shorter than 8 bytes) and the
/// ECDH-ES ephemeral key (must be a point on the curve it names).
pub(super) fn prepare_recipient(
    recipient: &ParsedRecipient,
    alg: KeyAlg,
    content: ContentAlg,
) -> Result<PreparedRecipient, String> {
    let encrypted_key = recipient
        .encrypted_key
        .clone()
        .ok_or_else(|| format!("{} needs an encrypted_key", alg.name()))?;
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(alg.name().into()));
    let mut curve = None;
    if alg.ecdh().is_some() {
        // AES key wrap output is the wrapped key plus one 8-byte block.
        let expected = content.key_len() + 8;
        if encrypted_key.len() != expected {
            return Err(format!(
                "the encrypted_key has {} bytes; {} wrapping a {}-byte key gives {expected}",
                encrypted_key.len(),
                alg.name(),
                content.key_len()
            ));
        }
        let (epk_curve, epk) = validate_epk(recipient.header.get("epk"))?;
        curve = Some(epk_curve);
        header.insert("epk".into(), Value::Object(epk));
        for name in ["apu", "apv"] {
            match recipient.header.get(name) {
                Some(Value::String(b64)) => {
                    let bytes = B64URL_LENIENT
                        .decode(b64.as_bytes())
                        .map_err(|e| format!("\"{name}\" is not base64url: {e}"))?;
                    header.insert(name.into(), Value::String(B64URL_LENIENT.encode(bytes)));
                }
                Some(_) => return Err(format!("\"{name}\" is not a string")),
                None => {}
            }
        }
    } else if encrypted_key.is_empty() {
        return Err("the encrypted_key is empty".into());
    }
    let header = JweHeader::from_map(header).map_err(|e| e.to_string())?;
    Ok(PreparedRecipient {
        encrypted_key,
        curve,
        header,
    })
}

/// Validate an `epk` (RFC 7518 §4.6.1.1): an EC public JWK on P-256/384/521
/// whose point lies on the curve (refusing invalid-curve points), returned
/// with coordinates re-encoded at full field length, which josekit expects.
fn validate_epk(epk: Option<&Value>) -> Result<(EcCurve, Map<String, Value>), String> {
    let Some(Value::Object(epk)) = epk else {
        return Err("ECDH-ES needs an \"epk\" object".into());
    };
    let member = |name: &str| match epk.get(name) {
        Some(Value::String(text)) => Ok(text.as_str()),
        _ => Err(format!("\"epk\" has no \"{name}\" string")),
    };
    if member("kty")? != "EC" {
        return Err(format!(
            "\"epk\" has kty \"{}\", expected \"EC\"",
            member("kty")?
        ));
    }
    let crv = member("crv")?;
    let curve = EcCurve::from_jwk_name(crv)
        .ok_or_else(|| format!("\"epk\" is on unsupported curve \"{crv}\""))?;
    let coordinate = |name: &str| -> Result<BigNum, String> {
        let bytes = B64URL_LENIENT
            .decode(member(name)?.as_bytes())
            .map_err(|e| format!("\"epk\" member \"{name}\" is not base64url: {e}"))?;
        if bytes.is_empty() || bytes.len() > curve.field_bytes() {
            return Err(format!(
                "\"epk\" member \"{name}\" has {} bytes; {curve} coordinates have {}",
                bytes.len(),
                curve.field_bytes()
            ));
        }
        BigNum::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let x = coordinate("x")?;
    let y = coordinate("y")?;
    let group = EcGroup::from_curve_name(curve.nid()).map_err(|e| e.to_string())?;
    EcKey::from_public_key_affine_coordinates(&group, &x, &y)
        .map_err(|_| format!("\"epk\" is not a point on {curve}"))?;
    // field_bytes() is at most 66, so the cast cannot truncate.
    let len = curve.field_bytes() as i32;
    let padded = |n: &BigNum| n.to_vec_padded(len).map_err(|e| e.to_string());
    let mut out = Map::new();
    out.insert("kty".into(), Value::String("EC".into()));
    out.insert("crv".into(), Value::String(crv.into()));
    out.insert(
        "x".into(),
        Value::String(B64URL_LENIENT.encode(padded(&x)?)),
    );
    out.insert(
        "y".into(),
        Value::String(B64URL_LENIENT.encode(padded(&y)?)),
    );
    Ok((curve, out))
}
