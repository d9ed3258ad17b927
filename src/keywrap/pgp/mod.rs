//! The OpenPGP key-wrap scheme (`org.opencontainers.image.enc.keys.pgp`), wire-compatible
//! with Go ocicrypt (golang.org/x/crypto/openpgp in skopeo 1.9, ProtonMail/go-crypto in
//! ocicrypt ≥ 1.3.2). Cargo feature `pgp` (sequoia-openpgp, LGPL-2.0-or-later).
//!
//! - **Recipients** (`pgp:VALUE`): an e-mail address or display name, matched exactly as Go
//!   matches it, and also a whole user id, a key id or a fingerprint, looked up in the GnuPG
//!   home (exported once per run with `gpg --batch --export`, since sequoia cannot read
//!   `pubring.kbx`); or a file holding OpenPGP certificates. See [`recipients`].
//! - **Wrapping** writes what Go writes: one v3 PKESK per recipient key, SEIPD v1 with MDC,
//!   one literal packet with the options JSON, AES-256 when every recipient prefers it, else
//!   AES-128. See [`message`].
//! - **Unwrapping** uses the exported secret keyrings given with `-k` ([`SecretKeyring`]), or,
//!   with no `-k` at all, asks gpg to decrypt ([`gpg`]), as ocicrypt's tools ask gpg. It reads
//!   the undersized partial-body chunks Go ≤ 1.3.1 writes ([`packet`]).
//! - **Describing** lists each PKESK's key id as Go prints it (`0x%x`), with the user ids gpg
//!   knows for it.
//!
//! This module must never return options whose MDC did not verify (nor accept a gpg
//! decryption gpg did not confirm with `GOODMDC`), never panic on any wrapped blob, and never
//! keep secret keys, passphrases, session keys or options outside zeroizing memory.

pub(crate) mod gpg;
pub mod keyring;
pub(crate) mod message;
pub(crate) mod packet;
pub mod recipients;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::Cert;
use openpgp::cert::CertParser;
use openpgp::packet::Key;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::parse::Parse;

use crate::keys::passphrase::passphrase_candidates;
use crate::keys::{FileKind, sniff};
use crate::keywrap::{
    Attempt, DescribeContext, Environment, KeyRing, KeyWrapper, MatchTarget, Recipient,
    RecipientError, RecipientFailure, RecipientInfo, RecipientKind, RecipientMatcher,
    RecipientSpec, Removal, RemoveError, UnwrapFailure, Unwrapped, WrapError,
};

use keyring::Opened;
pub use keyring::SecretKeyring;
use message::Message;
use recipients::Query;

/// The scheme id.
const SCHEME: &str = "pgp";
/// Largest certificate file read for a `pgp:FILE` recipient.
const MAX_CERT_FILE: u64 = 16 * 1024 * 1024;

/// The OpenPGP scheme.
pub struct PgpWrapper {
    gpg: gpg::Gpg,
    /// Whether gpg runs (asked once).
    gpg_available: OnceLock<bool>,
    /// User ids by key id from the GnuPG home (listed once, for `describe`).
    user_ids: OnceLock<HashMap<String, Vec<String>>>,
    /// Passphrase candidates for keys gpg holds (read once: a prompt or `fd=` cannot repeat).
    gpg_passphrases: Mutex<Option<keyring::Candidates>>,
}

impl std::fmt::Debug for PgpWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the cached passphrases.
        f.debug_struct("PgpWrapper")
            .field("gpg", &self.gpg)
            .field("gpg_available", &self.gpg_available.get())
            .finish_non_exhaustive()
    }
}

impl PgpWrapper {
    /// The scheme for `env` (its GnuPG home).
    pub fn new(env: &Environment) -> PgpWrapper {
        PgpWrapper {
            gpg: gpg::Gpg::new(env.gpg_homedir.clone()),
            gpg_available: OnceLock::new(),
            user_ids: OnceLock::new(),
            gpg_passphrases: Mutex::new(None),
        }
    }

    fn gpg_runs(&self) -> bool {
        *self.gpg_available.get_or_init(|| self.gpg.available())
    }
}

/// An OpenPGP recipient: the encryption key of one certificate.
#[derive(Clone, Debug)]
pub struct PgpRecipient {
    certificate: openpgp::Fingerprint,
    /// The ids of every key of the certificate (the messages to remove it from may be
    /// encrypted to an older subkey).
    key_ids: Vec<u64>,
    // Boxed: a key is large, and recipients of every scheme share one enum.
    key: Box<Key<PublicParts, UnspecifiedRole>>,
    user_id: Option<String>,
    prefers_aes256: bool,
}

impl PgpRecipient {
    /// The certificate's fingerprint (upper-case hex).
    pub fn fingerprint(&self) -> String {
        self.certificate.to_hex()
    }

    /// The id of the key the options are encrypted to, as Go prints key ids (`0x…`).
    pub fn key_id(&self) -> String {
        message::go_key_id(
            self.key
                .keyid()
                .as_bytes()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or_default(),
        )
    }

    /// The certificate's first user id, if it has one.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// Whether the certificate lists AES-256 among its preferred ciphers.
    pub fn prefers_aes256(&self) -> bool {
        self.prefers_aes256
    }
}

/// A recipient for a matched certificate, or why it cannot be one.
fn recipient_for(m: &recipients::Match<'_>) -> Result<PgpRecipient, String> {
    let (key, prefers_aes256) = recipients::encryption_key(m)
        .map_err(|why| format!("key {} {why}", recipients::label(m.cert)))?;
    Ok(PgpRecipient {
        certificate: m.cert.fingerprint(),
        key_ids: m
            .cert
            .keys()
            .filter_map(|k| k.key().keyid().as_bytes().try_into().ok())
            .map(u64::from_be_bytes)
            .collect(),
        key: Box::new(key),
        user_id: recipients::first_user_id(m.cert),
        prefers_aes256,
    })
}

/// Read the certificates of a recipient that names a file (`None`: it names no file, so it is
/// a name, key id or fingerprint).
fn certificate_file(path: &str) -> Option<Result<Vec<Cert>, RecipientError>> {
    let p = Path::new(path);
    if !p.is_file() {
        return None;
    }
    let mut data = Vec::new();
    if let Err(source) =
        std::fs::File::open(p).and_then(|f| f.take(MAX_CERT_FILE).read_to_end(&mut data))
    {
        return Some(Err(RecipientError::Io {
            path: path.to_string(),
            source,
        }));
    }
    match sniff(&data) {
        FileKind::PgpPublicKey | FileKind::PgpSecretKey => {}
        other => {
            return Some(Err(RecipientError::Scheme(format!(
                "{path} is {other}, not an OpenPGP certificate (export one with `gpg --export --armor EMAIL > FILE`)"
            ))));
        }
    }
    let certs = CertParser::from_bytes(&data[..]).and_then(|parser| {
        parser
            .map(|c| c.map(Cert::strip_secret_key_material))
            .collect()
    });
    Some(certs.map_err(|e| {
        RecipientError::Scheme(format!("{path}: not a valid OpenPGP certificate: {e}"))
    }))
}

impl KeyWrapper for PgpWrapper {
    fn id(&self) -> &str {
        SCHEME
    }

    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        let mut out = Vec::new();
        // The exported keyring, read at most once for all values that need it.
        let mut keyring: Option<Vec<Cert>> = None;
        for v in values {
            let fail = |error| RecipientFailure {
                spec: v.spec.clone(),
                error,
            };
            let scheme = |s: String| fail(RecipientError::Scheme(s));
            if v.value.is_empty() {
                return Err(scheme(
                    "an OpenPGP recipient is pgp:EMAIL, pgp:NAME, pgp:KEYID, pgp:FINGERPRINT or pgp:CERTIFICATE-FILE".into(),
                ));
            }
            if let Some(certs) = certificate_file(&v.value) {
                let certs = certs.map_err(fail)?;
                for cert in &certs {
                    let m = recipients::Match {
                        cert,
                        named_key: None,
                    };
                    let r =
                        recipient_for(&m).map_err(|why| scheme(format!("{}: {why}", v.value)))?;
                    out.push(pgp_recipient(v, r));
                }
                continue;
            }
            if keyring.is_none() {
                keyring = Some(self.export_keyring().map_err(scheme)?);
            }
            let certs = keyring.as_deref().unwrap_or_default();
            let query = Query::parse(&v.value);
            let matches = recipients::find(certs, &query);
            if matches.is_empty() {
                return Err(scheme(format!(
                    "no OpenPGP key in {} matches `{}` (an exact e-mail address or name of a user id, a key id or a fingerprint)",
                    self.gpg.describe_home(),
                    v.value
                )));
            }
            let resolved: Vec<Result<PgpRecipient, String>> =
                matches.iter().map(recipient_for).collect();
            // A name several certificates carry (an old expired key and its successor, say)
            // means the usable ones; a key id or fingerprint means exactly that key.
            let usable = resolved.iter().any(Result::is_ok) && matches!(query, Query::Name(_));
            for r in resolved {
                match r {
                    Ok(r) => out.push(pgp_recipient(v, r)),
                    Err(_) if usable => {}
                    Err(why) => return Err(scheme(why)),
                }
            }
        }
        Ok(out)
    }

    fn wrap(&self, recipients: &[&Recipient], options: &[u8]) -> Result<Vec<u8>, WrapError> {
        let fail = |reason| WrapError {
            scheme: SCHEME.into(),
            reason,
        };
        let mut keys: Vec<&Key<PublicParts, UnspecifiedRole>> = Vec::new();
        let mut all_aes256 = true;
        for r in recipients {
            let RecipientKind::Pgp(p) = &r.kind else {
                continue;
            };
            // One PKESK per key, however many recipient strings named it.
            if keys.iter().any(|k| k.fingerprint() == p.key.fingerprint()) {
                continue;
            }
            all_aes256 &= p.prefers_aes256;
            keys.push(&p.key);
        }
        message::encrypt(&keys, message::choose_cipher(all_aes256), options).map_err(fail)
    }

    fn has_keys(&self, keys: &KeyRing) -> bool {
        !keys.pgp_keyrings.is_empty() || (keys.use_gpg && self.gpg_runs())
    }

    fn unwrap(&self, keys: &KeyRing, blob: &[u8]) -> Result<Unwrapped, UnwrapFailure> {
        let message = Message::parse(blob).map_err(UnwrapFailure::Malformed)?;
        if let Err(e) = message.payload() {
            return Err(UnwrapFailure::Malformed(e));
        }
        let mut attempts = Vec::new();
        for ring in &keys.pgp_keyrings {
            match ring.open(&message) {
                Opened::Options(options, key_id) => {
                    return Ok(Unwrapped {
                        options,
                        scheme: SCHEME.into(),
                        key: format!("{} ({key_id})", ring.source()),
                    });
                }
                Opened::Failed(reason) => attempts.push(Attempt {
                    key: ring.source().to_string(),
                    reason,
                }),
            }
        }
        if keys.use_gpg && self.gpg_runs() {
            match self.unwrap_with_gpg(keys, blob) {
                Ok(options) => {
                    return Ok(Unwrapped {
                        options,
                        scheme: SCHEME.into(),
                        key: self.gpg.describe_home(),
                    });
                }
                Err(reason) => attempts.push(Attempt {
                    key: self.gpg.describe_home(),
                    reason,
                }),
            }
        }
        Err(UnwrapFailure::NotOpened(attempts))
    }

    fn remove(&self, blob: &[u8], matcher: &RecipientMatcher) -> Result<Removal, RemoveError> {
        let ids: Vec<u64> = match &matcher.target {
            MatchTarget::Recipients(rs) => rs
                .iter()
                .filter_map(|r| match &r.kind {
                    RecipientKind::Pgp(p) => Some(p.key_ids.iter().copied()),
                    _ => None,
                })
                .flatten()
                .collect(),
            MatchTarget::KeyId(value) => match Query::parse(value) {
                Query::KeyId(id) => vec![id],
                // A v4 key id is the low 64 bits of its fingerprint.
                Query::Fingerprint(fpr) if fpr.len() == 20 => {
                    vec![u64::from_be_bytes(fpr[12..].try_into().expect("8 bytes"))]
                }
                _ => Vec::new(),
            },
            MatchTarget::Provider(_) => Vec::new(),
        };
        if ids.is_empty() {
            return Ok(Removal::Unchanged);
        }
        let pkesks = message::pkesk_spans(blob).map_err(RemoveError::Malformed)?;
        if let Some(i) = pkesks.iter().position(|(id, _)| id.is_none()) {
            return Err(RemoveError::Unidentifiable(format!(
                "recipient {} of the OpenPGP message names no key (a wildcard or non-v3 PKESK), so it cannot be told whose it is",
                i + 1
            )));
        }
        let doomed: Vec<&std::ops::Range<usize>> = pkesks
            .iter()
            .filter(|(id, _)| id.is_some_and(|id| ids.contains(&id)))
            .map(|(_, span)| span)
            .collect();
        let removed = doomed.len();
        if removed == 0 {
            return Ok(Removal::Unchanged);
        }
        if removed == pkesks.len() {
            return Ok(Removal::Emptied { removed });
        }
        let mut out = Vec::with_capacity(blob.len());
        let mut at = 0;
        for span in doomed {
            out.extend_from_slice(&blob[at..span.start]);
            at = span.end;
        }
        out.extend_from_slice(&blob[at..]);
        Ok(Removal::Edited { blob: out, removed })
    }

    fn describe(
        &self,
        blob: &[u8],
        context: &DescribeContext,
    ) -> Result<Vec<RecipientInfo>, String> {
        let message = Message::parse(blob)?;
        let user_ids = if context.use_gpg && !message.pkesks.is_empty() {
            Some(self.user_ids(context))
        } else {
            None
        };
        Ok(message
            .pkesks
            .iter()
            .map(|p| {
                if p.version != 3 {
                    return RecipientInfo {
                        scheme: SCHEME.into(),
                        algorithm: Some(format!("PKESK version {}", p.version)),
                        ..Default::default()
                    };
                }
                let found = user_ids
                    .and_then(|m| m.get(&format!("{:016X}", p.key_id)))
                    .cloned()
                    .unwrap_or_default();
                RecipientInfo {
                    scheme: SCHEME.into(),
                    algorithm: Some(p.algorithm_name()),
                    key_id: Some(message::go_key_id(p.key_id)),
                    curve: p.curve.map(str::to_string),
                    user_ids: if p.is_wildcard() { Vec::new() } else { found },
                    ..Default::default()
                }
            })
            .collect())
    }
}

fn pgp_recipient(spec: &RecipientSpec, r: PgpRecipient) -> Recipient {
    Recipient {
        spec: spec.spec.clone(),
        scheme: SCHEME.into(),
        kind: RecipientKind::Pgp(r),
    }
}

impl PgpWrapper {
    /// The GnuPG home's public certificates.
    fn export_keyring(&self) -> Result<Vec<Cert>, String> {
        let data = self.gpg.export_public_keys().map_err(|e| {
            format!(
                "{e} (install GnuPG with scripts/deps.sh, or name a certificate file: pgp:FILE)"
            )
        })?;
        if data.is_empty() {
            return Ok(Vec::new());
        }
        // Certificates sequoia cannot read (unusual algorithms, broken self-signatures) are
        // skipped: they must not stop encryption for everybody else.
        let parser = CertParser::from_bytes(&data[..])
            .map_err(|e| format!("cannot read the keyring gpg exported: {e}"))?;
        Ok(parser.filter_map(Result::ok).collect())
    }

    /// User ids by key id from the GnuPG home, listed once per run (empty if gpg fails).
    fn user_ids(&self, context: &DescribeContext) -> &HashMap<String, Vec<String>> {
        self.user_ids.get_or_init(|| {
            let gpg = match &context.gpg_homedir {
                Some(d) => gpg::Gpg::new(Some(d.clone())),
                None => self.gpg.clone(),
            };
            if !self.gpg_runs() {
                return HashMap::new();
            }
            gpg.user_ids_by_key_id().unwrap_or_default()
        })
    }

    /// Ask gpg to decrypt: first with what it has (unprotected keys, its agent's cache), then,
    /// if it needs a passphrase and one was given, with each passphrase candidate.
    fn unwrap_with_gpg(&self, keys: &KeyRing, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let first = match self.gpg.decrypt(blob, None) {
            Ok(options) => return bounded(options),
            Err(e) => e,
        };
        let (gpg::GpgFailure::NeedsPassphrase, Some(source)) = (&first, &keys.gpg_passphrase)
        else {
            return Err(first.to_string());
        };
        let mut cached = self
            .gpg_passphrases
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let candidates = cached.get_or_insert_with(|| {
            passphrase_candidates(Path::new("the GnuPG secret key"), source)
                .map_err(|e| e.to_string())
        });
        let candidates = candidates.as_ref().map_err(Clone::clone)?;
        // gpg reads one line from the descriptor: a trailing newline is never part of it.
        let mut tried: Vec<&[u8]> = Vec::new();
        let mut last = first;
        for c in candidates {
            let line = c
                .strip_suffix(b"\r\n")
                .or_else(|| c.strip_suffix(b"\n"))
                .unwrap_or(c);
            if tried.contains(&line) {
                continue;
            }
            tried.push(line);
            match self.gpg.decrypt(blob, Some(line)) {
                Ok(options) => return bounded(options),
                Err(e) => last = e,
            }
        }
        Err(last.to_string())
    }
}

/// Refuse options larger than ocicrypt could have written.
fn bounded(options: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, String> {
    if options.len() > message::MAX_OPTIONS {
        return Err(format!(
            "gpg returned {} bytes of options; at most {} are accepted",
            options.len(),
            message::MAX_OPTIONS
        ));
    }
    Ok(options)
}

#[cfg(test)]
mod tests;
