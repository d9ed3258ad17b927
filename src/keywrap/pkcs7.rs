//! PKCS#7 / CMS (`org.opencontainers.image.enc.keys.pkcs7`). INTERFACE SKELETON: replaced by
//! the implementation on the pkcs7 branch before it reaches main.

use crate::keys::Certificate;
use crate::keywrap::{
    DescribeContext, KeyRing, KeyWrapper, Recipient, RecipientFailure, RecipientInfo,
    RecipientSpec, UnwrapFailure, Unwrapped, WrapError,
};

/// The PKCS#7 scheme.
#[derive(Clone, Copy, Debug)]
pub struct Pkcs7Wrapper;

/// A PKCS#7 recipient: an X.509 certificate with an RSA key.
#[derive(Clone, Debug)]
pub struct Pkcs7Recipient {
    /// The certificate.
    pub certificate: Certificate,
}

impl KeyWrapper for Pkcs7Wrapper {
    fn id(&self) -> &str {
        "pkcs7"
    }
    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        Err(RecipientFailure {
            spec: values[0].spec.clone(),
            error: crate::keywrap::RecipientError::Scheme("not implemented on this branch".into()),
        })
    }
    fn wrap(&self, _: &[&Recipient], _: &[u8]) -> Result<Vec<u8>, WrapError> {
        Err(WrapError {
            scheme: "pkcs7".into(),
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
