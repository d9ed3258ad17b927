//! The store interface, and nothing else: what every image store offers (read the top-level
//! index and verified blobs; stage new blobs and commit a new index last), the errors it
//! reports, the locks it takes and what it [declares it can hold](Capabilities).
//!
//! This is the content-addressed layer, as umoci's `cas.Engine` is: it knows blobs and the
//! top-level index only. It must never parse a manifest or walk the image graph; a store that
//! needs reachability (to clean up after a killed run) is handed a [`Reachability`] from above.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::direct::AlignedBuf;
use crate::digest::{Algorithm, Digest, VerifyError};

/// How a store is locked while it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Readers may share the store; a writer must wait.
    Shared,
    /// The store is being rewritten; nobody else may write or read through layercrypt.
    Exclusive,
}

/// Which blobs the top-level index `bytes` reaches in a store, or `None` if that cannot be
/// told (an unreadable index or manifest): the image graph's walk, passed down to a store that
/// puts right what a killed run left, so that the store itself never reads a manifest.
pub type Reachability = fn(&dyn BlobSource, &[u8]) -> Option<HashSet<Digest>>;

/// What a store can hold, declared before anything is read or written, so that a plan can
/// refuse a request the destination could not carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Encrypted layers (a Docker archive holds plain layers only: `docker load` reads them).
    pub encrypted_layers: bool,
    /// More than one platform per image (an index), rather than exactly one manifest.
    pub multi_platform: bool,
    /// Layer blobs at all (a registry's manifests alone would not).
    pub layer_data: bool,
    /// Being rewritten in place, as the source of a run with no destination.
    pub in_place: bool,
}

/// Largest manifest, index or config blob read into memory (registries use 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// Largest `index.json` read into memory.
pub const MAX_INDEX_SIZE: u64 = 16 * 1024 * 1024;

/// A store problem, naming the store and the file or blob involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `creating`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The directory is not an OCI image layout.
    #[error("{} is not an OCI image layout: {reason}", path.display())]
    NotALayout {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A blob referenced by a descriptor is not in the store.
    #[error("blob {digest} is missing from {store}")]
    MissingBlob {
        /// The store's name.
        store: String,
        /// The missing digest.
        digest: Digest,
    },
    /// A blob's bytes do not match its descriptor.
    #[error("blob {digest} in {store} is corrupt: {source}")]
    Corrupt {
        /// The store's name.
        store: String,
        /// The digest the descriptor names.
        digest: Digest,
        /// What did not match.
        #[source]
        source: VerifyError,
    },
    /// Reading a blob failed for a reason other than its content.
    #[error("reading blob {digest} from {store}: {source}")]
    ReadBlob {
        /// The store's name.
        store: String,
        /// The blob.
        digest: Digest,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A small blob is larger than allowed for its kind.
    #[error("{what} {digest} in {store} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// The store's name.
        store: String,
        /// What the blob is (`manifest`, `config`, …).
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// `index.json` is larger than [`MAX_INDEX_SIZE`].
    #[error("{} is larger than {MAX_INDEX_SIZE} bytes", path.display())]
    IndexTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Another process holds the layout's lock.
    #[error("{} is being rewritten by another layercrypt process", path.display())]
    Locked {
        /// The layout directory.
        path: PathBuf,
    },
    /// An archive is malformed or hostile.
    #[error("{} is not a usable image archive: {reason}", path.display())]
    BadArchive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The destination cannot hold the image as it is (an encrypted or foreign layer, or a
    /// multi-platform index, written to a Docker archive).
    #[error("{store} cannot hold this image: {reason}")]
    CannotStore {
        /// The store's name.
        store: String,
        /// What it cannot hold.
        reason: String,
    },
    /// A registry failed, refused or sent something unusable.
    #[error(transparent)]
    Registry(#[from] super::registry::RegistryError),
    /// The destination exists and is not something we may write into.
    #[error("{} exists and is not an OCI image layout or an empty directory", path.display())]
    DestinationOccupied {
        /// The path.
        path: PathBuf,
    },
}

impl StoreError {
    /// Shorthand for an I/O error with its action and path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Turn an error from reading a verified blob stream into the most precise variant.
    pub fn from_blob_read(store: &str, digest: &Digest, e: io::Error) -> StoreError {
        match VerifyError::from_io(&e) {
            Some(v) => StoreError::Corrupt {
                store: store.to_string(),
                digest: digest.clone(),
                source: v.clone(),
            },
            None => StoreError::ReadBlob {
                store: store.to_string(),
                digest: digest.clone(),
                source: e,
            },
        }
    }

    /// Whether retrying later may succeed: an I/O failure that is not about the input (a full
    /// disk, a broken device or connection, a timeout), a lock another run holds, a registry
    /// that was unreachable, busy or failing. Missing or unreadable input, or content that is
    /// wrong, stays wrong on retry.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Io { source, .. } | StoreError::ReadBlob { source, .. } => {
                io_is_transient(source)
            }
            StoreError::Locked { .. } => true,
            StoreError::Registry(e) => e.is_transient(),
            _ => false,
        }
    }

    /// A likely fix, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Locked { .. } => {
                Some("wait for the other run to finish, then try again".into())
            }
            StoreError::Io { source, .. }
                if matches!(
                    source.kind(),
                    io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
                ) =>
            {
                Some("free some space, or write the result to another file system (rewriting in place needs room for the new blobs beside the old ones)".into())
            }
            StoreError::Io {
                action: "opening",
                source,
                ..
            } if source.kind() == io::ErrorKind::NotFound => Some(
                "check the path; an image is oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:REF] (`skopeo copy docker://IMAGE oci:DIR:REF` makes one)".into(),
            ),
            StoreError::NotALayout { .. } => Some(
                "an OCI image layout has `oci-layout`, `index.json` and `blobs/`; create one with `skopeo copy docker://IMAGE oci:DIR:TAG`".into(),
            ),
            StoreError::CannotStore { .. } => Some(
                "a Docker archive holds single-platform images with plain layers; write to oci: or oci-archive: instead".into(),
            ),
            StoreError::Corrupt { .. } | StoreError::MissingBlob { .. } => Some(
                "the layout is damaged; copy the image again from its source".into(),
            ),
            _ => None,
        }
    }
}

/// Whether an I/O error may go away on retry: not one that says the input is missing, not
/// allowed or malformed.
pub fn io_is_transient(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    !matches!(
        e.kind(),
        K::NotFound
            | K::PermissionDenied
            | K::InvalidInput
            | K::InvalidData
            | K::AlreadyExists
            | K::Unsupported
            | K::IsADirectory
            | K::NotADirectory
            | K::ReadOnlyFilesystem
            | K::UnexpectedEof
    ) && !crate::interrupt::caused(e)
}

/// Read access to an image store.
pub trait BlobSource: Send + Sync {
    /// A name for messages, such as `oci:/srv/images/app`.
    fn name(&self) -> &str;

    /// The top-level index (`index.json`) as stored.
    fn read_index(&self) -> Result<Vec<u8>, StoreError>;

    /// Open a blob. The reader fails at its end unless the bytes have exactly `size` bytes and
    /// digest `digest`.
    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError>;

    /// Whether the store holds a blob with this digest (its content is not checked).
    fn has_blob(&self, digest: &Digest) -> bool;

    /// Read a small blob (manifest, index, config) into memory, verified, refusing blobs that
    /// declare more than `limit` bytes.
    fn read_small_blob(
        &self,
        what: &'static str,
        digest: &Digest,
        size: u64,
        limit: u64,
    ) -> Result<Vec<u8>, StoreError> {
        if size > limit {
            return Err(StoreError::TooLarge {
                store: self.name().to_string(),
                what,
                digest: digest.clone(),
                size,
                limit,
            });
        }
        let mut reader = self.open_blob(digest, size)?;
        let mut out = Vec::with_capacity(size as usize);
        reader
            .read_to_end(&mut out)
            .map_err(|e| StoreError::from_blob_read(self.name(), digest, e))?;
        Ok(out)
    }
}

/// A blob being written: bytes go in with `Write`, `commit` publishes it under its digest.
pub trait BlobSink: ChunkWrite {
    /// Flush to stable storage and publish the blob under the digest of what was written.
    /// Returns that digest and the size.
    fn commit(self: Box<Self>) -> Result<(Digest, u64), StoreError>;
}

/// A writer that can also take whole [`AlignedBuf`]s, which lets a sink that writes past the
/// page cache pass a full buffer to the disk without copying it.
pub trait ChunkWrite: Write + Send {
    /// Write the data in `chunk`; returns an empty buffer for the caller's next chunk (the
    /// same one, or another of the same size).
    fn write_chunk(&mut self, mut chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        self.write_all(chunk.data())?;
        chunk.set_len(0);
        Ok(chunk)
    }
}

/// What a commit did besides replacing the index.
#[derive(Debug, Default, Clone)]
pub struct CommitReport {
    /// Blobs no longer referenced by anything that were removed.
    pub removed: Vec<Digest>,
    /// Problems that did not undo the commit (a blob that could not be removed, …).
    pub warnings: Vec<String>,
}

/// Write access to a store, as a transaction: blobs first, index last. Reading through it
/// sees the destination as it will be after the commit, minus the new index.
///
/// Dropping a writer without calling [`StoreWriter::commit`] removes every blob it published
/// that was not there before, so a failed run leaves the destination as it was.
pub trait StoreWriter: BlobSource {
    /// The index currently in the destination, if it already holds one (to merge into).
    fn existing_index(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Start writing a new blob, to be named by its `algorithm` digest.
    fn create_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobSink + '_>, StoreError>;

    /// Start writing a new blob of exactly `size` bytes (writing any other number fails at
    /// the latest on commit). Knowing the size lets an archive write the blob straight into
    /// the place it reserves for it instead of staging it; other stores ignore it.
    fn create_blob_sized(
        &self,
        algorithm: Algorithm,
        size: u64,
    ) -> Result<Box<dyn BlobSink + '_>, StoreError> {
        let _ = size;
        self.create_blob(algorithm)
    }

    /// Write a whole small blob (a manifest or index) and publish it.
    fn put_blob(&self, data: &[u8]) -> Result<(Digest, u64), StoreError> {
        let mut sink = self.create_blob(Algorithm::Sha256)?;
        sink.write_all(data)
            .map_err(|e| StoreError::io("writing", self.name().to_string(), e))?;
        sink.commit()
    }

    /// Replace the index atomically, then remove those of `garbage` that the new index no
    /// longer references (the caller computes that set).
    fn commit(
        self: Box<Self>,
        index: &[u8],
        garbage: &[Digest],
    ) -> Result<CommitReport, StoreError>;

    /// Put right what a killed run left in the store: of the blobs it listed as added or
    /// to be removed, remove those `reach` says the index does not reach, and remember them for
    /// [`recovered`](Self::recovered). Called once, right after the store is opened for
    /// rewriting; the default has nothing to put right.
    fn recover(&mut self, reach: Reachability) {
        let _ = reach;
    }

    /// Blobs that an interrupted run had left in the destination, unreferenced, and that
    /// opening it removed.
    fn recovered(&self) -> Vec<Digest> {
        Vec::new()
    }
}

/// A store opened as the source of a run: readable, and replaceable in place.
pub trait SourceStore: BlobSource {
    /// A writer that rewrites this store in place; the store must have been opened with
    /// [`LockMode::Exclusive`].
    fn writer_in_place(&self) -> Result<Box<dyn StoreWriter>, StoreError>;

    /// The reference name under which the index lists the image the user called
    /// `reference` (a Docker archive accepts any of an image's tags, in any spelling
    /// Docker accepts). Unknown names come back unchanged; a malformed one is an error.
    fn resolve_reference(&self, reference: &str) -> Result<String, String> {
        Ok(reference.to_string())
    }

    /// Put right what a killed run left in the store: of the blobs it listed as added or
    /// to be removed, remove those `reach` says the index does not reach, and remember them for
    /// [`recovered`](Self::recovered). Called once, right after the store is opened for
    /// rewriting; the default has nothing to put right.
    fn recover(&mut self, reach: Reachability) {
        let _ = reach;
    }

    /// Blobs that an interrupted run had left in the store, unreferenced, and that opening it
    /// for rewriting removed.
    fn recovered(&self) -> Vec<Digest> {
        Vec::new()
    }
}

/// A view of a destination over its source: blobs the destination holds, else the
/// source's. Reading the new images through it sees everything they reference.
pub struct Overlay<'a> {
    /// Where new blobs are.
    pub top: &'a dyn BlobSource,
    /// Where everything else is.
    pub bottom: &'a dyn BlobSource,
}

impl BlobSource for Overlay<'_> {
    fn name(&self) -> &str {
        self.top.name()
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        self.top.read_index()
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        if self.top.has_blob(digest) {
            self.top.open_blob(digest, size)
        } else {
            self.bottom.open_blob(digest, size)
        }
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.top.has_blob(digest) || self.bottom.has_blob(digest)
    }
}
