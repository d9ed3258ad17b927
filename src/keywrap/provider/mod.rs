//! Key providers (`org.opencontainers.image.enc.keys.provider.NAME`). INTERFACE SKELETON:
//! replaced by the implementation on the provider branch before it reaches main.

use crate::keywrap::{
    DescribeContext, Environment, KeyRing, KeyWrapper, Recipient, RecipientFailure, RecipientInfo,
    RecipientSpec, RegistryError, UnwrapFailure, Unwrapped, WrapError,
};

/// A configured key provider (one scheme per provider name).
#[derive(Debug)]
pub struct ProviderWrapper {
    id: String,
}

/// A key-provider recipient: the provider's arguments from `provider:NAME:ARGS`.
#[derive(Clone, Debug)]
pub struct ProviderRecipient {
    /// The arguments after `provider:NAME:`, if any.
    pub args: Option<String>,
}

/// The providers configured by `env.keyprovider_config`.
pub fn configured(
    _env: &Environment,
    _warnings: &mut Vec<String>,
) -> Result<Vec<ProviderWrapper>, RegistryError> {
    Ok(Vec::new())
}

impl KeyWrapper for ProviderWrapper {
    fn id(&self) -> &str {
        &self.id
    }
    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        Err(RecipientFailure {
            spec: values[0].spec.clone(),
            error: crate::keywrap::RecipientError::Scheme("not implemented on this branch".into()),
        })
    }
    fn wrap(&self, _: &[&Recipient], _: &[u8]) -> Result<Vec<u8>, WrapError> {
        Err(WrapError {
            scheme: self.id.clone(),
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
