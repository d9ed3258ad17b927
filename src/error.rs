//! The library's error type. Every variant names what failed: the image, platform, layer and
//! digest, the key file or the recipient. [`Error::hint`] suggests a fix where one is likely;
//! the CLI prints it as `hint: …`.

use crate::cipher::CipherError;
use crate::format::json::JsonError;
use crate::format::options::OptionsError;
use crate::image::ImageError;
use crate::keywrap::KeySourceError;
use crate::keywrap::{
    RecipientError, RegistryError, RekeyError, RemoveError, UnwrapError, WrapError,
};
use crate::plan::LayerRef;
use crate::store::StoreError;

/// Anything that can stop an operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image reference (`oci:PATH[:REF]`) cannot be used.
    #[error("invalid image reference `{reference}`: {reason}")]
    Reference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An image's manifests or indexes are invalid.
    #[error("{image}: {source}")]
    Image {
        /// The image or store.
        image: String,
        /// What is wrong.
        #[source]
        source: Box<ImageError>,
    },
    /// The selection cannot be satisfied.
    #[error("{image}: {reason}")]
    Selection {
        /// The image or store.
        image: String,
        /// Why.
        reason: String,
    },
    /// A recipient cannot be used.
    #[error("recipient `{spec}`: {source}")]
    Recipient {
        /// The recipient as given.
        spec: String,
        /// Why.
        #[source]
        source: RecipientError,
    },
    /// A decryption key cannot be used.
    #[error(transparent)]
    Key(#[from] KeySourceError),
    /// The key-wrap schemes could not be set up (a broken provider configuration).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The PKCS#11 key files ask for conflicting module environments.
    #[error(transparent)]
    Pkcs11Environment(#[from] crate::keywrap::pkcs11::ModuleEnvironmentError),
    /// Encrypting needs at least one recipient.
    #[error("no recipients given")]
    NoRecipients,
    /// Decrypting needs at least one key.
    #[error("no decryption keys given")]
    NoKeys,
    /// A layer could not be processed.
    #[error("{at}: {source}")]
    Layer {
        /// Which layer.
        at: LayerRef,
        /// Why.
        #[source]
        source: Box<LayerError>,
    },
    /// The destination cannot receive the result.
    #[error("{destination}: {reason}")]
    Destination {
        /// The destination reference.
        destination: String,
        /// Why.
        reason: String,
    },
    /// Encrypted images cannot be written to a docker-archive.
    #[error(
        "{destination}: a docker-archive cannot carry encryption metadata (layer media types and annotations), so encrypted images cannot be written to it"
    )]
    EncryptedToDockerArchive {
        /// The destination reference.
        destination: String,
    },
    /// A `--remove` matched no recipient of any selected layer.
    #[error("{image}: --remove {spec} matches no recipient of any selected layer")]
    RemovedNothing {
        /// The image or store.
        image: String,
        /// The `--remove` value.
        spec: String,
    },
    /// `-k provider:NAME` names a key provider the configuration does not have.
    #[error(
        "key `provider:{name}`: no key provider named `{name}` is configured (OCICRYPT_KEYPROVIDER_CONFIG)"
    )]
    UnknownKeyProvider {
        /// The provider name.
        name: String,
    },
    /// A feature this version does not have.
    #[error("{0} is not supported by this version of layercrypt")]
    Unsupported(String),
    /// A stop was requested ([`crate::interrupt`]) and the run stopped before its commit,
    /// leaving everything as it was.
    #[error("interrupted")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// How to configure a key provider.
const PROVIDER_CONFIG_HINT: &str = "set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file whose \"key-providers\" has an entry of that name (README: Key providers)";

/// Why one layer could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The layer's annotations are not a map of strings.
    #[error("its annotations are invalid: {0}")]
    Annotations(#[source] JsonError),
    /// No `org.opencontainers.image.enc.pubopts` annotation.
    #[error(
        "it has no org.opencontainers.image.enc.pubopts annotation, so its cipher and HMAC are unknown"
    )]
    MissingPublicOptions,
    /// The public options annotation is not base64.
    #[error("its public options annotation is not valid base64: {0}")]
    BadPublicOptionsBase64(String),
    /// Options JSON invalid.
    #[error("{0}")]
    Options(#[source] OptionsError),
    /// The key could not be unwrapped.
    #[error("cannot unwrap its layer key: {0}")]
    Unwrap(#[source] UnwrapError),
    /// Wrapping for recipients failed.
    #[error("{0}")]
    Wrap(#[source] WrapError),
    /// Cipher parameters or data refused.
    #[error("{0}")]
    Cipher(#[source] CipherError),
    /// Reading the layer or writing its result failed.
    #[error("{0}")]
    Store(#[source] StoreError),
    /// Its recipients cannot be changed as asked.
    #[error("{0}")]
    Rekey(#[source] RekeyError),
    /// A plain layer that carries encryption annotations.
    #[error(
        "it has a plain media type but carries org.opencontainers.image.enc.* annotations; refusing to encrypt it a second time"
    )]
    StrayEncryptionAnnotations,
}

impl Error {
    /// A failure of one layer.
    pub fn layer(at: &LayerRef, source: LayerError) -> Error {
        Error::Layer {
            at: at.clone(),
            source: Box::new(source),
        }
    }

    /// A failure reading an image's manifests or indexes.
    pub fn image(image: impl Into<String>, source: impl Into<ImageError>) -> Error {
        Error::Image {
            image: image.into(),
            source: Box::new(source.into()),
        }
    }

    /// Whether the run stopped because a stop was requested ([`crate::interrupt`]), whatever
    /// step noticed it and however that step reported it.
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            Error::Interrupted(_) | Error::Key(KeySourceError::Interrupted)
        ) || crate::interrupt::caused(self)
    }

    /// A likely fix, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Store(e) => e.hint(),
            Error::Image { source, .. } => match source.as_ref() {
                ImageError::Store(e) => e.hint(),
                _ => None,
            },
            Error::Recipient {
                spec,
                source: RecipientError::NoScheme,
            } => Some(format!(
                "a recipient names its scheme: jwe:{spec} for a public key file, pkcs7:{spec} for an X.509 certificate, pgp:{spec} for an OpenPGP certificate or e-mail address"
            )),
            Error::Recipient { source, .. } => source.hint(),
            Error::UnknownKeyProvider { .. } => Some(PROVIDER_CONFIG_HINT.into()),
            Error::Key(e) => e.hint(),
            Error::NoRecipients => Some("name at least one recipient with -r jwe:PUBLIC-KEY-FILE".into()),
            Error::EncryptedToDockerArchive { .. } => {
                Some("write the encrypted image to oci:DIR[:REF] or oci-archive:FILE[:REF] instead".into())
            }
            Error::NoKeys => Some("name the private key with -k KEY-FILE".into()),
            Error::RemovedNothing { .. } => Some(
                "`layercrypt inspect` lists each layer's recipients; remove by the recipient string used with -r, an OpenPGP key id or fingerprint, a JWE kid, or pkcs7:CERT".into(),
            ),
            Error::Layer { source, .. } => match source.as_ref() {
                LayerError::Unwrap(UnwrapError::NoKeysGiven { .. }) => Some(
                    "name the private key with -k KEY-FILE (`layercrypt inspect` lists the layer's recipients)".into(),
                ),
                LayerError::Unwrap(UnwrapError::NoUsableKeys { schemes, problems })
                    if schemes.iter().any(|s| s.starts_with("provider."))
                        && problems.iter().any(|p| p.starts_with("provider.")) =>
                {
                    Some(PROVIDER_CONFIG_HINT.into())
                }
                LayerError::Unwrap(UnwrapError::NoUsableKeys { .. }) => Some(
                    "pass a private key of a scheme the layer is encrypted for (see `layercrypt inspect`)".into(),
                ),
                LayerError::Unwrap(UnwrapError::NoKeyOpened { .. }) => Some(
                    "each key's reason is given above; `layercrypt inspect` lists the layer's recipients".into(),
                ),
                LayerError::Cipher(CipherError::HmacMismatch) => Some(
                    "the layer blob was modified or damaged; copy the image again from its source".into(),
                ),
                LayerError::Store(e) => e.hint(),
                LayerError::Rekey(RekeyError::Remove {
                    reason: RemoveError::Unidentifiable(_) | RemoveError::Unsupported,
                    ..
                }) => Some(
                    "replace every recipient instead: --set RECIPIENT... (with --rotate, so that the removed party's copy of the layer key stops working)".into(),
                ),
                LayerError::Rekey(RekeyError::UnhandledScheme { .. }) => Some(
                    "configure that scheme for this run (OCICRYPT_KEYPROVIDER_CONFIG for a key provider), or add and remove recipients with --add/--remove, which keep it".into(),
                ),
                LayerError::Rekey(RekeyError::NoneLeft { .. }) => Some(
                    "add the new recipients in the same run (--add), or use --set".into(),
                ),
                _ => None,
            },
            _ => None,
        }
    }
}
