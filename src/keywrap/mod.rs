//! Key wrapping: protecting a layer's private options for recipients, and recovering them with
//! keys.
//!
//! Each scheme is one module behind the [`KeyWrapper`] trait: resolve its recipients, wrap for
//! them, unwrap with the keys it can use, and describe a wrapped blob for `inspect`. The
//! [`Registry`] holds the schemes of a run: `jwe`, `pgp` (cargo feature `pgp`), `pkcs7`,
//! `pkcs11`, and one `provider.NAME` per configured key provider. Adding a scheme means one
//! module and one line in [`Registry::new`].
//!
//! Unwrapping follows ocicrypt, but does not give up early: every scheme annotation on the
//! layer, every comma-separated entry and every key is tried before reporting failure, and the
//! failure names each key tried and why it did not open the layer. Unwrapped options are
//! returned in zeroizing buffers; nothing here logs key material.

pub mod jwe;
pub mod keyring;
#[cfg(feature = "pgp")]
pub mod pgp;
pub mod pkcs11;
pub mod pkcs7;
pub mod provider;

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::format::json::JsonObject;
use crate::format::{Envelope, EnvelopeError, keys_annotation, scheme_of_annotation};
use crate::keys::{Certificate, KeyError, PublicKey};

pub use keyring::{
    KeyOptions, KeyRing, KeySourceError, KeySpec, LoadedKeys, NamedCertificate, NamedKey,
    ProviderKey, key_files, load_key_ring, load_private_key,
};

/// What the schemes need from the environment: where GnuPG keeps its keys, where the
/// key-provider and PKCS#11 configurations are.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// GnuPG home (`--gpg-homedir`, else `$GNUPGHOME`, else gpg's default).
    pub gpg_homedir: Option<PathBuf>,
    /// Key-provider configuration (`OCICRYPT_KEYPROVIDER_CONFIG`); `None`: no providers.
    pub keyprovider_config: Option<PathBuf>,
    /// PKCS#11 module policy (`OCICRYPT_CONFIG`: a path, or `internal`); `None`: search
    /// `$XDG_CONFIG_HOME/ocicrypt.conf`, `~/.config/ocicrypt.conf`, `/etc/ocicrypt.conf`.
    pub pkcs11_config: Option<String>,
    /// OAEP hash for PKCS#11 wrapping (`OCICRYPT_OAEP_HASHALG`: `sha256`, the default, or `sha1`).
    pub oaep_hash: Option<String>,
}

impl Environment {
    /// The environment as ocicrypt reads it from the process, with an explicit GnuPG home.
    pub fn from_process(gpg_homedir: Option<PathBuf>) -> Environment {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Environment {
            gpg_homedir: gpg_homedir.or_else(|| var("GNUPGHOME").map(PathBuf::from)),
            keyprovider_config: var("OCICRYPT_KEYPROVIDER_CONFIG").map(PathBuf::from),
            pkcs11_config: var("OCICRYPT_CONFIG").map(|v| v.to_string_lossy().into_owned()),
            oaep_hash: var("OCICRYPT_OAEP_HASHALG").map(|v| v.to_string_lossy().into_owned()),
        }
    }
}

/// A key-wrap scheme.
pub trait KeyWrapper: Send + Sync {
    /// The scheme id, the suffix of its annotation (`jwe`, `pgp`, `pkcs7`, `pkcs11`,
    /// `provider.NAME`).
    fn id(&self) -> &str;

    /// Resolve this scheme's recipients. `values` are the parts after the scheme prefix, one
    /// per `-r` (for a provider: the ARGS of `provider:NAME:ARGS`, empty without them), with
    /// the whole recipient string for messages. All recipients of a run come at once (OpenPGP
    /// exports the keyring once). A value may yield several recipients (an OpenPGP name that
    /// several keys carry).
    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure>;

    /// Wrap `options` for all `recipients` (all of this scheme) into one blob.
    fn wrap(&self, recipients: &[&Recipient], options: &[u8]) -> Result<Vec<u8>, WrapError>;

    /// Whether `keys` holds anything this scheme could try (ocicrypt skips schemes without).
    fn has_keys(&self, keys: &KeyRing) -> bool;

    /// Unwrap one blob with the keys, returning the options and the key that opened them.
    fn unwrap(&self, keys: &KeyRing, blob: &[u8]) -> Result<Unwrapped, UnwrapFailure>;

    /// Describe a blob's recipients without keys; `context` helps to name them.
    fn describe(
        &self,
        blob: &[u8],
        context: &DescribeContext,
    ) -> Result<Vec<RecipientInfo>, String>;

    /// Remove the recipient entries `matcher` names from one wrapped blob of this scheme,
    /// leaving every other entry exactly as it was (no re-wrapping: the other recipients'
    /// keys are not needed). An entry that might be the named recipient but cannot be told
    /// apart is an error, never a guess. The default suits schemes whose blobs cannot be
    /// edited: a recipient of this scheme is refused, anything else matches nothing.
    fn remove(&self, blob: &[u8], matcher: &RecipientMatcher) -> Result<Removal, RemoveError> {
        let _ = blob;
        match &matcher.target {
            MatchTarget::Recipients(rs) if rs.iter().any(|r| r.scheme == self.id()) => {
                Err(RemoveError::Unsupported)
            }
            _ => Ok(Removal::Unchanged),
        }
    }
}

/// What `--remove` names: recipients resolved as for `-r`, a bare key id, or a key provider.
#[derive(Clone, Debug)]
pub struct RecipientMatcher {
    /// The string as the user wrote it, for messages.
    pub spec: String,
    /// What it names.
    pub target: MatchTarget,
}

/// The recipients a [`RecipientMatcher`] names.
#[derive(Clone, Debug)]
pub enum MatchTarget {
    /// Recipients resolved from a recipient string (`jwe:FILE`, `pgp:EMAIL`, `pkcs7:CERT`, …);
    /// an OpenPGP name may resolve to several certificates.
    Recipients(Vec<Recipient>),
    /// A bare identifier: a JWE `kid`, an OpenPGP key id or fingerprint (hex, `0x` optional),
    /// a PKCS#7 subject key identifier (hex).
    KeyId(String),
    /// `provider:NAME`: every wrapped key of that provider (its blobs are opaque).
    Provider(String),
}

/// What [`KeyWrapper::remove`] did to a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// Nothing in the blob is the named recipient.
    Unchanged,
    /// `removed` entries were dropped; `blob` holds the others, otherwise as it was.
    Edited {
        /// The blob without the removed entries.
        blob: Vec<u8>,
        /// How many entries were dropped.
        removed: usize,
    },
    /// Every entry of the blob was the named recipient: the blob goes.
    Emptied {
        /// How many entries there were.
        removed: usize,
    },
}

/// Why recipients could not be removed from a blob.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoveError {
    /// The scheme's blobs cannot be edited.
    #[error("this scheme cannot remove single recipients from its wrapped keys")]
    Unsupported,
    /// Some entry might be the recipient, but nothing in it says whose it is.
    #[error("{0}")]
    Unidentifiable(String),
    /// The blob is not valid for the scheme.
    #[error("malformed wrapped key: {0}")]
    Malformed(String),
}

/// One recipient argument for a scheme: the whole string and the part after the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientSpec {
    /// The recipient as the user wrote it (`pgp:alice@example.com`).
    pub spec: String,
    /// The scheme-specific value (`alice@example.com`).
    pub value: String,
}

/// Why recipients could not be resolved: which one, and why.
#[derive(Debug)]
pub struct RecipientFailure {
    /// The recipient string.
    pub spec: String,
    /// What is wrong.
    pub error: RecipientError,
}

/// The schemes of a run.
pub struct Registry {
    wrappers: Vec<Box<dyn KeyWrapper>>,
    /// Problems found while reading configuration that did not stop the run.
    warnings: Vec<String>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.wrappers.iter().map(|w| w.id()))
            .finish()
    }
}

impl Registry {
    /// The schemes for `env`: the built-in ones, and one per configured key provider.
    pub fn new(env: &Environment) -> Result<Registry, RegistryError> {
        let mut wrappers: Vec<Box<dyn KeyWrapper>> = vec![Box::new(jwe::JweWrapper)];
        #[cfg(feature = "pgp")]
        wrappers.push(Box::new(pgp::PgpWrapper::new(env)));
        wrappers.push(Box::new(pkcs7::Pkcs7Wrapper));
        wrappers.push(Box::new(pkcs11::Pkcs11Wrapper::new(env)));
        let mut warnings = Vec::new();
        for provider in provider::configured(env, &mut warnings)? {
            wrappers.push(Box::new(provider));
        }
        Ok(Registry { wrappers, warnings })
    }

    /// Only the built-in schemes that need no configuration (JWE, PKCS#7): for tests and
    /// embedders that do not want the process environment consulted.
    pub fn builtin() -> Registry {
        Registry {
            wrappers: vec![Box::new(jwe::JweWrapper), Box::new(pkcs7::Pkcs7Wrapper)],
            warnings: Vec::new(),
        }
    }

    /// The schemes, in the order they are tried.
    pub fn wrappers(&self) -> impl Iterator<Item = &dyn KeyWrapper> {
        self.wrappers.iter().map(|w| w.as_ref())
    }

    /// The scheme with this id.
    pub fn get(&self, id: &str) -> Option<&dyn KeyWrapper> {
        self.wrappers().find(|w| w.id() == id)
    }

    /// Configuration problems that did not stop the run (a provider config that cannot be
    /// read, say).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Resolve what `--remove` names: `provider:NAME` (every wrapped key of that provider),
    /// a recipient string (resolved as for `-r`; an OpenPGP key id or fingerprint that the
    /// GnuPG home does not know is kept as a bare key id), or anything else as a bare key id
    /// (JWE `kid`, OpenPGP key id or fingerprint).
    pub fn load_matcher(&self, spec: &str) -> Result<RecipientMatcher, RecipientFailure> {
        let matcher = |target| RecipientMatcher {
            spec: spec.to_string(),
            target,
        };
        if let Some(rest) = spec.strip_prefix("provider:") {
            return match rest.split_once(':') {
                None if !rest.is_empty() => Ok(matcher(MatchTarget::Provider(rest.to_string()))),
                _ => Err(RecipientFailure {
                    spec: spec.to_string(),
                    error: RecipientError::Scheme(
                        "a key provider's wrapped keys are opaque: name the provider alone (provider:NAME) to remove all of its entries".into(),
                    ),
                }),
            };
        }
        let scheme = spec.split_once(':').map(|(s, _)| s);
        match scheme {
            Some("jwe" | "pgp" | "pkcs7" | "pkcs11") => {
                match self.load_recipients(&[spec.into()]) {
                    Ok(recipients) => Ok(matcher(MatchTarget::Recipients(recipients))),
                    Err(failure) => {
                        let value = spec.split_once(':').map_or("", |(_, v)| v);
                        if scheme == Some("pgp") && is_hex_key_id(value) {
                            Ok(matcher(MatchTarget::KeyId(value.to_string())))
                        } else {
                            Err(failure)
                        }
                    }
                }
            }
            _ => Ok(matcher(MatchTarget::KeyId(spec.to_string()))),
        }
    }

    /// Resolve recipient strings (`SCHEME:VALUE`, `provider:NAME[:ARGS]`), grouped by scheme,
    /// in the order given within each scheme.
    pub fn load_recipients(&self, specs: &[String]) -> Result<Vec<Recipient>, RecipientFailure> {
        let fail = |spec: &str, error| RecipientFailure {
            spec: spec.to_string(),
            error,
        };
        let mut groups: Vec<(String, Vec<RecipientSpec>)> = Vec::new();
        for spec in specs {
            let (prefix, value) = spec
                .split_once(':')
                .ok_or_else(|| fail(spec, RecipientError::NoScheme))?;
            let (id, value) = if prefix == "provider" {
                let (name, args) = value.split_once(':').unwrap_or((value, ""));
                if name.is_empty() {
                    return Err(fail(spec, RecipientError::NoScheme));
                }
                (format!("provider.{name}"), args.to_string())
            } else {
                (prefix.to_string(), value.to_string())
            };
            if self.get(&id).is_none() {
                let error = match prefix {
                    "provider" => {
                        RecipientError::UnknownProvider(id["provider.".len()..].to_string())
                    }
                    "pgp" => RecipientError::UnsupportedScheme("pgp".into()),
                    "jwe" | "pkcs7" | "pkcs11" => RecipientError::UnsupportedScheme(prefix.into()),
                    other => RecipientError::UnknownScheme(other.to_string()),
                };
                return Err(fail(spec, error));
            }
            let entry = RecipientSpec {
                spec: spec.clone(),
                value,
            };
            match groups.iter_mut().find(|(g, _)| *g == id) {
                Some((_, v)) => v.push(entry),
                None => groups.push((id, vec![entry])),
            }
        }
        let mut out = Vec::new();
        for (id, values) in groups {
            let wrapper = self.get(&id).expect("checked above");
            out.extend(wrapper.recipients(&values)?);
        }
        Ok(out)
    }
}

/// Why the scheme registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The key-provider configuration is unusable.
    #[error("key-provider configuration {}: {reason}", path.display())]
    ProviderConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A wrapping failure.
#[derive(Debug, thiserror::Error)]
#[error("wrapping the layer key for {scheme} recipients failed: {reason}")]
pub struct WrapError {
    /// The scheme.
    pub scheme: String,
    /// What went wrong.
    pub reason: String,
}

/// Unwrapped private options and which key opened them.
pub struct Unwrapped {
    /// The private options JSON.
    pub options: Zeroizing<Vec<u8>>,
    /// The scheme that was used.
    pub scheme: String,
    /// A description of the key that opened it (its file, key id, provider), for messages.
    pub key: String,
}

impl fmt::Debug for Unwrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unwrapped")
            .field("options", &"<redacted>")
            .field("scheme", &self.scheme)
            .field("key", &self.key)
            .finish()
    }
}

/// One key tried on a wrapped blob, and why it did not open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The key (file, key id, token object, provider).
    pub key: String,
    /// Why it failed.
    pub reason: String,
}

/// Why a scheme could not unwrap a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnwrapFailure {
    /// The blob is not valid for the scheme.
    Malformed(String),
    /// Keys were tried; none worked.
    NotOpened(Vec<Attempt>),
}

/// Why a layer's private options could not be unwrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The layer carries no wrapped-key annotation at all.
    #[error("it carries no wrapped keys (no org.opencontainers.image.enc.keys.* annotation)")]
    NoWrappedKeys,
    /// None of the given keys is of a type any present scheme can use.
    #[error("it is encrypted for {}, and none of the given keys can be used for that{}", schemes.join(", "), details(problems))]
    NoUsableKeys {
        /// The schemes present on the layer.
        schemes: Vec<String>,
        /// Per-scheme problems (unsupported scheme, malformed annotation).
        problems: Vec<String>,
    },
    /// No key was given at all (no key file, no provider), and GnuPG cannot open it either.
    #[error("it is encrypted for {}, and no key was given to open it{}", schemes.join(", "), details(problems))]
    NoKeysGiven {
        /// The schemes present on the layer.
        schemes: Vec<String>,
        /// Per-scheme problems (unsupported scheme, malformed annotation).
        problems: Vec<String>,
    },
    /// Keys were tried and none opened it.
    #[error("none of the given keys can open it (encrypted for {}){}", schemes.join(", "), details(attempts))]
    NoKeyOpened {
        /// The schemes present on the layer.
        schemes: Vec<String>,
        /// What was tried: `scheme, key: reason`, and per-scheme problems.
        attempts: Vec<String>,
    },
}

fn details(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join("; "))
    }
}

/// What helps `describe` name recipients: certificates (PKCS#7 subjects) and the GnuPG home
/// (OpenPGP user ids).
#[derive(Debug, Default)]
pub struct DescribeContext {
    /// Certificates whose subjects can be shown for matching PKCS#7 entries.
    pub certificates: Vec<Certificate>,
    /// Look up OpenPGP user ids in this GnuPG home (or the default one when `use_gpg`).
    pub gpg_homedir: Option<PathBuf>,
    /// Whether asking `gpg` for user ids is allowed.
    pub use_gpg: bool,
}

/// Who a wrapped blob is for, as far as its bytes (and the context) tell.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecipientInfo {
    /// The scheme id.
    pub scheme: String,
    /// Key algorithm (`RSA-OAEP`, `ECDH-ES+A256KW`, `RSA`, `ECDH`, `RSA-OAEP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Key id: JWE `kid`, OpenPGP key id (`0x…`, as Go prints it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Curve of an elliptic-curve recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// PKCS#7: the certificate issuer (RFC 4514 string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// PKCS#7: the certificate serial number (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// PKCS#7: the certificate subject, when a matching certificate is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// OpenPGP: user ids of the key, when the GnuPG home knows it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_ids: Vec<String>,
    /// The OAEP hash of the entry (PKCS#11; PKCS#7 entries with OAEP key transport).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl fmt::Display for RecipientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.scheme)?;
        let mut parts = Vec::new();
        if let Some(a) = &self.algorithm {
            parts.push(a.clone());
        }
        if let Some(c) = &self.curve {
            parts.push(c.clone());
        }
        if let Some(h) = &self.hash {
            parts.push(h.clone());
        }
        if let Some(k) = &self.key_id {
            parts.push(if self.scheme == "jwe" {
                format!("kid={k}")
            } else {
                k.clone()
            });
        }
        for u in &self.user_ids {
            parts.push(format!("\"{u}\""));
        }
        if let Some(s) = &self.subject {
            parts.push(format!("subject={s}"));
        } else if let Some(i) = &self.issuer {
            parts.push(format!("issuer={i}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={s}"));
        }
        if !parts.is_empty() {
            write!(f, "[{}]", parts.join(" "))?;
        }
        Ok(())
    }
}

/// A recipient of an encrypted layer.
#[derive(Clone, Debug)]
pub struct Recipient {
    /// The recipient as the user wrote it (`jwe:alice.pub.pem`).
    pub spec: String,
    /// The scheme id it belongs to (`jwe`, `provider.kbs`).
    pub scheme: String,
    /// The scheme-specific recipient.
    pub kind: RecipientKind,
}

/// Scheme-specific recipient data.
#[derive(Clone, Debug)]
pub enum RecipientKind {
    /// A JWE recipient public key.
    Jwe(PublicKey),
    /// An OpenPGP certificate's encryption subkeys.
    #[cfg(feature = "pgp")]
    Pgp(pgp::PgpRecipient),
    /// An X.509 certificate.
    Pkcs7(pkcs7::Pkcs7Recipient),
    /// An HSM public key or a plain RSA public key.
    Pkcs11(pkcs11::Pkcs11Recipient),
    /// A key provider, with its arguments.
    Provider(provider::ProviderRecipient),
}

/// Why a recipient string could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecipientError {
    /// No `scheme:` prefix.
    #[error(
        "a recipient is SCHEME:VALUE (jwe:FILE, pgp:EMAIL, pkcs7:CERT, pkcs11:FILE, provider:NAME)"
    )]
    NoScheme,
    /// A prefix ocicrypt does not define.
    #[error("unknown scheme `{0}` (expected jwe, pgp, pkcs7, pkcs11 or provider)")]
    UnknownScheme(String),
    /// A scheme ocicrypt defines that this build does not include.
    #[error("the {0} scheme is not available in this build of layercrypt")]
    UnsupportedScheme(String),
    /// A provider name with no configuration.
    #[error("no key provider named `{0}` is configured (OCICRYPT_KEYPROVIDER_CONFIG)")]
    UnknownProvider(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A key file is not a usable public key or certificate.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// The scheme could not resolve the recipient (no OpenPGP key with that name, a PKCS#11
    /// key that cannot be found, …).
    #[error("{0}")]
    Scheme(String),
}

impl RecipientError {
    /// A likely fix, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            RecipientError::NoScheme | RecipientError::UnknownScheme(_) => Some(
                "write the recipient as jwe:PUBLIC-KEY-FILE, pgp:EMAIL, pkcs7:CERT-FILE, pkcs11:FILE or provider:NAME".into(),
            ),
            RecipientError::UnknownProvider(_) => Some(
                "set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file with a \"key-providers\" entry of that name".into(),
            ),
            RecipientError::Key { source, .. } => source.hint(),
            _ => None,
        }
    }
}

/// The wrapped-key annotations of a layer, parsed: scheme id → envelope (or why it is unusable).
fn scheme_envelopes(
    registry: &Registry,
    annotations: &JsonObject,
) -> Vec<(String, Result<Envelope, EnvelopeError>)> {
    let mut out: Vec<(String, Result<Envelope, EnvelopeError>)> = annotations
        .keys()
        .filter_map(|k| {
            let scheme = scheme_of_annotation(k)?.to_string();
            let value = annotations.get_str(k).ok().flatten().unwrap_or_default();
            Some((scheme, Envelope::parse(&value)))
        })
        .collect();
    // Deterministic order: registered schemes first, in registry order.
    out.sort_by_key(|(s, _)| {
        registry
            .wrappers()
            .position(|w| w.id() == s)
            .unwrap_or(usize::MAX)
    });
    out
}

/// Recover a layer's private options from its annotations with `keys`, trying every scheme
/// present, every entry and every key.
pub fn unwrap_layer(
    registry: &Registry,
    annotations: &JsonObject,
    keys: &KeyRing,
) -> Result<Unwrapped, UnwrapError> {
    let envelopes = scheme_envelopes(registry, annotations);
    if envelopes.is_empty() {
        return Err(UnwrapError::NoWrappedKeys);
    }
    let schemes: Vec<String> = envelopes.iter().map(|(s, _)| s.clone()).collect();
    let mut problems = Vec::new();
    let mut attempts = Vec::new();
    let mut tried_any = false;
    for (scheme, envelope) in &envelopes {
        let Some(wrapper) = registry.get(scheme) else {
            problems.push(format!("{scheme}: {}", unknown_scheme_reason(scheme)));
            continue;
        };
        let envelope = match envelope {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("{scheme}: {e}"));
                continue;
            }
        };
        if !wrapper.has_keys(keys) {
            continue;
        }
        tried_any = true;
        let many = envelope.entries().len() > 1;
        for (i, blob) in envelope.entries().iter().enumerate() {
            let label = if many {
                format!("{scheme} entry {i}")
            } else {
                scheme.clone()
            };
            match wrapper.unwrap(keys, blob) {
                Ok(u) => return Ok(u),
                Err(UnwrapFailure::Malformed(reason)) => {
                    attempts.push(format!("{label}: malformed: {reason}"))
                }
                Err(UnwrapFailure::NotOpened(tried)) => attempts.extend(
                    tried
                        .into_iter()
                        .map(|a| format!("{label} with {}: {}", a.key, a.reason)),
                ),
            }
        }
    }
    if !tried_any && keys.is_empty() && keys.providers.is_empty() {
        return Err(UnwrapError::NoKeysGiven { schemes, problems });
    }
    if !tried_any {
        return Err(UnwrapError::NoUsableKeys { schemes, problems });
    }
    attempts.extend(problems);
    Err(UnwrapError::NoKeyOpened { schemes, attempts })
}

fn unknown_scheme_reason(scheme: &str) -> String {
    match scheme.strip_prefix("provider.") {
        Some(name) => format!("no key provider named `{name}` is configured"),
        None if scheme == "pgp" => "OpenPGP is not available in this build".into(),
        None => "not a scheme layercrypt knows".into(),
    }
}

/// Wrap `options` for every recipient: one blob per scheme. Returns (annotation key, value)
/// pairs, sorted by key.
pub fn wrap_for(
    registry: &Registry,
    recipients: &[Recipient],
    options: &[u8],
) -> Result<Vec<(String, String)>, WrapError> {
    let mut out = Vec::new();
    for wrapper in registry.wrappers() {
        let mine: Vec<&Recipient> = recipients
            .iter()
            .filter(|r| r.scheme == wrapper.id())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let blob = wrapper.wrap(&mine, options)?;
        out.push((
            keys_annotation(wrapper.id()),
            Envelope::new(vec![blob]).to_annotation(),
        ));
    }
    out.sort();
    Ok(out)
}

/// Why a layer's recipients cannot be changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RekeyError {
    /// Wrapped keys of a scheme this run cannot read or write (an unconfigured key provider,
    /// a scheme compiled out, an invalid annotation): replacing every recipient would drop
    /// them silently.
    #[error(
        "it has wrapped keys for {scheme}, which this run cannot handle ({reason}); replacing every recipient would drop them"
    )]
    UnhandledScheme {
        /// The scheme id.
        scheme: String,
        /// Why it cannot be handled.
        reason: String,
    },
    /// A `--remove` cannot be carried out on one scheme's wrapped keys.
    #[error("cannot remove {spec} from its {scheme} wrapped keys: {reason}")]
    Remove {
        /// The `--remove` value.
        spec: String,
        /// The scheme id.
        scheme: String,
        /// Why.
        reason: RemoveError,
    },
    /// Adding would put more wrapped keys in one annotation than readers accept.
    #[error(
        "adding would give {annotation} {count} wrapped keys, more than the {} readers accept; use --set to wrap once for every recipient",
        crate::format::MAX_ENVELOPE_ENTRIES
    )]
    TooManyEntries {
        /// The annotation.
        annotation: String,
        /// How many entries it would hold.
        count: usize,
    },
    /// The removals would leave nobody able to open the layer.
    #[error("removing {} would leave it with no recipient at all", specs.join(", "))]
    NoneLeft {
        /// The `--remove` values that matched.
        specs: Vec<String>,
    },
}

/// A layer's wrapped-key annotations after removals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EditedKeys {
    /// (annotation key, value) of every wrapped-key annotation that remains; untouched
    /// values are kept byte for byte.
    pub annotations: Vec<(String, String)>,
    /// Per matcher, in order: how many entries it removed.
    pub removed: Vec<usize>,
}

impl EditedKeys {
    /// Append blobs wrapped for more recipients (`wrap_for` output) to their schemes'
    /// annotations, as `,base64(blob)`, creating the annotations that do not exist yet.
    ///
    /// Fails when a scheme's annotation would hold more than
    /// [`MAX_ENVELOPE_ENTRIES`](crate::format::MAX_ENVELOPE_ENTRIES) wrapped keys, which no
    /// reader (this one included) would accept.
    pub fn append(&mut self, wrapped: Vec<(String, String)>) -> Result<(), RekeyError> {
        for (key, value) in wrapped {
            match self.annotations.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => {
                    let count = existing.split(',').count() + value.split(',').count();
                    if count > crate::format::MAX_ENVELOPE_ENTRIES {
                        return Err(RekeyError::TooManyEntries {
                            annotation: key,
                            count,
                        });
                    }
                    existing.push(',');
                    existing.push_str(&value);
                }
                None => self.annotations.push((key, value)),
            }
        }
        Ok(())
    }
}

/// Remove the recipients `matchers` name from a layer's wrapped keys, scheme by scheme
/// ([`KeyWrapper::remove`]); annotations of schemes this registry lacks are kept untouched
/// unless a `provider:NAME` matcher names them. The result may hold no annotation at all:
/// the caller decides whether recipients added in the same run make up for that.
pub fn remove_from_layer(
    registry: &Registry,
    annotations: &JsonObject,
    matchers: &[RecipientMatcher],
) -> Result<EditedKeys, RekeyError> {
    let mut out = EditedKeys {
        annotations: Vec::new(),
        removed: vec![0; matchers.len()],
    };
    for (scheme, envelope) in scheme_envelopes(registry, annotations) {
        let key = keys_annotation(&scheme);
        let raw = annotations.get_str(&key).ok().flatten().unwrap_or_default();
        let provider = matchers.iter().position(|m| {
            matches!(&m.target, MatchTarget::Provider(name) if scheme == format!("provider.{name}"))
        });
        if let Some(i) = provider {
            out.removed[i] += envelope.as_ref().map_or(1, |e| e.entries().len());
            continue;
        }
        let (Some(wrapper), Ok(envelope)) = (registry.get(&scheme), envelope) else {
            out.annotations.push((key, raw));
            continue;
        };
        let mut blobs = Vec::new();
        let mut changed = false;
        'blobs: for blob in envelope.entries() {
            let mut current = blob.clone();
            for (i, m) in matchers.iter().enumerate() {
                let removal = wrapper
                    .remove(&current, m)
                    .map_err(|reason| RekeyError::Remove {
                        spec: m.spec.clone(),
                        scheme: scheme.clone(),
                        reason,
                    })?;
                match removal {
                    Removal::Unchanged => {}
                    Removal::Edited { blob, removed } => {
                        out.removed[i] += removed;
                        current = blob;
                        changed = true;
                    }
                    Removal::Emptied { removed } => {
                        out.removed[i] += removed;
                        changed = true;
                        continue 'blobs;
                    }
                }
            }
            blobs.push(current);
        }
        if !changed {
            out.annotations.push((key, raw));
        } else if !blobs.is_empty() {
            out.annotations
                .push((key, Envelope::new(blobs).to_annotation()));
        }
    }
    Ok(out)
}

/// Whether a layer's wrapped keys certainly include `recipient` (as far as its scheme can
/// identify entries; an entry that cannot be attributed does not count).
pub fn has_recipient(registry: &Registry, annotations: &JsonObject, recipient: &Recipient) -> bool {
    let Some(wrapper) = registry.get(&recipient.scheme) else {
        return false;
    };
    let matcher = RecipientMatcher {
        spec: recipient.spec.clone(),
        target: MatchTarget::Recipients(vec![recipient.clone()]),
    };
    scheme_envelopes(registry, annotations)
        .into_iter()
        .filter(|(s, _)| *s == recipient.scheme)
        .filter_map(|(_, e)| e.ok())
        .any(|e| {
            e.entries().iter().any(|b| {
                matches!(
                    wrapper.remove(b, &matcher),
                    Ok(Removal::Edited { .. } | Removal::Emptied { .. })
                )
            })
        })
}

/// Refuse a layer with wrapped keys that this run cannot handle, before they are replaced.
pub fn check_all_schemes_handled(
    registry: &Registry,
    annotations: &JsonObject,
) -> Result<(), RekeyError> {
    for (scheme, envelope) in scheme_envelopes(registry, annotations) {
        let reason = match (registry.get(&scheme), envelope) {
            (None, _) => unknown_scheme_reason(&scheme),
            (_, Err(e)) => e.to_string(),
            _ => continue,
        };
        return Err(RekeyError::UnhandledScheme { scheme, reason });
    }
    Ok(())
}

/// Whether a value looks like an OpenPGP key id or fingerprint (16, 40 or 64 hex digits,
/// `0x` optional).
fn is_hex_key_id(value: &str) -> bool {
    let hex = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(value);
    matches!(hex.len(), 16 | 40 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Describe every wrapped-key annotation of a layer: per scheme, its recipients (or why they
/// cannot be listed).
pub fn describe_layer(
    registry: &Registry,
    annotations: &JsonObject,
    context: &DescribeContext,
) -> Vec<(String, Result<Vec<RecipientInfo>, String>)> {
    scheme_envelopes(registry, annotations)
        .into_iter()
        .map(|(scheme, envelope)| {
            let described = match (registry.get(&scheme), envelope) {
                (_, Err(e)) => Err(e.to_string()),
                // A provider's blob is opaque; its name is all there is to show.
                (None, Ok(_)) if scheme.starts_with("provider.") => Ok(vec![RecipientInfo {
                    scheme: scheme.clone(),
                    ..Default::default()
                }]),
                (None, Ok(_)) => Err(unknown_scheme_reason(&scheme)),
                (Some(w), Ok(env)) => env
                    .entries()
                    .iter()
                    .map(|b| w.describe(b, context))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.into_iter().flatten().collect()),
            };
            (scheme, described)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(spec: &str) -> Result<Vec<Recipient>, RecipientFailure> {
        Registry::builtin().load_recipients(&[spec.to_string()])
    }

    #[test]
    fn recipient_strings_are_checked() {
        assert!(matches!(
            load("key.pem"),
            Err(RecipientFailure {
                error: RecipientError::NoScheme,
                ..
            })
        ));
        assert!(matches!(
            load("rsa:key.pem"),
            Err(RecipientFailure { error: RecipientError::UnknownScheme(s), .. }) if s == "rsa"
        ));
        assert!(matches!(
            load("provider:kbs:x"),
            Err(RecipientFailure { error: RecipientError::UnknownProvider(s), .. }) if s == "kbs"
        ));
        assert!(matches!(
            load("jwe:/nonexistent/key.pem"),
            Err(RecipientFailure {
                error: RecipientError::Io { .. },
                ..
            })
        ));
    }

    #[test]
    fn unwrap_reports_what_it_found() {
        let registry = Registry::builtin();
        let keys = KeyRing::default();
        let none =
            JsonObject::parse(br#"{"org.opencontainers.image.enc.pubopts":"e30="}"#).unwrap();
        assert_eq!(
            unwrap_layer(&registry, &none, &keys).unwrap_err(),
            UnwrapError::NoWrappedKeys
        );
        let other =
            JsonObject::parse(br#"{"org.opencontainers.image.enc.keys.future":"AAE="}"#).unwrap();
        let err = unwrap_layer(&registry, &other, &keys).unwrap_err();
        assert!(err.to_string().contains("future"), "{err}");
    }

    #[test]
    fn appending_refuses_more_wrapped_keys_than_readers_accept() {
        let key = "org.opencontainers.image.enc.keys.jwe".to_string();
        let full = vec!["AAE="; crate::format::MAX_ENVELOPE_ENTRIES - 1].join(",");
        let mut edited = EditedKeys {
            annotations: vec![(key.clone(), full)],
            removed: Vec::new(),
        };
        edited.append(vec![(key.clone(), "AAI=".into())]).unwrap();
        let err = edited
            .append(vec![(key.clone(), "AAM=".into())])
            .unwrap_err();
        assert!(
            matches!(err, RekeyError::TooManyEntries { count, .. } if count == crate::format::MAX_ENVELOPE_ENTRIES + 1)
        );
        // A scheme without an annotation yet gets a new one.
        edited
            .append(vec![(
                "org.opencontainers.image.enc.keys.pgp".into(),
                "AAQ=".into(),
            )])
            .unwrap();
        assert_eq!(edited.annotations.len(), 2);
    }
}
