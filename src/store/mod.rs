//! Image stores: where blobs and the top-level index come from and go to.
//!
//! A store is two small interfaces (`store/api.rs`, re-exported here): [`BlobSource`] (read the
//! index and verified blobs) and [`StoreWriter`] (stage new blobs, then commit a new index
//! last), with what each kind can hold declared as [`Capabilities`] by
//! [`ImageRef::capabilities`]. The engine works only through them and never knows which kind
//! of store it is writing to; the plan checks the capabilities. Stores never parse a manifest:
//! the image graph ([`crate::image`]) sits above them. [`oci`] implements both
//! for OCI image layout directories, [`oci_archive`] for tars of them and [`docker_archive`]
//! for `docker save` tarballs (the two archives read and write tars through [`tar`]);
//! [`open_source`] and [`open_destination`] pick the implementation an [`ImageRef`] names.
//!
//! Rules every implementation keeps: a blob reader fails at the end of the stream unless the
//! bytes match the descriptor's digest and size; a blob is published only after its bytes have
//! been written, flushed and (for plaintext from decryption) verified; the index is replaced
//! atomically and last, so an interrupted run leaves the old image or the new one; a writer
//! dropped without `commit` removes everything it added.

mod api;
mod direct;
pub use api::{
    BlobSink, BlobSource, Capabilities, ChunkWrite, CommitReport, LockMode, MAX_INDEX_SIZE,
    MAX_MANIFEST_SIZE, Overlay, Reachability, SourceStore, StoreError, StoreWriter,
    io_is_transient,
};
pub use direct::{AlignedBuf, read_full};
pub mod docker_archive;
pub(crate) mod hashing;
pub mod oci;
pub mod oci_archive;
pub mod registry;
pub mod tar;
pub(crate) mod temp;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::Digest;

impl SourceStore for oci::OciLayout {
    fn writer_in_place(&self) -> Result<Box<dyn StoreWriter>, StoreError> {
        Ok(Box::new(oci::OciLayout::writer_in_place(self)))
    }

    fn recover(&mut self, reach: Reachability) {
        oci::OciLayout::recover(self, reach);
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
/// (locked exclusively; what a killed run left is then put right, with `reach` telling which
/// blobs the index still reaches).
pub fn open_source(
    image: &ImageRef,
    mode: LockMode,
    reach: Reachability,
) -> Result<Box<dyn SourceStore>, StoreError> {
    let mut store: Box<dyn SourceStore> = match image {
        ImageRef::Oci { path, .. } => Box::new(oci::OciLayout::open(path, mode)?),
        ImageRef::OciArchive { path, .. } => Box::new(oci_archive::OciArchive::open(path, mode)?),
        ImageRef::DockerArchive { path, .. } => Box::new(docker_archive::DockerArchive::open(
            path,
            mode == LockMode::Exclusive,
        )?),
        ImageRef::Registry { reference, access } => open_registry(reference, access, mode)?,
    };
    if mode == LockMode::Exclusive {
        store.recover(reach);
    }
    Ok(store)
}

/// Open the store `image` names as a destination other than the source: an existing
/// layout or OCI archive is added to (after putting right what a killed run left, with
/// `reach` telling which blobs its index still reaches), a new one is created.
pub fn open_destination(
    image: &ImageRef,
    reach: Reachability,
) -> Result<Box<dyn StoreWriter>, StoreError> {
    let mut writer: Box<dyn StoreWriter> = match image {
        ImageRef::Oci { path, .. } => Box::new(oci::OciLayoutWriter::open(path)?),
        ImageRef::OciArchive { path, .. } => Box::new(oci_archive::OciArchiveWriter::open(path)?),
        ImageRef::DockerArchive { path, .. } => {
            Box::new(docker_archive::DockerArchiveWriter::create(path)?)
        }
        // A registry is written only as its own source (the plan refuses the rest).
        ImageRef::Registry { .. } => {
            return Err(StoreError::CannotStore {
                store: image.to_string(),
                reason: "a registry is written only by re-keying its own images".into(),
            });
        }
    };
    writer.recover(reach);
    Ok(writer)
}

#[cfg(feature = "registry")]
fn open_registry(
    reference: &registry::RegistryRef,
    access: &registry::Access,
    mode: LockMode,
) -> Result<Box<dyn SourceStore>, StoreError> {
    Ok(Box::new(registry::RegistryStore::open(
        reference,
        access,
        mode == LockMode::Exclusive,
    )?))
}

#[cfg(not(feature = "registry"))]
fn open_registry(
    _: &registry::RegistryRef,
    _: &registry::Access,
    _: LockMode,
) -> Result<Box<dyn SourceStore>, StoreError> {
    Err(StoreError::Registry(registry::RegistryError::NotBuilt))
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
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: a registry's repository, one tag or digest
    /// of it, or (with neither) every tag.
    Registry {
        /// The repository, tag and digest.
        reference: registry::RegistryRef,
        /// How to reach it.
        access: Arc<registry::Access>,
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
        if let Some(rest) = text.strip_prefix("docker://") {
            return Ok(ImageRef::Registry {
                reference: registry::RegistryRef::parse(rest)?,
                access: Arc::default(),
            });
        }
        if let Some((transport, _)) = text.split_once(':')
            && ["docker", "containers-storage", "dir", "docker-daemon"].contains(&transport)
        {
            return Err(format!(
                "the `{transport}:` transport needs a daemon or storage; layercrypt works on oci:, oci-archive:, docker-archive: and docker:// (a registry)"
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
        let tarball = tar::Tarball::open(path, false).map_err(|e| e.to_string())?;
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

    /// The transport, as a reference starts: `oci:`, `oci-archive:` or `docker-archive:`.
    pub fn transport(&self) -> &'static str {
        match self {
            ImageRef::Oci { .. } => "oci:",
            ImageRef::OciArchive { .. } => "oci-archive:",
            ImageRef::DockerArchive { .. } => "docker-archive:",
            ImageRef::Registry { .. } => "docker://",
        }
    }

    /// The same reference, reaching a registry as `access` says (other kinds are unchanged).
    pub fn with_access(self, access: &Arc<registry::Access>) -> ImageRef {
        match self {
            ImageRef::Registry { reference, .. } => ImageRef::Registry {
                reference,
                access: Arc::clone(access),
            },
            other => other,
        }
    }

    /// Whether this names a registry.
    pub fn is_registry(&self) -> bool {
        matches!(self, ImageRef::Registry { .. })
    }

    /// Whether it names an image by its digest (`docker://HOST/REPO@sha256:…`), which no
    /// annotation can choose against.
    pub fn names_digest(&self) -> bool {
        matches!(self, ImageRef::Registry { reference, .. } if reference.digest.is_some())
    }

    /// Whether both name the same store: the same directory or file, or the same repository
    /// of the same registry (the second path may not exist yet).
    pub fn same_store(&self, other: &ImageRef) -> bool {
        match (self, other) {
            (ImageRef::Registry { reference: a, .. }, ImageRef::Registry { reference: b, .. }) => {
                a.same_repository(b)
            }
            (ImageRef::Registry { .. }, _) | (_, ImageRef::Registry { .. }) => false,
            (a, b) => match (a.path(), b.path()) {
                (Some(x), Some(y)) => match (x.canonicalize(), y.canonicalize()) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => false,
                },
                _ => false,
            },
        }
    }

    /// What the store this reference names can hold, known without opening it.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            ImageRef::Oci { .. } | ImageRef::OciArchive { .. } => Capabilities {
                encrypted_layers: true,
                multi_platform: true,
                layer_data: true,
                in_place: true,
            },
            // `docker load` reads one manifest per image, with plain layers.
            ImageRef::DockerArchive { .. } => Capabilities {
                encrypted_layers: false,
                multi_platform: false,
                layer_data: true,
                in_place: true,
            },
            // Manifests are rewritten where they are; layers are never uploaded, and a
            // digest names content that cannot change.
            ImageRef::Registry { reference, .. } => Capabilities {
                encrypted_layers: true,
                multi_platform: true,
                layer_data: false,
                in_place: reference.digest.is_none(),
            },
        }
    }

    /// The path on disk (`None` for a registry).
    pub fn path(&self) -> Option<&Path> {
        match self {
            ImageRef::Oci { path, .. }
            | ImageRef::OciArchive { path, .. }
            | ImageRef::DockerArchive { path, .. } => Some(path),
            ImageRef::Registry { .. } => None,
        }
    }

    /// The reference part, if any: the name inside a layout or archive, a registry's tag.
    pub fn reference(&self) -> Option<&str> {
        match self {
            ImageRef::Oci { reference, .. }
            | ImageRef::OciArchive { reference, .. }
            | ImageRef::DockerArchive { reference, .. } => reference.as_deref(),
            ImageRef::Registry { reference, .. } if reference.digest.is_none() => {
                reference.tag.as_deref()
            }
            ImageRef::Registry { .. } => None,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = match self {
            ImageRef::Registry { reference, .. } => return write!(f, "{reference}"),
            other => other.path().unwrap_or(Path::new("")),
        };
        write!(f, "{}{}", self.transport(), path.display())?;
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
        assert!(matches!(
            ImageRef::parse("docker://127.0.0.1:5000/app:v1").unwrap(),
            ImageRef::Registry { reference, .. } if reference.tag.as_deref() == Some("v1")
        ));
        assert_eq!(
            ImageRef::parse("docker://alpine").unwrap().to_string(),
            "docker://docker.io/library/alpine"
        );
        for bad in [
            "oci:",
            "oci::v1",
            "oci:/x:",
            "docker://",
            "docker://host:5000/Bad",
            "",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(ImageRef::parse("oci:/a:b").unwrap().to_string(), "oci:/a:b");
    }
}
