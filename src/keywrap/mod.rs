//! Key wrapping: protecting a layer's private options for recipients, and recovering them with
//! keys.
//!
//! Each scheme is one module behind the [`KeyWrapper`] trait: resolve its recipients, wrap for
//! them, unwrap with the keys it can use, remove recipients from a wrapped blob, and describe
//! one for `inspect`. The [`Registry`] holds the schemes of a run: `jwe`, `pgp` (cargo feature
//! `pgp`), `pkcs7`, `pkcs11`, and one `provider.NAME` per configured key provider.
//!
//! Adding a scheme touches more than its module and a line in [`Registry::new`]: its
//! recipients are a [`RecipientKind`] variant, its keys a [`KeyRing`] field, and the key-file
//! loader (`keyring`, with [`FileKind`](crate::keys::FileKind) for a new kind of file) must
//! send its key files there. For the closed set of five schemes ocicrypt defines, an enum the
//! compiler checks is an acceptable price for not passing keys and recipients around as
//! `dyn Any`.
//!
//! Around the trait: `keyring` (the keys of a run and their loader), `unwrap` (recovering a
//! layer's options, trying every scheme, entry and key), `edit` (removing and adding
//! recipients without the keys, for re-keying) and `describe` (who a layer is for). Their
//! items are re-exported here. Unwrapped options are returned in zeroizing buffers; nothing
//! here logs key material.

mod describe;
mod edit;
pub mod jwe;
mod keyring;
#[cfg(feature = "pgp")]
pub mod pgp;
pub mod pkcs11;
pub mod pkcs7;
pub mod provider;
mod unwrap;

use std::fmt;
use std::path::PathBuf;

use crate::format::json::JsonObject;
use crate::format::{Envelope, EnvelopeError, keys_annotation, scheme_of_annotation};
use crate::keys::{KeyError, PublicKey};

pub use describe::{DescribeContext, RecipientInfo, describe_layer};
pub use edit::{
    EditedKeys, MatchTarget, RecipientMatcher, RekeyError, Removal, RemoveError,
    check_all_schemes_handled, has_recipient, remove_from_layer,
};
pub use keyring::{
    KeyOptions, KeyRing, KeySourceError, KeySpec, LoadedKeys, NamedCertificate, NamedKey,
    ProviderKey, key_files, load_key_ring, load_private_key,
};
pub use unwrap::{Attempt, UnwrapError, UnwrapFailure, Unwrapped, unwrap_layer};

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

/// Whether a value looks like an OpenPGP key id or fingerprint (16, 40 or 64 hex digits,
/// `0x` optional).
fn is_hex_key_id(value: &str) -> bool {
    let hex = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(value);
    matches!(hex.len(), 16 | 40 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit())
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
}
