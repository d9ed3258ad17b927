//! Exported OpenPGP secret keyrings (`gpg --export-secret-keys`, binary or armored) given with
//! `-k`, and opening messages with them.
//!
//! A keyring is parsed when it is loaded; the secret key material of a passphrase-protected
//! key is decrypted only when a message is addressed to that key, and then kept (in sequoia's
//! zeroizing memory) for the rest of the run, so that a passphrase is asked for once, however
//! many layers need it. The passphrase source is read at most once per keyring (a `fd=` can
//! only be read once). Failures are kept too, so a wrong passphrase is reported, not asked
//! again for every layer.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::Cert;
use openpgp::Fingerprint;
use openpgp::cert::CertParser;
use openpgp::crypto::Password;
use openpgp::crypto::S2K;
use openpgp::packet::Key;
use openpgp::packet::key::{SecretKeyMaterial, SecretParts, UnspecifiedRole};
use openpgp::parse::Parse;
use openpgp::types::PublicKeyAlgorithm;

use super::message::{Message, decrypt_payload, go_key_id};
use crate::keys::passphrase::{PassphraseSource, passphrase_candidates};
use crate::keys::{FileKind, KeyError};

/// Most certificates read from one keyring file.
const MAX_CERTS: usize = 10_000;

type SecretKey = Key<SecretParts, UnspecifiedRole>;

/// Passphrase candidates read from a source, or why they could not be read.
pub(crate) type Candidates = Result<Vec<Zeroizing<Vec<u8>>>, String>;

/// An exported OpenPGP secret keyring (binary or armored), with its passphrase source.
pub struct SecretKeyring {
    source: String,
    certs: Vec<Cert>,
    passphrase: Option<PassphraseSource>,
    cache: Mutex<Cache>,
}

/// What a run learned about the keyring's protected keys.
#[derive(Default)]
struct Cache {
    /// The passphrase candidates, read once (or why they could not be read).
    candidates: Option<Candidates>,
    /// Unlocked keys, or why a key could not be unlocked.
    keys: HashMap<Fingerprint, Result<SecretKey, String>>,
}

impl fmt::Debug for SecretKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeyring")
            .field("source", &self.source)
            .field("secret_keys", &self.secret_key_ids())
            .field("passphrase", &self.passphrase)
            .finish_non_exhaustive()
    }
}

/// The outcome of trying one keyring on a message.
pub enum Opened {
    /// The options, and the key id that opened them.
    Options(Zeroizing<Vec<u8>>, String),
    /// Why the keyring did not open the message.
    Failed(String),
}

impl SecretKeyring {
    /// Parse a secret keyring; the passphrase is used when a protected key is needed.
    pub fn parse(
        data: &[u8],
        source: &str,
        passphrase: Option<PassphraseSource>,
    ) -> Result<SecretKeyring, KeyError> {
        let parser = CertParser::from_bytes(data)
            .map_err(|e| KeyError::Malformed(format!("not an OpenPGP keyring: {e}")))?;
        let mut certs = Vec::new();
        for cert in parser.take(MAX_CERTS + 1) {
            let cert = cert.map_err(|e| {
                KeyError::Malformed(format!(
                    "certificate {} of the OpenPGP keyring cannot be read: {e}",
                    certs.len() + 1
                ))
            })?;
            certs.push(cert);
        }
        if certs.len() > MAX_CERTS {
            return Err(KeyError::Malformed(format!(
                "the OpenPGP keyring holds more than {MAX_CERTS} certificates"
            )));
        }
        if certs.is_empty() {
            return Err(KeyError::Malformed(
                "the OpenPGP keyring holds no certificate".into(),
            ));
        }
        if !certs.iter().any(Cert::is_tsk) {
            return Err(KeyError::WrongKind {
                found: FileKind::PgpPublicKey,
                expected: "an OpenPGP secret keyring (gpg --export-secret-keys)",
            });
        }
        Ok(SecretKeyring {
            source: source.to_string(),
            certs,
            passphrase,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// Where the keyring came from (its file).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The ids of the keys it holds secrets for, as Go prints key ids (`0x…`).
    pub fn secret_key_ids(&self) -> Vec<String> {
        self.secret_keys()
            .map(|k| go_key_id(key_id_u64(&k)))
            .collect()
    }

    fn secret_keys(&self) -> impl Iterator<Item = SecretKey> + '_ {
        self.certs.iter().flat_map(|c| {
            c.keys()
                .secret()
                .map(|k| k.key().clone().role_into_unspecified())
        })
    }

    /// Try to open `message`: find secret keys for its PKESKs (every key for a wildcard),
    /// unlock them, decrypt the session key and the data. Never returns options whose MDC
    /// did not verify.
    pub fn open(&self, message: &Message) -> Opened {
        let payload = match message.payload() {
            Ok(p) => p,
            Err(e) => return Opened::Failed(e),
        };
        let mut problems: Vec<String> = Vec::new();
        let mut found_any = false;
        for pkesk in &message.pkesks {
            let Some(packet) = pkesk.packet() else {
                continue;
            };
            let keys: Vec<SecretKey> = self
                .secret_keys()
                .filter(|k| {
                    if pkesk.is_wildcard() {
                        can_decrypt(k.pk_algo())
                    } else {
                        key_id_u64(k) == pkesk.key_id
                    }
                })
                .collect();
            for key in keys {
                found_any = true;
                let id = go_key_id(key_id_u64(&key));
                if !key.pk_algo().is_supported() {
                    problems.push(format!(
                        "secret key {id} is an {} key, which this build cannot decrypt with",
                        key.pk_algo()
                    ));
                    continue;
                }
                let unlocked = match self.unlock(&key) {
                    Ok(k) => k,
                    Err(reason) => {
                        problems.push(format!("secret key {id}: {reason}"));
                        continue;
                    }
                };
                let mut pair = match unlocked.into_keypair() {
                    Ok(p) => p,
                    Err(e) => {
                        problems.push(format!("secret key {id}: cannot be used: {e}"));
                        continue;
                    }
                };
                let Some((algo, session_key)) = packet.decrypt(&mut pair, None) else {
                    if !pkesk.is_wildcard() {
                        problems.push(format!(
                            "secret key {id} does not decrypt the session key addressed to it"
                        ));
                    }
                    continue;
                };
                let Some(algo) = algo else {
                    continue;
                };
                match decrypt_payload(payload, algo, &session_key) {
                    Ok(options) => return Opened::Options(options, id),
                    Err(super::message::PayloadError::WrongKey) if pkesk.is_wildcard() => {}
                    // The session key was right: what failed is the data, for every key.
                    Err(e) => return Opened::Failed(format!("with secret key {id}: {e}")),
                }
            }
        }
        if !found_any {
            let wanted: Vec<String> = message.pkesks.iter().map(|p| go_key_id(p.key_id)).collect();
            let held = self.secret_key_ids();
            return Opened::Failed(format!(
                "no secret key for {} (it holds {})",
                if wanted.is_empty() {
                    "the message (it has no recipients)".into()
                } else {
                    wanted.join(", ")
                },
                held.join(", ")
            ));
        }
        if problems.is_empty() {
            problems.push("none of its secret keys decrypts the session key".into());
        }
        Opened::Failed(problems.join("; "))
    }

    /// The key with its secret decrypted (asking the passphrase source once per run).
    fn unlock(&self, key: &SecretKey) -> Result<SecretKey, String> {
        let SecretKeyMaterial::Encrypted(encrypted) = key.secret() else {
            return Ok(key.clone());
        };
        if let S2K::Private { tag: 101, .. } = encrypted.s2k() {
            return Err(
                "the keyring holds only a stub of it (gpg's offline or smartcard key), not the secret key".into(),
            );
        }
        if !encrypted.s2k().is_supported() {
            return Err(format!(
                "its protection ({:?}) is not supported",
                encrypted.s2k()
            ));
        }
        // Poisoning would only mean another thread panicked; the cache is still consistent.
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = cache.keys.get(&key.fingerprint()) {
            return known.clone();
        }
        let result = self.unlock_uncached(key, &mut cache);
        cache.keys.insert(key.fingerprint(), result.clone());
        result
    }

    fn unlock_uncached(&self, key: &SecretKey, cache: &mut Cache) -> Result<SecretKey, String> {
        let Some(source) = &self.passphrase else {
            return Err(format!(
                "it is passphrase-protected and no passphrase was given (use -k {}:file=PATH, :env=VAR, :fd=N or --passphrase-file)",
                self.source
            ));
        };
        let candidates = cache.candidates.get_or_insert_with(|| {
            passphrase_candidates(Path::new(&self.source), source).map_err(|e| e.to_string())
        });
        let candidates = candidates.as_ref().map_err(Clone::clone)?;
        for candidate in candidates {
            let password = Password::from(&candidate[..]);
            if let Ok(unlocked) = key.clone().decrypt_secret(&password) {
                return Ok(unlocked);
            }
        }
        Err("wrong passphrase".into())
    }
}

/// Whether keys of this algorithm can decrypt a session key.
fn can_decrypt(algo: PublicKeyAlgorithm) -> bool {
    #[allow(deprecated)]
    let yes = matches!(
        algo,
        PublicKeyAlgorithm::RSAEncryptSign
            | PublicKeyAlgorithm::RSAEncrypt
            | PublicKeyAlgorithm::ElGamalEncrypt
            | PublicKeyAlgorithm::ElGamalEncryptSign
            | PublicKeyAlgorithm::ECDH
            | PublicKeyAlgorithm::X25519
            | PublicKeyAlgorithm::X448
    );
    yes
}

/// A key's id as a number (Go's `KeyId`).
fn key_id_u64<P: openpgp::packet::key::KeyParts>(key: &Key<P, UnspecifiedRole>) -> u64 {
    key.keyid()
        .as_bytes()
        .try_into()
        .map(u64::from_be_bytes)
        .unwrap_or_default()
}
