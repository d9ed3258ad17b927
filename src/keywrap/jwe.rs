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
//! This module must never: panic on any input (josekit and the OpenSSL
//! bindings assert on some lengths, so every length is checked before they
//! see it); return plaintext whose AEAD tag did not verify; accept `dir`,
//! `ECDH-ES` (direct), `RSA1_5`, `zip` or unknown `crit` parameters; keep
//! unwrapped secrets outside [`Zeroizing`] buffers it owns.

use std::fmt;

use base64::Engine as _;
use josekit::jwe::alg::ecdh_es::EcdhEsJweAlgorithm;
use josekit::jwe::alg::rsaes::RsaesJweAlgorithm;
use josekit::jwe::{
    JweContentEncryption, JweContext, JweDecrypter, JweEncrypter, JweHeader, JweHeaderSet,
};
use josekit::{Map, Value};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use zeroize::Zeroizing;

use crate::keys::{B64URL_LENIENT, EcCurve, KeyKind, PrivateKey, PublicKey};

/// The content encryption ocicrypt always writes.
const WRITE_ENC: &str = "A256GCM";

/// josekit refuses RSA keys shorter than this, for encryption and decryption.
const JOSEKIT_MIN_RSA_BITS: u32 = 2048;

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

// ---------------------------------------------------------------------------
// Algorithms

/// The key-management algorithms ocicrypt allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyAlg {
    RsaOaep,
    RsaOaep256,
    EcdhEsA128kw,
    EcdhEsA192kw,
    EcdhEsA256kw,
}

impl KeyAlg {
    fn parse(name: &str) -> Option<KeyAlg> {
        match name {
            "RSA-OAEP" => Some(KeyAlg::RsaOaep),
            "RSA-OAEP-256" => Some(KeyAlg::RsaOaep256),
            "ECDH-ES+A128KW" => Some(KeyAlg::EcdhEsA128kw),
            "ECDH-ES+A192KW" => Some(KeyAlg::EcdhEsA192kw),
            "ECDH-ES+A256KW" => Some(KeyAlg::EcdhEsA256kw),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
            KeyAlg::EcdhEsA128kw => "ECDH-ES+A128KW",
            KeyAlg::EcdhEsA192kw => "ECDH-ES+A192KW",
            KeyAlg::EcdhEsA256kw => "ECDH-ES+A256KW",
        }
    }

    fn rsa(self) -> Option<RsaesJweAlgorithm> {
        match self {
            KeyAlg::RsaOaep => Some(RsaesJweAlgorithm::RsaOaep),
            KeyAlg::RsaOaep256 => Some(RsaesJweAlgorithm::RsaOaep256),
            _ => None,
        }
    }

    fn ecdh(self) -> Option<EcdhEsJweAlgorithm> {
        match self {
            KeyAlg::EcdhEsA128kw => Some(EcdhEsJweAlgorithm::EcdhEsA128kw),
            KeyAlg::EcdhEsA192kw => Some(EcdhEsJweAlgorithm::EcdhEsA192kw),
            KeyAlg::EcdhEsA256kw => Some(EcdhEsJweAlgorithm::EcdhEsA256kw),
            _ => None,
        }
    }
}

/// Can a key of `kind` open a recipient using `alg` (with an ephemeral key
/// on `epk_curve`)?
fn key_fits(alg: KeyAlg, epk_curve: Option<EcCurve>, kind: KeyKind) -> bool {
    match kind {
        KeyKind::Rsa { bits } => alg.rsa().is_some() && bits >= JOSEKIT_MIN_RSA_BITS,
        KeyKind::Ec { curve } => alg.ecdh().is_some() && epk_curve == Some(curve),
    }
}

/// The content encryptions ocicrypt allows, with the lengths josekit and
/// OpenSSL would otherwise assert on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContentAlg {
    A128Gcm,
    A192Gcm,
    A256Gcm,
    A128CbcHs256,
    A192CbcHs384,
    A256CbcHs512,
}

impl ContentAlg {
    fn parse(name: &str) -> Option<ContentAlg> {
        match name {
            "A128GCM" => Some(ContentAlg::A128Gcm),
            "A192GCM" => Some(ContentAlg::A192Gcm),
            "A256GCM" => Some(ContentAlg::A256Gcm),
            "A128CBC-HS256" => Some(ContentAlg::A128CbcHs256),
            "A192CBC-HS384" => Some(ContentAlg::A192CbcHs384),
            "A256CBC-HS512" => Some(ContentAlg::A256CbcHs512),
            _ => None,
        }
    }

    fn josekit(self) -> &'static dyn JweContentEncryption {
        use josekit::jwe::enc;
        match self {
            ContentAlg::A128Gcm => &enc::A128GCM,
            ContentAlg::A192Gcm => &enc::A192GCM,
            ContentAlg::A256Gcm => &enc::A256GCM,
            ContentAlg::A128CbcHs256 => &enc::A128CBC_HS256,
            ContentAlg::A192CbcHs384 => &enc::A192CBC_HS384,
            ContentAlg::A256CbcHs512 => &enc::A256CBC_HS512,
        }
    }

    /// RFC 7518 §5.2/§5.3: 96-bit IV for GCM, 128-bit for CBC.
    fn iv_len(self) -> usize {
        match self {
            ContentAlg::A128Gcm | ContentAlg::A192Gcm | ContentAlg::A256Gcm => 12,
            _ => 16,
        }
    }

    /// Full-length tags only, as go-jose requires.
    fn tag_len(self) -> usize {
        match self {
            ContentAlg::A128Gcm | ContentAlg::A192Gcm | ContentAlg::A256Gcm => 16,
            ContentAlg::A128CbcHs256 => 16,
            ContentAlg::A192CbcHs384 => 24,
            ContentAlg::A256CbcHs512 => 32,
        }
    }

    fn key_len(self) -> usize {
        self.josekit().key_len()
    }
}

// ---------------------------------------------------------------------------
// Writing

/// A josekit encrypter for one recipient, with its algorithm and kid chosen
/// as described at [`wrap`].
fn encrypter_for(key: &PublicKey) -> Result<Box<dyn JweEncrypter>, JweError> {
    let kid = key
        .jwk_kid()
        .map(str::to_string)
        .unwrap_or_else(|| key.thumbprint());
    let alg = match key.jwk_alg() {
        Some(name) => KeyAlg::parse(name).ok_or_else(|| JweError::UnsupportedAlgorithm {
            alg: name.to_string(),
        })?,
        None => match key.kind() {
            KeyKind::Rsa { .. } => KeyAlg::RsaOaep,
            KeyKind::Ec { .. } => KeyAlg::EcdhEsA256kw,
        },
    };
    let unusable = |reason: String| JweError::KeyUnusable {
        key: format!("{} (kid {kid})", key.kind()),
        alg: alg.name().to_string(),
        reason,
    };
    let spki = key
        .pkey()
        .public_key_to_der()
        .map_err(|e| unusable(format!("cannot encode the public key: {e}")))?;
    match (key.kind(), alg.rsa(), alg.ecdh()) {
        (KeyKind::Rsa { bits }, Some(rsa), _) => {
            if bits < JOSEKIT_MIN_RSA_BITS {
                return Err(unusable(format!(
                    "RSA keys shorter than {JOSEKIT_MIN_RSA_BITS} bits are not supported for JWE"
                )));
            }
            let mut encrypter = rsa
                .encrypter_from_der(&spki)
                .map_err(|e| unusable(e.to_string()))?;
            encrypter.set_key_id(kid.clone());
            Ok(Box::new(encrypter))
        }
        (KeyKind::Ec { .. }, _, Some(ecdh)) => {
            let mut encrypter = ecdh
                .encrypter_from_der(&spki)
                .map_err(|e| unusable(e.to_string()))?;
            encrypter.set_key_id(kid.clone());
            Ok(Box::new(encrypter))
        }
        (kind, _, _) => Err(unusable(format!(
            "the JWK asks for {} but the key is {kind}",
            alg.name()
        ))),
    }
}

// ---------------------------------------------------------------------------
// Reading

/// A JWE split into its parts, base64 decoded, headers merged per recipient.
struct ParsedJwe {
    serialization: JweSerialization,
    /// The additional authenticated data exactly as RFC 7516 §5.2 step 14
    /// defines it: the protected header as written, plus "." and `aad`.
    authenticated: String,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
    recipients: Vec<ParsedRecipient>,
}

struct ParsedRecipient {
    /// Protected, shared unprotected and per-recipient header, merged.
    header: Map<String, Value>,
    encrypted_key: Option<Vec<u8>>,
}

impl ParsedRecipient {
    fn alg(&self) -> Result<KeyAlg, JweError> {
        match self.header.get("alg") {
            Some(Value::String(name)) => KeyAlg::parse(name)
                .ok_or_else(|| JweError::UnsupportedAlgorithm { alg: name.clone() }),
            Some(_) => Err(JweError::Malformed("\"alg\" is not a string".into())),
            None => Err(JweError::Malformed("a recipient has no \"alg\"".into())),
        }
    }
}

impl ParsedJwe {
    fn parse(blob: &[u8]) -> Result<ParsedJwe, JweError> {
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
    fn enc(&self) -> Result<&str, JweError> {
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

    fn content_alg(&self) -> Result<ContentAlg, JweError> {
        let enc = self.enc()?;
        ContentAlg::parse(enc).ok_or_else(|| JweError::UnsupportedEncryption {
            enc: enc.to_string(),
        })
    }

    /// Refuse what ocicrypt never writes and what would change the meaning
    /// of the content: compression (also a decompression-bomb risk) and
    /// critical extensions we do not implement.
    fn check_unsupported_features(&self) -> Result<(), JweError> {
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
    fn check_content_lengths(&self, content: ContentAlg) -> Result<(), JweError> {
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
struct PreparedRecipient {
    encrypted_key: Vec<u8>,
    /// The ephemeral key's curve (ECDH-ES only).
    curve: Option<EcCurve>,
    /// The header josekit's decrypter reads: only `alg`, and for ECDH-ES a
    /// validated, re-encoded `epk` (and `apu`/`apv`). Everything else in the
    /// JWE header is irrelevant to key decryption.
    header: JweHeader,
}

/// Check what josekit would otherwise trust or assert on: encrypted-key
/// length (josekit underflows on AES-KW input shorter than 8 bytes) and the
/// ECDH-ES ephemeral key (must be a point on the curve it names).
fn prepare_recipient(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use std::sync::OnceLock;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/jwe/");
    const OPTIONS: &[u8] = br#"{"symkey":"8T7R6TX8DFnWPj169NLyiJJcTIrr6lIEj0YduP/mCk8=","digest":"sha256:b067c907109e78ffa09de76598215d5d34853c773b14f2cdecd49a920712a3bc","cipheroptions":{"nonce":"usHo9uP4LYPL4FNbkGQLGw=="}}"#;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn fixture_key(name: &str) -> PrivateKey {
        PrivateKey::from_bytes(&fixture(name), None).unwrap()
    }

    /// Test keys, generated once per test run.
    fn keys() -> &'static [PrivateKey; 5] {
        static KEYS: OnceLock<[PrivateKey; 5]> = OnceLock::new();
        KEYS.get_or_init(|| {
            let pem = |p: PKey<openssl::pkey::Private>| {
                PrivateKey::from_bytes(&p.private_key_to_pem_pkcs8().unwrap(), None).unwrap()
            };
            let ec = |nid| {
                let group = EcGroup::from_curve_name(nid).unwrap();
                pem(PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap())
            };
            [
                pem(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()),
                ec(Nid::X9_62_PRIME256V1),
                ec(Nid::SECP384R1),
                ec(Nid::SECP521R1),
                pem(PKey::from_rsa(Rsa::generate(3072).unwrap()).unwrap()),
            ]
        })
    }

    fn json(bytes: &[u8]) -> Map<String, Value> {
        serde_json::from_slice(bytes).unwrap()
    }

    fn protected_header(jwe: &Map<String, Value>) -> Map<String, Value> {
        let b64 = jwe["protected"].as_str().unwrap();
        serde_json::from_slice(&B64URL_LENIENT.decode(b64).unwrap()).unwrap()
    }

    /// The private options ocicrypt wraps: check the shape, not the values.
    fn assert_private_options(plaintext: &[u8]) {
        let options = json(plaintext);
        assert!(options["symkey"].is_string(), "{options:?}");
        assert!(options["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(options["cipheroptions"]["nonce"].is_string());
    }

    fn reencode(jwe: &Map<String, Value>) -> Vec<u8> {
        serde_json::to_vec(jwe).unwrap()
    }

    #[test]
    fn one_recipient_is_flattened_with_everything_in_the_protected_header() {
        for key in keys() {
            let public = key.public_key();
            let blob = wrap(std::slice::from_ref(&public), OPTIONS).unwrap();
            let jwe = json(&blob);
            let names: Vec<&str> = jwe.keys().map(String::as_str).collect();
            assert_eq!(
                names,
                ["protected", "encrypted_key", "iv", "ciphertext", "tag"]
            );
            let header = protected_header(&jwe);
            assert_eq!(header["enc"], "A256GCM");
            assert_eq!(header["kid"].as_str(), Some(public.thumbprint().as_str()));
            match key.kind() {
                KeyKind::Rsa { .. } => {
                    assert_eq!(header["alg"], "RSA-OAEP");
                    assert!(!header.contains_key("epk"));
                }
                KeyKind::Ec { curve } => {
                    assert_eq!(header["alg"], "ECDH-ES+A256KW");
                    assert_eq!(header["epk"]["crv"], curve.jwk_name());
                }
            }
            assert_eq!(*unwrap(&blob, std::slice::from_ref(key)).unwrap(), OPTIONS);
            let info = describe(&blob).unwrap();
            assert_eq!(info.serialization, JweSerialization::Flattened);
            assert!(key_matches(&info.recipients[0], &public));
        }
    }

    #[test]
    fn three_mixed_recipients_are_general_and_each_key_opens_it() {
        let [rsa, p256, p384, ..] = keys();
        let recipients = [rsa.public_key(), p256.public_key(), p384.public_key()];
        let blob = wrap(&recipients, OPTIONS).unwrap();
        let jwe = json(&blob);
        let names: Vec<&str> = jwe.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["protected", "recipients", "iv", "ciphertext", "tag"]
        );
        assert_eq!(jwe["protected"], "eyJlbmMiOiJBMjU2R0NNIn0"); // {"enc":"A256GCM"}
        let entries = jwe["recipients"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        let algs: Vec<&str> = entries
            .iter()
            .map(|e| e["header"]["alg"].as_str().unwrap())
            .collect();
        assert_eq!(algs, ["RSA-OAEP", "ECDH-ES+A256KW", "ECDH-ES+A256KW"]);
        for (entry, public) in entries.iter().zip(&recipients) {
            assert_eq!(
                entry["header"]["kid"].as_str(),
                Some(public.thumbprint().as_str())
            );
        }
        assert_eq!(entries[1]["header"]["epk"]["crv"], "P-256");
        assert_eq!(entries[2]["header"]["epk"]["crv"], "P-384");
        for key in [rsa, p256, p384] {
            assert_eq!(*unwrap(&blob, std::slice::from_ref(key)).unwrap(), OPTIONS);
        }
        let info = describe(&blob).unwrap();
        assert_eq!(info.serialization, JweSerialization::General);
        assert_eq!(info.enc, "A256GCM");
        assert_eq!(info.recipients[2].curve.as_deref(), Some("P-384"));
        assert!(key_matches(&info.recipients[1], &p256.public_key()));
        assert!(!key_matches(&info.recipients[1], &p384.public_key()));
    }

    /// ocicrypt-rs's bug: josekit's general-JSON decoder gives up at the
    /// first recipient whose alg matches the key. Here three RSA-OAEP
    /// recipients come before the one our key opens.
    #[test]
    fn last_recipient_of_same_alg_opens_a_general_jwe() {
        let [rsa, _, _, _, rsa3072] = keys();
        let others: Vec<PublicKey> = (0..3)
            .map(|_| {
                let pem = Rsa::generate(2048).unwrap().public_key_to_pem().unwrap();
                PublicKey::from_bytes(&pem).unwrap()
            })
            .chain([rsa.public_key()])
            .collect();
        let blob = wrap(&others, OPTIONS).unwrap();
        assert_eq!(*unwrap(&blob, std::slice::from_ref(rsa)).unwrap(), OPTIONS);
        // Keys in any order, including ones that fit no recipient.
        let mixed = [rsa3072.clone(), keys()[1].clone(), rsa.clone()];
        assert_eq!(*unwrap(&blob, &mixed).unwrap(), OPTIONS);
    }

    #[test]
    fn jwk_alg_and_kid_are_honoured() {
        let [rsa, p256, _, p521, _] = keys();
        let rsa_jwk = jwk_of(rsa, r#","alg":"RSA-OAEP-256","kid":"rsa-1""#);
        let ec_jwk = jwk_of(p256, r#","alg":"ECDH-ES+A128KW","kid":"ec-1""#);
        let ec192 = jwk_of(p521, r#","alg":"ECDH-ES+A192KW""#);
        let blob = wrap(&[rsa_jwk.clone(), ec_jwk.clone(), ec192.clone()], OPTIONS).unwrap();
        let jwe = json(&blob);
        let headers: Vec<&Value> = jwe["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["header"])
            .collect();
        assert_eq!(headers[0]["alg"], "RSA-OAEP-256");
        assert_eq!(headers[0]["kid"], "rsa-1");
        assert_eq!(headers[1]["alg"], "ECDH-ES+A128KW");
        assert_eq!(headers[1]["kid"], "ec-1");
        assert_eq!(headers[2]["alg"], "ECDH-ES+A192KW");
        assert_eq!(headers[2]["kid"].as_str(), Some(p521.thumbprint().as_str()));
        for key in [rsa, p256, p521] {
            assert_eq!(*unwrap(&blob, std::slice::from_ref(key)).unwrap(), OPTIONS);
        }
        let info = describe(&blob).unwrap();
        assert!(key_matches(&info.recipients[0], &rsa_jwk));
        assert!(!key_matches(&info.recipients[0], &rsa.public_key()));

        let single = wrap(std::slice::from_ref(&ec_jwk), OPTIONS).unwrap();
        let header = protected_header(&json(&single));
        assert_eq!(header["alg"], "ECDH-ES+A128KW");
        assert_eq!(header["kid"], "ec-1");
    }

    fn jwk_of(key: &PrivateKey, extra: &str) -> PublicKey {
        let public = key.public_key();
        let b64 = |b: Vec<u8>| B64URL_LENIENT.encode(b);
        let text = match key.kind() {
            KeyKind::Rsa { .. } => {
                let rsa = public.pkey().rsa().unwrap();
                format!(
                    r#"{{"kty":"RSA","n":"{}","e":"{}"{extra}}}"#,
                    b64(rsa.n().to_vec()),
                    b64(rsa.e().to_vec())
                )
            }
            KeyKind::Ec { curve } => {
                let ec = public.pkey().ec_key().unwrap();
                let mut ctx = openssl::bn::BigNumContext::new().unwrap();
                let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
                ec.public_key()
                    .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                    .unwrap();
                let n = curve.field_bytes() as i32;
                format!(
                    r#"{{"kty":"EC","crv":"{}","x":"{}","y":"{}"{extra}}}"#,
                    curve.jwk_name(),
                    b64(x.to_vec_padded(n).unwrap()),
                    b64(y.to_vec_padded(n).unwrap())
                )
            }
        };
        PublicKey::from_bytes(text.as_bytes()).unwrap()
    }

    #[test]
    fn jwk_alg_that_ocicrypt_refuses_or_that_does_not_fit_the_key() {
        let [rsa, p256, ..] = keys();
        for alg in ["RSA1_5", "dir", "ECDH-ES", "A256KW", "RSA-OAEP-512"] {
            let key = jwk_of(rsa, &format!(r#","alg":"{alg}""#));
            match wrap(&[key], OPTIONS) {
                Err(JweError::UnsupportedAlgorithm { alg: got }) => assert_eq!(got, alg),
                other => panic!("{alg}: {other:?}"),
            }
        }
        let err = wrap(&[jwk_of(p256, r#","alg":"RSA-OAEP""#)], OPTIONS).unwrap_err();
        assert!(matches!(err, JweError::KeyUnusable { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("the JWK asks for RSA-OAEP but the key is EC P-256"),
            "{err}"
        );
        assert!(matches!(wrap(&[], OPTIONS), Err(JweError::NoRecipients)));
    }

    #[test]
    fn rsa_keys_below_2048_bits_are_refused_for_jwe_with_a_reason() {
        let pem = Rsa::generate(1024).unwrap().public_key_to_pem().unwrap();
        let key = PublicKey::from_bytes(&pem).unwrap();
        let err = wrap(&[key], OPTIONS).unwrap_err().to_string();
        assert!(
            err.contains("RSA keys shorter than 2048 bits are not supported for JWE"),
            "{err}"
        );
    }

    #[test]
    fn skopeo_samples_unwrap() {
        let cases: &[(&str, &[&str])] = &[
            (
                "skopeo193-small-jwe.jwe.json",
                &["skopeo193-small-jwe.key.pem"],
            ),
            (
                "skopeo193-small-multi.jwe.json",
                &[
                    "skopeo193-small-multi-rsa2048.key.pem",
                    "skopeo193-small-multi-ec256.key.pem",
                    "skopeo193-small-multi-ec384.key.pem",
                ],
            ),
            ("skopeo193-rsa2048.jwe.json", &["skopeo193-rsa2048.key.pem"]),
            ("skopeo193-rsa4096.jwe.json", &["skopeo193-rsa4096.key.pem"]),
            ("skopeo193-ec256.jwe.json", &["skopeo193-ec256.key.pem"]),
            ("skopeo193-ec384.jwe.json", &["skopeo193-ec384.key.pem"]),
            ("skopeo193-ec521.jwe.json", &["skopeo193-ec521.key.pem"]),
            (
                "skopeo193-jwk-rsa-kid.jwe.json",
                &["skopeo193-jwk-rsa-kid.key.jwk", "skopeo193-rsa2048.key.pem"],
            ),
            (
                "skopeo193-multi.jwe.json",
                &[
                    "skopeo193-rsa2048.key.pem",
                    "skopeo193-ec256.key.pem",
                    "skopeo193-ec384.key.pem",
                    "skopeo193-ec521.key.pem",
                    "skopeo193-rsa4096.key.pem",
                    "skopeo193-jwk-rsa-kid.key.jwk",
                ],
            ),
        ];
        for (jwe, key_files) in cases {
            let blob = fixture(jwe);
            let mut first: Option<Zeroizing<Vec<u8>>> = None;
            for key_file in *key_files {
                let key = fixture_key(key_file);
                let plaintext =
                    unwrap(&blob, &[key]).unwrap_or_else(|e| panic!("{jwe} with {key_file}: {e}"));
                assert_private_options(&plaintext);
                if let Some(first) = &first {
                    assert_eq!(first, &plaintext, "{jwe}");
                }
                first = Some(plaintext);
            }
        }
    }

    /// samples/manifest-jwe-rsa.json, layer 0: the exact private options bytes Go wrapped.
    #[test]
    fn skopeo_manifest_sample_gives_the_exact_private_options() {
        let plaintext = unwrap(
            &fixture("skopeo193-manifest-jwe-rsa-layer0.jwe.json"),
            &[fixture_key("skopeo193-small-jwe.key.pem")],
        )
        .unwrap();
        assert_eq!(
            *plaintext,
            fixture("skopeo193-manifest-jwe-rsa-layer0.privopts.json")
        );
    }

    #[test]
    fn skopeo_samples_describe() {
        let info = describe(&fixture("skopeo193-small-multi.jwe.json")).unwrap();
        assert_eq!(info.serialization, JweSerialization::General);
        assert_eq!(info.enc, "A256GCM");
        let summary: Vec<(&str, Option<&str>)> = info
            .recipients
            .iter()
            .map(|r| (r.alg.as_str(), r.curve.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("RSA-OAEP", None),
                ("ECDH-ES+A256KW", Some("P-256")),
                ("ECDH-ES+A256KW", Some("P-384"))
            ]
        );
        assert!(info.recipients.iter().all(|r| r.kid.is_none()));
        let ec384 = fixture_key("skopeo193-small-multi-ec384.key.pem").public_key();
        // Go writes no kid: nothing matches by kid, but type and curve tell who may fit.
        assert!(!key_matches(&info.recipients[2], &ec384));
        assert!(key_may_fit(&info.recipients[2], &ec384));
        assert!(!key_may_fit(&info.recipients[1], &ec384));

        let info = describe(&fixture("skopeo193-jwk-rsa-kid.jwe.json")).unwrap();
        assert_eq!(info.serialization, JweSerialization::Flattened);
        assert_eq!(info.recipients[0].kid.as_deref(), Some("my-rsa-kid"));
        let jwk = PublicKey::from_bytes(&fixture("skopeo193-jwk-rsa-kid.pub.jwk")).unwrap();
        assert!(key_matches(&info.recipients[0], &jwk));
    }

    #[test]
    fn rsa_ciphertexts_of_another_length_are_not_tried() {
        let [rsa2048, .., rsa3072] = keys();
        let blob = wrap(&[rsa2048.public_key()], OPTIONS).unwrap();
        match unwrap(&blob, std::slice::from_ref(rsa3072)) {
            Err(JweError::NoMatchingKey {
                recipients: 1,
                keys: 1,
                attempts: 0,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(unwrap(&blob, std::slice::from_ref(rsa2048)).is_ok());
    }

    #[test]
    fn wrong_keys_give_no_matching_key() {
        let blob = fixture("skopeo193-small-multi.jwe.json");
        let [rsa, p256, _, p521, _] = keys();
        match unwrap(&blob, &[rsa.clone(), p256.clone(), p521.clone()]) {
            Err(JweError::NoMatchingKey {
                recipients: 3,
                keys: 3,
                attempts: 2,
            }) => {}
            other => panic!("{other:?}"),
        }
        let err = unwrap(
            &fixture("skopeo193-small-jwe.jwe.json"),
            std::slice::from_ref(rsa),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "none of the 1 private key(s) could open this JWE (1 recipient(s), 1 key/recipient pair(s) of matching type tried)"
        );
        assert!(matches!(
            unwrap(&blob, &[]),
            Err(JweError::NoMatchingKey { keys: 0, .. })
        ));
    }

    #[test]
    fn compact_serialization_unwraps() {
        let key = &keys()[1];
        let jwe = json(&wrap(&[key.public_key()], OPTIONS).unwrap());
        let part = |name: &str| jwe[name].as_str().unwrap().to_string();
        let compact = [
            part("protected"),
            part("encrypted_key"),
            part("iv"),
            part("ciphertext"),
            part("tag"),
        ]
        .join(".");
        assert_eq!(
            *unwrap(compact.as_bytes(), std::slice::from_ref(key)).unwrap(),
            OPTIONS
        );
        assert_eq!(
            describe(compact.as_bytes()).unwrap().serialization,
            JweSerialization::Compact
        );
        // With surrounding whitespace, as a file might have.
        let padded = format!("\n{compact}\n");
        assert!(unwrap(padded.as_bytes(), std::slice::from_ref(key)).is_ok());
    }

    #[test]
    fn cbc_hmac_content_encryption_is_accepted() {
        let key = &keys()[0];
        let spki = key.public_key().pkey().public_key_to_der().unwrap();
        for enc in [
            "A128CBC-HS256",
            "A192CBC-HS384",
            "A256CBC-HS512",
            "A128GCM",
            "A192GCM",
        ] {
            let encrypter = RsaesJweAlgorithm::RsaOaep256
                .encrypter_from_der(&spki)
                .unwrap();
            let mut shared = JweHeaderSet::new();
            shared.set_content_encryption(enc, true);
            let blob = JweContext::new()
                .serialize_general_json(OPTIONS, Some(&shared), &[(None, &encrypter)], None)
                .unwrap();
            assert_eq!(
                *unwrap(blob.as_bytes(), std::slice::from_ref(key)).unwrap(),
                OPTIONS,
                "{enc}"
            );
        }
    }

    /// A flattened JWE whose protected header we can rewrite.
    fn with_protected(header: &str) -> Vec<u8> {
        let mut jwe = json(&wrap(&[keys()[0].public_key()], OPTIONS).unwrap());
        jwe.insert(
            "protected".into(),
            Value::String(B64URL_LENIENT.encode(header)),
        );
        reencode(&jwe)
    }

    #[test]
    fn refused_algorithms_say_which() {
        let key = std::slice::from_ref(&keys()[0]);
        for alg in [
            "dir",
            "RSA1_5",
            "ECDH-ES",
            "A128KW",
            "PBES2-HS256+A128KW",
            "none",
        ] {
            let blob = with_protected(&format!(r#"{{"alg":"{alg}","enc":"A256GCM"}}"#));
            match unwrap(&blob, key) {
                Err(JweError::UnsupportedAlgorithm { alg: got }) => assert_eq!(got, alg),
                other => panic!("{alg}: {other:?}"),
            }
            // describe still reports it, for inspect.
            assert_eq!(describe(&blob).unwrap().recipients[0].alg, alg);
        }
        let blob = with_protected(r#"{"alg":"RSA-OAEP","enc":"A128CBC"}"#);
        assert!(
            matches!(unwrap(&blob, key), Err(JweError::UnsupportedEncryption { enc }) if enc == "A128CBC")
        );
        let blob = with_protected(r#"{"alg":"RSA-OAEP","enc":"A256GCM","zip":"DEF"}"#);
        assert!(matches!(
            unwrap(&blob, key),
            Err(JweError::UnsupportedFeature(_))
        ));
        let blob = with_protected(r#"{"alg":"RSA-OAEP","enc":"A256GCM","crit":["exp"],"exp":1}"#);
        assert!(matches!(
            unwrap(&blob, key),
            Err(JweError::UnsupportedFeature(_))
        ));
        let err = JweError::UnsupportedAlgorithm { alg: "dir".into() }.to_string();
        assert!(
            err.starts_with("unsupported JWE key algorithm \"dir\" (supported: RSA-OAEP,"),
            "{err}"
        );
    }

    #[test]
    fn malformed_jwes_say_what_is_malformed() {
        let key = &keys()[1];
        let good = wrap(&[key.public_key()], OPTIONS).unwrap();
        let jwe = json(&good);
        let malformed = |blob: &[u8], why: &str| match unwrap(blob, std::slice::from_ref(key)) {
            Err(JweError::Malformed(text)) => assert!(text.contains(why), "{why}: {text}"),
            other => panic!("{why}: {other:?}"),
        };
        malformed(&good[..good.len() - 10], "not valid JSON");
        malformed(b"", "empty");
        malformed(b"a.b.c", "5 parts");
        malformed(b"!!.a.b.c.d", "not valid base64url");
        for field in ["iv", "ciphertext", "tag", "encrypted_key", "protected"] {
            let mut bad = jwe.clone();
            bad.insert(field.into(), Value::String("*not base64*".into()));
            malformed(&reencode(&bad), "not valid base64url");
        }
        for field in ["iv", "ciphertext", "tag"] {
            let mut bad = jwe.clone();
            bad.remove(field);
            malformed(&reencode(&bad), "is missing");
        }
        let mut bad = jwe.clone();
        bad.insert("iv".into(), Value::String("AAAA".into()));
        malformed(&reencode(&bad), "the iv has 3 bytes");
        let mut bad = jwe.clone();
        bad.insert("tag".into(), Value::String("AAAA".into()));
        malformed(&reencode(&bad), "authentication tag has 3 bytes");
        // AES key wrap input shorter than one block made josekit underflow.
        let mut bad = jwe.clone();
        bad.insert("encrypted_key".into(), Value::String("AAAA".into()));
        malformed(&reencode(&bad), "encrypted_key has 3 bytes");
        let mut bad = jwe.clone();
        bad.insert("header".into(), serde_json::json!({"alg": "RSA-OAEP"}));
        malformed(&reencode(&bad), "appears in more than one header");
        let mut bad = jwe.clone();
        bad.insert("recipients".into(), serde_json::json!([]));
        malformed(&reencode(&bad), "\"recipients\" is empty");
        // Thousands of recipients are refused before any key is tried (and `describe`, which
        // parses the same way, refuses them too).
        let one = serde_json::json!({"encrypted_key": jwe["encrypted_key"]});
        let mut bad = jwe.clone();
        bad.remove("encrypted_key");
        bad.insert(
            "recipients".into(),
            Value::Array(vec![one; MAX_RECIPIENTS + 1]),
        );
        malformed(&reencode(&bad), "more than 1000 recipients");
        assert!(describe(&reencode(&bad)).is_err());
    }

    #[test]
    fn bad_ephemeral_keys_are_refused() {
        let key = &keys()[1];
        let jwe = json(&wrap(&[key.public_key()], OPTIONS).unwrap());
        let header = protected_header(&jwe);
        let with_epk = |epk: Value| {
            let mut header = header.clone();
            header.insert("epk".into(), epk);
            let mut bad = jwe.clone();
            bad.insert(
                "protected".into(),
                Value::String(B64URL_LENIENT.encode(serde_json::to_vec(&header).unwrap())),
            );
            reencode(&bad)
        };
        let epk = header["epk"].clone();
        let mut off_curve = epk.clone();
        off_curve["y"] = Value::String(B64URL_LENIENT.encode([1u8; 32]));
        let mut wrong_curve = epk.clone();
        wrong_curve["crv"] = "P-384".into();
        let mut okp = epk.clone();
        okp["kty"] = "OKP".into();
        for (epk, why) in [
            (off_curve, "not a point on P-256"),
            (wrong_curve, "not a point on P-384"),
            (okp, "expected \"EC\""),
            (Value::String("x".into()), "needs an \"epk\" object"),
        ] {
            match unwrap(&with_epk(epk), std::slice::from_ref(key)) {
                Err(JweError::Malformed(text)) => assert!(text.contains(why), "{why}: {text}"),
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn tampered_content_is_reported_as_such() {
        let key = &keys()[0];
        let mut jwe = json(&wrap(&[key.public_key()], OPTIONS).unwrap());
        let mut ciphertext = B64URL_LENIENT
            .decode(jwe["ciphertext"].as_str().unwrap())
            .unwrap();
        ciphertext[0] ^= 1;
        jwe.insert(
            "ciphertext".into(),
            Value::String(B64URL_LENIENT.encode(&ciphertext)),
        );
        let err = unwrap(&reencode(&jwe), std::slice::from_ref(key)).unwrap_err();
        assert!(matches!(err, JweError::ContentAuthentication(_)), "{err}");
    }

    #[test]
    fn garbage_and_mutations_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let all = keys();
        let seeds = [
            wrap(&[all[1].public_key()], OPTIONS).unwrap(),
            wrap(&[all[0].public_key(), all[2].public_key()], OPTIONS).unwrap(),
            fixture("skopeo193-small-multi.jwe.json"),
        ];
        for round in 0..600 {
            let seed = &seeds[round % seeds.len()];
            let mut data = seed.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() % data.len() as u64) as usize;
                let alphabet = b"{}[]\",:.AZaz09_-=\x00\xff";
                data[i] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            if next() % 4 == 0 {
                data.truncate((next() % data.len() as u64) as usize);
            }
            let _ = describe(&data);
            let _ = unwrap(&data, &all[..3]);
        }
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = describe(&data);
            let _ = unwrap(&data, &all[..1]);
        }
    }
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

#[cfg(test)]
mod remove_tests {
    use super::*;
    use crate::keywrap::{
        KeyWrapper, MatchTarget, Recipient, RecipientKind, RecipientMatcher, Removal, RemoveError,
    };
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    const OPTIONS: &[u8] = br#"{"cipher":"AES_256_CTR_HMAC_SHA256","symkey":"a2V5","digest":"sha256:00","cipheroptions":{"nonce":"bm9uY2U="}}"#;

    fn key(pkey: PKey<openssl::pkey::Private>) -> PrivateKey {
        PrivateKey::from_bytes(&pkey.private_key_to_pem_pkcs8().unwrap(), None).unwrap()
    }

    fn rsa() -> PrivateKey {
        key(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
    }

    fn ec(nid: Nid) -> PrivateKey {
        let group = EcGroup::from_curve_name(nid).unwrap();
        key(PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap())
    }

    fn by_key(k: &PrivateKey) -> RecipientMatcher {
        RecipientMatcher {
            spec: "jwe:test".into(),
            target: MatchTarget::Recipients(vec![Recipient {
                spec: "jwe:test".into(),
                scheme: "jwe".into(),
                kind: RecipientKind::Jwe(k.public_key()),
            }]),
        }
    }

    fn opens(blob: &[u8], k: &PrivateKey) -> bool {
        unwrap(blob, std::slice::from_ref(k)).is_ok()
    }

    #[test]
    fn removing_one_of_three_keeps_the_others_exactly() {
        let keys = [rsa(), ec(Nid::X9_62_PRIME256V1), ec(Nid::SECP384R1)];
        let publics: Vec<PublicKey> = keys.iter().map(PrivateKey::public_key).collect();
        let blob = wrap(&publics, OPTIONS).unwrap();
        for (i, gone) in keys.iter().enumerate() {
            let Removal::Edited {
                blob: edited,
                removed,
            } = JweWrapper.remove(&blob, &by_key(gone)).unwrap()
            else {
                panic!("recipient {i} not removed");
            };
            assert_eq!(removed, 1);
            assert!(!opens(&edited, gone), "removed key {i} still opens it");
            for (j, k) in keys.iter().enumerate().filter(|(j, _)| *j != i) {
                assert_eq!(
                    *unwrap(&edited, std::slice::from_ref(k)).unwrap(),
                    OPTIONS,
                    "{j}"
                );
            }
            // Everything but the recipients array is untouched.
            let before: Map<String, Value> = serde_json::from_slice(&blob).unwrap();
            let after: Map<String, Value> = serde_json::from_slice(&edited).unwrap();
            for field in ["protected", "iv", "ciphertext", "tag"] {
                assert_eq!(before[field], after[field]);
            }
            let list = |m: &Map<String, Value>| m["recipients"].as_array().unwrap().clone();
            let mut expected = list(&before);
            expected.remove(i);
            assert_eq!(list(&after), expected);
        }
    }

    #[test]
    fn by_kid_and_all_recipients() {
        let keys = [rsa(), ec(Nid::X9_62_PRIME256V1)];
        let publics: Vec<PublicKey> = keys.iter().map(PrivateKey::public_key).collect();
        let blob = wrap(&publics, OPTIONS).unwrap();
        let kid = RecipientMatcher {
            spec: "kid".into(),
            target: MatchTarget::KeyId(publics[1].thumbprint()),
        };
        let Removal::Edited { blob: edited, .. } = JweWrapper.remove(&blob, &kid).unwrap() else {
            panic!("not removed by kid");
        };
        assert!(opens(&edited, &keys[0]) && !opens(&edited, &keys[1]));
        // Its only recipient gone, the blob goes.
        assert_eq!(
            JweWrapper.remove(&edited, &by_key(&keys[0])).unwrap(),
            Removal::Emptied { removed: 1 }
        );
        let single = wrap(&publics[..1], OPTIONS).unwrap();
        assert_eq!(
            JweWrapper.remove(&single, &by_key(&keys[0])).unwrap(),
            Removal::Emptied { removed: 1 }
        );
        // A key that is not a recipient (with a kid on every entry) matches nothing.
        let other = rsa();
        assert_eq!(
            JweWrapper.remove(&blob, &by_key(&other)).unwrap(),
            Removal::Unchanged
        );
        let unknown_kid = RecipientMatcher {
            spec: "kid".into(),
            target: MatchTarget::KeyId("nobody".into()),
        };
        assert_eq!(
            JweWrapper.remove(&blob, &unknown_kid).unwrap(),
            Removal::Unchanged
        );
    }

    /// Go writes no kid: an entry whose key type fits cannot be attributed, and that is an
    /// error, never a guess. An entry whose type cannot fit the key is not it.
    #[test]
    fn go_entries_without_kid_cannot_be_attributed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/jwe");
        let blob = std::fs::read(dir.join("skopeo193-multi.jwe.json")).unwrap();
        let rsa_key = PrivateKey::from_bytes(
            &std::fs::read(dir.join("skopeo193-rsa2048.key.pem")).unwrap(),
            None,
        )
        .unwrap();
        match JweWrapper.remove(&blob, &by_key(&rsa_key)) {
            Err(RemoveError::Unidentifiable(why)) => {
                assert!(why.contains("no key id"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let ec_only = std::fs::read(dir.join("skopeo193-ec256.jwe.json")).unwrap();
        assert_eq!(
            JweWrapper.remove(&ec_only, &by_key(&rsa_key)).unwrap(),
            Removal::Unchanged
        );
    }
}
