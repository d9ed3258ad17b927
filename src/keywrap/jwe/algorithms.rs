//! The algorithms of the JWE scheme: the key-management (`alg`) and content-encryption (`enc`)
//! algorithms ocicrypt allows, with the lengths josekit and OpenSSL would otherwise assert on,
//! which key types fit which algorithm, and the josekit encrypter written for each recipient.
//!
//! It must never offer an algorithm outside ocicrypt's list (`dir`, `ECDH-ES` direct,
//! `RSA1_5` and anything unknown have no [`KeyAlg`] or [`ContentAlg`]), and never hand josekit
//! an RSA key shorter than it accepts.

use josekit::jwe::JweContentEncryption;
use josekit::jwe::JweEncrypter;
use josekit::jwe::alg::ecdh_es::EcdhEsJweAlgorithm;
use josekit::jwe::alg::rsaes::RsaesJweAlgorithm;

use super::JweError;
use crate::keys::{EcCurve, KeyKind, PublicKey};

/// josekit refuses RSA keys shorter than this, for encryption and decryption.
const JOSEKIT_MIN_RSA_BITS: u32 = 2048;

/// The key-management algorithms ocicrypt allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyAlg {
    RsaOaep,
    RsaOaep256,
    EcdhEsA128kw,
    EcdhEsA192kw,
    EcdhEsA256kw,
}

impl KeyAlg {
    pub(super) fn parse(name: &str) -> Option<KeyAlg> {
        match name {
            "RSA-OAEP" => Some(KeyAlg::RsaOaep),
            "RSA-OAEP-256" => Some(KeyAlg::RsaOaep256),
            "ECDH-ES+A128KW" => Some(KeyAlg::EcdhEsA128kw),
            "ECDH-ES+A192KW" => Some(KeyAlg::EcdhEsA192kw),
            "ECDH-ES+A256KW" => Some(KeyAlg::EcdhEsA256kw),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
            KeyAlg::EcdhEsA128kw => "ECDH-ES+A128KW",
            KeyAlg::EcdhEsA192kw => "ECDH-ES+A192KW",
            KeyAlg::EcdhEsA256kw => "ECDH-ES+A256KW",
        }
    }

    pub(super) fn rsa(self) -> Option<RsaesJweAlgorithm> {
        match self {
            KeyAlg::RsaOaep => Some(RsaesJweAlgorithm::RsaOaep),
            KeyAlg::RsaOaep256 => Some(RsaesJweAlgorithm::RsaOaep256),
            _ => None,
        }
    }

    pub(super) fn ecdh(self) -> Option<EcdhEsJweAlgorithm> {
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
pub(super) fn key_fits(alg: KeyAlg, epk_curve: Option<EcCurve>, kind: KeyKind) -> bool {
    match kind {
        KeyKind::Rsa { bits } => alg.rsa().is_some() && bits >= JOSEKIT_MIN_RSA_BITS,
        KeyKind::Ec { curve } => alg.ecdh().is_some() && epk_curve == Some(curve),
    }
}

/// The content encryptions ocicrypt allows, with the lengths josekit and
/// OpenSSL would otherwise assert on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ContentAlg {
    A128Gcm,
    A192Gcm,
    A256Gcm,
    A128CbcHs256,
    A192CbcHs384,
    A256CbcHs512,
}

impl ContentAlg {
    pub(super) fn parse(name: &str) -> Option<ContentAlg> {
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

    pub(super) fn josekit(self) -> &'static dyn JweContentEncryption {
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
    pub(super) fn iv_len(self) -> usize {
        match self {
            ContentAlg::A128Gcm | ContentAlg::A192Gcm | ContentAlg::A256Gcm => 12,
            _ => 16,
        }
    }

    /// Full-length tags only, as go-jose requires.
    pub(super) fn tag_len(self) -> usize {
        match self {
            ContentAlg::A128Gcm | ContentAlg::A192Gcm | ContentAlg::A256Gcm => 16,
            ContentAlg::A128CbcHs256 => 16,
            ContentAlg::A192CbcHs384 => 24,
            ContentAlg::A256CbcHs512 => 32,
        }
    }

    pub(super) fn key_len(self) -> usize {
        self.josekit().key_len()
    }
}

// ---------------------------------------------------------------------------
// Writing

/// A josekit encrypter for one recipient, with its algorithm and kid chosen
/// as described at [`wrap`](super::wrap).
pub(super) fn encrypter_for(key: &PublicKey) -> Result<Box<dyn JweEncrypter>, JweError> {
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
