//! Finding the certificates a `pgp:` recipient names, and the key to encrypt to in each.
//!
//! A value is matched as Go ocicrypt matches it, an exact, case-sensitive e-mail address or
//! display name of a user id, and, beyond Go, as the whole user id, a key id or a fingerprint
//! (hex, with or without `0x`, any case). Unlike Go, a user id that is not an RFC 5322 address
//! does not stop encryption for anybody else: it simply matches only as a whole.
//!
//! The key encrypted to is the certificate's current encryption key, as Go picks it: the
//! newest live, unrevoked subkey flagged for encryption (the primary key only if no subkey is),
//! unless the value named an encryption subkey itself. Expired, revoked and sign-only
//! certificates are refused with the reason.

use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::cert::prelude::*;
use openpgp::packet::Key;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::policy::StandardPolicy;
use openpgp::types::{RevocationStatus, SymmetricAlgorithm};

/// How a recipient value is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// A 64-bit key id.
    KeyId(u64),
    /// A v4 (20-byte) or v6 (32-byte) fingerprint.
    Fingerprint(Vec<u8>),
    /// An e-mail address, a display name or a whole user id.
    Name(String),
}

impl Query {
    /// Read a value: 16 hex digits are a key id, 40 or 64 a fingerprint (with or without
    /// `0x`, any case); anything else is a name.
    pub fn parse(value: &str) -> Query {
        let hex = value
            .strip_prefix("0x")
            .or_else(|| value.strip_prefix("0X"))
            .unwrap_or(value);
        if hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            match hex.len() {
                16 => {
                    if let Ok(id) = u64::from_str_radix(hex, 16) {
                        return Query::KeyId(id);
                    }
                }
                40 | 64 => {
                    if let Ok(bytes) = hex::decode(hex) {
                        return Query::Fingerprint(bytes);
                    }
                }
                _ => {}
            }
        }
        Query::Name(value.to_string())
    }
}

/// A certificate a query matched, and the key the query named (for key ids and fingerprints).
pub struct Match<'a> {
    /// The certificate.
    pub cert: &'a Cert,
    /// The key of the certificate the query named, if it named one.
    pub named_key: Option<Key<PublicParts, UnspecifiedRole>>,
}

/// Whether a user id matches a name query as Go does (its address or display name, exactly),
/// or as a whole.
fn user_id_matches(uid: &openpgp::packet::UserID, value: &str) -> bool {
    if uid.value() == value.as_bytes() {
        return true;
    }
    let name = uid.name().ok().flatten();
    let email = uid.email().ok().flatten();
    name == Some(value) || email == Some(value)
}

/// The key id of a key, as a number.
fn key_id_u64(key: &Key<PublicParts, UnspecifiedRole>) -> u64 {
    let id = key.keyid();
    let bytes = id.as_bytes();
    bytes.try_into().map(u64::from_be_bytes).unwrap_or_default()
}

/// The certificates in `certs` that `query` matches.
pub fn find<'a>(certs: &'a [Cert], query: &Query) -> Vec<Match<'a>> {
    let mut out = Vec::new();
    for cert in certs {
        match query {
            Query::Name(value) => {
                if cert.userids().any(|u| user_id_matches(u.userid(), value)) {
                    out.push(Match {
                        cert,
                        named_key: None,
                    });
                }
            }
            Query::KeyId(id) => {
                if let Some(k) = cert.keys().find(|k| key_id_u64(k.key()) == *id) {
                    out.push(Match {
                        cert,
                        named_key: Some(k.key().clone()),
                    });
                }
            }
            Query::Fingerprint(fpr) => {
                if let Some(k) = cert
                    .keys()
                    .find(|k| k.key().fingerprint().as_bytes() == &fpr[..])
                {
                    out.push(Match {
                        cert,
                        named_key: Some(k.key().clone()),
                    });
                }
            }
        }
    }
    out
}

/// The key to encrypt to for a matched certificate, with whether the certificate prefers
/// AES-256; or why there is none, in words ("is revoked", "has expired", …).
pub fn encryption_key(m: &Match<'_>) -> Result<(Key<PublicParts, UnspecifiedRole>, bool), String> {
    let policy = StandardPolicy::new();
    let vc = m
        .cert
        .with_policy(&policy, None)
        .map_err(|e| format!("is not a valid certificate: {e}"))?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err("is revoked".into());
    }
    if let Err(e) = vc.alive() {
        return Err(format!("has expired or is not yet valid ({e})"));
    }
    let usable = || {
        vc.keys()
            .for_transport_encryption()
            .for_storage_encryption()
            .alive()
            .revoked(false)
    };
    if usable().next().is_none() {
        let any = vc
            .keys()
            .for_transport_encryption()
            .for_storage_encryption()
            .next()
            .is_some();
        return Err(if any {
            "has no encryption key that is still valid (expired or revoked)".into()
        } else {
            "has no key that may encrypt (it is a signing-only certificate)".into()
        });
    }
    // The named key, if the query named an encryption key; else the newest subkey, else
    // the primary key.
    let chosen = usable()
        .supported()
        .find(|k| {
            m.named_key
                .as_ref()
                .is_some_and(|n| n.fingerprint() == k.key().fingerprint())
        })
        .or_else(|| {
            usable()
                .supported()
                .filter(|k| !k.primary())
                .max_by_key(|k| k.key().creation_time())
        })
        .or_else(|| usable().supported().find(|k| k.primary()));
    let Some(chosen) = chosen else {
        let algos: Vec<String> = usable().map(|k| k.key().pk_algo().to_string()).collect();
        return Err(format!(
            "has encryption keys only of a type this build cannot encrypt to ({})",
            algos.join(", ")
        ));
    };
    let aes256 = vc
        .preferred_symmetric_algorithms()
        .is_some_and(|p| p.contains(&SymmetricAlgorithm::AES256));
    Ok((chosen.key().clone(), aes256))
}

/// A short label for a certificate in messages: its key id and first user id.
pub fn label(cert: &Cert) -> String {
    let id = format!(
        "0x{:x}",
        key_id_u64(cert.primary_key().key().role_as_unspecified())
    );
    match cert.userids().next() {
        Some(u) => format!("{id} ({})", String::from_utf8_lossy(u.userid().value())),
        None => id,
    }
}

/// The first user id of a certificate, if it has one.
pub fn first_user_id(cert: &Cert) -> Option<String> {
    cert.userids()
        .next()
        .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_key_ids_fingerprints_or_names() {
        assert_eq!(
            Query::parse("0x4926E8817D4ADDEA"),
            Query::KeyId(0x4926e8817d4addea)
        );
        assert_eq!(
            Query::parse("4926e8817d4addea"),
            Query::KeyId(0x4926e8817d4addea)
        );
        let fpr = "F4408FF4AB0D8F678F9DE2A0DC4D106F4EB4064B";
        assert!(matches!(Query::parse(fpr), Query::Fingerprint(b) if b.len() == 20));
        assert!(matches!(
            Query::parse(&format!("0X{}", fpr.to_lowercase())),
            Query::Fingerprint(b) if b.len() == 20
        ));
        for name in [
            "alice@example.test",
            "Alice Example",
            "DEADBEEF",
            "0x12",
            "",
        ] {
            assert_eq!(Query::parse(name), Query::Name(name.into()));
        }
    }
}
