//! PKCS#11 (`org.opencontainers.image.enc.keys.pkcs11`): layer keys wrapped with RSA-OAEP by
//! a key on a hardware token (HSM, smart card, SoftHSM), as Go ocicrypt's "experimental"
//! PKCS#11 scheme does it.
//!
//! * **Recipients** (`-r pkcs11:FILE`): an ocicrypt PKCS#11 key file (YAML: `pkcs11.uri`, an
//!   RFC 7512 URI, and optionally `module.env`) naming an RSA public key object on a token,
//!   which encrypts; or a plain RSA public key file (PEM/DER), encrypted in software.
//! * **Keys** (`-k FILE`): a PKCS#11 key file naming the RSA private key object, which
//!   decrypts on the token; a PIN is required.
//! * **The blob**: `{"version":0,"recipients":[{"version":0,"blob":"…","hash":"sha256"}]}`,
//!   each entry RSA-OAEP (hash from `OCICRYPT_OAEP_HASHALG`: SHA-256 by default, or SHA-1,
//!   which SoftHSM 2.6 needs) of the whole private options JSON ([`envelope`]).
//! * **Modules** are loaded only when the module policy allows them ([`config`]:
//!   `OCICRYPT_CONFIG`, `~/.config/ocicrypt.conf`, `/etc/ocicrypt.conf`), once per module
//!   file and process (never finalised), and used one operation at a time.
//! * **`module.env`**: Go sets these variables process-wide around each PKCS#11 call. This
//!   crate cannot (changing the environment of a multi-threaded process is unsound, and the
//!   crate forbids `unsafe`), so operations refuse to run unless the process environment
//!   already holds them, naming the variables. [`module_environment`] tells a caller (the
//!   CLI) which variables to set before starting over with them.
//!
//! This module must never load a PKCS#11 module the policy does not allow, never show a PIN
//! (URIs are printed redacted, PINs live in zeroizing buffers), never retry a PIN a token has
//! refused, and never panic on a blob or key file, both of which may come from an attacker.
//!
//! Go ocicrypt with PKCS#11 support is not available on the test machine (Debian's skopeo 1.9.3
//! predates it), so the blob is checked byte for byte against the format specification
//! instead of against a Go peer.

pub mod config;
pub mod envelope;
mod token;
pub mod uri;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use zeroize::Zeroizing;

use crate::keys::{FileKind, KeyError, KeyKind, PublicKey, sniff};
use crate::keywrap::{
    Attempt, DescribeContext, Environment, KeyRing, KeyWrapper, Recipient, RecipientError,
    RecipientFailure, RecipientInfo, RecipientKind, RecipientSpec, UnwrapFailure, Unwrapped,
    WrapError,
};

pub use config::{KeyFile, Policy, PolicyError, PolicySearch};
pub use envelope::OaepHash;
pub use uri::Pkcs11Uri;

use envelope::{Entry, Pkcs11Blob, WrittenEntry};
use token::{KeyClass, TokenError};

/// The scheme id and annotation suffix.
const SCHEME: &str = "pkcs11";

/// Largest recipient public key file read (an RSA-16384 PEM is about 3 KiB).
const MAX_PUBLIC_KEY_FILE: u64 = 1024 * 1024;

/// The length of the shortest private options JSON: a sha256 layer digest (`symkey` and
/// `nonce` have fixed lengths; sha384/sha512 digests only make it longer).
const SMALLEST_OPTIONS: usize = 193;

/// The PKCS#11 scheme: the module policy and OAEP hash of a run, and the modules it loaded.
pub struct Pkcs11Wrapper {
    /// Where the module policy is looked for.
    search: PolicySearch,
    /// The policy, read on first use (a run that uses no PKCS#11 never needs one).
    policy: OnceLock<Result<Policy, PolicyError>>,
    /// The wrapping hash (`OCICRYPT_OAEP_HASHALG`), or why it is unusable.
    oaep_hash: Result<OaepHash, String>,
    /// Key files whose PIN a token refused in this run: not tried again.
    refused_pins: Mutex<HashSet<String>>,
}

impl fmt::Debug for Pkcs11Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Wrapper")
            .field("search", &self.search)
            .field("oaep_hash", &self.oaep_hash)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Wrapper {
    /// The scheme for `env`: the module policy (`OCICRYPT_CONFIG`, else the configuration
    /// files) and the OAEP hash (`OCICRYPT_OAEP_HASHALG`). Nothing is read yet.
    pub fn new(env: &Environment) -> Pkcs11Wrapper {
        Pkcs11Wrapper::with_search(
            PolicySearch::new(env.pkcs11_config.clone()),
            env.oaep_hash.as_deref(),
        )
    }

    /// The scheme with an explicit policy search and `OCICRYPT_OAEP_HASHALG` value, for
    /// embedders that do not want the process environment consulted for the policy.
    pub fn with_search(search: PolicySearch, oaep_hash: Option<&str>) -> Pkcs11Wrapper {
        Pkcs11Wrapper {
            search,
            policy: OnceLock::new(),
            oaep_hash: OaepHash::from_env(oaep_hash),
            refused_pins: Mutex::new(HashSet::new()),
        }
    }

    /// The module policy, read once.
    fn policy(&self) -> Result<&Policy, String> {
        self.policy
            .get_or_init(|| self.search.load())
            .as_ref()
            .map_err(|e| e.to_string())
    }

    /// Run `op` on the key object of `class` that `key` names: check the environment and the
    /// PIN, find and load the module, open a session, log in, find the object.
    fn with_token_key<T>(
        &self,
        key: &Pkcs11Key,
        class: KeyClass,
        op: impl FnOnce(
            &cryptoki::session::Session,
            cryptoki::object::ObjectHandle,
            &str,
        ) -> Result<T, TokenError>,
    ) -> Result<T, String> {
        check_environment(key.source(), key.required_env())?;
        let uri = key.uri();
        let pin = match class {
            KeyClass::Private => {
                if !uri.has_pin() {
                    return Err("the URI gives no PIN; decrypting with a private key on a token needs pin-value or pin-source in pkcs11.uri".into());
                }
                uri.pin().map_err(|e| e.to_string())?
            }
            // As in Go: a PIN helps to find public keys on tokens that hide them, but a PIN
            // that cannot be read is no reason to fail.
            KeyClass::Public => uri.pin().ok().flatten(),
        };
        if pin.is_some()
            && self
                .refused_pins
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(key.source())
        {
            return Err(format!(
                "{}: the token refused this key file's PIN earlier in this run; it is not tried again, so that the token does not lock it",
                uri.token_description()
            ));
        }
        let policy = self.policy()?;
        let module_path = config::find_module(uri, policy).map_err(|e| e.to_string())?;
        let module = token::modules()
            .get(&module_path)
            .map_err(|e| e.to_string())?;
        module
            .with_key(uri, pin.as_deref().map(|p| &p[..]), class, op)
            .map_err(|e| {
                if e.is_pin_refusal() {
                    self.refused_pins
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(key.source().to_string());
                }
                e.to_string()
            })
    }

    /// Resolve one `pkcs11:FILE` recipient.
    fn recipient(&self, spec: &RecipientSpec) -> Result<Recipient, RecipientError> {
        let path = &spec.value;
        let data = read_limited(Path::new(path), MAX_PUBLIC_KEY_FILE).map_err(|source| {
            RecipientError::Io {
                path: path.clone(),
                source,
            }
        })?;
        let kind = if let Some(key) =
            parse_if_key_file(&data, path).map_err(|source| RecipientError::Key {
                path: path.clone(),
                source,
            })? {
            // Fail now, before any layer is read, if the token, the object or the module is
            // not there; the modulus size is kept for the size check at wrap time.
            let bits = self
                .with_token_key(&key, KeyClass::Public, |session, object, token| {
                    token::rsa_bits(session, object, token, &key.uri().object_description())
                })
                .map_err(RecipientError::Scheme)?;
            RecipientKey::Token { key, bits }
        } else {
            let key = PublicKey::from_bytes(&data).map_err(|source| RecipientError::Key {
                path: path.clone(),
                source,
            })?;
            match key.kind() {
                KeyKind::Rsa { .. } => RecipientKey::Software { key },
                other => {
                    return Err(RecipientError::Scheme(format!(
                        "Unsupported key object type for pkcs11 public key: {path} is an {other} key; pkcs11: recipients are RSA keys (on a token, named by a PKCS#11 key file, or in a PEM/DER file)"
                    )));
                }
            }
        };
        let hash = self.oaep_hash.clone().map_err(RecipientError::Scheme)?;
        let recipient = Pkcs11Recipient {
            source: path.clone(),
            key: kind,
        };
        // Options are never shorter than SMALLEST_OPTIONS: a key too small for those can be
        // refused now, before any layer is read (wrap checks the real length again).
        envelope::check_capacity(SMALLEST_OPTIONS, recipient.bits(), hash, &recipient.what())
            .map_err(RecipientError::Scheme)?;
        Ok(Recipient {
            spec: spec.spec.clone(),
            scheme: SCHEME.into(),
            kind: RecipientKind::Pkcs11(recipient),
        })
    }
}

/// Read at most `limit` bytes of a file; a larger file is an error.
fn read_limited(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>, std::io::Error> {
    use std::io::Read;
    let mut data = Zeroizing::new(Vec::new());
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is larger than {limit} bytes"),
        ));
    }
    Ok(data)
}

/// A PKCS#11 key file if `data` is one: what [`sniff`] recognises, or (as Go tries YAML last)
/// text nothing else recognised that parses as one. `Ok(None)`: some other kind of file.
fn parse_if_key_file(data: &[u8], source: &str) -> Result<Option<Pkcs11Key>, KeyError> {
    match sniff(data) {
        FileKind::Pkcs11Yaml => Pkcs11Key::parse(data, source).map(Some),
        FileKind::Unknown => Ok(Pkcs11Key::parse(data, source).ok()),
        _ => Ok(None),
    }
}

/// Refuse to run when the process environment lacks what a key file's `module.env` asks for.
fn check_environment(source: &str, required: &[(String, String)]) -> Result<(), String> {
    let unmet = unmet_environment(required);
    if unmet.is_empty() {
        return Ok(());
    }
    let describe = |(name, want): &(String, String)| match std::env::var_os(name) {
        None => format!("{name}={want} (it is not set)"),
        Some(v) => format!("{name}={want} (it is {})", v.to_string_lossy()),
    };
    let exports: Vec<String> = unmet
        .iter()
        .map(|(n, v)| format!("{n}={}", shell_quote(v)))
        .collect();
    Err(format!(
        "{source} asks (module.env) for {} in the environment of the PKCS#11 module; layercrypt does not change its own environment, so set {} before running it: export {}",
        unmet.iter().map(describe).collect::<Vec<_>>().join(", "),
        if unmet.len() == 1 { "it" } else { "them" },
        exports.join(" ")
    ))
}

/// Quote a value for a shell command line when it needs it.
fn shell_quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@%".contains(&b))
    {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The `(name, value)` pairs of `required` that the process environment does not hold
/// exactly (unset, or set to another value). Empty means PKCS#11 operations can run.
pub fn unmet_environment(required: &[(String, String)]) -> Vec<(String, String)> {
    required
        .iter()
        .filter(|(name, value)| {
            std::env::var_os(name).as_deref() != Some(std::ffi::OsStr::new(value))
        })
        .cloned()
        .collect()
}

/// Why [`module_environment`] cannot give one environment for a set of files.
#[derive(Debug, thiserror::Error)]
pub enum ModuleEnvironmentError {
    /// A file looks like a PKCS#11 key file but is not a valid one.
    #[error("{}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: KeyError,
    },
    /// Two key files ask for different values of one variable; one process cannot serve both.
    #[error("{} and {} ask for different values of {name} (module.env: {first_value} and {second_value}); use them in separate runs", first.display(), second.display())]
    Conflict {
        /// The variable.
        name: String,
        /// The first file asking for it.
        first: PathBuf,
        /// Its value there.
        first_value: String,
        /// The file asking for another value.
        second: PathBuf,
        /// That value.
        second_value: String,
    },
}

/// The environment variables that the PKCS#11 key files among `files` ask for (`module.env`),
/// merged and sorted by name, for a caller that runs PKCS#11 operations in a process started
/// with them (the CLI passes its `-k` files and `pkcs11:` recipient files and, when
/// [`unmet_environment`] of the result is not empty, starts itself again with them set).
///
/// Files that cannot be read, and files that are not PKCS#11 key files, are ignored: the
/// normal key and recipient loading reports them. A variable asked for with two different
/// values is an error.
pub fn module_environment(
    files: &[&Path],
) -> Result<Vec<(String, String)>, ModuleEnvironmentError> {
    let mut merged: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
    for path in files {
        let Ok(data) = read_limited(path, config::MAX_YAML_FILE) else {
            continue;
        };
        let source = path.display().to_string();
        let key = match parse_if_key_file(&data, &source) {
            Ok(Some(key)) => key,
            Ok(None) => continue,
            Err(source) => {
                return Err(ModuleEnvironmentError::KeyFile {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        for (name, value) in key.required_env() {
            match merged.get(name) {
                Some((v, first)) if v != value => {
                    return Err(ModuleEnvironmentError::Conflict {
                        name: name.clone(),
                        first: first.clone(),
                        first_value: v.clone(),
                        second: path.to_path_buf(),
                        second_value: value.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    merged.insert(name.clone(), (value.clone(), path.to_path_buf()));
                }
            }
        }
    }
    Ok(merged.into_iter().map(|(n, (v, _))| (n, v)).collect())
}

/// A PKCS#11 recipient: a public key on a token, or a plain RSA public key (software OAEP).
#[derive(Clone, Debug)]
pub struct Pkcs11Recipient {
    /// The file it came from.
    source: String,
    key: RecipientKey,
}

#[derive(Clone, Debug)]
enum RecipientKey {
    /// An RSA public key object on a token, with its modulus size.
    Token { key: Pkcs11Key, bits: u32 },
    /// A plain RSA public key.
    Software { key: PublicKey },
}

impl Pkcs11Recipient {
    /// The file the recipient was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the key is on a token (as opposed to a public key file).
    pub fn is_token(&self) -> bool {
        matches!(self.key, RecipientKey::Token { .. })
    }

    /// The RSA modulus size in bits.
    pub fn bits(&self) -> u32 {
        match &self.key {
            RecipientKey::Token { bits, .. } => *bits,
            RecipientKey::Software { key } => match key.kind() {
                KeyKind::Rsa { bits } => bits,
                KeyKind::Ec { .. } => 0,
            },
        }
    }

    /// Environment variables the token's module needs (`module.env`); empty for a public key
    /// file.
    pub fn required_env(&self) -> &[(String, String)] {
        match &self.key {
            RecipientKey::Token { key, .. } => key.required_env(),
            RecipientKey::Software { .. } => &[],
        }
    }

    /// The key in words, for the size check's message.
    fn what(&self) -> String {
        match &self.key {
            RecipientKey::Token { key, .. } => format!(
                "RSA key with {} on {}",
                key.uri().object_description(),
                key.uri().token_description()
            ),
            RecipientKey::Software { .. } => format!("RSA key in {}", self.source),
        }
    }
}

/// A PKCS#11 key file (ocicrypt YAML: `pkcs11.uri`, `module.env`). `Debug` shows the URI
/// without its PIN.
#[derive(Clone)]
pub struct Pkcs11Key {
    source: String,
    file: std::sync::Arc<KeyFile>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("source", &self.source)
            .field("uri", &self.file.uri)
            .field("env", &self.file.env)
            .finish()
    }
}

impl Pkcs11Key {
    /// Parse an ocicrypt PKCS#11 YAML key file; `source` (its path) names it in messages.
    /// The URI must name an object (`id`/`object`), a token (`token`/`slot-id`) and a module
    /// (`module-name`/`module-path`).
    pub fn parse(data: &[u8], source: &str) -> Result<Pkcs11Key, KeyError> {
        if data.len() as u64 > config::MAX_YAML_FILE {
            return Err(KeyError::Malformed(format!(
                "a PKCS#11 key file is at most {} bytes",
                config::MAX_YAML_FILE
            )));
        }
        let file = KeyFile::parse(data).map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Pkcs11Key {
            source: source.to_string(),
            file: std::sync::Arc::new(file),
        })
    }

    /// Environment variables the key's module needs (`module.env`), sorted by name.
    pub fn required_env(&self) -> &[(String, String)] {
        &self.file.env
    }

    /// Where the key file came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The key's URI.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.file.uri
    }
}

impl KeyWrapper for Pkcs11Wrapper {
    fn id(&self) -> &str {
        SCHEME
    }

    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        values
            .iter()
            .map(|v| {
                self.recipient(v).map_err(|error| RecipientFailure {
                    spec: v.spec.clone(),
                    error,
                })
            })
            .collect()
    }

    fn wrap(&self, recipients: &[&Recipient], options: &[u8]) -> Result<Vec<u8>, WrapError> {
        let fail = |reason: String| WrapError {
            scheme: SCHEME.into(),
            reason,
        };
        let hash = self.oaep_hash.clone().map_err(fail)?;
        let mine: Vec<&Pkcs11Recipient> = recipients
            .iter()
            .filter_map(|r| match &r.kind {
                RecipientKind::Pkcs11(p) => Some(p),
                _ => None,
            })
            .collect();
        // Every size first: no token is asked to encrypt what cannot fit.
        for r in &mine {
            envelope::check_capacity(options.len(), r.bits(), hash, &r.what())
                .map_err(|e| fail(format!("{}: {e}", r.source)))?;
        }
        let mut entries = Vec::with_capacity(mine.len());
        for r in &mine {
            let ciphertext = match &r.key {
                RecipientKey::Software { key } => envelope::oaep_encrypt(key.pkey(), hash, options),
                RecipientKey::Token { key, .. } => {
                    self.with_token_key(key, KeyClass::Public, |session, object, token| {
                        token::encrypt(session, object, hash, options, token)
                    })
                }
            }
            .map_err(|e| fail(format!("{}: {e}", r.source)))?;
            entries.push(WrittenEntry { ciphertext, hash });
        }
        Ok(envelope::write_blob(&entries))
    }

    fn has_keys(&self, keys: &KeyRing) -> bool {
        !keys.pkcs11_keys.is_empty()
    }

    fn unwrap(&self, keys: &KeyRing, blob: &[u8]) -> Result<Unwrapped, UnwrapFailure> {
        let parsed = Pkcs11Blob::parse(blob).map_err(UnwrapFailure::Malformed)?;
        let n = parsed.entries.len();
        let label = |i: usize, reason: &str| {
            if n == 1 {
                reason.to_string()
            } else {
                format!("recipient {i} of {n}: {reason}")
            }
        };
        let mut attempts = Vec::new();
        // One session per key, every entry tried in it: a PIN is presented once per key.
        for key in &keys.pkcs11_keys {
            let outcome = self.with_token_key(key, KeyClass::Private, |session, object, token| {
                let mut failures = Vec::new();
                for (i, entry) in parsed.entries.iter().enumerate() {
                    match entry {
                        Entry::Unusable { reason, .. } => failures.push(reason.clone()),
                        Entry::Usable { ciphertext, hash } => {
                            match token::decrypt(session, object, *hash, ciphertext, token) {
                                Ok(options) => return Ok(Ok(options)),
                                Err(e) => failures.push(label(i, &e.to_string())),
                            }
                        }
                    }
                }
                Ok(Err(failures))
            });
            match outcome {
                Ok(Ok(options)) => {
                    return Ok(Unwrapped {
                        options,
                        scheme: SCHEME.into(),
                        key: key.source().to_string(),
                    });
                }
                Ok(Err(failures)) => attempts.extend(failures.into_iter().map(|reason| Attempt {
                    key: key.source().to_string(),
                    reason,
                })),
                Err(reason) => attempts.push(Attempt {
                    key: key.source().to_string(),
                    reason,
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
        use crate::keywrap::{MatchTarget, Removal, RemoveError};
        match &matcher.target {
            MatchTarget::Recipients(rs) if rs.iter().any(|r| r.scheme == SCHEME) => {
                let n = Pkcs11Blob::parse(blob)
                    .map_err(RemoveError::Malformed)?
                    .entries
                    .len();
                Err(RemoveError::Unidentifiable(format!(
                    "its {n} entr{} carry no key identity (an RSA-OAEP ciphertext and a hash name), and OAEP is randomized, so no entry can be matched to a public key",
                    if n == 1 { "y" } else { "ies" }
                )))
            }
            _ => Ok(Removal::Unchanged),
        }
    }

    fn describe(&self, blob: &[u8], _: &DescribeContext) -> Result<Vec<RecipientInfo>, String> {
        let parsed = Pkcs11Blob::parse(blob)?;
        Ok(parsed
            .entries
            .iter()
            .map(|e| {
                let hash = match e {
                    Entry::Usable { hash, .. } => hash.name().to_string(),
                    Entry::Unusable { hash, .. } => match hash.as_deref() {
                        None | Some("") => OaepHash::Sha1.name().to_string(),
                        Some(h) => h.to_string(),
                    },
                };
                RecipientInfo {
                    scheme: SCHEME.into(),
                    algorithm: Some("RSA-OAEP".into()),
                    hash: Some(hash),
                    ..Default::default()
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keywrap::{Registry, wrap_for};
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use std::fs;

    fn wrapper(hash: Option<&str>) -> Pkcs11Wrapper {
        let tmp = std::env::temp_dir();
        Pkcs11Wrapper::with_search(
            PolicySearch {
                ocicrypt_config: None,
                xdg_config_home: None,
                home: None,
                system: tmp.join("layercrypt-no-such-policy.conf"),
            },
            hash,
        )
    }

    fn spec(path: &Path) -> RecipientSpec {
        RecipientSpec {
            spec: format!("pkcs11:{}", path.display()),
            value: path.display().to_string(),
        }
    }

    fn write_key(dir: &Path, name: &str, bits: u32) -> (PathBuf, PKey<openssl::pkey::Private>) {
        let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
        let path = dir.join(name);
        fs::write(&path, key.public_key_to_pem().unwrap()).unwrap();
        (path, key)
    }

    /// 193 bytes, like real private options with a sha256 digest.
    fn options() -> Vec<u8> {
        let mut o = br#"{"symkey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","cipheroptions":{"nonce":"AAAAAAAAAAAAAAAAAAAAAA=="}}"#.to_vec();
        o.truncate(193);
        o
    }

    #[test]
    fn software_recipients_wrap_what_openssl_unwraps() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, key) = write_key(tmp.path(), "k.pub.pem", 2048);
        for (env, hash) in [
            (Some("sha1"), OaepHash::Sha1),
            (Some("SHA1"), OaepHash::Sha1),
        ] {
            let w = wrapper(env);
            let r = w.recipients(&[spec(&path)]).unwrap();
            let blob = w.wrap(&r.iter().collect::<Vec<_>>(), &options()).unwrap();
            let parsed = Pkcs11Blob::parse(&blob).unwrap();
            let Entry::Usable {
                ciphertext,
                hash: h,
            } = &parsed.entries[0]
            else {
                panic!("{parsed:?}")
            };
            assert_eq!(*h, hash);
            assert_eq!(
                &envelope::oaep_decrypt(&key, hash, ciphertext).unwrap()[..],
                &options()[..]
            );
            assert!(
                String::from_utf8(blob)
                    .unwrap()
                    .ends_with(r#","hash":"sha1"}]}"#)
            );
        }
        // SHA-256 (the default) needs a larger key for 193 bytes; 3072 bits do.
        let (big, key) = write_key(tmp.path(), "k3072.pub.pem", 3072);
        let w = wrapper(None);
        let r = w.recipients(&[spec(&big)]).unwrap();
        let blob = w.wrap(&r.iter().collect::<Vec<_>>(), &options()).unwrap();
        let Entry::Usable { ciphertext, hash } = &Pkcs11Blob::parse(&blob).unwrap().entries[0]
        else {
            panic!()
        };
        assert_eq!(*hash, OaepHash::Sha256);
        assert_eq!(
            &envelope::oaep_decrypt(&key, *hash, ciphertext).unwrap()[..],
            &options()[..]
        );
        let info = w.describe(&blob, &DescribeContext::default()).unwrap();
        assert_eq!(info[0].algorithm.as_deref(), Some("RSA-OAEP"));
        assert_eq!(info[0].hash.as_deref(), Some("sha256"));
        assert_eq!(info[0].to_string(), "pkcs11[RSA-OAEP sha256]");
    }

    #[test]
    fn rsa_2048_with_sha256_is_refused_before_any_key_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let (small, _) = write_key(tmp.path(), "small.pub.pem", 2048);
        let (big, _) = write_key(tmp.path(), "big.pub.pem", 3072);
        let w = wrapper(None);
        // Refused when the recipient is named, before any layer is read…
        let err = w.recipients(&[spec(&big), spec(&small)]).unwrap_err();
        assert!(err.spec.ends_with("small.pub.pem"));
        let err = err.error.to_string();
        assert!(
            err.contains("the layer options (193 bytes) are too long for RSA-OAEP with SHA-256"),
            "{err}"
        );
        assert!(
            err.contains("set OCICRYPT_OAEP_HASHALG=sha1, or use an RSA key of 3072 bits or more"),
            "{err}"
        );
        // …and at wrap time, for the real options, before any key is used.
        let r = w.recipients(&[spec(&big)]).unwrap();
        let long = vec![b'x'; 400];
        let err = w
            .wrap(&r.iter().collect::<Vec<_>>(), &long)
            .unwrap_err()
            .to_string();
        assert!(err.contains("big.pub.pem: the layer options (400 bytes) are too long for RSA-OAEP with SHA-256 under the RSA key in"), "{err}");
        assert!(err.contains("use an RSA key of 4096 bits or more"), "{err}");
    }

    #[test]
    fn unusable_recipients_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let ec = tmp.path().join("ec.pub.pem");
        let eckey = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        fs::write(
            &ec,
            PKey::from_ec_key(eckey)
                .unwrap()
                .public_key_to_pem()
                .unwrap(),
        )
        .unwrap();
        let err = wrapper(None)
            .recipients(&[spec(&ec)])
            .unwrap_err()
            .error
            .to_string();
        assert!(
            err.starts_with("Unsupported key object type for pkcs11 public key: "),
            "{err}"
        );
        assert!(err.contains("is an EC P-256 key"), "{err}");

        let (rsa, _) = write_key(tmp.path(), "k.pub.pem", 2048);
        let err = wrapper(Some("md5"))
            .recipients(&[spec(&rsa)])
            .unwrap_err()
            .error
            .to_string();
        assert!(err.contains("OCICRYPT_OAEP_HASHALG=md5"), "{err}");

        let missing = wrapper(None)
            .recipients(&[spec(&tmp.path().join("nope.yaml"))])
            .unwrap_err();
        assert!(matches!(missing.error, RecipientError::Io { .. }));

        // A key file whose token cannot be reached without a policy: the fix is named.
        let yaml = tmp.path().join("k.yaml");
        fs::write(
            &yaml,
            "pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=softhsm2\n",
        )
        .unwrap();
        let err = wrapper(Some("sha1"))
            .recipients(&[spec(&yaml)])
            .unwrap_err()
            .error
            .to_string();
        assert!(err.contains("no PKCS#11 module policy was found"), "{err}");
        assert!(err.contains("OCICRYPT_CONFIG=internal"), "{err}");
    }

    #[test]
    fn keys_without_pin_environment_or_policy_report_why() {
        let tmp = tempfile::tempdir().unwrap();
        let make = |name: &str, text: &str| {
            let path = tmp.path().join(name);
            fs::write(&path, text).unwrap();
            Pkcs11Key::parse(text.as_bytes(), &path.display().to_string()).unwrap()
        };
        let no_pin = make(
            "nopin.yaml",
            "pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=softhsm2\n",
        );
        let env = make(
            "env.yaml",
            "pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=softhsm2&pin-value=1\nmodule:\n  env:\n    LAYERCRYPT_TEST_UNSET_VARIABLE: /x y/conf\n",
        );
        let no_policy = make(
            "p.yaml",
            "pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=softhsm2&pin-value=1\n",
        );
        let ring = KeyRing {
            pkcs11_keys: vec![no_pin, env, no_policy],
            ..Default::default()
        };
        let w = wrapper(None);
        assert!(w.has_keys(&ring));
        assert!(!w.has_keys(&KeyRing::default()));
        let blob = envelope::write_blob(&[WrittenEntry {
            ciphertext: vec![1; 256],
            hash: OaepHash::Sha1,
        }]);
        let Err(UnwrapFailure::NotOpened(attempts)) = w.unwrap(&ring, &blob) else {
            panic!()
        };
        assert_eq!(attempts.len(), 3, "{attempts:?}");
        assert!(attempts[0].key.ends_with("nopin.yaml"));
        assert!(attempts[0].reason.contains("gives no PIN"), "{attempts:?}");
        assert!(
            attempts[1]
                .reason
                .contains("LAYERCRYPT_TEST_UNSET_VARIABLE=/x y/conf (it is not set)"),
            "{attempts:?}"
        );
        assert!(
            attempts[1]
                .reason
                .ends_with("export LAYERCRYPT_TEST_UNSET_VARIABLE='/x y/conf'"),
            "{attempts:?}"
        );
        assert!(
            attempts[2]
                .reason
                .contains("no PKCS#11 module policy was found"),
            "{attempts:?}"
        );
        // A blob that is not ocicrypt's is malformed, whatever the keys.
        assert!(matches!(
            w.unwrap(&ring, b"{\"version\":3}"),
            Err(UnwrapFailure::Malformed(_))
        ));
        assert!(w.describe(b"nope", &DescribeContext::default()).is_err());
    }

    #[test]
    fn debug_never_shows_the_pin() {
        let key = Pkcs11Key::parse(
            b"pkcs11:\n  uri: pkcs11:token=t;object=o?pin-value=hunter2&module-name=softhsm2\n",
            "k.yaml",
        )
        .unwrap();
        let ring = KeyRing {
            pkcs11_keys: vec![key.clone()],
            ..Default::default()
        };
        for text in [format!("{key:?}"), format!("{ring:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("pin-value=<redacted>"), "{text}");
        }
    }

    #[test]
    fn describe_lists_each_entry_with_its_hash() {
        let blob = br#"{"version":0,"recipients":[{"version":0,"blob":"AQ=="},{"version":0,"blob":"AQ==","hash":"sha256"},{"version":0,"blob":"!!","hash":"sha512"}]}"#;
        let info = wrapper(None)
            .describe(blob, &DescribeContext::default())
            .unwrap();
        let hashes: Vec<_> = info.iter().map(|i| i.hash.clone().unwrap()).collect();
        assert_eq!(hashes, ["sha1", "sha256", "sha512"]);
        assert!(
            info.iter()
                .all(|i| i.scheme == "pkcs11" && i.algorithm.as_deref() == Some("RSA-OAEP"))
        );
    }

    #[test]
    fn module_environment_merges_key_files() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = tmp.path().join(name);
            fs::write(&p, text).unwrap();
            p
        };
        let uri = "pkcs11:token=t;object=o?module-name=softhsm2";
        let a = write(
            "a.yaml",
            &format!(
                "pkcs11:\n  uri: {uri}\nmodule:\n  env:\n    SOFTHSM2_CONF: /a.conf\n    B: b\n"
            ),
        );
        let b = write(
            "b.yaml",
            &format!(
                "pkcs11:\n  uri: {uri}\nmodule:\n  env:\n    SOFTHSM2_CONF: /a.conf\n    A: a\n"
            ),
        );
        let c = write(
            "c.yaml",
            &format!("pkcs11:\n  uri: {uri}\nmodule:\n  env:\n    SOFTHSM2_CONF: /c.conf\n"),
        );
        let flow = write(
            "flow.yaml",
            &format!("{{pkcs11: {{uri: '{uri}'}}, module: {{env: {{F: f}}}}}}"),
        );
        let pem = write(
            "k.pem",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        );
        let notes = write("notes.txt", "hello");
        let broken = write("broken.yaml", "pkcs11:\n  uri: pkcs11:token=t\n");
        let missing = tmp.path().join("missing.yaml");
        let env = module_environment(&[&a, &b, &pem, &notes, &missing, &flow]).unwrap();
        assert_eq!(
            env,
            [
                ("A".to_string(), "a".to_string()),
                ("B".into(), "b".into()),
                ("F".into(), "f".into()),
                ("SOFTHSM2_CONF".into(), "/a.conf".into())
            ]
        );
        let err = module_environment(&[&a, &c]).unwrap_err().to_string();
        assert!(
            err.contains("ask for different values of SOFTHSM2_CONF"),
            "{err}"
        );
        assert!(err.contains("/a.conf and /c.conf"), "{err}");
        let err = module_environment(&[&broken]).unwrap_err().to_string();
        assert!(err.contains("broken.yaml"), "{err}");
        assert!(module_environment(&[]).unwrap().is_empty());

        assert!(unmet_environment(&[]).is_empty());
        let path = std::env::var("PATH").unwrap();
        assert!(unmet_environment(&[("PATH".into(), path)]).is_empty());
        assert_eq!(
            unmet_environment(&[("LAYERCRYPT_TEST_UNSET_VARIABLE".into(), "x".into())]).len(),
            1
        );
    }

    #[test]
    fn sniff_recognises_ocicrypt_key_files() {
        for text in [
            // ocicrypt's documentation and tests.
            "pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=softhsm2\nmodule:\n  env:\n    SOFTHSM2_CONF: /x\n",
            "pkcs11:\n   uri: pkcs11:slot-id=1;object=o?module-name=softhsm2&pin-value=1234\n",
            "# comment\n---\nmodule:\n  env: {}\npkcs11:\n  uri: 'pkcs11:token=t;object=o?module-name=x'\n",
        ] {
            assert_eq!(sniff(text.as_bytes()), FileKind::Pkcs11Yaml, "{text}");
            assert!(parse_if_key_file(text.as_bytes(), "k").unwrap().is_some());
        }
        // Flow style is not recognised by sniff, but still read as a key file here.
        let flow = "{pkcs11: {uri: 'pkcs11:token=t;object=o?module-name=x'}}";
        assert!(parse_if_key_file(flow.as_bytes(), "k").unwrap().is_some());
        // A policy file is no key file.
        assert!(
            parse_if_key_file(b"pkcs11:\n  module-directories: [/x/]\n", "k")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_registry_wraps_pkcs11_into_its_annotation() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, key) = write_key(tmp.path(), "k.pub.pem", 2048);
        let env = Environment {
            oaep_hash: Some("sha1".into()),
            ..Default::default()
        };
        let registry = Registry::new(&env).unwrap();
        let recipients = registry
            .load_recipients(&[format!("pkcs11:{}", path.display())])
            .unwrap();
        let annotations = wrap_for(&registry, &recipients, &options()).unwrap();
        assert_eq!(annotations[0].0, "org.opencontainers.image.enc.keys.pkcs11");
        let blob = crate::format::decode_base64_go(&annotations[0].1).unwrap();
        let Entry::Usable { ciphertext, hash } = &Pkcs11Blob::parse(&blob).unwrap().entries[0]
        else {
            panic!()
        };
        assert_eq!(
            &envelope::oaep_decrypt(&key, *hash, ciphertext).unwrap()[..],
            &options()[..]
        );
    }
}
