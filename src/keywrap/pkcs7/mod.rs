//! The PKCS#7 / CMS key-wrap scheme (`org.opencontainers.image.enc.keys.pkcs7`): wraps a
//! layer's private-options JSON for X.509 certificate holders, and unwraps it with their RSA
//! private keys, wire-compatible with Go ocicrypt (`smallstep/pkcs7` today, `fullsailor/pkcs7`
//! in skopeo 1.9).
//!
//! Writing ([`wrap`]) reproduces the structure of Go's envelope exactly: a DER `ContentInfo`
//! holding an `EnvelopedData` (version 0) with one `KeyTransRecipientInfo` per certificate
//! (issuer and serial number; `rsaEncryption` with its parameters omitted; RSAES-PKCS1-v1_5 of
//! a fresh 16-byte content key), in DER SET OF order, and AES-128-GCM content whose parameters
//! use Go's quirky encoding (identifier `0x10` around a whole DER SEQUENCE with a `[4]` nonce
//! and the tag length 16). Go parses the *contents* of that element as the inner SEQUENCE, so
//! the RFC 5084 form (`30 { 04 nonce, 02 16 }`) is refused by current Go and by skopeo 1.9
//! (checked with skopeo 1.9.3 in `tests/pkcs7.rs`). The content is written as primitive `[0]`,
//! as current Go does; skopeo 1.9 reads that as well as its own constructed form, which
//! [`wrap_with`] can also write ([`ContentEncoding`]).
//!
//! Reading ([`unwrap`], [`describe`]) is lenient (see `envelope`): DER or BER, GCM parameters
//! in Go's, plain-SEQUENCE or RFC 5084 form, AES-GCM/CBC of every key size, DES-EDE3-CBC,
//! DES-CBC where OpenSSL still offers it, PKCS#1 v1.5 and OAEP key transport. The entry for a
//! key is found as Go finds it, by a certificate's issuer and serial (or subject key
//! identifier) — certificates come from `-k CERT` and `--dec-recipient pkcs7:CERT` — paired
//! with the private key whose public key is the certificate's. Beyond Go, a key without such a
//! certificate is tried on every entry, but only for GCM content, where the tag proves the
//! key right.
//!
//! This module must never: return plaintext whose GCM tag did not verify; accept a PKCS#1 v1.5
//! result on a guess for unauthenticated (CBC) content, since OpenSSL's implicit rejection
//! turns a wrong key into a random content key rather than an error; panic or allocate on the
//! say-so of a length in the (attacker-controlled) envelope; keep content keys or options
//! outside [`Zeroizing`] buffers; use any RSA implementation but OpenSSL's.

mod ber;
mod crypto;
mod envelope;
#[cfg(test)]
mod tests;

pub use envelope::ContentEncoding;

use std::io::Read;

use openssl::pkey::{Id, PKey, Public};
use openssl::x509::X509Name;
use zeroize::Zeroizing;

use crate::keys::Certificate;
use crate::keys::certificate::name_to_string;
use crate::keywrap::{
    Attempt, DescribeContext, KeyRing, KeyWrapper, MatchTarget, NamedCertificate, NamedKey,
    Recipient, RecipientError, RecipientFailure, RecipientInfo, RecipientKind, RecipientMatcher,
    RecipientSpec, Removal, RemoveError, UnwrapFailure, Unwrapped, WrapError,
};
use envelope::{Entry, KeyTransport, KeyTransportAlgorithm, RecipientId, RecipientOut};

/// The scheme id and annotation suffix.
const SCHEME: &str = "pkcs7";
/// Largest private-options JSON wrapped or unwrapped.
pub const MAX_OPTIONS: usize = 64 * 1024;
/// Most RecipientInfos written or read in one envelope.
pub const MAX_RECIPIENT_INFOS: usize = 1000;
/// Largest envelope read: room for the most recipients with RSA-16384 keys.
pub const MAX_ENVELOPE: usize = 4 * 1024 * 1024;
/// Largest encrypted content key (an RSA-16384 block).
const MAX_ENCRYPTED_KEY: usize = 2048;
/// Largest encrypted content: the largest options plus a tag or padding.
const MAX_CONTENT: usize = MAX_OPTIONS + 64;
/// Largest certificate file read.
const MAX_CERTIFICATE_FILE: u64 = 1024 * 1024;
/// RSA sizes accepted for recipients (as for every key in layercrypt).
const RSA_BITS: std::ops::RangeInclusive<u32> = 1024..=16384;

/// Errors of the PKCS#7 scheme when wrapping or describing.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs7Error {
    /// [`wrap`] was called without certificates.
    #[error("no PKCS#7 recipients given")]
    NoRecipients,
    /// More certificates than one envelope may carry.
    #[error("{0} PKCS#7 recipients are more than the {MAX_RECIPIENT_INFOS} one envelope may carry")]
    TooManyRecipients(usize),
    /// The options are larger than this scheme wraps.
    #[error("the options have {0} bytes, more than the {MAX_OPTIONS} PKCS#7 wraps")]
    OptionsTooLarge(usize),
    /// A certificate cannot be a PKCS#7 recipient (not RSA, or an unusable RSA size).
    #[error(
        "PKCS#7 supports only RSA certificates of 1024 to 16384 bits; certificate {subject} holds {found}"
    )]
    NotRsa {
        /// The certificate's subject.
        subject: String,
        /// What its key is ("an EC key", "an RSA-512 key").
        found: String,
    },
    /// A certificate's issuer or serial number cannot be read.
    #[error("certificate {subject}: {reason}")]
    Certificate {
        /// The certificate's subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// The envelope is not a PKCS#7 EnvelopedData this module can read.
    #[error("malformed PKCS#7 envelope: {0}")]
    Malformed(String),
    /// A cryptographic operation failed.
    #[error("{0}")]
    Crypto(String),
}

/// The PKCS#7 scheme behind the [`KeyWrapper`] trait.
#[derive(Clone, Copy, Debug)]
pub struct Pkcs7Wrapper;

/// A PKCS#7 recipient: an X.509 certificate with an RSA key.
#[derive(Clone, Debug)]
pub struct Pkcs7Recipient {
    /// The certificate.
    pub certificate: Certificate,
}

/// Check that a certificate can be a recipient: its key must be RSA of a usable size.
pub fn check_recipient(certificate: &Certificate) -> Result<(), Pkcs7Error> {
    let subject = certificate.subject();
    let key = certificate
        .x509()
        .public_key()
        .map_err(|e| Pkcs7Error::Certificate {
            subject: subject.clone(),
            reason: format!("its public key cannot be read: {e}"),
        })?;
    let found = match key.id() {
        Id::RSA if RSA_BITS.contains(&key.bits()) => return Ok(()),
        Id::RSA => format!("an RSA-{} key", key.bits()),
        Id::RSA_PSS => "an RSA-PSS key (usable for signatures only)".into(),
        Id::EC => "an EC key".into(),
        Id::ED25519 => "an Ed25519 key".into(),
        Id::ED448 => "an Ed448 key".into(),
        Id::DSA => "a DSA key".into(),
        _ => "a key of another type".into(),
    };
    Err(Pkcs7Error::NotRsa { subject, found })
}

/// Wrap `options` for `certificates` in Go's form (see the module documentation).
pub fn wrap(certificates: &[Certificate], options: &[u8]) -> Result<Vec<u8>, Pkcs7Error> {
    wrap_with(certificates, options, ContentEncoding::default())
}

/// Wrap `options` for `certificates`, writing the encrypted content as `form` says. Both forms
/// are read by current Go and by skopeo 1.9; [`wrap`] uses the primitive one, as current Go.
pub fn wrap_with(
    certificates: &[Certificate],
    options: &[u8],
    form: ContentEncoding,
) -> Result<Vec<u8>, Pkcs7Error> {
    if certificates.is_empty() {
        return Err(Pkcs7Error::NoRecipients);
    }
    if certificates.len() > MAX_RECIPIENT_INFOS {
        return Err(Pkcs7Error::TooManyRecipients(certificates.len()));
    }
    if options.len() > MAX_OPTIONS {
        return Err(Pkcs7Error::OptionsTooLarge(options.len()));
    }
    let sealed = crypto::seal(options).map_err(Pkcs7Error::Crypto)?;
    let ders: Vec<Vec<u8>> = certificates.iter().map(Certificate::to_der).collect();
    let mut recipients = Vec::with_capacity(certificates.len());
    let mut keys = Vec::with_capacity(certificates.len());
    for (certificate, der) in certificates.iter().zip(&ders) {
        check_recipient(certificate)?;
        let cert_error = |reason: String| Pkcs7Error::Certificate {
            subject: certificate.subject(),
            reason,
        };
        let (issuer, serial) = envelope::issuer_and_serial(der).map_err(cert_error)?;
        let public = certificate
            .x509()
            .public_key()
            .map_err(|e| cert_error(format!("its public key cannot be read: {e}")))?;
        let encrypted = crypto::encrypt_content_key(&public, &sealed.key[..])
            .map_err(|e| cert_error(e.to_string()))?;
        recipients.push((issuer, serial));
        keys.push(encrypted);
    }
    let out: Vec<RecipientOut<'_>> = recipients
        .iter()
        .zip(&keys)
        .map(|((issuer, serial), key)| RecipientOut {
            issuer,
            serial,
            encrypted_key: key,
        })
        .collect();
    envelope::encode(&out, &sealed.nonce, &sealed.data, form).map_err(Pkcs7Error::Crypto)
}

/// List an envelope's recipients: per RecipientInfo its key-transport algorithm, the issuer
/// (RFC 4514) and serial number (hex) it names, and the subject of a matching certificate
/// among `certificates`.
pub fn describe(
    blob: &[u8],
    certificates: &[Certificate],
) -> Result<Vec<RecipientInfo>, Pkcs7Error> {
    let envelope = parse(blob)?;
    let identities: Vec<Identity> = certificates.iter().map(Identity::of).collect();
    Ok(envelope
        .recipients
        .iter()
        .map(|entry| match entry {
            Entry::Other(kind) => RecipientInfo {
                scheme: SCHEME.into(),
                algorithm: Some(format!("{kind}, not supported")),
                ..Default::default()
            },
            Entry::KeyTransport(t) => {
                let (issuer, serial, key_id) = match &t.id {
                    RecipientId::IssuerSerial { issuer, serial } => (
                        Some(issuer_string(issuer)),
                        Some(envelope::serial_hex(serial)),
                        None,
                    ),
                    RecipientId::SubjectKeyId(ski) => (None, None, Some(hex::encode(ski))),
                };
                let subject = certificates
                    .iter()
                    .zip(&identities)
                    .find(|(_, id)| id.is(&t.id))
                    .map(|(c, _)| c.subject());
                let hash = match &t.algorithm {
                    KeyTransportAlgorithm::RsaOaep { hash, .. } => Some(hash.name().to_string()),
                    _ => None,
                };
                RecipientInfo {
                    scheme: SCHEME.into(),
                    algorithm: Some(t.algorithm.name()),
                    key_id,
                    issuer,
                    serial,
                    subject,
                    hash,
                    ..Default::default()
                }
            }
        })
        .collect())
}

/// Recover the options from an envelope with `keys`, using `certificates` to find each key's
/// entry (see the module documentation). Every key tried gives one [`Attempt`] on failure, as
/// does every certificate that no key belongs to.
pub fn unwrap(
    blob: &[u8],
    keys: &[NamedKey],
    certificates: &[NamedCertificate],
) -> Result<Unwrapped, UnwrapFailure> {
    let envelope = parse(blob).map_err(|e| UnwrapFailure::Malformed(e.to_string()))?;
    if envelope.content.cipher.key_len().is_none() {
        return Err(UnwrapFailure::Malformed(format!(
            "the content is encrypted with {}, which is not supported (AES-GCM, AES-CBC and DES-EDE3-CBC are)",
            envelope.content.cipher.name()
        )));
    }
    let transports: Vec<&KeyTransport<'_>> = envelope
        .recipients
        .iter()
        .filter_map(|e| match e {
            Entry::KeyTransport(t) => Some(t),
            Entry::Other(_) => None,
        })
        .collect();
    let none_open = match transports.len() {
        0 => "the envelope has no key-transport entry to try".to_string(),
        1 => "it does not open the envelope's only entry: content does not authenticate with the content key it yields".to_string(),
        n => format!(
            "it opens none of the envelope's {n} entries: content does not authenticate with any content key they yield"
        ),
    };
    let certs: Vec<(&NamedCertificate, Identity, Option<PKey<Public>>)> = certificates
        .iter()
        .map(|c| {
            (
                c,
                Identity::of(&c.certificate),
                c.certificate.x509().public_key().ok(),
            )
        })
        .collect();
    let entry_of = |id: &Identity| -> Option<&KeyTransport<'_>> {
        transports.iter().copied().find(|t| id.is(&t.id))
    };
    let open = |t: &KeyTransport<'_>, key: &NamedKey| -> Result<Zeroizing<Vec<u8>>, String> {
        let content_key = crypto::decrypt_content_key(key.key.pkey(), t)?;
        let options =
            crypto::decrypt_content(&envelope.content, &content_key).map_err(|e| e.to_string())?;
        if options.len() > MAX_OPTIONS {
            return Err(format!(
                "the decrypted options have {} bytes, more than the {MAX_OPTIONS} allowed",
                options.len()
            ));
        }
        Ok(options)
    };
    let opened = |options, key: &NamedKey| Unwrapped {
        options,
        scheme: SCHEME.into(),
        key: key.source.clone(),
    };

    let mut attempts = Vec::new();
    let mut paired = vec![false; certs.len()];
    for key in keys {
        let pkey = key.key.pkey();
        if !crypto::is_rsa(pkey) {
            attempts.push(Attempt {
                key: key.source.clone(),
                reason: format!(
                    "{} key: PKCS#7 recipients are RSA keys only",
                    key.key.kind()
                ),
            });
            continue;
        }
        let mut reasons = Vec::new();
        let mut located = false;
        for (i, (cert, identity, public)) in certs.iter().enumerate() {
            if !public.as_ref().is_some_and(|p| pkey.public_eq(p)) {
                continue;
            }
            paired[i] = true;
            let label = describe_certificate(cert);
            match entry_of(identity) {
                None => reasons.push(format!("its {label} is not a recipient")),
                Some(t) => {
                    located = true;
                    match open(t, key) {
                        Ok(options) => return Ok(opened(options, key)),
                        Err(why) => reasons.push(format!("with its {label}: {why}")),
                    }
                }
            }
        }
        if !located {
            if envelope.content.cipher.is_authenticated() {
                // No certificate names this key's entry: try them all. A wrong key cannot slip
                // through, because the GCM tag must verify under the content key it yields.
                for t in &transports {
                    if let Ok(options) = open(t, key) {
                        return Ok(opened(options, key));
                    }
                }
                reasons.push(none_open.clone());
            } else if reasons.is_empty() {
                reasons.push(format!(
                    "no certificate for this key was given, and {} content cannot tell a wrong key from the right one: pass the recipient's certificate (-k CERT or --dec-recipient pkcs7:CERT)",
                    envelope.content.cipher.name()
                ));
            }
        }
        attempts.push(Attempt {
            key: key.source.clone(),
            reason: reasons.join("; "),
        });
    }
    for (i, (cert, identity, _)) in certs.iter().enumerate() {
        if paired[i] {
            continue;
        }
        let label = describe_certificate(cert);
        let reason = match entry_of(identity) {
            Some(_) => format!("no private key for {label} was given (it is a recipient)"),
            None => format!("{label} is not a recipient"),
        };
        attempts.push(Attempt {
            key: cert.source.clone(),
            reason,
        });
    }
    Err(UnwrapFailure::NotOpened(attempts))
}

/// Drop the RecipientInfos of `identities` (by issuer and serial, or subject key id) from an
/// envelope; the content and the other entries stay as they are. Entries of other kinds
/// (key agreement, KEK, password) never belong to an RSA certificate and are kept.
fn remove(blob: &[u8], identities: &[Identity]) -> Result<Removal, RemoveError> {
    let envelope = parse(blob).map_err(|e| RemoveError::Malformed(e.to_string()))?;
    let drop: Vec<bool> = envelope
        .recipients
        .iter()
        .map(|e| match e {
            Entry::KeyTransport(t) => identities.iter().any(|id| id.is(&t.id)),
            Entry::Other(_) => false,
        })
        .collect();
    let removed = drop.iter().filter(|d| **d).count();
    if removed == 0 {
        return Ok(Removal::Unchanged);
    }
    if removed == drop.len() {
        return Ok(Removal::Emptied { removed });
    }
    let blob = envelope::without_recipients(blob, &drop).map_err(RemoveError::Malformed)?;
    Ok(Removal::Edited { blob, removed })
}

fn parse(blob: &[u8]) -> Result<envelope::Envelope<'_>, Pkcs7Error> {
    if blob.len() > MAX_ENVELOPE {
        return Err(Pkcs7Error::Malformed(format!(
            "{} bytes, more than the {MAX_ENVELOPE} allowed",
            blob.len()
        )));
    }
    envelope::parse(blob).map_err(Pkcs7Error::Malformed)
}

/// "certificate CN=alice serial 01ab", for messages.
fn describe_certificate(cert: &NamedCertificate) -> String {
    format!(
        "certificate {} serial {} ({})",
        cert.certificate.subject(),
        cert.certificate.serial_hex(),
        cert.source
    )
}

/// An issuer Name as an RFC 4514 string, or its hex when OpenSSL cannot read it.
fn issuer_string(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok(name) => name_to_string(&name),
        Err(_) => format!("#{}", hex::encode(der)),
    }
}

/// What identifies a certificate to a RecipientInfo.
struct Identity {
    /// Issuer Name element and minimal serial, as Go compares them.
    issuer_serial: Option<(Vec<u8>, Vec<u8>)>,
    /// The subject key identifier extension, if present.
    subject_key_id: Option<Vec<u8>>,
}

impl Identity {
    fn of(certificate: &Certificate) -> Identity {
        let der = certificate.to_der();
        Identity {
            issuer_serial: envelope::issuer_and_serial(&der)
                .ok()
                .map(|(issuer, serial)| (issuer.to_vec(), serial)),
            subject_key_id: certificate
                .x509()
                .subject_key_id()
                .map(|s| s.as_slice().to_vec()),
        }
    }

    fn is(&self, id: &RecipientId<'_>) -> bool {
        match id {
            RecipientId::IssuerSerial { issuer, serial } => self
                .issuer_serial
                .as_ref()
                .is_some_and(|(i, s)| i == issuer && s == serial),
            RecipientId::SubjectKeyId(ski) => {
                self.subject_key_id.as_deref().is_some_and(|s| s == *ski)
            }
        }
    }
}

/// Read a recipient certificate file, bounded in size.
fn read_certificate(path: &str) -> Result<Certificate, RecipientError> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CERTIFICATE_FILE + 1).read_to_end(&mut data))
        .map_err(|source| RecipientError::Io {
            path: path.to_string(),
            source,
        })?;
    if data.len() as u64 > MAX_CERTIFICATE_FILE {
        return Err(RecipientError::Scheme(format!(
            "{path}: larger than {MAX_CERTIFICATE_FILE} bytes, not a certificate"
        )));
    }
    let certificate = Certificate::from_bytes(&data).map_err(|source| RecipientError::Key {
        path: path.to_string(),
        source,
    })?;
    check_recipient(&certificate).map_err(|e| RecipientError::Scheme(format!("{path}: {e}")))?;
    envelope::issuer_and_serial(&certificate.to_der())
        .map_err(|e| RecipientError::Scheme(format!("{path}: certificate {e}")))?;
    Ok(certificate)
}

impl KeyWrapper for Pkcs7Wrapper {
    fn id(&self) -> &str {
        SCHEME
    }

    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        values
            .iter()
            .map(|v| {
                let certificate = read_certificate(&v.value).map_err(|error| RecipientFailure {
                    spec: v.spec.clone(),
                    error,
                })?;
                Ok(Recipient {
                    spec: v.spec.clone(),
                    scheme: SCHEME.into(),
                    kind: RecipientKind::Pkcs7(Pkcs7Recipient { certificate }),
                })
            })
            .collect()
    }

    fn wrap(&self, recipients: &[&Recipient], options: &[u8]) -> Result<Vec<u8>, WrapError> {
        let certificates: Vec<Certificate> = recipients
            .iter()
            .filter_map(|r| match &r.kind {
                RecipientKind::Pkcs7(p) => Some(p.certificate.clone()),
                _ => None,
            })
            .collect();
        wrap(&certificates, options).map_err(|e| WrapError {
            scheme: SCHEME.into(),
            reason: e.to_string(),
        })
    }

    fn has_keys(&self, keys: &KeyRing) -> bool {
        keys.private_keys
            .iter()
            .any(|k| crypto::is_rsa(k.key.pkey()))
    }

    fn unwrap(&self, keys: &KeyRing, blob: &[u8]) -> Result<Unwrapped, UnwrapFailure> {
        unwrap(blob, &keys.private_keys, &keys.certificates)
    }

    fn describe(
        &self,
        blob: &[u8],
        context: &DescribeContext,
    ) -> Result<Vec<RecipientInfo>, String> {
        describe(blob, &context.certificates).map_err(|e| e.to_string())
    }

    fn remove(&self, blob: &[u8], matcher: &RecipientMatcher) -> Result<Removal, RemoveError> {
        let identities: Vec<Identity> = match &matcher.target {
            MatchTarget::Recipients(rs) => rs
                .iter()
                .filter_map(|r| match &r.kind {
                    RecipientKind::Pkcs7(p) => Some(Identity::of(&p.certificate)),
                    _ => None,
                })
                .collect(),
            // A bare id names a subject key identifier (hex).
            MatchTarget::KeyId(value) => match hex::decode(value) {
                Ok(ski) if !ski.is_empty() => vec![Identity {
                    issuer_serial: None,
                    subject_key_id: Some(ski),
                }],
                _ => Vec::new(),
            },
            MatchTarget::Provider(_) => Vec::new(),
        };
        if identities.is_empty() {
            return Ok(Removal::Unchanged);
        }
        remove(blob, &identities)
    }
}
