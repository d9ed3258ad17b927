//! OpenPGP (`org.opencontainers.image.enc.keys.pgp`). INTERFACE SKELETON: replaced by the
//! implementation on the pgp branch before it reaches main.

use crate::keys::KeyError;
use crate::keys::source::PassphraseSource;
use crate::keywrap::{
    DescribeContext, Environment, KeyRing, KeyWrapper, Recipient, RecipientFailure, RecipientInfo,
    RecipientSpec, UnwrapFailure, Unwrapped, WrapError,
};

/// The OpenPGP scheme.
#[derive(Debug)]
pub struct PgpWrapper {
    _gpg_homedir: Option<std::path::PathBuf>,
}

impl PgpWrapper {
    /// The scheme for `env` (its GnuPG home).
    pub fn new(env: &Environment) -> PgpWrapper {
        PgpWrapper {
            _gpg_homedir: env.gpg_homedir.clone(),
        }
    }
}

/// An OpenPGP recipient: a certificate's encryption subkeys.
#[derive(Clone, Debug)]
pub struct PgpRecipient {}

/// An exported OpenPGP secret keyring (binary or armored), with its passphrase source.
#[derive(Debug)]
pub struct SecretKeyring {}

impl SecretKeyring {
    /// Parse a secret keyring; the passphrase is used when a protected key is needed.
    pub fn parse(
        _data: &[u8],
        _source: &str,
        _passphrase: Option<PassphraseSource>,
    ) -> Result<SecretKeyring, KeyError> {
        Err(KeyError::Malformed(
            "OpenPGP keyrings: not implemented on this branch".into(),
        ))
    }
}

impl KeyWrapper for PgpWrapper {
    fn id(&self) -> &str {
        "pgp"
    }
    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        Err(RecipientFailure {
            spec: values[0].spec.clone(),
            error: crate::keywrap::RecipientError::Scheme("not implemented on this branch".into()),
        })
    }
    fn wrap(&self, _: &[&Recipient], _: &[u8]) -> Result<Vec<u8>, WrapError> {
        Err(WrapError {
            scheme: "pgp".into(),
            reason: "not implemented on this branch".into(),
        })
    }
    fn has_keys(&self, _: &KeyRing) -> bool {
        false
    }
    fn unwrap(&self, _: &KeyRing, _: &[u8]) -> Result<Unwrapped, UnwrapFailure> {
        Err(UnwrapFailure::Malformed(
            "not implemented on this branch".into(),
        ))
    }
    fn describe(&self, _: &[u8], _: &DescribeContext) -> Result<Vec<RecipientInfo>, String> {
        Err("not implemented on this branch".into())
    }
}
