//! Recognising a key file: what it is ([`FileKind`]), judged from its first
//! bytes, its PEM label or the shape of its DER, without parsing it fully, so
//! that an error can say "this is a private key, expected a public key" and
//! the key loader can sort files by kind.
//!
//! It must never panic or fail: whatever the bytes, the answer is a
//! [`FileKind`] (`Unknown` for anything unrecognised).

use std::fmt;

use super::der::{DerShape, der_shape};
use super::jwk::RawJwk;
use super::pem::{PemBlock, first_pem_block};
use crate::asn1::tag;

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

/// Say what a file looks like, without parsing it fully. Used to build
/// [`KeyError::WrongKind`](super::KeyError::WrongKind) and by callers that sort key files by type.
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

pub(super) fn kind_from_pem_label(label: &str, inner: &str) -> FileKind {
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
pub(super) fn looks_like_der(data: &[u8]) -> bool {
    data.first() == Some(&tag::SEQUENCE)
        && (der_shape(data) != DerShape::Unknown || std::str::from_utf8(data).is_err())
}

/// Strip a UTF-8 byte-order mark and surrounding ASCII whitespace: key files
/// edited by hand or written by Windows tools carry both. Binary DER that
/// parses as it is stays untouched: its last bytes (ciphertext, key
/// material) have whitespace values about one time in fifty, and trimming
/// them would corrupt the key.
pub(super) fn trim(data: &[u8]) -> &[u8] {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    if data.first() == Some(&tag::SEQUENCE) && der_shape(data) != DerShape::Unknown {
        return data;
    }
    data.trim_ascii()
}
