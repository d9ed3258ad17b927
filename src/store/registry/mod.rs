//! Images in registries, `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, read and re-keyed from
//! their manifests alone.
//!
//! A registry is a store like the others ([`super::BlobSource`], [`super::SourceStore`],
//! [`super::StoreWriter`]) that declares it holds no layer data to write
//! ([`super::Capabilities::layer_data`]): the plan refuses to encrypt, decrypt or rotate there
//! before any request. Its top-level index is made up from the repository: one entry per tag
//! named (or per tag of the repository), each with its manifest's digest and the tag as
//! `org.opencontainers.image.ref.name`. Reading an image fetches its manifests, indexes and
//! configs, never a layer (but for `verify --full`, which streams them). Writing pushes each
//! rewritten manifest by digest as the engine writes it (children before the indexes that
//! list them), and the commit moves the tags last, so a failure leaves every tag on its old,
//! complete image. Manifests a commit replaced are deleted only when asked ([`Access`]), and
//! never while another tag still needs them.
//!
//! [`reference`] and [`access`] are plain data, always built; the HTTP client and the store
//! need the `registry` feature, without which opening a registry fails with
//! [`RegistryError::NotBuilt`].

pub mod access;
pub mod reference;

#[cfg(feature = "registry")]
mod auth;
#[cfg(feature = "registry")]
mod certs;
#[cfg(feature = "registry")]
mod client;
#[cfg(feature = "registry")]
mod repository;

use std::path::PathBuf;

pub use access::{Access, Credentials};
pub use reference::RegistryRef;
#[cfg(feature = "registry")]
pub use repository::{RegistryStore, RegistryWriter};

use crate::digest::Digest;

/// A registry problem, naming the registry and what was asked of it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// This build has no registry support.
    #[error("this layercrypt was built without registry support (cargo feature `registry`)")]
    NotBuilt,
    /// The HTTP client could not be set up.
    #[error("cannot set up a client for {registry}: {reason}")]
    Setup {
        /// The registry.
        registry: String,
        /// Why.
        reason: String,
    },
    /// A certificate directory holds something unusable.
    #[error("certificate directory: {}: {reason}", path.display())]
    Certificates {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An auth file cannot be used.
    #[error("auth file {}: {reason}", path.display())]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A credential helper failed.
    #[error("credential helper {helper} for {registry}: {reason}")]
    CredentialHelper {
        /// The helper program.
        helper: String,
        /// The registry.
        registry: String,
        /// What happened.
        reason: String,
    },
    /// The registry could not be reached (or the connection broke), after retries.
    #[error("cannot reach registry {registry} for {what}: {reason}")]
    Unreachable {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The connection's error.
        reason: String,
    },
    /// The registry's TLS certificate (or ours) was not accepted.
    #[error("registry {registry}, {what}: TLS: {reason}")]
    Tls {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The TLS library's error.
        reason: String,
    },
    /// The registry redirected where layercrypt does not follow.
    #[error("registry {registry}, {what}: {reason}")]
    Redirect {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// Where to, and why not.
        reason: String,
    },
    /// The registry's token service failed.
    #[error("registry {registry}'s token service: {reason}")]
    Token {
        /// The registry.
        registry: String,
        /// What went wrong.
        reason: String,
    },
    /// 401 or 403.
    #[error("registry {registry} denied {what} ({status}{})", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's message.
        detail: Option<String>,
        /// Whether credentials were sent.
        credentials: bool,
    },
    /// 404.
    #[error("registry {registry} has no {what}")]
    NotFound {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
    },
    /// Any other failing status, after retries.
    #[error("registry {registry} answered {status} to {what}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's message.
        detail: Option<String>,
    },
    /// An answer larger than allowed.
    #[error("registry {registry} sent more than {limit} bytes for {what}")]
    TooLarge {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Content that does not match the digest it was asked for or vouched for.
    #[error("registry {registry} sent {what} whose bytes have digest {actual}, not {expected}")]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The digest expected.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// An answer that makes no sense.
    #[error("registry {registry}, {what}: {reason}")]
    BadAnswer {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// A stop was requested.
    #[error("interrupted")]
    Interrupted,
}

impl RegistryError {
    /// Whether retrying later may succeed (the registry was unreachable, busy or failing).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
