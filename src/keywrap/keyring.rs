//! The keys of a run: the [`KeyRing`] the schemes unwrap with, and the loader that builds it
//! from `-k` arguments, key directories and `--dec-recipient` certificates.
//!
//! A key is named as `FILE`, `FILE:pass=PASSWORD`, `FILE:file=PATH`, `FILE:fd=N` or
//! `FILE:env=VAR` (the ocicrypt forms, plus `env=`; see [`crate::keys::passphrase`]), or found
//! in a key directory. Each file goes to the scheme its kind belongs to, so this loader knows
//! every scheme's key type (`keys` parses the files; the schemes parse their own formats).
//!
//! This module must never show a secret: passphrases live in zeroizing buffers and are never
//! printed, `Debug` of a [`KeySpec`] or [`ProviderKey`] redacts inline passphrases and
//! provider arguments, and key files are read bounded in size.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

#[cfg(feature = "pgp")]
use super::pgp;
use super::pkcs11;
use crate::keys::passphrase::{PassphraseError, PassphraseSource, passphrase_candidates};
use crate::keys::{Certificate, FileKind, KeyError, PrivateKey, sniff};

/// Largest key file read (real ones are a few KiB).
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// A private key and where it came from.
#[derive(Debug)]
pub struct NamedKey {
    /// Its source, for messages (a file path).
    pub source: String,
    /// The key.
    pub key: PrivateKey,
}

/// A certificate and where it came from.
#[derive(Debug)]
pub struct NamedCertificate {
    /// Its source, for messages (a file path).
    pub source: String,
    /// The certificate.
    pub certificate: Certificate,
}

/// A key provider named with `-k provider:NAME[:ARGS]`. Its arguments may be secrets (a
/// token, a password), so `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderKey {
    /// The provider name.
    pub name: String,
    /// Its arguments, if any.
    pub args: Option<String>,
}

impl fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderKey")
            .field("name", &self.name)
            .field("args", &self.args.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The keys available for unwrapping, by kind.
#[derive(Debug, Default)]
pub struct KeyRing {
    /// Private keys usable by JWE and PKCS#7.
    pub private_keys: Vec<NamedKey>,
    /// Certificates that locate PKCS#7 entries.
    pub certificates: Vec<NamedCertificate>,
    /// OpenPGP secret keyrings (exported, binary or armored).
    #[cfg(feature = "pgp")]
    pub pgp_keyrings: Vec<pgp::SecretKeyring>,
    /// PKCS#11 key files (ocicrypt YAML).
    pub pkcs11_keys: Vec<pkcs11::Pkcs11Key>,
    /// Key providers named explicitly, with their arguments.
    pub providers: Vec<ProviderKey>,
    /// Ask GnuPG (its home and agent) for OpenPGP keys; set when no key was given at all, as
    /// ocicrypt's tools do.
    pub use_gpg: bool,
    /// Passphrase for OpenPGP secret keys that `gpg` asks for, when one was given.
    pub gpg_passphrase: Option<PassphraseSource>,
}

impl KeyRing {
    /// Whether the ring holds no keys at all (providers and gpg do not count).
    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "pgp")]
        let pgp = self.pgp_keyrings.is_empty();
        #[cfg(not(feature = "pgp"))]
        let pgp = true;
        self.private_keys.is_empty()
            && self.certificates.is_empty()
            && pgp
            && self.pkcs11_keys.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Loading

/// A parsed `-k` argument. `Debug` shows neither an inline passphrase nor a provider's
/// arguments (which may be a token or a password).
#[derive(Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// A key file, with an optional passphrase source.
    File {
        /// The key file.
        path: PathBuf,
        /// Where its passphrase comes from, if it needs one.
        passphrase: Option<PassphraseSource>,
    },
    /// A key provider (`provider:NAME[:ARGS]`).
    Provider {
        /// The provider name.
        name: String,
        /// The arguments after `provider:NAME:`, if any.
        args: Option<String>,
    },
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::File { path, passphrase } => f
                .debug_struct("File")
                .field("path", path)
                .field("passphrase", passphrase)
                .finish(),
            KeySpec::Provider { name, args } => f
                .debug_struct("Provider")
                .field("name", name)
                .field("args", &args.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    /// A key file could not be read.
    #[error("cannot read key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A key file is not a usable private key.
    #[error("key file {}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// A key file is of a kind that cannot decrypt.
    #[error("key file {} is {kind}, which cannot decrypt layers (a key is a private key, an X.509 certificate, an OpenPGP secret keyring or a PKCS#11 key file)", path.display())]
    UnsupportedKind {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
    },
    /// A passphrase source failed.
    #[error("passphrase for key file {}: {reason}", path.display())]
    Passphrase {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Key directories held files that might be keys but could not be used, and no key at
    /// all was left.
    #[error("no usable key in key director{} {}: {}", if dirs.len() == 1 { "y" } else { "ies" }, dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "), problems.join("; "))]
    NoUsableKey {
        /// The key directories.
        dirs: Vec<PathBuf>,
        /// Each file that could not be used, and why.
        problems: Vec<String>,
    },
    /// Ctrl-C at a passphrase prompt.
    #[error("interrupted")]
    Interrupted,
    /// A `-k` argument is malformed.
    #[error("invalid key `{spec}`: {reason}")]
    BadSpec {
        /// The argument.
        spec: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<PassphraseError> for KeySourceError {
    fn from(e: PassphraseError) -> KeySourceError {
        match e {
            PassphraseError::Unreadable { path, reason } => {
                KeySourceError::Passphrase { path, reason }
            }
            PassphraseError::Interrupted => KeySourceError::Interrupted,
        }
    }
}

const PASSPHRASE_FORMS: &[&str] = &[":pass=", ":file=", ":fd=", ":env="];

impl KeySpec {
    /// Parse a `-k` argument.
    pub fn parse(spec: &str) -> Result<KeySpec, KeySourceError> {
        if let Some(rest) = spec.strip_prefix("provider:") {
            let (name, args) = match rest.split_once(':') {
                Some((n, a)) => (n, Some(a.to_string())),
                None => (rest, None),
            };
            if name.is_empty() {
                return Err(KeySourceError::BadSpec {
                    spec: spec.to_string(),
                    reason: "a provider key is provider:NAME[:ARGS]".into(),
                });
            }
            return Ok(KeySpec::Provider {
                name: name.to_string(),
                args,
            });
        }
        // The earliest passphrase form splits file from passphrase; the passphrase itself may
        // contain colons.
        let split = PASSPHRASE_FORMS
            .iter()
            .filter_map(|form| spec.find(form).map(|at| (at, *form)))
            .min();
        let Some((at, form)) = split else {
            if spec.is_empty() {
                return Err(KeySourceError::BadSpec {
                    spec: spec.into(),
                    reason: "empty key file name".into(),
                });
            }
            return Ok(KeySpec::File {
                path: PathBuf::from(spec),
                passphrase: None,
            });
        };
        let path = PathBuf::from(&spec[..at]);
        let value = &spec[at + form.len()..];
        let bad = |reason: &str| KeySourceError::BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if path.as_os_str().is_empty() {
            return Err(bad("empty key file name"));
        }
        let passphrase = match form {
            ":pass=" => PassphraseSource::Literal(Zeroizing::new(value.to_string())),
            ":file=" if !value.is_empty() => PassphraseSource::File(PathBuf::from(value)),
            ":fd=" => PassphraseSource::Fd(
                value
                    .parse()
                    .map_err(|_| bad("fd= needs a file descriptor number"))?,
            ),
            ":env=" if !value.is_empty() => PassphraseSource::Env(value.to_string()),
            _ => return Err(bad("the passphrase source is empty")),
        };
        Ok(KeySpec::File {
            path,
            passphrase: Some(passphrase),
        })
    }
}

/// Options for loading keys.
#[derive(Clone, Debug, Default)]
pub struct KeyOptions {
    /// Passphrase for encrypted keys that name no passphrase source of their own.
    pub passphrase_file: Option<PathBuf>,
    /// Ask on the terminal for passphrases no other source gives.
    pub prompt: bool,
}

impl KeyOptions {
    /// The passphrase source for keys that name none: `--passphrase-file`, else the prompt.
    pub fn fallback_passphrase(&self) -> Option<PassphraseSource> {
        self.passphrase_file
            .clone()
            .map(PassphraseSource::File)
            .or(self.prompt.then_some(PassphraseSource::Prompt))
    }
}

/// Read a key file, bounded in size.
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeySourceError> {
    let io = |source| KeySourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut data = Zeroizing::new(Vec::new());
    fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE + 1).read_to_end(&mut data))
        .map_err(io)?;
    if data.len() as u64 > MAX_KEY_FILE {
        return Err(KeySourceError::Key {
            path: path.to_path_buf(),
            source: KeyError::Malformed(format!("the file is larger than {MAX_KEY_FILE} bytes")),
        });
    }
    Ok(data)
}

/// Load one private key file, asking its passphrase source only if the key is encrypted.
pub fn load_private_key(
    path: &Path,
    passphrase: Option<&PassphraseSource>,
    options: &KeyOptions,
) -> Result<PrivateKey, KeySourceError> {
    private_key_from(path, &read_key_file(path)?, passphrase, options)
}

/// [`load_private_key`] for a file already read into `data`.
fn private_key_from(
    path: &Path,
    data: &[u8],
    passphrase: Option<&PassphraseSource>,
    options: &KeyOptions,
) -> Result<PrivateKey, KeySourceError> {
    let key_err = |source| KeySourceError::Key {
        path: path.to_path_buf(),
        source,
    };
    let kind = sniff(data);
    match kind {
        FileKind::PrivateKey
        | FileKind::EncryptedPrivateKey
        | FileKind::PrivateJwk
        | FileKind::Unknown => {}
        other => {
            return Err(KeySourceError::UnsupportedKind {
                path: path.to_path_buf(),
                kind: other,
            });
        }
    }
    match PrivateKey::from_bytes(data, None) {
        Err(KeyError::PasswordRequired) => {}
        other => return other.map_err(key_err),
    }
    let fallback = options.fallback_passphrase();
    let Some(source) = passphrase.or(fallback.as_ref()) else {
        return Err(key_err(KeyError::PasswordRequired));
    };
    let mut last = KeyError::WrongPassword;
    for candidate in passphrase_candidates(path, source)? {
        match PrivateKey::from_bytes(data, Some(&candidate)) {
            Ok(key) => return Ok(key),
            Err(e @ KeyError::WrongPassword) => last = e,
            Err(e) => return Err(key_err(e)),
        }
    }
    Err(key_err(last))
}

/// A key ring and what building it passed over.
#[derive(Debug, Default)]
pub struct LoadedKeys {
    /// The keys.
    pub ring: KeyRing,
    /// Files of key directories that hold no key (notes, public keys), each with why: worth
    /// a note when asked for (`-v`), since a key directory is expected to hold such files.
    pub skipped: Vec<String>,
    /// Files of key directories that could not be used although they might be keys, and so
    /// were skipped: an unreadable file or subdirectory, a dangling symbolic link, a link that
    /// loops back to a directory above it, a key that does not load (a missing passphrase,
    /// say). Each names the file and why; worth a warning. Loading fails instead when they
    /// leave no key at all.
    pub warnings: Vec<String>,
}

/// Build a key ring from `-k` specs, key directories and `--dec-recipient` certificates.
///
/// Each file goes where its kind belongs: private keys to JWE and PKCS#7, certificates to
/// PKCS#7, OpenPGP secret keyrings to OpenPGP, ocicrypt YAML files to PKCS#11. Every file named
/// with `-k` must be one of those, and any problem with one is an error.
///
/// A key directory is searched recursively (as containerd's `ctd-decoder` reads its keys
/// directory), following symbolic links, sorted by name. It is a collection, so its files are
/// judged one by one: what is no key (notes, public keys) is [`LoadedKeys::skipped`]; what
/// cannot be used ([`LoadedKeys::warnings`]) does not stop the others, unless no key at all is
/// left ([`KeySourceError::NoUsableKey`]). A link back to a directory above it is not
/// followed, and a file reached twice (through links, or also named with `-k`) is loaded once.
pub fn load_key_ring(
    specs: &[KeySpec],
    key_dirs: &[PathBuf],
    dec_recipients: &[String],
    options: &KeyOptions,
) -> Result<LoadedKeys, KeySourceError> {
    let mut loaded = LoadedKeys::default();
    let ring = &mut loaded.ring;
    let mut seen = SeenFiles::default();
    for spec in specs {
        match spec {
            KeySpec::Provider { name, args } => ring.providers.push(ProviderKey {
                name: name.clone(),
                args: args.clone(),
            }),
            KeySpec::File { path, passphrase } => {
                let data = read_key_file(path)?;
                seen.first_time(path);
                add_key_file(ring, path, &data, passphrase.as_ref(), options)?;
            }
        }
    }
    for dir in key_dirs {
        let walk = walk_key_dir(dir)?;
        loaded.warnings.extend(walk.problems);
        for path in walk.files {
            if !seen.first_time(&path) {
                continue;
            }
            let data = match read_key_file(&path) {
                Ok(data) => data,
                Err(e) => {
                    loaded.warnings.push(e.to_string());
                    continue;
                }
            };
            // Notes and other files that are no key at all are normal in a key directory.
            let kind = sniff(&data);
            if matches!(kind, FileKind::Unknown | FileKind::Empty) {
                loaded
                    .skipped
                    .push(format!("{}: skipped ({kind})", path.display()));
                continue;
            }
            match add_key_file(ring, &path, &data, None, options) {
                Ok(()) => {}
                Err(KeySourceError::UnsupportedKind { kind, .. }) => {
                    loaded
                        .skipped
                        .push(format!("{}: skipped ({kind})", path.display()));
                }
                // Ctrl-C at the prompt for this key's passphrase stops the whole load.
                Err(KeySourceError::Interrupted) => return Err(KeySourceError::Interrupted),
                Err(e) => loaded.warnings.push(e.to_string()),
            }
        }
    }
    if !key_dirs.is_empty()
        && !loaded.warnings.is_empty()
        && ring.is_empty()
        && ring.providers.is_empty()
    {
        return Err(KeySourceError::NoUsableKey {
            dirs: key_dirs.to_vec(),
            problems: loaded.warnings,
        });
    }
    for r in dec_recipients {
        let Some(file) = r.strip_prefix("pkcs7:") else {
            return Err(KeySourceError::BadSpec {
                spec: r.clone(),
                reason: "a decryption recipient is pkcs7:CERTIFICATE-FILE".into(),
            });
        };
        let path = PathBuf::from(file);
        let data = read_key_file(&path)?;
        let certificate = Certificate::from_bytes(&data).map_err(|source| KeySourceError::Key {
            path: path.clone(),
            source,
        })?;
        loaded.ring.certificates.push(NamedCertificate {
            source: path.display().to_string(),
            certificate,
        });
    }
    Ok(loaded)
}

/// Every file `load_key_ring` would read for these specs and key directories (for callers
/// that must prepare the process before keys are used, such as PKCS#11 module environments).
pub fn key_files(specs: &[KeySpec], key_dirs: &[PathBuf]) -> Result<Vec<PathBuf>, KeySourceError> {
    let mut seen = SeenFiles::default();
    let mut out: Vec<PathBuf> = specs
        .iter()
        .filter_map(|s| match s {
            KeySpec::File { path, .. } => Some(path.clone()),
            KeySpec::Provider { .. } => None,
        })
        .filter(|path| seen.first_time(path))
        .collect();
    for dir in key_dirs {
        out.extend(
            walk_key_dir(dir)?
                .files
                .into_iter()
                .filter(|path| seen.first_time(path)),
        );
    }
    Ok(out)
}

/// The files already taken, by device and inode, so that a file reached by two paths (a
/// symbolic link to a sibling directory, or `-k` and a key directory) is loaded once.
#[derive(Default)]
struct SeenFiles(std::collections::HashSet<(u64, u64)>);

impl SeenFiles {
    /// Whether `path` names a file not seen before (a file that cannot be examined counts as
    /// new: reading it reports the problem).
    fn first_time(&mut self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match fs::metadata(path) {
            Ok(meta) => self.0.insert((meta.dev(), meta.ino())),
            Err(_) => true,
        }
    }
}

/// What walking a key directory found.
struct KeyDirWalk {
    /// The regular files below it (through symbolic links), in sorted order.
    files: Vec<PathBuf>,
    /// What could not be walked, each naming the path and why.
    problems: Vec<String>,
}

/// Walk the key directory `dir` (`walkdir`, following symbolic links, with its loop
/// detection). Only `dir` itself must be readable: a problem below it is reported, not fatal.
fn walk_key_dir(dir: &Path) -> Result<KeyDirWalk, KeySourceError> {
    let io = |source| KeySourceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !fs::metadata(dir).map_err(io)?.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "a key directory must be a directory",
        )));
    }
    let mut walk = KeyDirWalk {
        files: Vec::new(),
        problems: Vec::new(),
    };
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in entries {
        match entry {
            // With links followed, the type is that of what a link points to.
            Ok(entry) if entry.file_type().is_file() => walk.files.push(entry.into_path()),
            Ok(entry) if entry.file_type().is_dir() => {}
            Ok(entry) => walk
                .problems
                .push(format!("{}: not a regular file", entry.path().display())),
            Err(e) if e.depth() == 0 => {
                return Err(io(e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("cannot be walked"))));
            }
            Err(e) => {
                let path = e.path().unwrap_or(dir).display().to_string();
                let why = match (e.loop_ancestor(), e.io_error()) {
                    (Some(ancestor), _) => {
                        format!("a symbolic link back to {} (a loop)", ancestor.display())
                    }
                    (None, Some(err)) if err.kind() == std::io::ErrorKind::NotFound => {
                        "a symbolic link to nothing".into()
                    }
                    (None, Some(err)) => format!("cannot be read: {err}"),
                    (None, None) => e.to_string(),
                };
                walk.problems.push(format!("{path}: {why}"));
            }
        }
    }
    Ok(walk)
}

/// Classify one key file (its content already read into `data`) and add it to the ring.
fn add_key_file(
    ring: &mut KeyRing,
    path: &Path,
    data: &[u8],
    passphrase: Option<&PassphraseSource>,
    options: &KeyOptions,
) -> Result<(), KeySourceError> {
    let source = path.display().to_string();
    let key_err = |source| KeySourceError::Key {
        path: path.to_path_buf(),
        source,
    };
    match sniff(data) {
        FileKind::Certificate => {
            let certificate = Certificate::from_bytes(data).map_err(key_err)?;
            ring.certificates.push(NamedCertificate {
                source,
                certificate,
            });
        }
        FileKind::Pkcs11Yaml => {
            let key = pkcs11::Pkcs11Key::parse(data, &source).map_err(key_err)?;
            ring.pkcs11_keys.push(key);
        }
        #[cfg(feature = "pgp")]
        FileKind::PgpSecretKey => {
            let passphrase = passphrase
                .cloned()
                .or_else(|| options.fallback_passphrase());
            let keyring = pgp::SecretKeyring::parse(data, &source, passphrase).map_err(key_err)?;
            ring.pgp_keyrings.push(keyring);
        }
        FileKind::PrivateKey
        | FileKind::EncryptedPrivateKey
        | FileKind::PrivateJwk
        | FileKind::Unknown => {
            let key = private_key_from(path, data, passphrase, options)?;
            ring.private_keys.push(NamedKey { source, key });
        }
        other => {
            return Err(KeySourceError::UnsupportedKind {
                path: path.to_path_buf(),
                kind: other,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_passphrases_or_provider_arguments() {
        for (spec, secret) in [
            ("k.pem:pass=hunter2-secret", "hunter2-secret"),
            ("provider:kbs:token=hunter2-secret", "hunter2-secret"),
        ] {
            let parsed = KeySpec::parse(spec).unwrap();
            let text = format!("{parsed:?} {parsed:#?}");
            assert!(
                text.contains("redacted") && !text.contains(secret),
                "{text}"
            );
        }
        let file = KeySpec::parse("k.pem:env=MY_VAR").unwrap();
        assert!(format!("{file:?}").contains("MY_VAR"));
    }

    #[test]
    fn parses_key_specs() {
        assert_eq!(
            KeySpec::parse("k.pem").unwrap(),
            KeySpec::File {
                path: "k.pem".into(),
                passphrase: None
            }
        );
        assert_eq!(
            KeySpec::parse("dir/k.pem:pass=a:b=c").unwrap(),
            KeySpec::File {
                path: "dir/k.pem".into(),
                passphrase: Some(PassphraseSource::Literal(Zeroizing::new("a:b=c".into())))
            }
        );
        assert_eq!(
            KeySpec::parse("k.pem:file=/run/pw").unwrap(),
            KeySpec::File {
                path: "k.pem".into(),
                passphrase: Some(PassphraseSource::File("/run/pw".into()))
            }
        );
        assert_eq!(
            KeySpec::parse("k.pem:fd=3").unwrap(),
            KeySpec::File {
                path: "k.pem".into(),
                passphrase: Some(PassphraseSource::Fd(3))
            }
        );
        assert_eq!(
            KeySpec::parse("k.pem:env=PW").unwrap(),
            KeySpec::File {
                path: "k.pem".into(),
                passphrase: Some(PassphraseSource::Env("PW".into()))
            }
        );
        assert_eq!(
            KeySpec::parse("provider:kbs:arg:x").unwrap(),
            KeySpec::Provider {
                name: "kbs".into(),
                args: Some("arg:x".into())
            }
        );
        for bad in [
            "",
            ":pass=x",
            "k.pem:fd=x",
            "k.pem:env=",
            "k.pem:file=",
            "provider:",
        ] {
            assert!(KeySpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn provider_arguments_are_not_printed() {
        let k = ProviderKey {
            name: "kbs".into(),
            args: Some("token=hunter2".into()),
        };
        let text = format!("{k:?}");
        assert!(text.contains("kbs") && !text.contains("hunter2"), "{text}");
    }
}
