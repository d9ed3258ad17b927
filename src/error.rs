//! The library's error type. Every variant names what failed: the image, platform, layer and
//! digest, the key file or the recipient.
//!
//! Errors say what is wrong, not which command-line flag would fix it: the library has no
//! flags. The `layercrypt` command adds its `hint:` lines (which name flags) itself, from the
//! variants, as rage's binary does over the `age` library.

use crate::cipher::CipherError;
use crate::format::json::JsonError;
use crate::format::options::OptionsError;
use crate::image::ImageError;
use crate::image::LayerRef;
use crate::keywrap::KeySourceError;
use crate::keywrap::{
    RecipientError, RecipientFailure, RegistryError, RekeyError, UnwrapError, WrapError,
};
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
    /// The destination holds one platform per image, and an image has another number of
    /// platforms selected.
    #[error(
        "{destination}: a docker-archive holds one platform per image, and {image} has {} selected ({}); select one platform",
        platforms.len(),
        platforms.join(", ")
    )]
    OnePlatformPerImage {
        /// The destination reference.
        destination: String,
        /// The image.
        image: String,
        /// The platforms selected in it.
        platforms: Vec<String>,
    },
    /// The destination cannot hold encrypted layers, and a layer would stay encrypted.
    #[error(
        "{destination}: layer {index} of {image} ({platform}) would stay encrypted, and a docker-archive cannot carry encrypted layers; decrypt every layer, or write to oci: or oci-archive:"
    )]
    LayerStaysEncrypted {
        /// The destination reference.
        destination: String,
        /// The image.
        image: String,
        /// The platform of the manifest.
        platform: String,
        /// The layer's position.
        index: usize,
    },
    /// An image's bottom layers are not those of the base image given (`--base`).
    #[error("{image} ({platform}) is not built on {base}: {reason}")]
    NotOnBase {
        /// The image.
        image: String,
        /// The platform of its manifest.
        platform: String,
        /// The base image named.
        base: String,
        /// What differs.
        reason: String,
    },
    /// The result would land in another store than the source, so every blob it keeps would be
    /// copied across, and one of the two holds no layer data (a registry's manifests): refused
    /// before anything is read.
    #[error(
        "{destination}: the result would land in another store than {source_image}, which means copying every layer, and {without} holds no layer data (a registry image is re-keyed within its own repository)"
    )]
    CrossStore {
        /// The source image.
        source_image: String,
        /// The destination named.
        destination: String,
        /// The one of the two that holds no layer data.
        without: String,
    },
    /// The operation streams layer data, and a store of the run holds none (a registry's
    /// manifests): refused before anything is read.
    #[error(
        "{store}: {} {}layer data, which layercrypt does not move to or from a registry (only re-wrapping keys works there: rekey --add, --remove, --set)",
        operation,
        if *rotate { "with a new content key re-encrypts all " } else { "reads and writes " }
    )]
    NeedsLayerData {
        /// The store without layer data.
        store: String,
        /// What was asked.
        operation: &'static str,
        /// Whether it is a rotation (a re-key that re-encrypts).
        rotate: bool,
    },
    /// A layer's data would have to be read from, or written to, a store that holds none.
    #[error(
        "{at}: its data would have to be streamed, and {store} holds no layer data (only re-wrapping keys works there)"
    )]
    NoLayerData {
        /// The store without layer data.
        store: String,
        /// The first layer that needs it.
        at: LayerRef,
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
    #[error("{image}: the recipient to remove, {spec}, matches no recipient of any selected layer")]
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
    /// The worker threads could not be started.
    #[error("could not start {threads} worker threads: {reason}")]
    ThreadPool {
        /// How many were asked for (0: one per core).
        threads: usize,
        /// What the system said.
        reason: String,
    },
    /// A stop was requested ([`crate::interrupt`]) and the run stopped before its commit,
    /// leaving everything as it was.
    #[error("interrupted")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

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

    /// Whether retrying later may succeed (the command's exit status 3): an I/O failure that is
    /// not about the input, a full disk, a lock held by another run, a registry that was
    /// unreachable, busy or failing, no thread for the workers. Everything else (bad usage,
    /// missing or malformed input, no usable key, a refused request) is permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Store(e) => e.is_transient(),
            Error::Image { source, .. } => match source.as_ref() {
                crate::image::ImageError::Store(e) => e.is_transient(),
                _ => false,
            },
            Error::Layer { source, .. } => match source.as_ref() {
                LayerError::Store(e) => e.is_transient(),
                _ => false,
            },
            Error::ThreadPool { .. } => true,
            _ => false,
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
}

impl From<RecipientFailure> for Error {
    fn from(f: RecipientFailure) -> Error {
        Error::Recipient {
            spec: f.spec,
            source: f.error,
        }
    }
}
