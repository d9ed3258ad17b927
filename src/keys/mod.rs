//! Key files: recognising them and parsing the public and private keys that
//! the key-wrap schemes (JWE now, PKCS#7 later) use.
//!
//! [`PublicKey::from_bytes`] and [`PrivateKey::from_bytes`] accept every form
//! Go ocicrypt accepts (DER/PEM SubjectPublicKeyInfo and PKCS#8, PKCS#1, DER
//! SEC1, legacy-encrypted PEM, JWK) plus a few it refuses but users have
//! (PEM SEC1 `EC PRIVATE KEY`, PEM `RSA PUBLIC KEY`, PEM `ENCRYPTED PRIVATE
//! KEY`). Only RSA (1024..=16384 bits) and EC P-256/P-384/P-521 keys come out;
//! everything else is an error that names what the file is ([`sniff`]) or
//! which algorithm it holds, so the CLI can tell the user what to do.
//!
//! This module must never:
//! * panic, whatever bytes it is given (truncated DER/PEM, huge JWK numbers,
//!   random garbage): every length is checked before it is used;
//! * show key material: `Debug` of [`PrivateKey`] prints only the key type
//!   and the public thumbprint, and error messages never quote key bytes;
//! * leave secret bytes it owns (decoded PEM bodies, decrypted DER, JWK
//!   private members) behind in memory: they live in [`Zeroizing`] buffers
//!   (OpenSSL clears the key numbers it holds itself).

pub mod certificate;
pub mod passphrase;

pub use certificate::Certificate;

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::symm::{Cipher, Crypter, Mode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Smallest RSA modulus accepted. Go (since 1.24) refuses shorter keys, and
/// nothing this tool writes should be readable with a key that weak.
const MIN_RSA_BITS: u32 = 1024;
/// Largest RSA modulus accepted: the limit Go's crypto/rsa enforces, and a
/// bound on the work a hostile key file can make us do.
const MAX_RSA_BITS: u32 = 16384;
/// The largest big-endian integer a JWK member may hold (an RSA-16384 modulus).
const MAX_JWK_INT_BYTES: usize = (MAX_RSA_BITS / 8) as usize;

/// The base64url dialect JOSE data is read with: padding optional and
/// non-zero trailing bits tolerated, as Go's `base64.RawURLEncoding` (used by
/// go-jose after trimming `=`) does. Output is always unpadded.
pub(crate) const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

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

impl KeyError {
    /// A likely fix, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            // A key where a PKCS#7 recipient certificate belongs.
            KeyError::WrongKind {
                found: FileKind::PublicKey | FileKind::PublicJwk,
                expected,
            } if *expected == certificate::EXPECT_CERTIFICATE => {
                "pkcs7: recipients are X.509 certificates; a bare public key is a JWE recipient: use jwe:FILE"
            }
            KeyError::WrongKind {
                found: FileKind::PrivateKey | FileKind::EncryptedPrivateKey | FileKind::PrivateJwk,
                expected,
            } if *expected == certificate::EXPECT_CERTIFICATE => {
                "pkcs7: recipients are X.509 certificates: give the recipient's certificate, not a private key"
            }
            KeyError::WrongKind {
                found: FileKind::PrivateKey | FileKind::EncryptedPrivateKey | FileKind::PrivateJwk,
                ..
            } => {
                "a recipient is a public key; extract it with `openssl pkey -in KEY.pem -pubout -out KEY.pub.pem`"
            }
            KeyError::WrongKind {
                found: FileKind::PublicKey | FileKind::PublicJwk,
                ..
            } => "decryption needs the private key that belongs to the recipient's public key",
            KeyError::WrongKind {
                found: FileKind::Certificate,
                ..
            } => {
                "X.509 certificates are PKCS#7 recipients: write pkcs7:CERT (for jwe:, extract the public key with `openssl x509 -in CERT -pubkey -noout`)"
            }
            KeyError::WrongKind {
                found: FileKind::OpenSshPrivateKey | FileKind::SshPublicKey | FileKind::AgeKey,
                ..
            } => SSH_AGE_HINT,
            KeyError::WrongKind {
                found: FileKind::PgpPublicKey | FileKind::PgpSecretKey,
                ..
            } => PGP_KEY_HINT,
            KeyError::UnsupportedAlgorithm(_) => {
                "ocicrypt keys are RSA or EC P-256/P-384/P-521; make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem`"
            }
            KeyError::WrongPassword => {
                "check the passphrase (a trailing newline in a passphrase file is tried with and without)"
            }
            _ => return None,
        };
        Some(text.to_string())
    }
}

/// What to use instead of an SSH or age key.
pub(crate) const SSH_AGE_HINT: &str = "SSH and age keys are not ocicrypt key types; make an RSA or EC key with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem`";

/// Where OpenPGP keys go, in this build.
#[cfg(feature = "pgp")]
pub(crate) const PGP_KEY_HINT: &str = "OpenPGP certificates are recipients as pgp:FILE (or pgp:EMAIL from the GnuPG home); decryption takes the secret keyring from `gpg --export-secret-keys KEYID > secring.gpg` as -k secring.gpg";
#[cfg(not(feature = "pgp"))]
pub(crate) const PGP_KEY_HINT: &str = "this build of layercrypt has no OpenPGP support (it was built without the cargo feature `pgp`)";

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

/// What a file looks like, judged from its first bytes and PEM label, so an
/// error can say "this is a private key, expected a public key".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An unencrypted private key (PEM or DER PKCS#8, PKCS#1, SEC1).
    PrivateKey,
    /// A password-protected private key (PKCS#8 or legacy encrypted PEM).
    EncryptedPrivateKey,
    /// A public key (SubjectPublicKeyInfo or PKCS#1).
    PublicKey,
    /// An X.509 certificate.
    Certificate,
    /// A JSON Web Key holding a private key.
    PrivateJwk,
    /// A JSON Web Key holding only a public key.
    PublicJwk,
    /// An OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    OpenSshPrivateKey,
    /// An SSH public key (`ssh-rsa AAAA…` or RFC 4716).
    SshPublicKey,
    /// An age identity or recipient.
    AgeKey,
    /// An OpenPGP public key (armored or binary).
    PgpPublicKey,
    /// An OpenPGP secret key (armored or binary).
    PgpSecretKey,
    /// An ocicrypt PKCS#11 key description (YAML).
    Pkcs11Yaml,
    /// An empty (or whitespace-only) file.
    Empty,
    /// Nothing recognisable.
    Unknown,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::PrivateKey => "a private key",
            FileKind::EncryptedPrivateKey => "a password-protected private key",
            FileKind::PublicKey => "a public key",
            FileKind::Certificate => "an X.509 certificate",
            FileKind::PrivateJwk => "a private JSON Web Key",
            FileKind::PublicJwk => "a public JSON Web Key",
            FileKind::OpenSshPrivateKey => "an OpenSSH private key",
            FileKind::SshPublicKey => "an SSH public key",
            FileKind::AgeKey => "an age key",
            FileKind::PgpPublicKey => "an OpenPGP public key",
            FileKind::PgpSecretKey => "an OpenPGP secret key",
            FileKind::Pkcs11Yaml => "a PKCS#11 key description (YAML)",
            FileKind::Empty => "empty",
            FileKind::Unknown => "not a key format layercrypt recognises",
        })
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

/// Say what a file looks like, without parsing it fully. Used to build
/// [`KeyError::WrongKind`] and by callers that sort key files by type.
pub fn sniff(data: &[u8]) -> FileKind {
    let data = trim(data);
    let Some(&first) = data.first() else {
        return FileKind::Empty;
    };
    if looks_like_der(data) {
        return kind_from_der(data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        return sniff_text(text);
    }
    sniff_openpgp_binary(first)
}

fn sniff_text(text: &str) -> FileKind {
    if text.starts_with('{') {
        return match serde_json::from_str::<RawJwk>(text) {
            Ok(jwk) if jwk.kty.is_some() && jwk.d.is_some() => FileKind::PrivateJwk,
            Ok(jwk) if jwk.kty.is_some() => FileKind::PublicJwk,
            _ => FileKind::Unknown,
        };
    }
    if text.starts_with("---- BEGIN SSH2 PUBLIC KEY") {
        return FileKind::SshPublicKey;
    }
    if let Some(block) = first_pem_block(text) {
        return kind_from_pem_label(block.label, block.inner);
    }
    let first_word = text.split_ascii_whitespace().next().unwrap_or("");
    if first_word.starts_with("ssh-")
        || first_word.starts_with("ecdsa-sha2-")
        || first_word.starts_with("sk-ssh-")
        || first_word.starts_with("sk-ecdsa-sha2-")
    {
        return FileKind::SshPublicKey;
    }
    let mut lines = text.lines().map(str::trim);
    if lines.clone().any(|l| {
        l.starts_with("AGE-SECRET-KEY-1") || l.starts_with("AGE-PLUGIN-") || l.starts_with("age1")
    }) {
        return FileKind::AgeKey;
    }
    if lines.clone().any(|l| l.starts_with("pkcs11:")) && lines.any(|l| l.starts_with("uri:")) {
        return FileKind::Pkcs11Yaml;
    }
    FileKind::Unknown
}

/// OpenPGP binary packets: the first packet of an exported key is a public
/// key packet (tag 6) or a secret key packet (tag 5), in old or new format.
fn sniff_openpgp_binary(first: u8) -> FileKind {
    if first & 0x80 == 0 {
        return FileKind::Unknown;
    }
    let tag = if first & 0x40 != 0 {
        first & 0x3f
    } else {
        (first >> 2) & 0x0f
    };
    match tag {
        6 => FileKind::PgpPublicKey,
        5 => FileKind::PgpSecretKey,
        _ => FileKind::Unknown,
    }
}

fn kind_from_pem_label(label: &str, inner: &str) -> FileKind {
    match label {
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "DSA PRIVATE KEY" => {
            if inner.contains("Proc-Type: 4,ENCRYPTED") {
                FileKind::EncryptedPrivateKey
            } else {
                FileKind::PrivateKey
            }
        }
        "ENCRYPTED PRIVATE KEY" => FileKind::EncryptedPrivateKey,
        "PUBLIC KEY" | "RSA PUBLIC KEY" => FileKind::PublicKey,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => FileKind::Certificate,
        "OPENSSH PRIVATE KEY" | "SSH2 ENCRYPTED PRIVATE KEY" => FileKind::OpenSshPrivateKey,
        "PGP PUBLIC KEY BLOCK" => FileKind::PgpPublicKey,
        "PGP PRIVATE KEY BLOCK" => FileKind::PgpSecretKey,
        _ => {
            // Unknown label: judge by the DER inside, as Go would read it.
            match PemBlock::decode_inner(inner) {
                Ok(decoded) if decoded.is_legacy_encrypted() => FileKind::EncryptedPrivateKey,
                Ok(decoded) => kind_from_der(&decoded.body),
                Err(_) => FileKind::Unknown,
            }
        }
    }
}

fn kind_from_der(der: &[u8]) -> FileKind {
    match der_shape(der) {
        DerShape::Spki | DerShape::Pkcs1Public => FileKind::PublicKey,
        DerShape::Pkcs8 | DerShape::Pkcs1Private | DerShape::Sec1 => FileKind::PrivateKey,
        DerShape::EncryptedPkcs8 => FileKind::EncryptedPrivateKey,
        DerShape::Certificate => FileKind::Certificate,
        DerShape::Unknown => FileKind::Unknown,
    }
}

/// DER starts with a SEQUENCE tag (0x30, the character '0'). Text that
/// happens to start with '0' and is no DER structure goes to the text
/// parsers; binary data starting with 0x30 stays DER, so a truncated DER
/// file is reported as such.
fn looks_like_der(data: &[u8]) -> bool {
    data.first() == Some(&DER_SEQUENCE)
        && (der_shape(data) != DerShape::Unknown || std::str::from_utf8(data).is_err())
}

/// Strip a UTF-8 byte-order mark and surrounding ASCII whitespace: key files
/// edited by hand or written by Windows tools carry both. Binary DER that
/// parses as it is stays untouched: its last bytes (ciphertext, key
/// material) have whitespace values about one time in fifty, and trimming
/// them would corrupt the key.
fn trim(data: &[u8]) -> &[u8] {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    if data.first() == Some(&DER_SEQUENCE) && der_shape(data) != DerShape::Unknown {
        return data;
    }
    data.trim_ascii()
}

// ---------------------------------------------------------------------------
// Key type checks and thumbprints

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

/// RFC 7638 thumbprint: SHA-256 of the required JWK members in
/// lexicographic order with no whitespace, base64url without padding.
fn thumbprint_of<T: HasPublic>(pkey: &PKeyRef<T>, kind: KeyKind) -> Result<String, KeyError> {
    let b64 = |b: &[u8]| B64URL_LENIENT.encode(b);
    let err =
        |e: openssl::error::ErrorStack| KeyError::Malformed(format!("cannot read the key: {e}"));
    let json = match kind {
        KeyKind::Rsa { .. } => {
            let rsa = pkey.rsa().map_err(err)?;
            format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64(&rsa.e().to_vec()),
                b64(&rsa.n().to_vec())
            )
        }
        KeyKind::Ec { curve } => {
            let ec = pkey.ec_key().map_err(err)?;
            let (x, y) = ec_coordinates(&ec, curve)?;
            format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.jwk_name(),
                b64(&x),
                b64(&y)
            )
        }
    };
    Ok(b64(&Sha256::digest(json.as_bytes())))
}

/// The affine coordinates of an EC public key, each padded to the field size.
fn ec_coordinates<T: HasPublic>(
    ec: &EcKey<T>,
    curve: EcCurve,
) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let err = |e: openssl::error::ErrorStack| {
        KeyError::Malformed(format!("cannot read the EC point: {e}"))
    };
    let mut ctx = BigNumContext::new().map_err(err)?;
    let mut x = BigNum::new().map_err(err)?;
    let mut y = BigNum::new().map_err(err)?;
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
        .map_err(err)?;
    // field_bytes() is at most 66, so the cast cannot truncate.
    let len = curve.field_bytes() as i32;
    Ok((
        x.to_vec_padded(len).map_err(err)?,
        y.to_vec_padded(len).map_err(err)?,
    ))
}

// ---------------------------------------------------------------------------
// PEM

/// One PEM block, not yet decoded: its label and the text between the
/// BEGIN and END lines.
struct PemBlock<'a> {
    label: &'a str,
    inner: &'a str,
}

/// A decoded PEM block: RFC 1421 headers and the binary body.
struct DecodedPem {
    headers: Vec<(String, String)>,
    body: Zeroizing<Vec<u8>>,
}

impl DecodedPem {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_legacy_encrypted(&self) -> bool {
        self.header("Proc-Type")
            .is_some_and(|v| v.replace(' ', "").eq_ignore_ascii_case("4,ENCRYPTED"))
    }
}

impl PemBlock<'_> {
    fn decode(&self) -> Result<DecodedPem, KeyError> {
        PemBlock::decode_inner(self.inner)
            .map_err(|why| KeyError::Malformed(format!("the PEM block \"{}\" {why}", self.label)))
    }

    /// Split RFC 1421 headers (`Name: value` lines before the body) from the
    /// base64 body and decode the body. Errors are phrased to follow
    /// "the PEM block X".
    fn decode_inner(inner: &str) -> Result<DecodedPem, String> {
        let mut headers = Vec::new();
        let mut b64 = Zeroizing::new(String::with_capacity(inner.len()));
        for line in inner.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // Headers come before the body; base64 never contains ':'.
            if b64.is_empty()
                && let Some((name, value)) = line.split_once(':')
            {
                headers.push((name.trim().to_string(), value.trim().to_string()));
                continue;
            }
            b64.push_str(line);
        }
        if b64.is_empty() {
            return Err("is empty".into());
        }
        let body = STANDARD
            .decode(b64.as_bytes())
            .map(Zeroizing::new)
            .map_err(|e| format!("is not valid base64 ({e}); is the file truncated?"))?;
        Ok(DecodedPem { headers, body })
    }
}

/// Find the first PEM block of `text`, skipping `EC PARAMETERS` blocks that
/// `openssl ecparam -genkey` writes before the key. A BEGIN line without its
/// END line (a truncated file) still yields the block, with everything after
/// BEGIN as its inner text, so the label can be reported; decoding it then
/// fails or yields a truncated body that the DER parsers reject.
fn first_pem_block(text: &str) -> Option<PemBlock<'_>> {
    const BEGIN: &str = "-----BEGIN ";
    let mut rest = text;
    loop {
        let start = rest.find(BEGIN)?;
        let after = &rest[start + BEGIN.len()..];
        let label_end = after.find("-----")?;
        let label = &after[..label_end];
        if label.contains('\n') {
            rest = after;
            continue;
        }
        let body = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let (inner, next) = match body.find(&end_marker) {
            Some(end) => (&body[..end], &body[end + end_marker.len()..]),
            None => (body, ""),
        };
        if label == "EC PARAMETERS" {
            rest = next;
            continue;
        }
        return Some(PemBlock { label, inner });
    }
}

/// The key in a decoded PEM block, decrypting legacy PEM encryption first.
fn private_from_pem_body(
    pem: &DecodedPem,
    password: Option<&[u8]>,
) -> Result<PKey<Private>, KeyError> {
    if !pem.is_legacy_encrypted() {
        return private_from_der(&pem.body, password);
    }
    let der = decrypt_legacy_pem(pem, password)?;
    // A wrong password passes the CBC padding check about once in 256
    // tries; the DER then fails to parse, which is still a wrong password,
    // not a malformed file.
    private_from_der(&der, None).map_err(|_| KeyError::WrongPassword)
}

/// Decrypt an OpenSSL "traditional" encrypted PEM body (`Proc-Type:
/// 4,ENCRYPTED`, `DEK-Info: CIPHER,IVHEX`): key = EVP_BytesToKey(MD5,
/// password, salt = first 8 IV bytes, 1 round), as OpenSSL and Go do.
fn decrypt_legacy_pem(
    pem: &DecodedPem,
    password: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let dek = pem
        .header("DEK-Info")
        .ok_or_else(|| KeyError::Malformed("encrypted PEM without a DEK-Info header".into()))?;
    let (name, iv_hex) = dek.split_once(',').ok_or_else(|| {
        KeyError::Malformed(format!("DEK-Info header \"{dek}\" is not \"CIPHER,IV\""))
    })?;
    let name = name.trim().to_ascii_uppercase();
    let cipher = match name.as_str() {
        "AES-128-CBC" => Cipher::aes_128_cbc(),
        "AES-192-CBC" => Cipher::aes_192_cbc(),
        "AES-256-CBC" => Cipher::aes_256_cbc(),
        "DES-EDE3-CBC" => Cipher::des_ede3_cbc(),
        "DES-CBC" => Cipher::des_cbc(),
        _ => {
            return Err(KeyError::UnsupportedAlgorithm(format!(
                "private key encrypted with {name} (legacy PEM encryption supports AES-*-CBC and DES)"
            )));
        }
    };
    let iv = decode_hex(iv_hex.trim())
        .ok_or_else(|| KeyError::Malformed(format!("DEK-Info IV \"{iv_hex}\" is not hex")))?;
    // Checked here because OpenSSL's Rust bindings panic on a short IV.
    if Some(iv.len()) != cipher.iv_len() || iv.len() < 8 {
        return Err(KeyError::Malformed(format!(
            "DEK-Info IV has {} bytes; {name} needs {}",
            iv.len(),
            cipher.iv_len().unwrap_or(0)
        )));
    }
    let password = password.ok_or(KeyError::PasswordRequired)?;
    let key_iv =
        openssl::pkcs5::bytes_to_key(cipher, MessageDigest::md5(), password, Some(&iv[..8]), 1)
            .map_err(|e| {
                KeyError::Malformed(format!("cannot derive the PEM decryption key: {e}"))
            })?;
    let key = Zeroizing::new(key_iv.key);
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, &key, Some(&iv)).map_err(|e| {
        KeyError::UnsupportedAlgorithm(format!(
            "private key encrypted with {name}, which this OpenSSL cannot decrypt ({e})"
        ))
    })?;
    let mut out = Zeroizing::new(vec![0u8; pem.body.len() + cipher.block_size()]);
    let n = crypter
        .update(&pem.body, &mut out)
        .map_err(|_| KeyError::WrongPassword)?;
    let m = crypter
        .finalize(&mut out[n..])
        .map_err(|_| KeyError::WrongPassword)?;
    out.truncate(n + m);
    Ok(out)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

// ---------------------------------------------------------------------------
// DER

const DER_SEQUENCE: u8 = 0x30;
const DER_INTEGER: u8 = 0x02;
const DER_BIT_STRING: u8 = 0x03;
const DER_OCTET_STRING: u8 = 0x04;
const DER_OID: u8 = 0x06;

/// The structures a DER key file can hold, told apart by the tags of the
/// outer SEQUENCE's first elements. This lets us say "this is a private key"
/// instead of "parse error", and pick the right OpenSSL parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DerShape {
    /// SubjectPublicKeyInfo: SEQ { SEQ { OID .. }, BIT STRING }.
    Spki,
    /// PKCS#1 RSAPublicKey: SEQ { INTEGER n, INTEGER e }.
    Pkcs1Public,
    /// PKCS#8 PrivateKeyInfo: SEQ { INTEGER, SEQ, OCTET STRING, .. }.
    Pkcs8,
    /// PKCS#8 EncryptedPrivateKeyInfo: SEQ { SEQ { OID .. }, OCTET STRING }.
    EncryptedPkcs8,
    /// PKCS#1 RSAPrivateKey: SEQ { INTEGER version, INTEGER n, .. (9 ints) }.
    Pkcs1Private,
    /// SEC1 ECPrivateKey: SEQ { INTEGER 1, OCTET STRING, .. }.
    Sec1,
    /// X.509 Certificate: SEQ { SEQ tbs, SEQ alg, BIT STRING }.
    Certificate,
    /// Anything else, including truncated DER.
    Unknown,
}

/// Read one DER TLV: (tag, contents, rest). `None` on truncation or on
/// encodings key files never use (high tag numbers, indefinite length).
fn der_tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn der_shape(der: &[u8]) -> DerShape {
    let Some((DER_SEQUENCE, contents, trailing)) = der_tlv(der) else {
        return DerShape::Unknown;
    };
    if !trailing.is_empty() {
        return DerShape::Unknown;
    }
    // Tags (and the first one's contents) of the first few elements.
    let mut elems: Vec<(u8, &[u8])> = Vec::new();
    let mut rest = contents;
    while !rest.is_empty() && elems.len() < 10 {
        let Some((tag, inner, next)) = der_tlv(rest) else {
            return DerShape::Unknown;
        };
        elems.push((tag, inner));
        rest = next;
    }
    let tags: Vec<u8> = elems.iter().map(|(t, _)| *t).collect();
    let starts_with_oid = |inner: &[u8]| matches!(der_tlv(inner), Some((DER_OID, _, _)));
    match tags.as_slice() {
        [DER_SEQUENCE, DER_BIT_STRING] if starts_with_oid(elems[0].1) => DerShape::Spki,
        [DER_SEQUENCE, DER_OCTET_STRING] if starts_with_oid(elems[0].1) => DerShape::EncryptedPkcs8,
        [DER_INTEGER, DER_INTEGER] => DerShape::Pkcs1Public,
        [DER_INTEGER, DER_SEQUENCE, DER_OCTET_STRING, ..] => DerShape::Pkcs8,
        [DER_INTEGER, DER_OCTET_STRING, ..] => DerShape::Sec1,
        [DER_INTEGER, DER_INTEGER, DER_INTEGER, ..] if tags.len() >= 9 => DerShape::Pkcs1Private,
        [DER_SEQUENCE, DER_SEQUENCE, DER_BIT_STRING] => DerShape::Certificate,
        _ => DerShape::Unknown,
    }
}

fn public_from_der(der: &[u8]) -> Result<PKey<Public>, KeyError> {
    let wrong = |found| KeyError::WrongKind {
        found,
        expected: EXPECT_PUBLIC,
    };
    match der_shape(der) {
        DerShape::Spki => PKey::public_key_from_der(der)
            .map_err(|e| KeyError::Malformed(format!("invalid SubjectPublicKeyInfo: {e}"))),
        DerShape::Pkcs1Public => pkcs1_public(der),
        DerShape::Pkcs8 | DerShape::Pkcs1Private | DerShape::Sec1 => {
            Err(wrong(FileKind::PrivateKey))
        }
        DerShape::EncryptedPkcs8 => Err(wrong(FileKind::EncryptedPrivateKey)),
        DerShape::Certificate => Err(wrong(FileKind::Certificate)),
        DerShape::Unknown => Err(KeyError::Malformed(
            "not a DER public key (SubjectPublicKeyInfo or PKCS#1); the data may be truncated"
                .into(),
        )),
    }
}

fn pkcs1_public(der: &[u8]) -> Result<PKey<Public>, KeyError> {
    Rsa::public_key_from_der_pkcs1(der)
        .and_then(PKey::from_rsa)
        .map_err(|e| KeyError::Malformed(format!("invalid PKCS#1 RSA public key: {e}")))
}

fn private_from_der(der: &[u8], password: Option<&[u8]>) -> Result<PKey<Private>, KeyError> {
    let wrong = |found| KeyError::WrongKind {
        found,
        expected: EXPECT_PRIVATE,
    };
    match der_shape(der) {
        DerShape::Pkcs8 => PKey::private_key_from_pkcs8(der)
            .map_err(|e| KeyError::Malformed(format!("invalid PKCS#8 private key: {e}"))),
        DerShape::Pkcs1Private => Rsa::private_key_from_der(der)
            .and_then(PKey::from_rsa)
            .map_err(|e| KeyError::Malformed(format!("invalid PKCS#1 RSA private key: {e}"))),
        DerShape::Sec1 => EcKey::private_key_from_der(der)
            .and_then(PKey::from_ec_key)
            .map_err(|e| KeyError::Malformed(format!("invalid SEC1 EC private key: {e}"))),
        DerShape::EncryptedPkcs8 => encrypted_pkcs8(der, password),
        DerShape::Spki | DerShape::Pkcs1Public => Err(wrong(FileKind::PublicKey)),
        DerShape::Certificate => Err(wrong(FileKind::Certificate)),
        DerShape::Unknown => Err(KeyError::Malformed(
            "not a DER private key (PKCS#8, PKCS#1 or SEC1); the data may be truncated".into(),
        )),
    }
}

/// Decrypt a PKCS#8 EncryptedPrivateKeyInfo. OpenSSL does not say "wrong
/// password" as such: a failed decryption (bad padding, or garbage that is
/// not a PrivateKeyInfo) is reported as [`KeyError::WrongPassword`] since the
/// outer structure was already checked; an unknown PBE scheme or cipher as
/// unsupported.
fn encrypted_pkcs8(der: &[u8], password: Option<&[u8]>) -> Result<PKey<Private>, KeyError> {
    if der_shape(der) != DerShape::EncryptedPkcs8 {
        return Err(KeyError::Malformed(
            "not a PKCS#8 EncryptedPrivateKeyInfo; the data may be truncated".into(),
        ));
    }
    let password = password.ok_or(KeyError::PasswordRequired)?;
    if let Some(iterations) = pbkdf2_iterations(der)
        && iterations > MAX_PBKDF2_ITERATIONS
    {
        return Err(KeyError::UnsupportedAlgorithm(format!(
            "PKCS#8 key encryption with {iterations} PBKDF2 iterations (at most {MAX_PBKDF2_ITERATIONS} are accepted)"
        )));
    }
    PKey::private_key_from_pkcs8_passphrase(der, password).map_err(|e| {
        let unsupported = e.errors().iter().any(|err| {
            let reason = err.reason().unwrap_or("").to_ascii_lowercase();
            reason.contains("unsupported") || reason.contains("unknown")
        });
        if unsupported {
            KeyError::UnsupportedAlgorithm(format!("PKCS#8 key encryption: {e}"))
        } else {
            KeyError::WrongPassword
        }
    })
}

/// OpenSSL applies whatever PBKDF2 iteration count a PKCS#8 file states, so
/// a hostile file could keep it busy for hours. Real tools use 2,048
/// (OpenSSL) to about 600,000 (current password-hashing advice).
const MAX_PBKDF2_ITERATIONS: u64 = 10_000_000;

/// The PBKDF2 iteration count of a PBES2-encrypted PKCS#8 key, if that is
/// what it is: EncryptedPrivateKeyInfo { AlgorithmIdentifier { pbes2,
/// PBES2-params { AlgorithmIdentifier { pbkdf2, PBKDF2-params { salt,
/// iterationCount, .. } }, .. } }, encryptedData } (RFC 8018 A.2, A.4).
fn pbkdf2_iterations(der: &[u8]) -> Option<u64> {
    // 1.2.840.113549.1.5.13 and 1.2.840.113549.1.5.12
    const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    const PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
    let (_, outer, _) = der_tlv(der)?;
    let (_, algorithm, _) = der_tlv(outer)?;
    let (DER_OID, oid, params) = der_tlv(algorithm)? else {
        return None;
    };
    if oid != PBES2 {
        return None;
    }
    let (_, pbes2_params, _) = der_tlv(params)?;
    let (_, kdf, _) = der_tlv(pbes2_params)?;
    let (DER_OID, oid, kdf_params) = der_tlv(kdf)? else {
        return None;
    };
    if oid != PBKDF2 {
        return None;
    }
    let (_, pbkdf2_params, _) = der_tlv(kdf_params)?;
    let (_, _salt, rest) = der_tlv(pbkdf2_params)?;
    let (DER_INTEGER, count, _) = der_tlv(rest)? else {
        return None;
    };
    // More than 8 significant bytes is more than any cap we would set.
    let count = match count {
        [0, rest @ ..] => rest,
        all => all,
    };
    if count.len() > 8 {
        return Some(u64::MAX);
    }
    Some(count.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

// ---------------------------------------------------------------------------
// JWK

/// The JWK members we read. Private members are zeroized when this is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct RawJwk {
    kty: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    #[zeroize(skip)]
    oth: Option<serde::de::IgnoredAny>,
    #[zeroize(skip)]
    keys: Option<serde::de::IgnoredAny>,
}

enum ParsedJwk {
    Public {
        pkey: PKey<Public>,
        alg: Option<String>,
        kid: Option<String>,
    },
    Private {
        pkey: PKey<Private>,
        alg: Option<String>,
        kid: Option<String>,
    },
}

fn parse_jwk(text: &str) -> Result<ParsedJwk, KeyError> {
    let jwk: RawJwk = serde_json::from_str(text)
        .map_err(|e| KeyError::Malformed(format!("invalid JSON Web Key: {e}")))?;
    if jwk.keys.is_some() {
        return Err(KeyError::Malformed(
            "this is a JWK set (\"keys\"); give a single JSON Web Key".into(),
        ));
    }
    let kty = jwk
        .kty
        .as_deref()
        .ok_or_else(|| KeyError::Malformed("JSON Web Key without \"kty\"".into()))?;
    let alg = jwk.alg.clone();
    let kid = jwk.kid.clone();
    match kty {
        "RSA" => {
            if jwk.oth.is_some() {
                return Err(KeyError::UnsupportedAlgorithm(
                    "multi-prime RSA JWK (\"oth\")".into(),
                ));
            }
            let n = jwk_int(&jwk.n, "n")?;
            let e = jwk_int(&jwk.e, "e")?;
            if n.num_bits() > MAX_RSA_BITS as i32 {
                return Err(KeyError::UnsupportedAlgorithm(format!(
                    "RSA-{} is too long (at most {MAX_RSA_BITS} bits are accepted)",
                    n.num_bits()
                )));
            }
            check_rsa_exponent(&e)?;
            if jwk.d.is_some() {
                let pkey = rsa_private_from_jwk(&jwk, n, e)?;
                Ok(ParsedJwk::Private { pkey, alg, kid })
            } else {
                let pkey = Rsa::from_public_components(n, e)
                    .and_then(PKey::from_rsa)
                    .map_err(|err| KeyError::Malformed(format!("invalid RSA JWK: {err}")))?;
                Ok(ParsedJwk::Public { pkey, alg, kid })
            }
        }
        "EC" => {
            let crv = jwk
                .crv
                .as_deref()
                .ok_or_else(|| KeyError::Malformed("EC JSON Web Key without \"crv\"".into()))?;
            let curve = EcCurve::from_jwk_name(crv)
                .ok_or_else(|| KeyError::UnsupportedAlgorithm(format!("EC curve \"{crv}\"")))?;
            let group = EcGroup::from_curve_name(curve.nid())
                .map_err(|e| KeyError::Malformed(format!("cannot load curve {curve}: {e}")))?;
            let x = jwk_coordinate(&jwk.x, "x", curve)?;
            let y = jwk_coordinate(&jwk.y, "y", curve)?;
            // Checks that the point lies on the curve.
            let public = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
                .map_err(|e| KeyError::Malformed(format!("EC JWK point is not on {curve}: {e}")))?;
            if jwk.d.is_some() {
                let d = jwk_coordinate(&jwk.d, "d", curve)?;
                let private = EcKey::from_private_components(&group, &d, public.public_key())
                    .map_err(|e| KeyError::Malformed(format!("invalid EC private JWK: {e}")))?;
                // Verifies that d·G is the public point given as x, y.
                private.check_key().map_err(|e| {
                    KeyError::Malformed(format!("EC private JWK: d does not match x, y ({e})"))
                })?;
                let pkey = PKey::from_ec_key(private)
                    .map_err(|e| KeyError::Malformed(format!("invalid EC private JWK: {e}")))?;
                Ok(ParsedJwk::Private { pkey, alg, kid })
            } else {
                let pkey = PKey::from_ec_key(public)
                    .map_err(|e| KeyError::Malformed(format!("invalid EC JWK: {e}")))?;
                Ok(ParsedJwk::Public { pkey, alg, kid })
            }
        }
        "OKP" => Err(KeyError::UnsupportedAlgorithm(format!(
            "{} (OKP JSON Web Key)",
            jwk.crv.as_deref().unwrap_or("octet key pair")
        ))),
        "oct" => Err(KeyError::UnsupportedAlgorithm(
            "symmetric JSON Web Key (kty \"oct\"); a public/private key pair is needed".into(),
        )),
        other => Err(KeyError::UnsupportedAlgorithm(format!(
            "JSON Web Key type \"{other}\""
        ))),
    }
}

fn rsa_private_from_jwk(jwk: &RawJwk, n: BigNum, e: BigNum) -> Result<PKey<Private>, KeyError> {
    let err = |e: openssl::error::ErrorStack| {
        KeyError::Malformed(format!("invalid RSA private JWK: {e}"))
    };
    let d = jwk_int(&jwk.d, "d")?;
    // go-jose needs the primes too; OpenSSL needs them to check the key.
    let (Some(_), Some(_)) = (&jwk.p, &jwk.q) else {
        return Err(KeyError::Malformed(
            "RSA private JWK without the primes \"p\" and \"q\" is not supported".into(),
        ));
    };
    let p = jwk_int(&jwk.p, "p")?;
    let q = jwk_int(&jwk.q, "q")?;
    let mut ctx = BigNumContext::new().map_err(err)?;
    // Cheap consistency check first, so a hostile JWK cannot make
    // RSA_check_key run primality tests on huge unrelated numbers.
    let mut pq = BigNum::new().map_err(err)?;
    pq.checked_mul(&p, &q, &mut ctx).map_err(err)?;
    if pq != n {
        return Err(KeyError::Malformed(
            "RSA private JWK: p·q is not the modulus n".into(),
        ));
    }
    // go-jose and some writers omit the CRT values; OpenSSL needs them.
    let dp = match &jwk.dp {
        Some(_) => jwk_int(&jwk.dp, "dp")?,
        None => d_mod_prime_minus_one(&d, &p, &mut ctx).map_err(err)?,
    };
    let dq = match &jwk.dq {
        Some(_) => jwk_int(&jwk.dq, "dq")?,
        None => d_mod_prime_minus_one(&d, &q, &mut ctx).map_err(err)?,
    };
    let qi = match &jwk.qi {
        Some(_) => jwk_int(&jwk.qi, "qi")?,
        None => {
            let mut qi = BigNum::new().map_err(err)?;
            qi.mod_inverse(&q, &p, &mut ctx).map_err(|_| {
                KeyError::Malformed("RSA private JWK: q has no inverse modulo p".into())
            })?;
            qi
        }
    };
    let rsa = Rsa::from_private_components(n, e, d, p, q, dp, dq, qi).map_err(err)?;
    match rsa.check_key() {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            return Err(KeyError::Malformed(
                "RSA private JWK is inconsistent (its numbers do not form a valid key)".into(),
            ));
        }
    }
    PKey::from_rsa(rsa).map_err(err)
}

/// d mod (prime - 1): the CRT exponent for that prime.
fn d_mod_prime_minus_one(
    d: &BigNumRef,
    prime: &BigNumRef,
    ctx: &mut BigNumContext,
) -> Result<BigNum, openssl::error::ErrorStack> {
    let mut prime_minus_one = BigNum::new()?;
    prime_minus_one.checked_sub(prime, BigNum::from_u32(1)?.as_ref())?;
    let mut result = BigNum::new()?;
    result.nnmod(d, &prime_minus_one, ctx)?;
    Ok(result)
}

/// A JWK big-endian unsigned integer member (RFC 7518 §2 "Base64urlUInt").
fn jwk_int(value: &Option<String>, name: &str) -> Result<BigNum, KeyError> {
    let bytes = jwk_bytes(value, name, MAX_JWK_INT_BYTES)?;
    BigNum::from_slice(&bytes)
        .map_err(|e| KeyError::Malformed(format!("JWK member \"{name}\": {e}")))
}

/// An EC coordinate or scalar: at most the field size (shorter values are
/// taken as missing leading zeros, which some writers drop).
fn jwk_coordinate(value: &Option<String>, name: &str, curve: EcCurve) -> Result<BigNum, KeyError> {
    let bytes = jwk_bytes(value, name, curve.field_bytes())?;
    BigNum::from_slice(&bytes)
        .map_err(|e| KeyError::Malformed(format!("JWK member \"{name}\": {e}")))
}

fn jwk_bytes(
    value: &Option<String>,
    name: &str,
    max_bytes: usize,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let text = value
        .as_deref()
        .ok_or_else(|| KeyError::Malformed(format!("JSON Web Key without \"{name}\"")))?;
    // Refuse before decoding so a huge member costs nothing.
    if text.len() > max_bytes.div_ceil(3) * 4 + 2 {
        return Err(KeyError::Malformed(format!(
            "JWK member \"{name}\" is too large (more than {max_bytes} bytes)"
        )));
    }
    let bytes = B64URL_LENIENT
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Malformed(format!("JWK member \"{name}\" is not base64url: {e}")))?;
    if bytes.is_empty() {
        return Err(KeyError::Malformed(format!(
            "JWK member \"{name}\" is empty"
        )));
    }
    if bytes.len() > max_bytes {
        return Err(KeyError::Malformed(format!(
            "JWK member \"{name}\" is too large ({} bytes, at most {max_bytes})",
            bytes.len()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::dsa::Dsa;
    use openssl::symm::Cipher;
    use std::sync::OnceLock;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/jwe/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn rsa2048() -> &'static Rsa<Private> {
        static KEY: OnceLock<Rsa<Private>> = OnceLock::new();
        KEY.get_or_init(|| Rsa::generate(2048).unwrap())
    }

    fn ec(curve: EcCurve) -> EcKey<Private> {
        let group = EcGroup::from_curve_name(curve.nid()).unwrap();
        EcKey::generate(&group).unwrap()
    }

    fn b64(b: &[u8]) -> String {
        B64URL_LENIENT.encode(b)
    }

    fn rsa_jwk(rsa: &Rsa<Private>, private: bool, extra: &str) -> String {
        let mut s = format!(
            r#"{{"kty":"RSA","n":"{}","e":"{}""#,
            b64(&rsa.n().to_vec()),
            b64(&rsa.e().to_vec())
        );
        if private {
            s += &format!(
                r#","d":"{}","p":"{}","q":"{}","dp":"{}","dq":"{}","qi":"{}""#,
                b64(&rsa.d().to_vec()),
                b64(&rsa.p().unwrap().to_vec()),
                b64(&rsa.q().unwrap().to_vec()),
                b64(&rsa.dmp1().unwrap().to_vec()),
                b64(&rsa.dmq1().unwrap().to_vec()),
                b64(&rsa.iqmp().unwrap().to_vec()),
            );
        }
        s + extra + "}"
    }

    fn ec_jwk(key: &EcKey<Private>, curve: EcCurve, private: bool, extra: &str) -> String {
        let (x, y) = ec_coordinates(key, curve).unwrap();
        let mut s = format!(
            r#"{{"kty":"EC","crv":"{}","x":"{}","y":"{}""#,
            curve.jwk_name(),
            b64(&x),
            b64(&y)
        );
        if private {
            let d = key
                .private_key()
                .to_vec_padded(curve.field_bytes() as i32)
                .unwrap();
            s += &format!(r#","d":"{}""#, b64(&d));
        }
        s + extra + "}"
    }

    fn assert_wrong_kind<T: fmt::Debug>(result: Result<T, KeyError>, expected: FileKind) {
        match result {
            Err(KeyError::WrongKind { found, .. }) => assert_eq!(found, expected),
            other => panic!("expected WrongKind({expected:?}), got {other:?}"),
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_section_3_1_example() {
        let jwk = r#"{"kty":"RSA",
          "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
          "e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        let key = PublicKey::from_bytes(jwk.as_bytes()).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(key.jwk_alg(), Some("RS256"));
        assert_eq!(key.jwk_kid(), Some("2011-04-29"));
        assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 });
    }

    #[test]
    fn rsa_every_form_parses_to_the_same_key() {
        let rsa = rsa2048();
        let pkey = PKey::from_rsa(rsa.clone()).unwrap();
        let private_forms: Vec<(&str, Vec<u8>)> = vec![
            ("PKCS#8 PEM", pkey.private_key_to_pem_pkcs8().unwrap()),
            ("PKCS#8 DER", pkey.private_key_to_pkcs8().unwrap()),
            ("PKCS#1 PEM", rsa.private_key_to_pem().unwrap()),
            ("PKCS#1 DER", rsa.private_key_to_der().unwrap()),
            ("JWK", rsa_jwk(rsa, true, "").into_bytes()),
        ];
        let public_forms: Vec<(&str, Vec<u8>)> = vec![
            ("SPKI PEM", pkey.public_key_to_pem().unwrap()),
            ("SPKI DER", pkey.public_key_to_der().unwrap()),
            ("PKCS#1 public PEM", rsa.public_key_to_pem_pkcs1().unwrap()),
            ("PKCS#1 public DER", rsa.public_key_to_der_pkcs1().unwrap()),
            ("JWK", rsa_jwk(rsa, false, "").into_bytes()),
        ];
        let expected = PrivateKey::from_bytes(&private_forms[0].1, None)
            .unwrap()
            .thumbprint();
        for (name, data) in &private_forms {
            let key = PrivateKey::from_bytes(data, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 }, "{name}");
            assert_eq!(key.thumbprint(), expected, "{name}");
            assert!(key.pkey().rsa().unwrap().check_key().unwrap(), "{name}");
        }
        for (name, data) in &public_forms {
            let key = PublicKey::from_bytes(data).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(key.kind().to_string(), "RSA-2048", "{name}");
            assert_eq!(key.thumbprint(), expected, "{name}");
        }
    }

    #[test]
    fn rsa_jwk_without_crt_members_is_completed() {
        let rsa = rsa2048();
        let jwk = format!(
            r#"{{"kty":"RSA","n":"{}","e":"{}","d":"{}","p":"{}","q":"{}"}}"#,
            b64(&rsa.n().to_vec()),
            b64(&rsa.e().to_vec()),
            b64(&rsa.d().to_vec()),
            b64(&rsa.p().unwrap().to_vec()),
            b64(&rsa.q().unwrap().to_vec()),
        );
        let key = PrivateKey::from_bytes(jwk.as_bytes(), None).unwrap();
        let got = key.pkey().rsa().unwrap();
        assert_eq!(got.dmp1().unwrap(), rsa.dmp1().unwrap());
        assert_eq!(got.dmq1().unwrap(), rsa.dmq1().unwrap());
        assert_eq!(got.iqmp().unwrap(), rsa.iqmp().unwrap());
    }

    #[test]
    fn ec_every_form_on_every_curve() {
        for curve in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
            let key = ec(curve);
            let pkey = PKey::from_ec_key(key.clone()).unwrap();
            let private_forms: Vec<(&str, Vec<u8>)> = vec![
                ("PKCS#8 PEM", pkey.private_key_to_pem_pkcs8().unwrap()),
                ("PKCS#8 DER", pkey.private_key_to_pkcs8().unwrap()),
                ("SEC1 PEM", key.private_key_to_pem().unwrap()),
                ("SEC1 DER", key.private_key_to_der().unwrap()),
                ("JWK", ec_jwk(&key, curve, true, "").into_bytes()),
            ];
            let public_forms: Vec<(&str, Vec<u8>)> = vec![
                ("SPKI PEM", pkey.public_key_to_pem().unwrap()),
                ("SPKI DER", pkey.public_key_to_der().unwrap()),
                ("JWK", ec_jwk(&key, curve, false, "").into_bytes()),
            ];
            let expected = PublicKey::from_bytes(&public_forms[0].1)
                .unwrap()
                .thumbprint();
            for (name, data) in &private_forms {
                let parsed = PrivateKey::from_bytes(data, None)
                    .unwrap_or_else(|e| panic!("{curve} {name}: {e}"));
                assert_eq!(parsed.kind(), KeyKind::Ec { curve }, "{curve} {name}");
                assert_eq!(parsed.thumbprint(), expected, "{curve} {name}");
            }
            for (name, data) in &public_forms {
                let parsed =
                    PublicKey::from_bytes(data).unwrap_or_else(|e| panic!("{curve} {name}: {e}"));
                assert_eq!(parsed.kind().to_string(), format!("EC {curve}"));
                assert_eq!(parsed.thumbprint(), expected, "{curve} {name}");
            }
        }
    }

    #[test]
    fn ec_thumbprint_uses_rfc7638_member_order() {
        let key = ec(EcCurve::P256);
        let (x, y) = ec_coordinates(&key, EcCurve::P256).unwrap();
        let json = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(&x),
            b64(&y)
        );
        let expected = b64(&Sha256::digest(json.as_bytes()));
        let parsed = PublicKey::from_bytes(ec_jwk(&key, EcCurve::P256, false, "").as_bytes());
        assert_eq!(parsed.unwrap().thumbprint(), expected);
    }

    #[test]
    fn jwk_alg_and_kid_survive_into_the_public_key() {
        let key = ec(EcCurve::P384);
        let jwk = ec_jwk(
            &key,
            EcCurve::P384,
            true,
            r#","alg":"ECDH-ES+A192KW","kid":"k1""#,
        );
        let private = PrivateKey::from_bytes(jwk.as_bytes(), None).unwrap();
        let public = private.public_key();
        assert_eq!(public.jwk_alg(), Some("ECDH-ES+A192KW"));
        assert_eq!(public.jwk_kid(), Some("k1"));
        let pem = PrivateKey::from_bytes(&key.private_key_to_pem().unwrap(), None).unwrap();
        assert_eq!(pem.public_key().jwk_kid(), None);
    }

    #[test]
    fn openssl_cli_keys_parse() {
        let ec256 = PublicKey::from_bytes(&fixture("openssl-ec256.pub.pem")).unwrap();
        let rsa = PublicKey::from_bytes(&fixture("openssl-rsa2048.pub.pem")).unwrap();
        let cases = [
            ("openssl-ec256-pkcs8-encrypted.key.pem", &ec256),
            ("openssl-ec256-sec1-legacy-encrypted.key.pem", &ec256),
            ("openssl-rsa2048-legacy-encrypted.key.pem", &rsa),
        ];
        for (name, public) in cases {
            let data = fixture(name);
            assert_eq!(sniff(&data), FileKind::EncryptedPrivateKey, "{name}");
            let key = PrivateKey::from_bytes(&data, Some(b"secret")).unwrap();
            assert_eq!(key.thumbprint(), public.thumbprint(), "{name}");
            assert!(
                matches!(
                    PrivateKey::from_bytes(&data, None),
                    Err(KeyError::PasswordRequired)
                ),
                "{name}"
            );
            assert!(
                matches!(
                    PrivateKey::from_bytes(&data, Some(b"wrong")),
                    Err(KeyError::WrongPassword)
                ),
                "{name}"
            );
            assert!(
                matches!(
                    PrivateKey::from_bytes(&data, Some(b"")),
                    Err(KeyError::WrongPassword)
                ),
                "{name}"
            );
        }
        // `openssl ecparam -genkey` writes an EC PARAMETERS block first.
        let key = PrivateKey::from_bytes(&fixture("openssl-ecparam-genkey.key.pem"), None).unwrap();
        assert_eq!(
            key.kind(),
            KeyKind::Ec {
                curve: EcCurve::P256
            }
        );
    }

    /// Regression: DER whose last byte is a whitespace value (common for
    /// encrypted PKCS#8, whose tail is ciphertext) was trimmed and misread.
    #[test]
    fn der_ending_in_whitespace_bytes_is_read_whole() {
        let pkey = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut found = 0;
        for _ in 0..5000 {
            let der = pkey
                .private_key_to_pkcs8_passphrase(Cipher::aes_128_cbc(), b"pw")
                .unwrap();
            if !der.last().unwrap().is_ascii_whitespace() {
                continue;
            }
            assert_eq!(sniff(&der), FileKind::EncryptedPrivateKey);
            PrivateKey::from_bytes(&der, Some(b"pw")).unwrap();
            found += 1;
            if found == 3 {
                return;
            }
        }
        panic!("no DER ending in a whitespace byte generated");
    }

    #[test]
    fn encrypted_keys_right_wrong_and_missing_password() {
        let rsa = rsa2048();
        let pkey = PKey::from_rsa(rsa.clone()).unwrap();
        let eckey = ec(EcCurve::P256);
        let pass = b"correct horse";
        let forms: Vec<(&str, Vec<u8>)> = vec![
            (
                "PKCS#8 PEM aes-256-cbc",
                pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), pass)
                    .unwrap(),
            ),
            (
                "PKCS#8 DER aes-128-cbc",
                pkey.private_key_to_pkcs8_passphrase(Cipher::aes_128_cbc(), pass)
                    .unwrap(),
            ),
            (
                "legacy RSA PEM aes-128-cbc",
                rsa.private_key_to_pem_passphrase(Cipher::aes_128_cbc(), pass)
                    .unwrap(),
            ),
            (
                "legacy RSA PEM des-ede3-cbc",
                rsa.private_key_to_pem_passphrase(Cipher::des_ede3_cbc(), pass)
                    .unwrap(),
            ),
            (
                "legacy EC PEM aes-192-cbc",
                eckey
                    .private_key_to_pem_passphrase(Cipher::aes_192_cbc(), pass)
                    .unwrap(),
            ),
        ];
        for (name, data) in &forms {
            assert_eq!(sniff(data), FileKind::EncryptedPrivateKey, "{name}");
            let key =
                PrivateKey::from_bytes(data, Some(pass)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(matches!(
                key.kind(),
                KeyKind::Rsa { .. } | KeyKind::Ec { .. }
            ));
            for wrong in [&b"wrong"[..], b"", b"correct horse "] {
                let err = PrivateKey::from_bytes(data, Some(wrong)).unwrap_err();
                assert!(matches!(err, KeyError::WrongPassword), "{name}: {err}");
            }
            let err = PrivateKey::from_bytes(data, None).unwrap_err();
            assert!(matches!(err, KeyError::PasswordRequired), "{name}: {err}");
            assert_eq!(
                err.to_string(),
                "this private key is encrypted; a password is required to use it"
            );
            // An encrypted private key is still a private key, not a public one.
            assert_wrong_kind(PublicKey::from_bytes(data), FileKind::EncryptedPrivateKey);
        }
    }

    #[test]
    fn password_for_an_unencrypted_key_is_ignored() {
        let pem = rsa2048().private_key_to_pem().unwrap();
        assert!(PrivateKey::from_bytes(&pem, Some(b"unused")).is_ok());
    }

    #[test]
    fn private_key_where_public_expected_is_wrong_kind() {
        let rsa = rsa2048();
        let pkey = PKey::from_rsa(rsa.clone()).unwrap();
        assert_wrong_kind(
            PublicKey::from_bytes(&pkey.private_key_to_pem_pkcs8().unwrap()),
            FileKind::PrivateKey,
        );
        assert_wrong_kind(
            PublicKey::from_bytes(&pkey.private_key_to_pkcs8().unwrap()),
            FileKind::PrivateKey,
        );
        assert_wrong_kind(
            PublicKey::from_bytes(&rsa.private_key_to_der().unwrap()),
            FileKind::PrivateKey,
        );
        assert_wrong_kind(
            PublicKey::from_bytes(rsa_jwk(rsa, true, "").as_bytes()),
            FileKind::PrivateJwk,
        );
        let eckey = ec(EcCurve::P256);
        assert_wrong_kind(
            PublicKey::from_bytes(&eckey.private_key_to_der().unwrap()),
            FileKind::PrivateKey,
        );
        assert_wrong_kind(
            PublicKey::from_bytes(&eckey.private_key_to_pem().unwrap()),
            FileKind::PrivateKey,
        );
        let err = PublicKey::from_bytes(&fixture("skopeo193-small-jwe.key.pem")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("this file is a private key; expected a public key"),
            "{err}"
        );
    }

    #[test]
    fn public_key_where_private_expected_is_wrong_kind() {
        let rsa = rsa2048();
        let pkey = PKey::from_rsa(rsa.clone()).unwrap();
        assert_wrong_kind(
            PrivateKey::from_bytes(&pkey.public_key_to_pem().unwrap(), None),
            FileKind::PublicKey,
        );
        assert_wrong_kind(
            PrivateKey::from_bytes(&pkey.public_key_to_der().unwrap(), None),
            FileKind::PublicKey,
        );
        assert_wrong_kind(
            PrivateKey::from_bytes(&rsa.public_key_to_pem_pkcs1().unwrap(), None),
            FileKind::PublicKey,
        );
        assert_wrong_kind(
            PrivateKey::from_bytes(rsa_jwk(rsa, false, "").as_bytes(), None),
            FileKind::PublicJwk,
        );
    }

    #[test]
    fn certificates_ssh_pgp_age_and_pkcs11_are_wrong_kind() {
        let cert = fixture("certificate.crt.pem");
        assert_wrong_kind(PublicKey::from_bytes(&cert), FileKind::Certificate);
        assert_wrong_kind(PrivateKey::from_bytes(&cert, None), FileKind::Certificate);
        let cert_der = openssl::x509::X509::from_pem(&cert)
            .unwrap()
            .to_der()
            .unwrap();
        assert_wrong_kind(PublicKey::from_bytes(&cert_der), FileKind::Certificate);
        assert_eq!(sniff(&cert_der), FileKind::Certificate);

        let ssh = fixture("openssh-ed25519.key");
        assert_wrong_kind(PublicKey::from_bytes(&ssh), FileKind::OpenSshPrivateKey);
        assert_wrong_kind(
            PrivateKey::from_bytes(&ssh, None),
            FileKind::OpenSshPrivateKey,
        );
        let err = PrivateKey::from_bytes(&ssh, None).unwrap_err().to_string();
        assert!(
            err.starts_with("this file is an OpenSSH private key; expected a private key"),
            "{err}"
        );
        assert_wrong_kind(
            PublicKey::from_bytes(&fixture("openssh-ed25519.pub")),
            FileKind::SshPublicKey,
        );

        let pgp = fixture("pgp-public.asc");
        assert_wrong_kind(PublicKey::from_bytes(&pgp), FileKind::PgpPublicKey);
        assert_eq!(sniff(&[0x99, 0x01, 0x0d, 0x04]), FileKind::PgpPublicKey);
        assert_eq!(sniff(&[0x95, 0x03, 0xc6, 0x04]), FileKind::PgpSecretKey);
        assert_eq!(sniff(&[0xc5, 0x03, 0xc6, 0x04]), FileKind::PgpSecretKey);
        assert_wrong_kind(
            PrivateKey::from_bytes(&[0x95, 0x03, 0xc6, 0x04], None),
            FileKind::PgpSecretKey,
        );

        let age = b"# created: 2024-01-01T00:00:00Z\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQQ\n";
        assert_wrong_kind(PrivateKey::from_bytes(age, None), FileKind::AgeKey);
        let yaml =
            b"pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=softhsm2\nmodule:\n  env: {}\n";
        assert_wrong_kind(PrivateKey::from_bytes(yaml, None), FileKind::Pkcs11Yaml);
        assert_wrong_kind(PublicKey::from_bytes(yaml), FileKind::Pkcs11Yaml);
    }

    #[test]
    fn empty_and_garbage_are_wrong_kind() {
        for empty in [&b""[..], b"  \n\t", b"\xEF\xBB\xBF\n"] {
            assert_wrong_kind(PublicKey::from_bytes(empty), FileKind::Empty);
            assert_wrong_kind(PrivateKey::from_bytes(empty, None), FileKind::Empty);
        }
        assert_wrong_kind(PublicKey::from_bytes(b"hello world"), FileKind::Unknown);
        assert_wrong_kind(
            PrivateKey::from_bytes(b"\x00\x01\x02garbage", None),
            FileKind::Unknown,
        );
        let err = PublicKey::from_bytes(b"").unwrap_err().to_string();
        assert!(
            err.starts_with("this file is empty; expected a public key"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_algorithms_are_named() {
        let ed = PKey::generate_ed25519().unwrap();
        let x = PKey::generate_x25519().unwrap();
        let k1 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP256K1).unwrap()).unwrap();
        let dsa = PKey::from_dsa(Dsa::generate(1024).unwrap()).unwrap();
        let small = PKey::from_rsa(Rsa::generate(512).unwrap()).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (ed.private_key_to_pem_pkcs8().unwrap(), "Ed25519"),
            (x.private_key_to_pem_pkcs8().unwrap(), "X25519"),
            (k1.private_key_to_pem().unwrap(), "secp256k1"),
            (dsa.private_key_to_pem_pkcs8().unwrap(), "DSA"),
            (small.private_key_to_pem_pkcs8().unwrap(), "RSA-512"),
        ];
        for (pem, name) in &cases {
            match PrivateKey::from_bytes(pem, None) {
                Err(KeyError::UnsupportedAlgorithm(what)) => assert!(what.contains(name), "{what}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let public_cases: Vec<(Vec<u8>, &str)> = vec![
            (ed.public_key_to_pem().unwrap(), "Ed25519"),
            (
                PKey::from_ec_key(k1).unwrap().public_key_to_der().unwrap(),
                "secp256k1",
            ),
            (
                br#"{"kty":"OKP","crv":"X25519","x":"AAAA"}"#.to_vec(),
                "X25519",
            ),
            (br#"{"kty":"oct","k":"AAAA"}"#.to_vec(), "symmetric"),
            (
                br#"{"kty":"EC","crv":"P-256K","x":"AA","y":"AA"}"#.to_vec(),
                "P-256K",
            ),
        ];
        for (data, name) in &public_cases {
            match PublicKey::from_bytes(data) {
                Err(KeyError::UnsupportedAlgorithm(what)) => assert!(what.contains(name), "{what}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let err = PrivateKey::from_bytes(&cases[0].0, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unsupported key: Ed25519 (layercrypt uses RSA and EC P-256/P-384/P-521 keys)"
        );
    }

    #[test]
    fn go_style_any_pem_label_with_spki_is_a_public_key() {
        let der = PKey::from_rsa(rsa2048().clone())
            .unwrap()
            .public_key_to_der()
            .unwrap();
        let pem = format!(
            "-----BEGIN RSA KEY-----\n{}\n-----END RSA KEY-----\n",
            STANDARD.encode(&der)
        );
        assert_eq!(sniff(pem.as_bytes()), FileKind::PublicKey);
        assert!(PublicKey::from_bytes(pem.as_bytes()).is_ok());
    }

    #[test]
    fn malformed_inputs_say_why() {
        let pem = PKey::from_rsa(rsa2048().clone())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        // Truncated in the middle of the body: no END line.
        let cut = &pem[..pem.len() / 2];
        assert!(matches!(
            PrivateKey::from_bytes(cut, None),
            Err(KeyError::Malformed(_))
        ));
        // Bad base64.
        let bad = b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
        let err = PublicKey::from_bytes(bad).unwrap_err().to_string();
        assert!(err.contains("not valid base64"), "{err}");
        // JWK problems.
        let cases: &[(&str, &str)] = &[
            (r#"{"kty":"RSA","n":"AQAB"}"#, "without \"e\""),
            (r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#, "too short"),
            (r#"{"kty":"RSA","n":"AQAB","e":"AAAA"}"#, "exponent"),
            (
                r#"{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}"#,
                "not on P-256",
            ),
            (r#"{"kty":"EC","x":"AQAB","y":"AQAB"}"#, "without \"crv\""),
            (r#"{"kty":"RSA","n":"@@@","e":"AQAB"}"#, "not base64url"),
            (r#"{"kty":"RSA","n":5,"e":"AQAB"}"#, "invalid type"),
            (r#"{"keys":[]}"#, "JWK set"),
            (r#"{"n":"AQAB"}"#, "without \"kty\""),
            (r#"{"kty":"RSA","#, "invalid JSON Web Key"),
        ];
        for (jwk, why) in cases {
            let err = PublicKey::from_bytes(jwk.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{jwk}: {err}");
        }
        // Huge numbers are refused before any arithmetic.
        let huge = format!(
            r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#,
            "A".repeat(1 << 20)
        );
        let err = PublicKey::from_bytes(huge.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
        let big = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, b64(&[0xff; 2100]));
        let err = PublicKey::from_bytes(big.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn private_jwk_with_mismatched_parts_is_refused() {
        let rsa = rsa2048();
        let other = Rsa::generate(2048).unwrap();
        let jwk = rsa_jwk(rsa, true, "").replace(
            &b64(&rsa.p().unwrap().to_vec()),
            &b64(&other.p().unwrap().to_vec()),
        );
        let err = PrivateKey::from_bytes(jwk.as_bytes(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("p·q is not the modulus"), "{err}");
        let jwk =
            rsa_jwk(rsa, true, "").replace(&b64(&rsa.d().to_vec()), &b64(&other.d().to_vec()));
        assert!(matches!(
            PrivateKey::from_bytes(jwk.as_bytes(), None),
            Err(KeyError::Malformed(_))
        ));

        let a = ec(EcCurve::P256);
        let b = ec(EcCurve::P256);
        let d_a = a.private_key().to_vec_padded(32).unwrap();
        let d_b = b.private_key().to_vec_padded(32).unwrap();
        let jwk = ec_jwk(&a, EcCurve::P256, true, "").replace(&b64(&d_a), &b64(&d_b));
        let err = PrivateKey::from_bytes(jwk.as_bytes(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("d does not match"), "{err}");
    }

    #[test]
    fn truncated_der_and_pem_never_panic() {
        let rsa = rsa2048();
        let pkey = PKey::from_rsa(rsa.clone()).unwrap();
        let eckey = ec(EcCurve::P521);
        let inputs = [
            pkey.private_key_to_pkcs8().unwrap(),
            pkey.public_key_to_der().unwrap(),
            rsa.private_key_to_der().unwrap(),
            eckey.private_key_to_der().unwrap(),
            pkey.private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), b"pw")
                .unwrap(),
            pkey.private_key_to_pem_pkcs8().unwrap(),
            rsa.private_key_to_pem_passphrase(Cipher::aes_256_cbc(), b"pw")
                .unwrap(),
        ];
        for input in &inputs {
            for len in 0..input.len() {
                let cut = &input[..len];
                let _ = sniff(cut);
                let _ = PublicKey::from_bytes(cut);
                let private = PrivateKey::from_bytes(cut, Some(b"pw"));
                // A shorter DER must never silently parse as a key.
                if input[0] == DER_SEQUENCE {
                    assert!(private.is_err(), "prefix of length {len} parsed");
                }
            }
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        // A small deterministic xorshift generator: no extra dependency.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: Vec<Vec<u8>> = vec![
            PKey::from_rsa(rsa2048().clone())
                .unwrap()
                .private_key_to_pkcs8()
                .unwrap(),
            fixture("openssl-ec256-sec1-legacy-encrypted.key.pem"),
            fixture("skopeo193-jwk-rsa-kid.key.jwk"),
            fixture("certificate.crt.pem"),
        ];
        for _ in 0..1500 {
            let seed = &seeds[(next() % seeds.len() as u64) as usize];
            let mut data = seed.clone();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() % data.len() as u64) as usize;
                data[i] = next() as u8;
            }
            let _ = sniff(&data);
            let _ = PublicKey::from_bytes(&data);
            let _ = PrivateKey::from_bytes(&data, Some(b"secret"));
        }
        for len in 0..64 {
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = sniff(&data);
            let _ = PublicKey::from_bytes(&data);
            let _ = PrivateKey::from_bytes(&data, None);
        }
    }

    #[test]
    fn debug_output_of_private_key_is_redacted() {
        let rsa = rsa2048();
        let key = PrivateKey::from_bytes(&rsa.private_key_to_pem().unwrap(), None).unwrap();
        let debug = format!("{key:?}");
        assert!(
            debug.starts_with("PrivateKey { kind: RSA-2048, thumbprint: "),
            "{debug}"
        );
        let d_hex = rsa.d().to_hex_str().unwrap().to_string();
        assert!(!debug.contains(&d_hex[..16]));
        assert!(!debug.contains(&b64(&rsa.d().to_vec())[..16]));
    }

    #[test]
    fn sniff_names_file_kinds() {
        let rsa = rsa2048();
        let pkey = PKey::from_rsa(rsa.clone()).unwrap();
        assert_eq!(
            sniff(&pkey.private_key_to_pem_pkcs8().unwrap()),
            FileKind::PrivateKey
        );
        assert_eq!(
            sniff(&rsa.private_key_to_der().unwrap()),
            FileKind::PrivateKey
        );
        assert_eq!(
            sniff(&pkey.public_key_to_der().unwrap()),
            FileKind::PublicKey
        );
        assert_eq!(
            sniff(&rsa.public_key_to_der_pkcs1().unwrap()),
            FileKind::PublicKey
        );
        assert_eq!(
            sniff(&ec(EcCurve::P256).private_key_to_der().unwrap()),
            FileKind::PrivateKey
        );
        assert_eq!(
            sniff(rsa_jwk(rsa, true, "").as_bytes()),
            FileKind::PrivateJwk
        );
        assert_eq!(
            sniff(rsa_jwk(rsa, false, "").as_bytes()),
            FileKind::PublicJwk
        );
        assert_eq!(
            sniff(&fixture("certificate.crt.pem")),
            FileKind::Certificate
        );
        assert_eq!(
            sniff(&fixture("openssh-ed25519.key")),
            FileKind::OpenSshPrivateKey
        );
        assert_eq!(
            sniff(&fixture("openssh-ed25519.pub")),
            FileKind::SshPublicKey
        );
        assert_eq!(sniff(&fixture("pgp-public.asc")), FileKind::PgpPublicKey);
        assert_eq!(
            sniff(b"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"),
            FileKind::AgeKey
        );
        assert_eq!(sniff(b""), FileKind::Empty);
        assert_eq!(sniff(b"{}"), FileKind::Unknown);
        assert_eq!(FileKind::Certificate.to_string(), "an X.509 certificate");
        assert_eq!(
            KeyKind::Ec {
                curve: EcCurve::P521
            }
            .to_string(),
            "EC P-521"
        );
    }

    #[test]
    fn absurd_pbkdf2_iteration_counts_are_refused_before_decrypting() {
        let pem = fixture("openssl-ec256-pkcs8-8388608-iterations.key.pem");
        let block = first_pem_block(std::str::from_utf8(&pem).unwrap()).unwrap();
        let mut der = block.decode().unwrap().body.to_vec();
        assert_eq!(pbkdf2_iterations(&der), Some(8_388_608));
        // INTEGER 0x00800000 -> 0x00ffffff (16,777,215 iterations).
        let at = der
            .windows(6)
            .position(|w| w == [0x02, 0x04, 0x00, 0x80, 0x00, 0x00])
            .unwrap();
        der[at + 3..at + 6].copy_from_slice(&[0xff, 0xff, 0xff]);
        let started = std::time::Instant::now();
        match PrivateKey::from_bytes(&der, Some(b"secret")) {
            Err(KeyError::UnsupportedAlgorithm(what)) => {
                assert!(what.contains("16777215 PBKDF2 iterations"), "{what}")
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let pem = format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        assert!(matches!(
            PrivateKey::from_bytes(pem.as_bytes(), Some(b"x")),
            Err(KeyError::UnsupportedAlgorithm(_))
        ));
        // Without a password the count does not matter yet.
        assert!(matches!(
            PrivateKey::from_bytes(&der, None),
            Err(KeyError::PasswordRequired)
        ));
    }

    #[test]
    fn ec_key_whose_public_point_is_not_its_own_is_refused() {
        let a = ec(EcCurve::P256);
        let b = ec(EcCurve::P256);
        let point = |k: &EcKey<Private>| {
            let mut ctx = BigNumContext::new().unwrap();
            k.public_key()
                .to_bytes(
                    k.group(),
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )
                .unwrap()
        };
        let mut der = a.private_key_to_der().unwrap();
        let (pa, pb) = (point(&a), point(&b));
        let at = der
            .windows(pa.len())
            .position(|w| w == pa.as_slice())
            .unwrap();
        der[at..at + pb.len()].copy_from_slice(&pb);
        let err = PrivateKey::from_bytes(&der, None).unwrap_err().to_string();
        assert!(err.contains("does not match its public point"), "{err}");
    }

    #[test]
    fn text_starting_with_zero_is_not_taken_for_der() {
        assert_eq!(sniff(b"0123 hello"), FileKind::Unknown);
        assert_wrong_kind(PublicKey::from_bytes(b"0123 hello"), FileKind::Unknown);
        // Binary data starting with 0x30 is still reported as (broken) DER.
        let err = PublicKey::from_bytes(&[0x30, 0x82, 0x01, 0x22, 0xff])
            .unwrap_err()
            .to_string();
        assert!(err.contains("may be truncated"), "{err}");
    }

    #[test]
    fn skopeo_sample_keys_parse() {
        for (name, kind) in [
            ("skopeo193-small-jwe.key.pem", "RSA-2048"),
            ("skopeo193-small-multi-ec256.key.pem", "EC P-256"),
            ("skopeo193-small-multi-ec384.key.pem", "EC P-384"),
            ("skopeo193-rsa4096.key.pem", "RSA-4096"),
            ("skopeo193-ec521.key.pem", "EC P-521"),
            ("skopeo193-jwk-rsa-kid.key.jwk", "RSA-2048"),
        ] {
            let key = PrivateKey::from_bytes(&fixture(name), None).unwrap();
            assert_eq!(key.kind().to_string(), kind, "{name}");
        }
    }
}
