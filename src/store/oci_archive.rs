//! OCI archives (`oci-archive:PATH`): a tar of an OCI image layout, as `skopeo copy …
//! oci-archive:FILE` writes it.
//!
//! Reading never extracts: blobs are read in place from the archive (see [`super::tar`]).
//! Writing builds the new archive in a temporary file beside the target, which is renamed over
//! it at the end: an interrupted run leaves the old archive or the new one, never a mix. A
//! blob whose size is known when it is created (every layer the engine streams: encryption
//! and decryption keep sizes) is written straight into a region of the new archive reserved
//! for it, by all layers at once ([`TarRegions`]); the rare blob of unknown size is staged in a
//! hidden layout beside the target and copied in at the end, after the kept blobs of the old
//! archive and before the new `index.json`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::hashing::HashingSink;
use super::oci::{INDEX_FILE, LockMode, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, OciLayoutWriter};
use super::tar::{Compression, RegionWriter, TarRegions, Tarball, parent_dir};
use super::temp::{self, TempDir};
use super::{BlobSink, BlobSource, CommitReport, MAX_INDEX_SIZE, StoreError, StoreWriter};
use crate::digest::{Algorithm, Digest};

/// The index of an archive that holds no image yet.
const EMPTY_INDEX: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;

/// The name of a blob inside an archive.
fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

/// An OCI archive opened for reading (and, locked exclusively, for rewriting in place).
#[derive(Debug)]
pub struct OciArchive {
    name: String,
    tarball: Arc<Tarball>,
}

impl OciArchive {
    /// Open, lock and index the archive at `path`; it must hold a supported `oci-layout`
    /// and an `index.json`.
    pub fn open(path: &Path, mode: LockMode) -> Result<OciArchive, StoreError> {
        let tarball = Tarball::open(path, mode == LockMode::Exclusive)?;
        let not_oci = |reason: String| StoreError::NotALayout {
            path: path.to_path_buf(),
            reason,
        };
        match tarball.read_file(OCI_LAYOUT_FILE, 4096)? {
            Some(marker) => super::oci::check_marker(&marker).map_err(not_oci)?,
            None if tarball.contains("manifest.json") => {
                return Err(not_oci(
                    "it has no `oci-layout` file but a `manifest.json`: it is a docker-archive"
                        .into(),
                ));
            }
            None => return Err(not_oci("it has no `oci-layout` file".into())),
        }
        if !tarball.contains(INDEX_FILE) {
            return Err(not_oci("it has no `index.json`".into()));
        }
        Ok(OciArchive {
            name: format!("oci-archive:{}", path.display()),
            tarball: Arc::new(tarball),
        })
    }

    /// A writer that replaces this archive. It must be locked exclusively, and an archive
    /// that is compressed is not rewritten in place (the result would not be compressed).
    pub fn writer_in_place(&self) -> Result<OciArchiveWriter, StoreError> {
        if self.tarball.compression() != Compression::None {
            return Err(StoreError::BadArchive {
                path: self.tarball.path().to_path_buf(),
                reason: "it is compressed, and layercrypt writes plain tar archives; name an output (oci-archive:NEW.tar) instead of rewriting it in place".into(),
            });
        }
        OciArchiveWriter::with_base(self.tarball.path(), Some(self.tarball.clone()))
    }
}

fn read_index(tarball: &Tarball) -> Result<Vec<u8>, StoreError> {
    tarball
        .read_file(INDEX_FILE, MAX_INDEX_SIZE)
        .map_err(|e| match e {
            StoreError::BadArchive { .. } => StoreError::IndexTooLarge {
                path: tarball.path().join(INDEX_FILE),
            },
            other => other,
        })?
        .ok_or_else(|| StoreError::NotALayout {
            path: tarball.path().to_path_buf(),
            reason: "it has no `index.json`".into(),
        })
}

fn open_blob<'a>(
    store: &str,
    tarball: &'a Tarball,
    digest: &Digest,
    size: u64,
) -> Result<Box<dyn Read + Send + 'a>, StoreError> {
    match tarball.open_verified(&blob_name(digest), digest, size) {
        Some(reader) => Ok(Box::new(reader)),
        None => Err(StoreError::MissingBlob {
            store: store.to_string(),
            digest: digest.clone(),
        }),
    }
}

impl BlobSource for OciArchive {
    fn name(&self) -> &str {
        &self.name
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        read_index(&self.tarball)
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        open_blob(&self.name, &self.tarball, digest, size)
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.tarball.contains(&blob_name(digest))
    }
}

/// Writes a new OCI archive: in place, into an existing archive (adding to its index), or a
/// new one.
pub struct OciArchiveWriter {
    name: String,
    target: PathBuf,
    /// The archive being replaced, whose blobs are kept unless they are garbage.
    base: Option<Arc<Tarball>>,
    /// The new archive, with the blobs of known size written so far.
    out: TarRegions,
    /// New blobs of unknown size, staged in a layout inside `_staging`.
    staged: OciLayoutWriter,
    _staging: TempDir,
    /// Permission bits of the new file (those of the file it replaces, or 0644).
    mode: u32,
}

impl std::fmt::Debug for OciArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciArchiveWriter")
            .field("target", &self.target)
            .finish()
    }
}

impl OciArchiveWriter {
    /// A writer for the archive at `target`: an existing OCI archive is locked and added
    /// to; a missing file becomes a new archive.
    pub fn open(target: &Path) -> Result<OciArchiveWriter, StoreError> {
        match fs::metadata(target) {
            Ok(meta) if meta.is_file() => {
                let existing = OciArchive::open(target, LockMode::Exclusive)?;
                existing.writer_in_place()
            }
            Ok(_) => Err(StoreError::DestinationOccupied {
                path: target.to_path_buf(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::with_base(target, None),
            Err(e) => Err(StoreError::io("opening", target, e)),
        }
    }

    fn with_base(
        target: &Path,
        base: Option<Arc<Tarball>>,
    ) -> Result<OciArchiveWriter, StoreError> {
        let dir = parent_dir(target);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("creating", &dir, e))?;
        // What killed runs left beside the target goes first.
        temp::sweep(&dir);
        let staging = TempDir::new_in(&dir)
            .map_err(|e| StoreError::io("creating a staging directory in", &dir, e))?;
        let staged = OciLayoutWriter::open(&staging.path().join("layout"))?;
        let out = TarRegions::create(target)?;
        out.add_bytes(OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT)?;
        out.add_dir("blobs")?;
        out.add_dir("blobs/sha256")?;
        let mode = match &base {
            Some(_) => fs::metadata(target)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o644),
            None => 0o644,
        };
        Ok(OciArchiveWriter {
            name: format!("oci-archive:{}", target.display()),
            target: target.to_path_buf(),
            base,
            out,
            staged,
            _staging: staging,
            mode,
        })
    }
}

impl BlobSource for OciArchiveWriter {
    fn name(&self) -> &str {
        &self.name
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        match &self.base {
            Some(base) => read_index(base),
            None => Ok(EMPTY_INDEX.to_vec()),
        }
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        if let Some(reader) = self.out.open_verified(&blob_name(digest), digest, size) {
            return Ok(Box::new(reader));
        }
        if self.staged.has_blob(digest) {
            return self.staged.open_blob(digest, size);
        }
        match &self.base {
            Some(base) => open_blob(&self.name, base, digest, size),
            None => Err(StoreError::MissingBlob {
                store: self.name.clone(),
                digest: digest.clone(),
            }),
        }
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.out.contains(&blob_name(digest))
            || self.staged.has_blob(digest)
            || self
                .base
                .as_ref()
                .is_some_and(|b| b.contains(&blob_name(digest)))
    }
}

impl StoreWriter for OciArchiveWriter {
    fn existing_index(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.base.as_deref().map(read_index).transpose()
    }

    fn create_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobSink + '_>, StoreError> {
        self.staged.create_blob(algorithm)
    }

    fn create_blob_sized(
        &self,
        algorithm: Algorithm,
        size: u64,
    ) -> Result<Box<dyn BlobSink + '_>, StoreError> {
        // A sha256 name fits a plain tar header, which a region has room for; others are rare
        // enough to be staged.
        if algorithm != Algorithm::Sha256 {
            return self.staged.create_blob(algorithm);
        }
        // Written straight into its region of the new archive, and named by its digest on
        // commit.
        let region = self.out.reserve(size)?;
        Ok(Box::new(HashingSink::new(
            region,
            algorithm,
            |region: RegionWriter<'_>, digest: &Digest| {
                // A blob the archive already holds (two layers that came out identical) is the
                // same bytes: the first copy serves, this region is left out.
                region.seal(&blob_name(digest)).map(|_| ())
            },
        )))
    }

    fn commit(
        self: Box<Self>,
        index: &[u8],
        garbage: &[Digest],
    ) -> Result<CommitReport, StoreError> {
        let mut report = CommitReport::default();
        let out = &self.out;
        // What is not in the new archive yet: the staged blobs, and every blob of the old
        // archive that is not garbage.
        let mut blobs: Vec<Digest> = self.staged.blobs()?;
        if let Some(base) = &self.base {
            for name in base.index().names() {
                let Some(rest) = name.strip_prefix("blobs/") else {
                    continue;
                };
                let Ok(digest) = rest.replacen('/', ":", 1).parse::<Digest>() else {
                    continue;
                };
                if garbage.contains(&digest) {
                    report.removed.push(digest);
                } else {
                    blobs.push(digest);
                }
            }
        }
        blobs.sort();
        blobs.dedup();
        let mut dirs = std::collections::BTreeSet::from(["sha256"]);
        for digest in &blobs {
            let name = blob_name(digest);
            if out.contains(&name) {
                continue;
            }
            if dirs.insert(digest.algorithm().name()) {
                out.add_dir(&format!("blobs/{}", digest.algorithm().name()))?;
            }
            if self.staged.has_blob(digest) {
                let path = self.staged.blob_file(digest);
                let file = File::open(&path).map_err(|e| StoreError::io("reading", &path, e))?;
                let size = file
                    .metadata()
                    .map_err(|e| StoreError::io("reading", &path, e))?
                    .len();
                out.add_file(&name, size, file)?;
            } else {
                let base = self
                    .base
                    .as_ref()
                    .expect("a blob not staged is in the base");
                let entry = base.index().get(&name).expect("listed from the base");
                let reader = base.open_file(&name).expect("listed from the base");
                out.add_file(&name, entry.size, reader)?;
            }
        }
        out.add_bytes(INDEX_FILE, index)?;
        let OciArchiveWriter { out, mode, .. } = *self;
        out.finish(mode)?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::direct::AlignedBuf;
    use crate::store::tar::TarWriter;
    use std::io::Write;

    fn layout_tar(path: &Path, blobs: &[&[u8]], index: &[u8]) {
        let mut w = TarWriter::create(path).unwrap();
        w.add_bytes(OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT).unwrap();
        w.add_bytes(INDEX_FILE, index).unwrap();
        for b in blobs {
            w.add_bytes(&blob_name(&Digest::sha256(b)), b).unwrap();
        }
        w.finish(0o600).unwrap();
    }

    #[test]
    fn reads_blobs_in_place_and_verifies_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        layout_tar(&path, &[b"one"], b"{}");
        let a = OciArchive::open(&path, LockMode::Shared).unwrap();
        assert_eq!(a.read_index().unwrap(), b"{}");
        let d = Digest::sha256(b"one");
        assert!(a.has_blob(&d));
        assert_eq!(a.read_small_blob("blob", &d, 3, 10).unwrap(), b"one");
        assert!(
            a.read_small_blob("blob", &d, 4, 10).is_err(),
            "size is checked"
        );
        assert!(matches!(
            a.open_blob(&Digest::sha256(b"two"), 3),
            Err(StoreError::MissingBlob { .. })
        ));
    }

    #[test]
    fn rewrites_in_place_keeping_what_is_not_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        layout_tar(&path, &[b"keep", b"drop"], b"{}");
        let a = OciArchive::open(&path, LockMode::Exclusive).unwrap();
        let w = Box::new(a.writer_in_place().unwrap());
        assert_eq!(w.existing_index().unwrap().unwrap(), b"{}");
        let (new, _) = w.put_blob(b"new").unwrap();
        assert!(w.has_blob(&new) && w.has_blob(&Digest::sha256(b"keep")));
        let report = w.commit(b"{\"n\":1}", &[Digest::sha256(b"drop")]).unwrap();
        assert_eq!(report.removed, vec![Digest::sha256(b"drop")]);
        drop(a);
        let b = OciArchive::open(&path, LockMode::Shared).unwrap();
        assert_eq!(b.read_index().unwrap(), b"{\"n\":1}");
        assert!(b.has_blob(&new) && b.has_blob(&Digest::sha256(b"keep")));
        assert!(!b.has_blob(&Digest::sha256(b"drop")));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the replaced file's mode is kept");
        // Nothing is left beside it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn blobs_of_known_size_go_straight_into_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        layout_tar(&path, &[b"keep"], b"{}");
        let a = OciArchive::open(&path, LockMode::Exclusive).unwrap();
        let w = Box::new(a.writer_in_place().unwrap());
        // Several large blobs written at once, a duplicate of one of them, and a small one.
        let blobs: Vec<Vec<u8>> = (0..3u8)
            .map(|i| {
                (0..3 * AlignedBuf::CAPACITY + 1000 * i as usize)
                    .map(|j| (j as u8) ^ i)
                    .collect()
            })
            .collect();
        let digests: Vec<Digest> = std::thread::scope(|s| {
            let w = &w;
            let handles: Vec<_> = blobs
                .iter()
                .chain([&blobs[1]])
                .map(|b| {
                    s.spawn(move || {
                        let mut sink = w
                            .create_blob_sized(Algorithm::Sha256, b.len() as u64)
                            .unwrap();
                        for piece in b.chunks(100_000) {
                            sink.write_all(piece).unwrap();
                        }
                        sink.commit().unwrap().0
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(digests[3], digests[1]);
        let mut tiny = w.create_blob_sized(Algorithm::Sha256, 2).unwrap();
        tiny.write_all(b"hi").unwrap();
        let (tiny, _) = tiny.commit().unwrap();
        // Read back through the writer before the commit, verified.
        assert_eq!(w.read_small_blob("blob", &tiny, 2, 10).unwrap(), b"hi");
        let mut back = Vec::new();
        w.open_blob(&digests[0], blobs[0].len() as u64)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == blobs[0]);
        // A short blob is refused.
        let mut short = w.create_blob_sized(Algorithm::Sha256, 10).unwrap();
        short.write_all(b"abc").unwrap();
        assert!(short.commit().is_err());
        w.commit(b"{\"n\":2}", &[]).unwrap();
        drop(a);

        let b = OciArchive::open(&path, LockMode::Shared).unwrap();
        assert_eq!(b.read_index().unwrap(), b"{\"n\":2}");
        for (digest, blob) in digests.iter().zip(&blobs) {
            assert_eq!(
                b.read_small_blob("blob", digest, blob.len() as u64, 1 << 30)
                    .unwrap(),
                *blob
            );
        }
        assert!(b.has_blob(&tiny) && b.has_blob(&Digest::sha256(b"keep")));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_writer_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.tar");
        {
            let w = OciArchiveWriter::open(&path).unwrap();
            w.put_blob(b"x").unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn refuses_docker_archives_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.tar");
        let mut w = TarWriter::create(&path).unwrap();
        w.add_bytes("manifest.json", b"[]").unwrap();
        w.finish(0o644).unwrap();
        let err = OciArchive::open(&path, LockMode::Shared).unwrap_err();
        assert!(err.to_string().contains("docker-archive"), "{err}");
        let text = dir.path().join("t.txt");
        fs::File::create(&text)
            .unwrap()
            .write_all(&[b'x'; 2048])
            .unwrap();
        assert!(OciArchive::open(&text, LockMode::Shared).is_err());
    }
}
