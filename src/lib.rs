//! layercrypt encrypts, decrypts and inspects the layers of OCI container images on disk,
//! byte-compatible with [containers/ocicrypt] as used by skopeo, podman, buildah, containerd
//! imgcrypt and nerdctl. It needs no daemon, registry or network.
//!
//! # Which type for which job
//!
//! - Encrypt, decrypt or re-key images (change their recipients, rotate their layer keys):
//!   build an [`engine::Request`] (source and destination [`store::ImageRef`], a
//!   [`plan::Selection`] and a [`plan::Operation`]) and call [`engine::run`]. It opens the
//!   source ([`source`]), plans ([`plan`]: nothing is written if the request cannot be
//!   satisfied, judged from what the destination declares it can hold,
//!   [`store::Capabilities`]), then streams each selected layer once, in parallel, and commits
//!   the new `index.json` last.
//! - Resolve recipients and pick schemes: [`keywrap::Registry`]; load decryption keys:
//!   [`keywrap::load_key_ring`].
//! - Show progress while layers stream: implement [`progress::Progress`] and call
//!   [`engine::run_with_progress`] or [`verify::verify_with_progress`].
//! - Stop a run from another thread (a signal handler's thread, a deadline): call
//!   [`interrupt::request`]; the run unwinds, removing what it wrote, and its error says so
//!   ([`Error::is_interrupted`]).
//! - See who can open what: [`inspect::inspect`]. Check that keys open the layers and that
//!   they are intact, writing nothing: [`verify::verify`].
//! - Read images yourself: [`source::open`] loads a store's images, [`plan::select`] applies
//!   `--platform`/`--layer` rules, [`image`] is the graph of manifests and indexes.
//! - Work with the wire format directly: [`cipher`] (the `AES_256_CTR_HMAC_SHA256` layer
//!   cipher over `Read`/`Write` or in place), [`format`] (descriptors, options JSON,
//!   annotations, media types), [`keywrap`] (key-wrap schemes behind one trait), [`keys`]
//!   (key-file parsing), [`store`] (image stores behind one interface).
//!
//! # Layers
//!
//! Modules depend downward only (a test checks there is no cycle): `engine` → `plan`,
//! `source` → `image` → `store` → `format`, `digest`; `keywrap` → `keys`. The command line is
//! not part of the library: it lives in the `layercrypt` binary, behind the default `cli`
//! feature, and embedders that turn default features off compile none of it (clap, progress
//! bars, signal handling).
//!
//! # Example
//!
//! Encrypt every layer of an OCI layout for one JWE recipient, writing a new layout:
//!
//! ```no_run
//! use layercrypt::engine::{self, Request};
//! use layercrypt::keywrap::{Environment, Registry};
//! use layercrypt::plan::{Operation, Selection};
//! use layercrypt::store::ImageRef;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The schemes, configured as ocicrypt configures them (GnuPG home, key providers, PKCS#11).
//! let registry = Registry::new(&Environment::from_process(None))?;
//! let recipients = registry
//!     .load_recipients(&["jwe:alice.pub.pem".to_string()])
//!     .map_err(layercrypt::Error::from)?;
//! let request = Request {
//!     source: ImageRef::parse("oci:app:v1")?,
//!     destination: Some(ImageRef::parse("oci:app-encrypted:v1")?),
//!     selection: Selection::default(),
//!     operation: Operation::Encrypt { recipients },
//!     jobs: None,
//!     dry_run: false,
//!     registry,
//! };
//! let outcome = engine::run(&request, &|event| eprintln!("{event:?}"))?;
//! # let _ = outcome;
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! - Decrypted data is published only after the layer's HMAC and the source blob's digest and
//!   size have been verified.
//! - Output is written blobs first, `index.json` last and atomically; a failed run leaves the
//!   destination as it was.
//! - Manifests and indexes keep unknown fields and their order; decrypting what was encrypted
//!   restores Go-written manifests and `index.json` byte for byte.
//! - Key material lives in zeroizing buffers and is redacted from `Debug` output.
//!
//! [containers/ocicrypt]: https://github.com/containers/ocicrypt

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod asn1;
pub mod cipher;
pub mod digest;
pub mod engine;
pub mod error;
pub mod format;
pub mod image;
pub mod inspect;
pub mod interrupt;
pub mod keys;
pub mod keywrap;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod source;
pub mod store;
#[cfg(test)]
mod testutil;
pub mod verify;

/// Internals the fuzz targets (`fuzz/`) drive directly: parsers of untrusted bytes that are not
/// part of the library's API. Compiled only under `cargo fuzz` (`--cfg fuzzing`).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::format::docker_reference::normalize_reference;
    pub use crate::keywrap::pgp::message::{MAX_OPTIONS, Message, pkesk_spans};
}

pub use error::Error;
