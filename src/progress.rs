//! Progress of long work: how many bytes of which blob have been streamed so far.
//!
//! The engine (encrypt, decrypt, `rekey --rotate`, copying blobs into a new destination) and
//! `verify --full` report through a [`Progress`] observer: first [`Progress::expect`] with the
//! bytes about to be streamed, then, for each blob, [`Progress::start`] and, on the returned
//! [`BlobProgress`], [`advance`](BlobProgress::advance) once per buffer and
//! [`finish`](BlobProgress::finish) when the blob was streamed to its end. A handle dropped
//! without `finish` belongs to a blob that was abandoned (an error).
//!
//! What this module must never do: cost anything when nobody watches. [`Silent`] ignores every
//! call, its handle is a zero-sized box (no allocation), and callers report at most once per
//! buffer, never per byte. Reports carry sizes and positions only, never data or keys.

use std::fmt;

use crate::digest::Digest;
use crate::image::LayerRef;

/// What a stream of bytes is, for the observer's labels.
#[derive(Clone, Copy, Debug)]
pub enum Item<'a> {
    /// A layer being encrypted, decrypted or re-encrypted (its first use in the plan).
    Layer(&'a LayerRef),
    /// A blob copied unchanged into a new destination.
    Copy(&'a Digest),
    /// A layer blob read and checked by `verify --full`.
    Check(&'a Digest),
}

impl fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Layer(at) => write!(
                f,
                "{} layer {} {}",
                at.platform,
                at.index,
                at.digest.short()
            ),
            Item::Copy(digest) => write!(f, "copy {}", digest.short()),
            Item::Check(digest) => write!(f, "check {}", digest.short()),
        }
    }
}

/// An observer of a run's progress. Every method has a default that does nothing, so an
/// implementation overrides only what it shows. Called from worker threads.
pub trait Progress: Sync {
    /// `blobs` blobs of `bytes` bytes in all are about to be streamed (called before the first
    /// of them starts; a run may call it again for a later stage, such as copying).
    fn expect(&self, blobs: usize, bytes: u64) {
        let _ = (blobs, bytes);
    }

    /// One blob of `total` bytes starts streaming; report on it through the returned handle.
    fn start(&self, item: Item<'_>, total: u64) -> Box<dyn BlobProgress + '_> {
        let _ = (item, total);
        Box::new(Silent)
    }
}

/// Progress of one blob.
pub trait BlobProgress: Send {
    /// `bytes` more bytes of the blob went through (once per buffer).
    fn advance(&mut self, bytes: u64) {
        let _ = bytes;
    }

    /// The blob was streamed to its end.
    fn finish(self: Box<Self>) {}
}

/// The observer that shows nothing: the default of [`engine::run`](crate::engine::run) and
/// [`verify::verify`](crate::verify::verify).
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {}

impl BlobProgress for Silent {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_silent_observer_allocates_nothing() {
        assert_eq!(std::mem::size_of::<Silent>(), 0);
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let mut handle = Silent.start(Item::Copy(&digest), 10);
        handle.advance(10);
        handle.finish();
    }

    #[test]
    fn items_are_labelled_by_position_and_short_digest() {
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let at = LayerRef {
            image: "oci:/srv/app:v1".into(),
            platform: "linux/amd64".into(),
            index: 2,
            digest: digest.clone(),
        };
        assert_eq!(
            Item::Layer(&at).to_string(),
            format!("linux/amd64 layer 2 {}", digest.short())
        );
        assert_eq!(
            Item::Copy(&digest).to_string(),
            format!("copy {}", digest.short())
        );
    }
}
