//! PKCS#11 (`org.opencontainers.image.enc.keys.pkcs11`). INTERFACE SKELETON: replaced by the
//! implementation on the pkcs11 branch before it reaches main.

use crate::keys::KeyError;
use crate::keywrap::{
    DescribeContext, Environment, KeyRing, KeyWrapper, Recipient, RecipientFailure, RecipientInfo,
    RecipientSpec, UnwrapFailure, Unwrapped, WrapError,
};

/// The PKCS#11 scheme.
#[derive(Debug)]
pub struct Pkcs11Wrapper {}

impl Pkcs11Wrapper {
    /// The scheme for `env` (module policy, OAEP hash).
    pub fn new(_env: &Environment) -> Pkcs11Wrapper {
        Pkcs11Wrapper {}
    }
}

/// A PKCS#11 recipient: a public key on a token, or a plain RSA public key (software OAEP).
#[derive(Clone, Debug)]
pub struct Pkcs11Recipient {}

/// A PKCS#11 key file (ocicrypt YAML: `pkcs11.uri`, `module.env`).
#[derive(Clone, Debug)]
pub struct Pkcs11Key {}

impl Pkcs11Key {
    /// Parse an ocicrypt PKCS#11 YAML key file.
    pub fn parse(_data: &[u8], _source: &str) -> Result<Pkcs11Key, KeyError> {
        Err(KeyError::Malformed(
            "PKCS#11 key files: not implemented on this branch".into(),
        ))
    }

    /// Environment variables the key's module needs (`module.env`).
    pub fn required_env(&self) -> &[(String, String)] {
        &[]
    }
}

impl KeyWrapper for Pkcs11Wrapper {
    fn id(&self) -> &str {
        "pkcs11"
    }
    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        Err(RecipientFailure {
            spec: values[0].spec.clone(),
            error: crate::keywrap::RecipientError::Scheme("not implemented on this branch".into()),
        })
    }
    fn wrap(&self, _: &[&Recipient], _: &[u8]) -> Result<Vec<u8>, WrapError> {
        Err(WrapError {
            scheme: "pkcs11".into(),
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
