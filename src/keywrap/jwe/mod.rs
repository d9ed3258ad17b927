//! The JWE key-wrap scheme (`org.opencontainers.image.enc.keys.jwe`): wraps
//! a layer's private-options JSON for RSA and EC recipients, and unwraps it
//! with private keys, wire-compatible with Go ocicrypt (go-jose v2 in skopeo
//! 1.9, go-jose v4 in current ocicrypt).
//!
//! Writing ([`wrap`]) follows ocicrypt exactly: one JWE for all recipients,
//! content encryption `A256GCM`, no `zip`, no AAD; key algorithm from the
//! JWK's `alg` or RSA-OAEP / ECDH-ES+A256KW by key type; flattened JSON for
//! one recipient (its `alg`/`kid`/`epk` merged into the protected header, as
//! go-jose writes it), general JSON for several. Unlike Go, every recipient
//! carries a `kid` (the JWK's own or the RFC 7638 thumbprint) so `inspect`
//! can say who can open a layer.
//!
//! Reading ([`unwrap`]) accepts compact, flattened and general
//! serializations and the algorithms go-jose v4 allows. It parses and
//! checks the JWE itself and uses josekit only for the cryptography (key
//! decryption, content decryption), so that it can try every recipient with
//! every fitting key. josekit's own general-JSON decoder stops at the first
//! recipient whose `alg` matches the key, which is the bug that makes
//! ocicrypt-rs fail on multi-recipient images.
//!
//! This file holds the scheme's functions ([`wrap`], [`unwrap`], [`describe`],
//! [`remove_recipients`]) and its [`KeyWrapper`](crate::keywrap::KeyWrapper)
//! adapter, [`JweWrapper`]; `algorithms` knows the allowed algorithms and
//! builds josekit encrypters, `parse` reads and checks the serializations.
//!
//! This module must never: panic on any input (josekit and the OpenSSL
//! bindings assert on some lengths, so every length is checked before they
//! see it); return plaintext whose AEAD tag did not verify; accept `dir`,
//! `ECDH-ES` (direct), `RSA1_5`, `zip` or unknown `crit` parameters; keep
//! unwrapped secrets outside [`Zeroizing`] buffers it owns.

mod algorithms;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

use josekit::jwe::{JweContext, JweDecrypter, JweEncrypter, JweHeader, JweHeaderSet};
use josekit::{Map, Value};
use zeroize::Zeroizing;

use crate::keys::{EcCurve, KeyKind, PrivateKey, PublicKey};
use algorithms::{ContentAlg, KeyAlg, encrypter_for, key_fits};
use parse::{ParsedJwe, PreparedRecipient, prepare_recipient};

/// The content encryption ocicrypt always writes.
const WRITE_ENC: &str = "A256GCM";

/// Most recipients one JWE may list, as for OpenPGP and PKCS#7: each is tried with every key
/// of a fitting type, and an RSA try is a private-key operation, so a hostile JWE must not be
/// able to ask for thousands of them.
pub const MAX_RECIPIENTS: usize = 1000;

const ALLOWED_ALGS: &str = "RSA-OAEP, RSA-OAEP-256, ECDH-ES+A128KW, ECDH-ES+A192KW, ECDH-ES+A256KW";
const ALLOWED_ENCS: &str = "A128GCM, A192GCM, A256GCM, A128CBC-HS256, A192CBC-HS384, A256CBC-HS512";

/// Errors of the JWE scheme. Messages say what is wrong with the JWE or the
/// key; the josekit/OpenSSL reason is included where there is one.
#[derive(Debug, thiserror::Error)]
pub enum JweError {
    /// [`wrap`] was called without recipients.
    #[error("no JWE recipients given")]
    NoRecipients,
    /// The input is not a well-formed JWE; the text says which part is wrong.
    #[error("malformed JWE: {0}")]
    Malformed(String),
    /// A key-management algorithm ocicrypt does not allow (in a JWE, or in a
    /// recipient JWK's `alg`).
    #[error("unsupported JWE key algorithm \"{alg}\" (supported: {ALLOWED_ALGS})")]
    UnsupportedAlgorithm {
        /// The `alg` value.
        alg: String,
    },
    /// A content-encryption algorithm ocicrypt does not allow.
    #[error("unsupported JWE content encryption \"{enc}\" (supported: {ALLOWED_ENCS})")]
    UnsupportedEncryption {
        /// The `enc` value.
        enc: String,
    },
    /// A JWE feature ocicrypt never writes and we refuse to read
    /// (compression, critical header parameters).
    #[error("unsupported JWE feature: {0}")]
    UnsupportedFeature(String),
    /// A recipient key cannot be used with the algorithm it asks for.
    #[error("recipient key {key} cannot be used with {alg}: {reason}")]
    KeyUnusable {
        /// The key, as "RSA-2048 (kid …)".
        key: String,
        /// The JWE key algorithm.
        alg: String,
        /// Why not.
        reason: String,
    },
    /// None of the keys opened any recipient of the JWE.
    #[error(
        "none of the {keys} private key(s) could open this JWE ({recipients} recipient(s), {attempts} key/recipient pair(s) of matching type tried)"
    )]
    NoMatchingKey {
        /// Number of recipient entries in the JWE.
        recipients: usize,
        /// Number of private keys given.
        keys: usize,
        /// Number of (recipient, key) pairs whose types fitted and were tried.
        attempts: usize,
    },
    /// A key unwrapped the content key but the content did not authenticate:
    /// the JWE was corrupted or tampered with.
    #[error(
        "the JWE content failed authentication after its key was unwrapped (corrupted or tampered): {0}"
    )]
    ContentAuthentication(String),
    /// josekit failed while building a JWE.
    #[error("JWE encryption failed: {0}")]
    Josekit(String),
}

/// How a JWE was serialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JweSerialization {
    /// Five base64url parts joined by dots.
    Compact,
    /// JSON with one recipient at the top level (Go writes this for one recipient).
    Flattened,
    /// JSON with a `recipients` array (Go writes this for several).
    General,
}

impl fmt::Display for JweSerialization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JweSerialization::Compact => "compact",
            JweSerialization::Flattened => "flattened JSON",
            JweSerialization::General => "general JSON",
        })
    }
}

/// What [`describe`] can tell about a JWE without any key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JweInfo {
    /// The serialization it was written in.
    pub serialization: JweSerialization,
    /// The content encryption (`enc`).
    pub enc: String,
    /// One entry per recipient, in order.
    pub recipients: Vec<JweRecipientInfo>,
}

/// One recipient of a JWE, from its (merged) header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JweRecipientInfo {
    /// The key-management algorithm (`alg`), even if unsupported.
    pub alg: String,
    /// The `kid`, if the writer put one (Go ocicrypt does only for JWK keys with a kid).
    pub kid: Option<String>,
    /// The curve of the ephemeral key (`epk.crv`) for ECDH-ES recipients.
    pub curve: Option<String>,
}

/// Wrap `plaintext` (the private-options JSON) for every recipient in one
/// JWE: content encryption A256GCM, no zip, no AAD.
///
/// The key algorithm per recipient is the JWK's `alg` if it has one (it must
/// be one of RSA-OAEP, RSA-OAEP-256, ECDH-ES+A128KW/A192KW/A256KW and fit the
/// key type), otherwise RSA-OAEP for RSA and ECDH-ES+A256KW for EC keys.
/// Every recipient header carries a `kid`: the JWK's own, else the RFC 7638
/// thumbprint.
///
/// Returns JSON text: flattened serialization for exactly one recipient
/// (protected header `{"enc","alg","kid"[,"epk"]}`), general serialization
/// for more (protected `{"enc":"A256GCM"}`, per-recipient `header`s).
pub fn wrap(recipients: &[PublicKey], plaintext: &[u8]) -> Result<Vec<u8>, JweError> {
    if recipients.is_empty() {
        return Err(JweError::NoRecipients);
    }
    let encrypters = recipients
        .iter()
        .map(encrypter_for)
        .collect::<Result<Vec<_>, _>>()?;
    let mut shared = JweHeaderSet::new();
    shared.set_content_encryption(WRITE_ENC, true);
    let context = JweContext::new();
    // josekit (checked in jwe_context.rs, 0.10.3): the flattened serializer
    // puts alg, kid (from the encrypter) and epk into the protected header
    // and writes no unprotected "header"; the general serializer keeps the
    // protected header as given and puts alg, kid and epk into each
    // recipient's "header". Both are exactly the shapes go-jose writes.
    let json = if let [only] = encrypters.as_slice() {
        context
            .serialize_flattened_json(plaintext, Some(&shared), None, None, only.as_ref())
            .map_err(|e| JweError::Josekit(format!("flattened JWE for one recipient: {e}")))?
    } else {
        let pairs: Vec<(Option<&JweHeader>, &dyn JweEncrypter)> =
            encrypters.iter().map(|e| (None, e.as_ref())).collect();
        context
            .serialize_general_json(plaintext, Some(&shared), &pairs, None)
            .map_err(|e| {
                JweError::Josekit(format!(
                    "general JWE for {} recipients: {e}",
                    encrypters.len()
                ))
            })?
    };
    Ok(json.into_bytes())
}

/// Unwrap a JWE with any of `keys`, returning the plaintext.
///
/// Accepts flattened JSON, general JSON and compact serialization (input
/// starting with `{` is JSON). Key algorithms RSA-OAEP, RSA-OAEP-256,
/// ECDH-ES+A128KW/A192KW/A256KW; content encryption A128/192/256GCM and
/// A128CBC-HS256/A192CBC-HS384/A256CBC-HS512. Every recipient is tried with
/// every key whose type fits its `alg` (and, for ECDH-ES, whose curve is the
/// `epk` curve); `kid`s are not required to match, since Go writes none.
pub fn unwrap(blob: &[u8], keys: &[PrivateKey]) -> Result<Zeroizing<Vec<u8>>, JweError> {
    let jwe = ParsedJwe::parse(blob)?;
    let content = jwe.content_alg()?;
    jwe.check_unsupported_features()?;
    jwe.check_content_lengths(content)?;

    // One PKCS#8 encoding per key: that is what josekit's decrypters take.
    let ders: Vec<Option<Zeroizing<Vec<u8>>>> = keys
        .iter()
        .map(|k| k.pkey().private_key_to_pkcs8().ok().map(Zeroizing::new))
        .collect();

    let mut attempts = 0;
    let mut unsupported: Option<String> = None;
    let mut recipient_problem: Option<String> = None;
    let mut usable_recipients = 0;
    let mut content_failure: Option<String> = None;
    for (index, recipient) in jwe.recipients.iter().enumerate() {
        let alg = match recipient.alg() {
            Ok(alg) => alg,
            Err(JweError::UnsupportedAlgorithm { alg }) => {
                unsupported.get_or_insert(alg);
                continue;
            }
            Err(other) => return Err(other),
        };
        let prepared = match prepare_recipient(recipient, alg, content) {
            Ok(prepared) => prepared,
            Err(why) => {
                recipient_problem.get_or_insert(format!("recipient {}: {why}", index + 1));
                continue;
            }
        };
        usable_recipients += 1;
        for (key, der) in keys.iter().zip(&ders) {
            let Some(der) = der else { continue };
            if !key_fits(alg, prepared.curve, key.kind()) {
                continue;
            }
            // An RSAES-OAEP ciphertext is exactly as long as the modulus (RFC 8017 §7.1.2):
            // any other length fails, so skip the private-key operation a hostile JWE with
            // thousands of recipients would make us pay for each.
            if let KeyKind::Rsa { bits } = key.kind()
                && prepared.encrypted_key.len() != bits.div_ceil(8) as usize
            {
                continue;
            }
            attempts += 1;
            match open(&jwe, &prepared, alg, content, der) {
                Ok(plaintext) => return Ok(plaintext),
                Err(Failure::Key) => {}
                Err(Failure::Content(why)) => content_failure = Some(why),
            }
        }
    }
    if let Some(why) = content_failure {
        return Err(JweError::ContentAuthentication(why));
    }
    if usable_recipients == 0 {
        if let Some(alg) = unsupported {
            return Err(JweError::UnsupportedAlgorithm { alg });
        }
        if let Some(why) = recipient_problem {
            return Err(JweError::Malformed(why));
        }
    }
    Err(JweError::NoMatchingKey {
        recipients: jwe.recipients.len(),
        keys: keys.len(),
        attempts,
    })
}

/// Why one (recipient, key) attempt failed.
enum Failure {
    /// The key did not unwrap the content key (wrong key, almost always).
    Key,
    /// The content key came out but the content did not authenticate.
    Content(String),
}

/// Try one key on one recipient: unwrap the content key, then decrypt and
/// authenticate the content.
fn open(
    jwe: &ParsedJwe,
    recipient: &PreparedRecipient,
    alg: KeyAlg,
    content: ContentAlg,
    pkcs8: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let decrypter: Box<dyn JweDecrypter> = if let Some(rsa) = alg.rsa() {
        Box::new(rsa.decrypter_from_der(pkcs8).map_err(|_| Failure::Key)?)
    } else if let Some(ecdh) = alg.ecdh() {
        Box::new(ecdh.decrypter_from_der(pkcs8).map_err(|_| Failure::Key)?)
    } else {
        return Err(Failure::Key);
    };
    let cipher = content.josekit();
    let cek = decrypter
        .decrypt(Some(&recipient.encrypted_key), cipher, &recipient.header)
        .map_err(|_| Failure::Key)?;
    // into_owned moves an owned buffer, so the only copy is zeroized on drop.
    let cek = Zeroizing::new(cek.into_owned());
    if cek.len() != cipher.key_len() {
        return Err(Failure::Key);
    }
    cipher
        .decrypt(
            &cek,
            Some(&jwe.iv),
            &jwe.ciphertext,
            jwe.authenticated.as_bytes(),
            Some(&jwe.tag),
        )
        .map(Zeroizing::new)
        .map_err(|e| Failure::Content(e.to_string()))
}

/// Describe a JWE's recipients without any key (for `inspect`).
pub fn describe(blob: &[u8]) -> Result<JweInfo, JweError> {
    let jwe = ParsedJwe::parse(blob)?;
    let enc = jwe.enc()?.to_string();
    let recipients = jwe
        .recipients
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let alg = match r.header.get("alg") {
                Some(Value::String(alg)) => alg.clone(),
                _ => {
                    return Err(JweError::Malformed(format!(
                        "recipient {} has no \"alg\" string",
                        index + 1
                    )));
                }
            };
            let kid = match r.header.get("kid") {
                Some(Value::String(kid)) => Some(kid.clone()),
                _ => None,
            };
            let curve = match r.header.get("epk") {
                Some(Value::Object(epk)) => match epk.get("crv") {
                    Some(Value::String(crv)) => Some(crv.clone()),
                    _ => None,
                },
                _ => None,
            };
            Ok(JweRecipientInfo { alg, kid, curve })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(JweInfo {
        serialization: jwe.serialization,
        enc,
        recipients,
    })
}

/// Does `key` belong to this recipient, judged by its `kid`: the JWK's own
/// kid or the RFC 7638 thumbprint ([`wrap`] writes one of them). A recipient
/// without a `kid` (everything Go writes for non-JWK keys) matches no key;
/// use [`key_may_fit`] to know whether trying the key makes sense.
pub fn key_matches(info: &JweRecipientInfo, key: &PublicKey) -> bool {
    info.kid
        .as_deref()
        .is_some_and(|kid| key.jwk_kid() == Some(kid) || key.thumbprint() == kid)
}

/// Could `key` open this recipient at all: its type fits the recipient's
/// `alg` and, for ECDH-ES, its curve is the `epk` curve. Weaker than
/// [`key_matches`]; useful for recipients without a `kid`.
pub fn key_may_fit(info: &JweRecipientInfo, key: &PublicKey) -> bool {
    let Some(alg) = KeyAlg::parse(&info.alg) else {
        return false;
    };
    let curve = info.curve.as_deref().and_then(EcCurve::from_jwk_name);
    key_fits(alg, curve, key.kind())
}

/// Whether one recipient entry of a JWE is the recipient being removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMatch {
    /// It is (its `kid` says so).
    Yes,
    /// It is not.
    No,
    /// It might be: nothing in the entry says whose it is.
    Unknown,
}

/// Remove the recipient entries `verdict` says [`EntryMatch::Yes`] to, leaving the rest of
/// the JWE as it was: general JSON loses elements of `recipients` (and the redundant
/// top-level `encrypted_key` go-jose v2 copies from the first one, when that one goes); a
/// flattened or compact JWE has one recipient, so it is either kept or emptied. The content
/// is not re-encrypted: the remaining recipients keep their encrypted keys.
///
/// An [`EntryMatch::Unknown`] entry makes the removal fail: it may be the recipient, and
/// leaving it in would be a silent failure.
pub fn remove_recipients(
    blob: &[u8],
    verdict: impl Fn(&JweRecipientInfo) -> EntryMatch,
) -> Result<crate::keywrap::Removal, crate::keywrap::RemoveError> {
    use crate::keywrap::{Removal, RemoveError};
    let info = describe(blob).map_err(|e| RemoveError::Malformed(e.to_string()))?;
    let verdicts: Vec<EntryMatch> = info.recipients.iter().map(&verdict).collect();
    if let Some(i) = verdicts.iter().position(|v| *v == EntryMatch::Unknown) {
        let r = &info.recipients[i];
        return Err(RemoveError::Unidentifiable(format!(
            "recipient {} of {} has no key id (kid; Go ocicrypt writes none) and its key type fits, but a {} entry cannot be matched to a public key (its encrypted key is randomized{})",
            i + 1,
            if info.recipients.len() == 1 {
                "the JWE".to_string()
            } else {
                format!("the {} in the JWE", info.recipients.len())
            },
            r.alg,
            if r.curve.is_some() {
                ", its ephemeral key is fresh"
            } else {
                ""
            }
        )));
    }
    let removed = verdicts.iter().filter(|v| **v == EntryMatch::Yes).count();
    if removed == 0 {
        return Ok(Removal::Unchanged);
    }
    if removed == verdicts.len() {
        return Ok(Removal::Emptied { removed });
    }
    // Only general JSON has several recipients.
    let mut top: Map<String, Value> = serde_json::from_slice(blob.trim_ascii())
        .map_err(|e| RemoveError::Malformed(format!("not valid JSON: {e}")))?;
    let Some(Value::Array(list)) = top.get_mut("recipients") else {
        return Err(RemoveError::Malformed(
            "several recipients but no \"recipients\" array".into(),
        ));
    };
    let mut position = 0;
    list.retain(|_| {
        let keep = verdicts[position] != EntryMatch::Yes;
        position += 1;
        keep
    });
    if verdicts[0] == EntryMatch::Yes {
        top.shift_remove("encrypted_key");
    }
    let blob = serde_json::to_vec(&top)
        .map_err(|e| RemoveError::Malformed(format!("cannot write the JWE again: {e}")))?;
    Ok(Removal::Edited { blob, removed })
}

/// The JWE scheme behind the [`KeyWrapper`](crate::keywrap::KeyWrapper) trait.
#[derive(Clone, Copy, Debug)]
pub struct JweWrapper;

impl crate::keywrap::KeyWrapper for JweWrapper {
    fn id(&self) -> &str {
        "jwe"
    }

    fn recipients(
        &self,
        values: &[crate::keywrap::RecipientSpec],
    ) -> Result<Vec<crate::keywrap::Recipient>, crate::keywrap::RecipientFailure> {
        use crate::keywrap::{Recipient, RecipientError, RecipientFailure, RecipientKind};
        values
            .iter()
            .map(|v| {
                let fail = |error| RecipientFailure {
                    spec: v.spec.clone(),
                    error,
                };
                let data = std::fs::read(&v.value).map_err(|source| {
                    fail(RecipientError::Io {
                        path: v.value.clone(),
                        source,
                    })
                })?;
                let key = PublicKey::from_bytes(&data).map_err(|source| {
                    fail(RecipientError::Key {
                        path: v.value.clone(),
                        source,
                    })
                })?;
                Ok(Recipient {
                    spec: v.spec.clone(),
                    scheme: "jwe".into(),
                    kind: RecipientKind::Jwe(key),
                })
            })
            .collect()
    }

    fn wrap(
        &self,
        recipients: &[&crate::keywrap::Recipient],
        options: &[u8],
    ) -> Result<Vec<u8>, crate::keywrap::WrapError> {
        let keys: Vec<PublicKey> = recipients
            .iter()
            .filter_map(|r| match &r.kind {
                crate::keywrap::RecipientKind::Jwe(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        wrap(&keys, options).map_err(|e| crate::keywrap::WrapError {
            scheme: "jwe".into(),
            reason: e.to_string(),
        })
    }

    fn has_keys(&self, keys: &crate::keywrap::KeyRing) -> bool {
        !keys.private_keys.is_empty()
    }

    fn unwrap(
        &self,
        keys: &crate::keywrap::KeyRing,
        blob: &[u8],
    ) -> Result<crate::keywrap::Unwrapped, crate::keywrap::UnwrapFailure> {
        use crate::keywrap::{Attempt, UnwrapFailure, Unwrapped};
        // Structural problems are reported once, not once per key.
        let info = describe(blob).map_err(|e| UnwrapFailure::Malformed(e.to_string()))?;
        let m = info.recipients.len();
        // One key at a time, so the caller learns which key opened the layer, and each key
        // that did not gets its own reason.
        let mut attempts = Vec::new();
        for named in &keys.private_keys {
            match unwrap(blob, std::slice::from_ref(&named.key)) {
                Ok(options) => {
                    return Ok(Unwrapped {
                        options,
                        scheme: "jwe".into(),
                        key: named.source.clone(),
                    });
                }
                Err(JweError::NoMatchingKey { .. }) => attempts.push(Attempt {
                    key: named.source.clone(),
                    reason: format!(
                        "{} key is not any of the {m} recipient{}",
                        named.key.kind(),
                        if m == 1 { "" } else { "s" }
                    ),
                }),
                Err(e) => attempts.push(Attempt {
                    key: named.source.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        Err(UnwrapFailure::NotOpened(attempts))
    }

    fn remove(
        &self,
        blob: &[u8],
        matcher: &crate::keywrap::RecipientMatcher,
    ) -> Result<crate::keywrap::Removal, crate::keywrap::RemoveError> {
        use crate::keywrap::{MatchTarget, RecipientKind, Removal};
        match &matcher.target {
            MatchTarget::Recipients(rs) => {
                let keys: Vec<&PublicKey> = rs
                    .iter()
                    .filter_map(|r| match &r.kind {
                        RecipientKind::Jwe(k) => Some(k),
                        _ => None,
                    })
                    .collect();
                if keys.is_empty() {
                    return Ok(Removal::Unchanged);
                }
                remove_recipients(blob, |info| {
                    if keys.iter().any(|k| key_matches(info, k)) {
                        EntryMatch::Yes
                    } else if info.kid.is_none() && keys.iter().any(|k| key_may_fit(info, k)) {
                        EntryMatch::Unknown
                    } else {
                        EntryMatch::No
                    }
                })
            }
            MatchTarget::KeyId(kid) => remove_recipients(blob, |info| {
                if info.kid.as_deref() == Some(kid.as_str()) {
                    EntryMatch::Yes
                } else {
                    EntryMatch::No
                }
            }),
            MatchTarget::Provider(_) => Ok(Removal::Unchanged),
        }
    }

    fn describe(
        &self,
        blob: &[u8],
        _context: &crate::keywrap::DescribeContext,
    ) -> Result<Vec<crate::keywrap::RecipientInfo>, String> {
        let info = describe(blob).map_err(|e| e.to_string())?;
        Ok(info
            .recipients
            .into_iter()
            .map(|r| crate::keywrap::RecipientInfo {
                scheme: "jwe".into(),
                algorithm: Some(r.alg),
                key_id: r.kid,
                curve: r.curve,
                ..Default::default()
            })
            .collect())
    }
}
