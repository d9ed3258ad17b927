//! DER key structures: telling SubjectPublicKeyInfo, PKCS#1, PKCS#8
//! (plain and encrypted), SEC1 and certificates apart by their shape
//! ([`DerShape`]), handing each to the right OpenSSL parser, and refusing
//! PKCS#8 files whose PBKDF2 iteration count would keep OpenSSL busy for
//! hours.
//!
//! Elements are read with the crate's one TLV reader, [`crate::asn1`], in its
//! strict DER form. This module must never panic on truncated or hostile DER:
//! every length is checked against the bytes that remain before it is used.

use openssl::ec::EcKey;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;

use super::{EXPECT_PRIVATE, EXPECT_PUBLIC, FileKind, KeyError};
use crate::asn1::{der_element, tag};

/// The structures a DER key file can hold, told apart by the tags of the
/// outer SEQUENCE's first elements. This lets us say "this is a private key"
/// instead of "parse error", and pick the right OpenSSL parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DerShape {
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

pub(super) fn der_shape(der: &[u8]) -> DerShape {
    let Some((tag::SEQUENCE, contents, trailing)) = der_element(der) else {
        return DerShape::Unknown;
    };
    if !trailing.is_empty() {
        return DerShape::Unknown;
    }
    // Tags (and the first one's contents) of the first few elements.
    let mut elems: Vec<(u8, &[u8])> = Vec::new();
    let mut rest = contents;
    while !rest.is_empty() && elems.len() < 10 {
        let Some((tag, inner, next)) = der_element(rest) else {
            return DerShape::Unknown;
        };
        elems.push((tag, inner));
        rest = next;
    }
    let tags: Vec<u8> = elems.iter().map(|(t, _)| *t).collect();
    let starts_with_oid = |inner: &[u8]| matches!(der_element(inner), Some((tag::OID, _, _)));
    match tags.as_slice() {
        [tag::SEQUENCE, tag::BIT_STRING] if starts_with_oid(elems[0].1) => DerShape::Spki,
        [tag::SEQUENCE, tag::OCTET_STRING] if starts_with_oid(elems[0].1) => {
            DerShape::EncryptedPkcs8
        }
        [tag::INTEGER, tag::INTEGER] => DerShape::Pkcs1Public,
        [tag::INTEGER, tag::SEQUENCE, tag::OCTET_STRING, ..] => DerShape::Pkcs8,
        [tag::INTEGER, tag::OCTET_STRING, ..] => DerShape::Sec1,
        [tag::INTEGER, tag::INTEGER, tag::INTEGER, ..] if tags.len() >= 9 => DerShape::Pkcs1Private,
        [tag::SEQUENCE, tag::SEQUENCE, tag::BIT_STRING] => DerShape::Certificate,
        _ => DerShape::Unknown,
    }
}

pub(super) fn public_from_der(der: &[u8]) -> Result<PKey<Public>, KeyError> {
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

pub(super) fn pkcs1_public(der: &[u8]) -> Result<PKey<Public>, KeyError> {
    Rsa::public_key_from_der_pkcs1(der)
        .and_then(PKey::from_rsa)
        .map_err(|e| KeyError::Malformed(format!("invalid PKCS#1 RSA public key: {e}")))
}

pub(super) fn private_from_der(
    der: &[u8],
    password: Option<&[u8]>,
) -> Result<PKey<Private>, KeyError> {
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
pub(super) fn encrypted_pkcs8(
    der: &[u8],
    password: Option<&[u8]>,
) -> Result<PKey<Private>, KeyError> {
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
pub(super) fn pbkdf2_iterations(der: &[u8]) -> Option<u64> {
    // 1.2.840.113549.1.5.13 and 1.2.840.113549.1.5.12
    const PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    const PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
    let (_, outer, _) = der_element(der)?;
    let (_, algorithm, _) = der_element(outer)?;
    let (tag::OID, oid, params) = der_element(algorithm)? else {
        return None;
    };
    if oid != PBES2 {
        return None;
    }
    let (_, pbes2_params, _) = der_element(params)?;
    let (_, kdf, _) = der_element(pbes2_params)?;
    let (tag::OID, oid, kdf_params) = der_element(kdf)? else {
        return None;
    };
    if oid != PBKDF2 {
        return None;
    }
    let (_, pbkdf2_params, _) = der_element(kdf_params)?;
    let (_, _salt, rest) = der_element(pbkdf2_params)?;
    let (tag::INTEGER, count, _) = der_element(rest)? else {
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
