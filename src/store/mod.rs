//! Image stores: where blobs and the top-level index come from and go to.
//!
//! A store is two small interfaces: [`BlobSource`] (read the index and verified blobs) and
//! [`StoreWriter`] (stage new blobs, then commit a new index last). The engine works only
//! through them and never knows which kind of store it is writing to. [`oci`] implements both
//! for OCI image layout directories, [`oci_archive`] for tars of them and [`docker_archive`]
//! for `docker save` tarballs (the two archives read and write tars through [`tar`]);
//! [`open_source`] and [`open_destination`] pick the implementation an [`ImageRef`] names.
//!
//! Rules every implementation keeps: a blob reader fails at the end of the stream unless the
//! bytes match the descriptor's digest and size; a blob is published only after its bytes have
//! been written, flushed and (for plaintext from decryption) verified; the index is replaced
//! atomically and last, so an interrupted run leaves the old image or the new one; a writer
//! dropped without `commit` removes everything it added.

mod direct;
pub use direct::{AlignedBuf, read_full};
pub mod docker_archive;
pub(crate) mod hashing;
pub mod oci;
pub mod oci_archive;
pub mod tar;
/// The former name of [`tar`], kept for the paths that still use it (`store::tarball::Tarball`
/// below and in `tests/docker_archive.rs`).
pub use self::tar as tarball;
pub(crate) mod temp;

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, VerifyError};

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

    /// Blobs that an interrupted run had left in the destination, unreferenced, and that
    /// opening it removed.
    fn recovered(&self) -> Vec<Digest> {
        Vec::new()
    }
}

/// A store opened as the source of a run: readable, and replaceable in place.
pub trait SourceStore: BlobSource {
    /// A writer that rewrites this store in place; the store must have been opened with
    /// [`oci::LockMode::Exclusive`].
    fn writer_in_place(&self) -> Result<Box<dyn StoreWriter>, StoreError>;

    /// The reference name under which the index lists the image the user called
    /// `reference` (a Docker archive accepts any of an image's tags, in any spelling
    /// Docker accepts). Unknown names come back unchanged; a malformed one is an error.
    fn resolve_reference(&self, reference: &str) -> Result<String, String> {
        Ok(reference.to_string())
    }

    /// Blobs that an interrupted run had left in the store, unreferenced, and that opening it
    /// for rewriting removed.
    fn recovered(&self) -> Vec<Digest> {
        Vec::new()
    }
}

impl SourceStore for oci::OciLayout {
    fn writer_in_place(&self) -> Result<Box<dyn StoreWriter>, StoreError> {
        Ok(Box::new(oci::OciLayout::writer_in_place(self)))
    }

    fn recovered(&self) -> Vec<Digest> {
        oci::OciLayout::recovered(self).to_vec()
    }
}

impl SourceStore for docker_archive::DockerArchive {
    fn writer_in_place(&self) -> Result<Box<dyn StoreWriter>, StoreError> {
        let mut writer = docker_archive::DockerArchiveWriter::create(self.path())?;
        // Every tag of every image survives the rewrite, not only the one that names it.
        for image in self.images() {
            if let Some(name) = &image.ref_name {
                writer.add_repo_tags(name, &image.repo_tags);
            }
        }
        Ok(Box::new(writer))
    }

    fn resolve_reference(&self, reference: &str) -> Result<String, String> {
        match self.resolve(reference) {
            Ok(Some(name)) => Ok(name),
            Ok(None) => Ok(reference.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl SourceStore for oci_archive::OciArchive {
    fn writer_in_place(&self) -> Result<Box<dyn StoreWriter>, StoreError> {
        Ok(Box::new(oci_archive::OciArchive::writer_in_place(self)?))
    }
}

/// Open the store `image` names, for reading (locked shared) or for rewriting in place
/// (locked exclusively).
pub fn open_source(
    image: &ImageRef,
    mode: oci::LockMode,
) -> Result<Box<dyn SourceStore>, StoreError> {
    Ok(match image {
        ImageRef::Oci { path, .. } => Box::new(oci::OciLayout::open(path, mode)?),
        ImageRef::OciArchive { path, .. } => Box::new(oci_archive::OciArchive::open(path, mode)?),
        ImageRef::DockerArchive { path, .. } => Box::new(docker_archive::DockerArchive::open(
            path,
            mode == oci::LockMode::Exclusive,
        )?),
    })
}

/// Open the store `image` names as a destination other than the source: an existing
/// layout or OCI archive is added to, a new one is created.
pub fn open_destination(image: &ImageRef) -> Result<Box<dyn StoreWriter>, StoreError> {
    Ok(match image {
        ImageRef::Oci { path, .. } => Box::new(oci::OciLayoutWriter::open(path)?),
        ImageRef::OciArchive { path, .. } => Box::new(oci_archive::OciArchiveWriter::open(path)?),
        ImageRef::DockerArchive { path, .. } => {
            Box::new(docker_archive::DockerArchiveWriter::create(path)?)
        }
    })
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

/// An image reference as the command line names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// `oci:PATH[:REF]`, or a bare path to a layout directory.
    Oci {
        /// The layout directory.
        path: PathBuf,
        /// The `org.opencontainers.image.ref.name` to select or write.
        reference: Option<String>,
    },
    /// `oci-archive:PATH[:REF]`.
    OciArchive {
        /// The tar file.
        path: PathBuf,
        /// The reference inside it.
        reference: Option<String>,
    },
    /// `docker-archive:PATH[:REF]`.
    DockerArchive {
        /// The tar file.
        path: PathBuf,
        /// The `repo:tag` inside it.
        reference: Option<String>,
    },
}

impl ImageRef {
    /// Parse a reference. `TRANSPORT:PATH[:REF]` splits at the first colon after the
    /// transport, as skopeo does; a string without a known transport is a path, a layout
    /// directory (or a new one) unless it is an existing file.
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        let split = |rest: &str| -> Result<(PathBuf, Option<String>), String> {
            let (path, reference) = match rest.split_once(':') {
                Some((p, r)) => (p, Some(r.to_string())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err("the path is empty".into());
            }
            if reference.as_deref() == Some("") {
                return Err("the reference after `:` is empty".into());
            }
            Ok((PathBuf::from(path), reference))
        };
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, reference) = split(rest)?;
            return Ok(ImageRef::Oci { path, reference });
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, reference) = split(rest)?;
            return Ok(ImageRef::OciArchive { path, reference });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, reference) = split(rest)?;
            return Ok(ImageRef::DockerArchive { path, reference });
        }
        if let Some((transport, _)) = text.split_once(':')
            && ["docker", "containers-storage", "dir", "docker-daemon"].contains(&transport)
        {
            return Err(format!(
                "the `{transport}:` transport needs a registry, daemon or storage; layercrypt works on oci:, oci-archive: and docker-archive:"
            ));
        }
        if text.is_empty() {
            return Err("the path is empty".into());
        }
        let path = PathBuf::from(text);
        if path.is_file() {
            return ImageRef::detect_archive(&path);
        }
        let archive_like = [".tar", ".tar.gz", ".tgz", ".tar.zst"]
            .iter()
            .any(|ext| text.ends_with(ext));
        if archive_like && !path.exists() {
            return Err(format!(
                "{text} does not exist, and its name looks like an archive; name the format: oci-archive:{text}, docker-archive:{text}, or oci:{text} for a layout directory"
            ));
        }
        Ok(ImageRef::Oci {
            path,
            reference: None,
        })
    }

    /// Tell an OCI archive from a docker-archive by its content: a `manifest.json` makes a
    /// docker-archive (Docker 25 and later also add `oci-layout`), an `oci-layout` alone an
    /// OCI archive.
    pub fn detect_archive(path: &Path) -> Result<ImageRef, String> {
        let tarball = tarball::Tarball::open(path, false).map_err(|e| e.to_string())?;
        if tarball.contains("manifest.json") {
            Ok(ImageRef::DockerArchive {
                path: path.to_path_buf(),
                reference: None,
            })
        } else if tarball.contains(oci::OCI_LAYOUT_FILE) {
            Ok(ImageRef::OciArchive {
                path: path.to_path_buf(),
                reference: None,
            })
        } else {
            Err(format!(
                "{} is a tar archive but neither an OCI archive (no `oci-layout`) nor a docker-archive (no `manifest.json`)",
                path.display()
            ))
        }
    }

    /// The path on disk.
    pub fn path(&self) -> &Path {
        match self {
            ImageRef::Oci { path, .. }
            | ImageRef::OciArchive { path, .. }
            | ImageRef::DockerArchive { path, .. } => path,
        }
    }

    /// The reference part, if any.
    pub fn reference(&self) -> Option<&str> {
        match self {
            ImageRef::Oci { reference, .. }
            | ImageRef::OciArchive { reference, .. }
            | ImageRef::DockerArchive { reference, .. } => reference.as_deref(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self {
            ImageRef::Oci { .. } => "oci",
            ImageRef::OciArchive { .. } => "oci-archive",
            ImageRef::DockerArchive { .. } => "docker-archive",
        };
        write!(f, "{transport}:{}", self.path().display())?;
        if let Some(r) = self.reference() {
            write!(f, ":{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_like_skopeo() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/x:v1:extra").unwrap(),
            ImageRef::Oci {
                path: "/tmp/x".into(),
                reference: Some("v1:extra".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:rel/dir").unwrap(),
            ImageRef::Oci {
                path: "rel/dir".into(),
                reference: None
            }
        );
        assert_eq!(
            ImageRef::parse("/no/such/dir").unwrap(),
            ImageRef::Oci {
                path: "/no/such/dir".into(),
                reference: None
            }
        );
        assert!(matches!(
            ImageRef::parse("docker-archive:a.tar:app:1").unwrap(),
            ImageRef::DockerArchive { reference: Some(r), .. } if r == "app:1"
        ));
        for bad in ["oci:", "oci::v1", "oci:/x:", "docker://alpine", ""] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(ImageRef::parse("oci:/a:b").unwrap().to_string(), "oci:/a:b");
    }
}
