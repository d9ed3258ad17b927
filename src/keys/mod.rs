//! Key files: recognising them and parsing the public and private keys that
//! the key-wrap schemes (JWE, PKCS#7, PKCS#11's plain RSA recipients) use.
//!
//! [`PublicKey::from_bytes`] and [`PrivateKey::from_bytes`] accept every form
//! Go ocicrypt accepts (DER/PEM SubjectPublicKeyInfo and PKCS#8, PKCS#1, DER
//! SEC1, legacy-encrypted PEM, JWK) plus a few it refuses but users have
//! (PEM SEC1 `EC PRIVATE KEY`, PEM `RSA PUBLIC KEY`, PEM `ENCRYPTED PRIVATE
//! KEY`). Only RSA (1024..=16384 bits) and EC P-256/P-384/P-521 keys come out;
//! everything else is an error that names what the file is ([`sniff()`]) or
//! which algorithm it holds, so the CLI can tell the user what to do.
//!
//! The parts: `sniff` (what a file is), `pem` (PEM blocks, legacy PEM
//! encryption), `der` (DER key shapes, the PKCS#8 PBKDF2 guard), `jwk` (JSON
//! Web Keys, RFC 7638 thumbprints), [`certificate`] (X.509) and
//! [`passphrase`] (where a passphrase comes from). This module is a leaf of
//! the crate: it knows no scheme, key ring or loader (`keywrap` builds on it).
//!
//! This module must never:
//! * panic, whatever bytes it is given (truncated DER/PEM, huge JWK numbers,
//!   random garbage): every length is checked before it is used;
//! * show key material: `Debug` of [`PrivateKey`] prints only the key type
//!   and the public thumbprint, and error messages never quote key bytes;
//! * leave secret bytes it owns (decoded PEM bodies, decrypted DER, JWK
//!   private members) behind in memory: they live in `Zeroizing` buffers
//!   (OpenSSL clears the key numbers it holds itself).

pub mod certificate;
mod der;
mod jwk;
pub mod passphrase;
mod pem;
mod sniff;
#[cfg(test)]
mod tests;

pub use certificate::Certificate;
pub(crate) use jwk::B64URL_LENIENT;
pub use sniff::{FileKind, sniff};

use std::fmt;

use openssl::bn::BigNumRef;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};

use der::{DerShape, der_shape, encrypted_pkcs8, pkcs1_public, private_from_der, public_from_der};
use jwk::{ParsedJwk, parse_jwk, thumbprint_of};
use pem::{first_pem_block, private_from_pem_body};
use sniff::{kind_from_pem_label, looks_like_der, trim};

/// Smallest RSA modulus accepted. Go (since 1.24) refuses shorter keys, and
/// nothing this tool writes should be readable with a key that weak.
const MIN_RSA_BITS: u32 = 1024;
/// Largest RSA modulus accepted: the limit Go's crypto/rsa enforces, and a
/// bound on the work a hostile key file can make us do.
const MAX_RSA_BITS: u32 = 16384;

/// What can go wrong when reading a key. Every message names the problem in
/// words a user can act on; the underlying OpenSSL/serde reason is kept.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file is a key (or something else) of the wrong kind for this use,
    /// e.g. a private key where a public key is expected, or an SSH key.
    #[error("this file is {found}; expected {expected}")]
    WrongKind {
        /// What the file looks like.
        found: FileKind,
        /// What the caller needed, in words ("a public key").
        expected: &'static str,
    },
    /// The key is of a type or size layercrypt does not use.
    #[error("unsupported key: {0} (layercrypt uses RSA and EC P-256/P-384/P-521 keys)")]
    UnsupportedAlgorithm(String),
    /// The private key is encrypted and no password was given.
    #[error("this private key is encrypted; a password is required to use it")]
    PasswordRequired,
    /// The private key is encrypted and the password does not decrypt it.
    #[error("wrong password: could not decrypt the private key")]
    WrongPassword,
    /// The file looks like a key of the right kind but cannot be read.
    #[error("malformed key: {0}")]
    Malformed(String),
}

/// The type and size of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// An RSA key with a modulus of `bits` bits.
    Rsa {
        /// Modulus length in bits.
        bits: u32,
    },
    /// An elliptic-curve key on a NIST curve.
    Ec {
        /// The curve.
        curve: EcCurve,
    },
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::Ec { curve } => write!(f, "EC {curve}"),
        }
    }
}

/// The elliptic curves layercrypt accepts (the ones Go ocicrypt and go-jose
/// support for ECDH-ES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl EcCurve {
    /// The curve's JOSE name (`crv`): "P-256", "P-384" or "P-521".
    pub fn jwk_name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }

    /// Parse a JOSE curve name.
    pub fn from_jwk_name(name: &str) -> Option<EcCurve> {
        match name {
            "P-256" => Some(EcCurve::P256),
            "P-384" => Some(EcCurve::P384),
            "P-521" => Some(EcCurve::P521),
            _ => None,
        }
    }

    /// Length in bytes of a coordinate or private scalar (RFC 7518 §6.2.1.2).
    pub fn field_bytes(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    /// The OpenSSL curve identifier.
    pub(crate) fn nid(self) -> Nid {
        match self {
            EcCurve::P256 => Nid::X9_62_PRIME256V1,
            EcCurve::P384 => Nid::SECP384R1,
            EcCurve::P521 => Nid::SECP521R1,
        }
    }

    fn from_nid(nid: Nid) -> Option<EcCurve> {
        match nid {
            Nid::X9_62_PRIME256V1 => Some(EcCurve::P256),
            Nid::SECP384R1 => Some(EcCurve::P384),
            Nid::SECP521R1 => Some(EcCurve::P521),
            _ => None,
        }
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwk_name())
    }
}

const EXPECT_PUBLIC: &str = "a public key (PEM/DER SubjectPublicKeyInfo, PKCS#1, or a public JWK)";
const EXPECT_PRIVATE: &str = "a private key (PEM/DER PKCS#8, PKCS#1, SEC1, or a private JWK)";

/// A public key usable as a JWE recipient (RSA or EC P-256/P-384/P-521).
#[derive(Clone)]
pub struct PublicKey {
    pkey: PKey<Public>,
    kind: KeyKind,
    thumbprint: String,
    jwk_alg: Option<String>,
    jwk_kid: Option<String>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &format_args!("{}", self.kind))
            .field("thumbprint", &self.thumbprint)
            .field("jwk_alg", &self.jwk_alg)
            .field("jwk_kid", &self.jwk_kid)
            .finish()
    }
}

impl PublicKey {
    /// Parse a public key: PEM or DER SubjectPublicKeyInfo (PEM under any
    /// label, as Go accepts), PEM `RSA PUBLIC KEY` and DER PKCS#1 RSA public
    /// keys, or a public JWK (JSON).
    ///
    /// A private key, certificate, SSH/age/PGP key or PKCS#11 YAML gives
    /// [`KeyError::WrongKind`] naming what the file is.
    pub fn from_bytes(data: &[u8]) -> Result<PublicKey, KeyError> {
        let data = trim(data);
        let wrong = |found| KeyError::WrongKind {
            found,
            expected: EXPECT_PUBLIC,
        };
        if data.is_empty() {
            return Err(wrong(FileKind::Empty));
        }
        if looks_like_der(data) {
            return public_from_der(data).map(|pkey| PublicKey::new(pkey, None, None))?;
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return Err(wrong(sniff(data)));
        };
        if text.starts_with('{') {
            return match parse_jwk(text)? {
                ParsedJwk::Public { pkey, alg, kid } => PublicKey::new(pkey, alg, kid),
                ParsedJwk::Private { .. } => Err(wrong(FileKind::PrivateJwk)),
            };
        }
        let Some(block) = first_pem_block(text) else {
            return Err(wrong(sniff(data)));
        };
        let pkey = match block.label {
            "PUBLIC KEY" => public_from_der(&block.decode()?.body)?,
            "RSA PUBLIC KEY" => pkcs1_public(&block.decode()?.body)?,
            label => match kind_from_pem_label(label, block.inner) {
                FileKind::Unknown | FileKind::PublicKey => {
                    // Go's ParsePublicKey takes any PEM label whose body is
                    // a SubjectPublicKeyInfo; so do we.
                    let body = block.decode()?.body;
                    match der_shape(&body) {
                        DerShape::Spki | DerShape::Pkcs1Public => public_from_der(&body)?,
                        _ => {
                            return Err(KeyError::Malformed(format!(
                                "the PEM block \"{label}\" does not contain a public key"
                            )));
                        }
                    }
                }
                found => return Err(wrong(found)),
            },
        };
        PublicKey::new(pkey, None, None)
    }

    fn new(
        pkey: PKey<Public>,
        jwk_alg: Option<String>,
        jwk_kid: Option<String>,
    ) -> Result<PublicKey, KeyError> {
        let kind = classify(&pkey)?;
        let thumbprint = thumbprint_of(&pkey, kind)?;
        Ok(PublicKey {
            pkey,
            kind,
            thumbprint,
            jwk_alg,
            jwk_kid,
        })
    }

    /// The key's type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url without padding). It
    /// identifies the key whatever file format it came in.
    pub fn thumbprint(&self) -> String {
        self.thumbprint.clone()
    }

    /// The `alg` member if the key came from a JWK that had one.
    pub fn jwk_alg(&self) -> Option<&str> {
        self.jwk_alg.as_deref()
    }

    /// The `kid` member if the key came from a JWK that had one.
    pub fn jwk_kid(&self) -> Option<&str> {
        self.jwk_kid.as_deref()
    }

    /// The OpenSSL key.
    pub fn pkey(&self) -> &PKey<Public> {
        &self.pkey
    }
}

/// A private key (RSA or EC P-256/P-384/P-521).
///
/// `Debug` shows only the key type and the public thumbprint.
#[derive(Clone)]
pub struct PrivateKey {
    pkey: PKey<Private>,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kind", &format_args!("{}", self.public.kind))
            .field("thumbprint", &self.public.thumbprint)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Parse a private key: PEM/DER PKCS#8 (including PEM `ENCRYPTED PRIVATE
    /// KEY` with a password), PEM/DER PKCS#1 RSA, PEM/DER SEC1 `EC PRIVATE
    /// KEY` (Go cannot read SEC1 PEM; we can), legacy encrypted PEM
    /// (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`) with a password, and a private
    /// JWK. A password given for an unencrypted key is ignored, as Go does.
    ///
    /// Missing password for an encrypted key gives
    /// [`KeyError::PasswordRequired`]; a wrong one [`KeyError::WrongPassword`].
    pub fn from_bytes(data: &[u8], password: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        let data = trim(data);
        let wrong = |found| KeyError::WrongKind {
            found,
            expected: EXPECT_PRIVATE,
        };
        if data.is_empty() {
            return Err(wrong(FileKind::Empty));
        }
        if looks_like_der(data) {
            let pkey = private_from_der(data, password)?;
            return PrivateKey::new(pkey, None, None);
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return Err(wrong(sniff(data)));
        };
        if text.starts_with('{') {
            return match parse_jwk(text)? {
                ParsedJwk::Private { pkey, alg, kid } => PrivateKey::new(pkey, alg, kid),
                ParsedJwk::Public { .. } => Err(wrong(FileKind::PublicJwk)),
            };
        }
        let Some(block) = first_pem_block(text) else {
            return Err(wrong(sniff(data)));
        };
        let pkey = match block.label {
            "ENCRYPTED PRIVATE KEY" => {
                let body = block.decode()?.body;
                encrypted_pkcs8(&body, password)?
            }
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                private_from_pem_body(&block.decode()?, password)?
            }
            "DSA PRIVATE KEY" => {
                return Err(KeyError::UnsupportedAlgorithm("DSA".into()));
            }
            label => match kind_from_pem_label(label, block.inner) {
                // Go reads the first PEM block whatever its label.
                FileKind::Unknown | FileKind::PrivateKey | FileKind::EncryptedPrivateKey => {
                    private_from_pem_body(&block.decode()?, password)?
                }
                found => return Err(wrong(found)),
            },
        };
        PrivateKey::new(pkey, None, None)
    }

    fn new(
        pkey: PKey<Private>,
        jwk_alg: Option<String>,
        jwk_kid: Option<String>,
    ) -> Result<PrivateKey, KeyError> {
        if let KeyKind::Ec { curve } = classify(&pkey)? {
            // SEC1 and PKCS#8 store the public point next to the scalar and
            // OpenSSL does not compare them; a mismatch would give the key a
            // thumbprint (kid) that is not its own. One scalar
            // multiplication settles it. (RSA's equivalent, RSA_check_key,
            // runs primality tests and is left to JWK input, which needs it.)
            let ec = pkey
                .ec_key()
                .map_err(|e| KeyError::Malformed(format!("cannot read the EC key: {e}")))?;
            ec.check_key().map_err(|e| {
                KeyError::Malformed(format!(
                    "the {curve} private key does not match its public point ({e})"
                ))
            })?;
        }
        // Going through DER is the one conversion that works the same for
        // RSA and EC keys, whatever form they were read from.
        let spki = pkey
            .public_key_to_der()
            .map_err(|e| KeyError::Malformed(format!("cannot derive the public key: {e}")))?;
        let public = PKey::public_key_from_der(&spki)
            .map_err(|e| KeyError::Malformed(format!("cannot derive the public key: {e}")))?;
        let public = PublicKey::new(public, jwk_alg, jwk_kid)?;
        Ok(PrivateKey { pkey, public })
    }

    /// The key's type and size.
    pub fn kind(&self) -> KeyKind {
        self.public.kind
    }

    /// The public half, carrying the JWK `alg`/`kid` if the key came from a JWK.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// RFC 7638 thumbprint of the public half.
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// The OpenSSL key.
    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
}

// ---------------------------------------------------------------------------
// Key type checks

/// Check that `pkey` is a key type and size we use, and say which.
fn classify<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<KeyKind, KeyError> {
    let unsupported = |what: &str| Err(KeyError::UnsupportedAlgorithm(what.to_string()));
    match pkey.id() {
        Id::RSA => {
            let bits = pkey.bits();
            if bits < MIN_RSA_BITS {
                return Err(KeyError::UnsupportedAlgorithm(format!(
                    "RSA-{bits} is too short (at least {MIN_RSA_BITS} bits are required)"
                )));
            }
            if bits > MAX_RSA_BITS {
                return Err(KeyError::UnsupportedAlgorithm(format!(
                    "RSA-{bits} is too long (at most {MAX_RSA_BITS} bits are accepted)"
                )));
            }
            let rsa = pkey
                .rsa()
                .map_err(|e| KeyError::Malformed(format!("cannot read the RSA key: {e}")))?;
            check_rsa_exponent(rsa.e())?;
            Ok(KeyKind::Rsa { bits })
        }
        Id::EC => {
            let ec = pkey
                .ec_key()
                .map_err(|e| KeyError::Malformed(format!("cannot read the EC key: {e}")))?;
            match ec.group().curve_name() {
                Some(nid) => match EcCurve::from_nid(nid) {
                    Some(curve) => Ok(KeyKind::Ec { curve }),
                    None => {
                        let name = nid.short_name().unwrap_or("unnamed");
                        Err(KeyError::UnsupportedAlgorithm(format!("EC curve {name}")))
                    }
                },
                None => {
                    unsupported("EC key with explicit curve parameters instead of a named curve")
                }
            }
        }
        Id::ED25519 => unsupported("Ed25519"),
        Id::ED448 => unsupported("Ed448"),
        Id::X25519 => unsupported("X25519"),
        Id::X448 => unsupported("X448"),
        Id::DSA => unsupported("DSA"),
        Id::DH | Id::DHX => unsupported("Diffie-Hellman (DH)"),
        Id::RSA_PSS => unsupported("RSA-PSS (an RSA key restricted to signatures)"),
        other => Err(KeyError::UnsupportedAlgorithm(format!(
            "key type with OpenSSL id {}",
            other.as_raw()
        ))),
    }
}

/// Go (crypto/x509, crypto/rsa) refuses RSA public exponents below 2 or
/// above 2^31-1, and an even exponent is no valid RSA key: a key Go cannot
/// use is no good in an image meant for Go tools either.
fn check_rsa_exponent(e: &BigNumRef) -> Result<(), KeyError> {
    if e.num_bits() > 31 || !e.is_bit_set(0) || e.num_bits() < 2 {
        return Err(KeyError::Malformed(
            "the RSA public exponent must be an odd number between 3 and 2^31-1".into(),
        ));
    }
    Ok(())
}
