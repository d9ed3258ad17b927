//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), the form
//! `skopeo copy … oci:DIR:TAG` writes.
//!
//! Blobs are written to a temporary file (mode 0600) in the blob directory, flushed with
//! `fsync`, and renamed to their digest; `index.json` is replaced the same way, last. A new
//! layout is assembled in a hidden staging directory (mode 0700 until it is complete) next to
//! the target and renamed into place at commit, so a failed run never leaves a half-made layout
//! behind. A layout being rewritten is locked (`flock` on its directory) so two layercrypt runs
//! cannot interleave.
//!
//! A run that rewrites an existing layout keeps a list of the blobs it added and, just before
//! it replaces `index.json`, of those it will then remove (`.layercrypt-pending`, deleted when
//! the run ends). A run killed half-way leaves that list, and the next run that locks the
//! layout removes every blob on it that `index.json` does not reach: the blobs the killed run
//! added if it died before the new index was in place, the blobs only the old image used if it
//! died after. Either way the layout holds exactly one image's blobs again, and no plaintext the
//! killed run meant to remove stays behind.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tempfile::NamedTempFile;

use super::direct::FastWriter;
use super::hashing::HashingSink;
use super::temp::{self, TempDir};
use super::{
    BlobSink, BlobSource, CommitReport, MAX_INDEX_SIZE, Reachability, StoreError, StoreWriter,
};
use crate::digest::{Algorithm, Digest, VerifyError, VerifyingReader};

/// Name of the layout marker file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// Name of the top-level index file.
pub const INDEX_FILE: &str = "index.json";
/// Content of a new `oci-layout` file (as skopeo writes it).
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The list of blobs a run rewriting the layout added or will remove (see the module
/// documentation); it exists only while such a run is going, or after one was killed.
pub const PENDING_FILE: &str = ".layercrypt-pending";
/// Largest pending list read (a run lists a few lines per layer).
const MAX_PENDING_SIZE: u64 = 16 * 1024 * 1024;
/// Mode of published blobs and index files, as skopeo and umoci write them.
const PUBLISHED_MODE: u32 = 0o644;
/// Mode of a new layout directory, as skopeo makes it.
const LAYOUT_DIR_MODE: u32 = 0o755;
/// Largest `oci-layout` file read (the real one is 30 bytes).
const MAX_MARKER_SIZE: u64 = 64 * 1024;

pub use super::api::LockMode;

/// An OCI image layout opened for reading (and, with an exclusive lock, for rewriting in place).
#[derive(Debug)]
pub struct OciLayout {
    root: PathBuf,
    name: String,
    lock: Arc<File>,
    mode: LockMode,
    /// A killed run's pending list, until [`recover`](super::SourceStore::recover) runs.
    pending: Option<Vec<u8>>,
    /// Blobs a killed run left that opening the layout removed.
    recovered: Vec<Digest>,
}

/// Whether `path` is a directory holding an `oci-layout` file.
pub fn is_layout(path: &Path) -> bool {
    path.join(OCI_LAYOUT_FILE).is_file()
}

fn lock_dir(path: &Path, mode: LockMode) -> Result<File, StoreError> {
    let dir = File::open(path).map_err(|e| StoreError::io("opening", path, e))?;
    let result = match mode {
        LockMode::Shared => dir.try_lock_shared(),
        LockMode::Exclusive => dir.try_lock(),
    };
    match result {
        Ok(()) => Ok(dir),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(StoreError::io("locking", path, e)),
    }
}

fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("blobs")
        .join(digest.algorithm().name())
        .join(digest.hex())
}

/// Open a file for reading only if it is a regular file: a FIFO would block the open (and
/// the run) for ever, and a device such as `/dev/zero` delivers data without end.
fn open_regular(path: &Path) -> io::Result<File> {
    if !fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    File::open(path)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing", path, e))
}

/// What a killed run left in a layout: its temporary files are removed at once (see
/// [`temp::sweep`]); its pending list is read and kept until [`remove_unreached`] can tell
/// which of the blobs it names the index still reaches. Only called with the exclusive lock
/// held. `None` when no killed run left a list (or it cannot be read: it is then left for a
/// later run).
fn sweep_and_read_pending(root: &Path) -> Option<Vec<u8>> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(algorithms) = fs::read_dir(root.join("blobs")) {
        dirs.extend(
            algorithms
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    for dir in &dirs {
        temp::sweep(dir);
    }
    let mut text = Vec::new();
    open_regular(&root.join(PENDING_FILE))
        .and_then(|f| f.take(MAX_PENDING_SIZE).read_to_end(&mut text))
        .ok()?;
    Some(text)
}

/// Remove every blob of a killed run's pending list (`text`) that the index of `store`
/// (rooted at `root`) does not reach, as `reach` tells; returns the blobs removed. When the
/// index cannot be read through, nothing is removed and the list stays for a later run (this
/// one will fail on the same index anyway).
fn remove_unreached(
    store: &dyn BlobSource,
    root: &Path,
    text: &[u8],
    reach: Reachability,
) -> Vec<Digest> {
    let pending = root.join(PENDING_FILE);
    let Some(reached) = store
        .read_index()
        .ok()
        .and_then(|bytes| reach(store, &bytes))
    else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    let mut done = true;
    for line in String::from_utf8_lossy(text).lines() {
        // A line cut short by the kill names no blob that was published.
        let Ok(digest) = line.parse::<Digest>() else {
            continue;
        };
        if reached.contains(&digest) || removed.contains(&digest) {
            continue;
        }
        match fs::remove_file(blob_path(root, &digest)) {
            Ok(()) => removed.push(digest),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Left, and listed, for a later run.
            Err(_) => done = false,
        }
    }
    if done {
        let _ = fs::remove_file(&pending);
    }
    removed
}

impl OciLayout {
    /// Open the layout at `root` and lock it. With an exclusive lock, temporary files that
    /// an interrupted run left behind are removed first.
    pub fn open(root: &Path, mode: LockMode) -> Result<OciLayout, StoreError> {
        check_layout(root)?;
        let lock = lock_dir(root, mode)?;
        let mut layout = OciLayout {
            root: root.to_path_buf(),
            name: format!("oci:{}", root.display()),
            lock: Arc::new(lock),
            mode,
            pending: None,
            recovered: Vec::new(),
        };
        if mode == LockMode::Exclusive {
            layout.pending = sweep_and_read_pending(root);
        }
        Ok(layout)
    }

    /// Remove the blobs a killed run left that the index no longer reaches (as `reach`
    /// tells); only a layout opened exclusively has any.
    pub fn recover(&mut self, reach: Reachability) {
        if let Some(text) = self.pending.take() {
            self.recovered = remove_unreached(&*self, &self.root, &text, reach);
        }
    }

    /// The blobs a killed run had left unreferenced, which [`OciLayout::recover`] removed.
    pub fn recovered(&self) -> &[Digest] {
        &self.recovered
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A writer that rewrites this layout in place. The layout must be locked exclusively.
    pub fn writer_in_place(&self) -> OciLayoutWriter {
        assert_eq!(
            self.mode,
            LockMode::Exclusive,
            "rewriting a layout in place needs an exclusive lock"
        );
        OciLayoutWriter {
            name: self.name.clone(),
            target: self.root.clone(),
            staging: None,
            _lock: Some(self.lock.clone()),
            published: Mutex::new(Published::default()),
            pending: None,
            recovered: Vec::new(),
        }
    }
}

impl BlobSource for OciLayout {
    fn name(&self) -> &str {
        &self.name
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        read_index_file(&self.root.join(INDEX_FILE))
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        open_verified(&self.name, &self.root, digest, size)
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        blob_path(&self.root, digest).is_file()
    }
}

fn open_verified(
    store: &str,
    root: &Path,
    digest: &Digest,
    size: u64,
) -> Result<Box<dyn Read + Send + 'static>, StoreError> {
    let path = blob_path(root, digest);
    let file = open_regular(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            StoreError::MissingBlob {
                store: store.to_string(),
                digest: digest.clone(),
            }
        } else {
            StoreError::io("opening", path.clone(), e)
        }
    })?;
    // A file of another size can only end in a mismatch: say so before any work is done on it
    // (or any room reserved for it: a hostile size would otherwise only surface as a later
    // write failing, blamed on another layer).
    let actual = file
        .metadata()
        .map_err(|e| StoreError::io("reading", path.clone(), e))?
        .len();
    let mismatch = match actual.cmp(&size) {
        std::cmp::Ordering::Less => Some(VerifyError::Truncated {
            digest: digest.clone(),
            expected: size,
            actual,
        }),
        std::cmp::Ordering::Greater => Some(VerifyError::TooLong {
            digest: digest.clone(),
            expected: size,
        }),
        std::cmp::Ordering::Equal => None,
    };
    if let Some(source) = mismatch {
        return Err(StoreError::Corrupt {
            store: store.to_string(),
            digest: digest.clone(),
            source,
        });
    }
    Ok(Box::new(VerifyingReader::new(file, digest.clone(), size)))
}

/// Check that `root` is a directory with a supported `oci-layout` marker.
fn check_layout(root: &Path) -> Result<(), StoreError> {
    let not_a_layout = |reason: &str| StoreError::NotALayout {
        path: root.to_path_buf(),
        reason: reason.to_string(),
    };
    let meta = fs::metadata(root).map_err(|e| StoreError::io("opening", root, e))?;
    if !meta.is_dir() {
        return Err(not_a_layout("it is not a directory"));
    }
    let marker = root.join(OCI_LAYOUT_FILE);
    let mut content = Vec::new();
    match open_regular(&marker).and_then(|f| f.take(MAX_MARKER_SIZE + 1).read_to_end(&mut content))
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_a_layout("it has no `oci-layout` file"));
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            return Err(not_a_layout("its `oci-layout` is not a regular file"));
        }
        Err(e) => return Err(StoreError::io("reading", marker, e)),
    }
    if content.len() as u64 > MAX_MARKER_SIZE {
        return Err(not_a_layout(&format!(
            "its `oci-layout` is larger than {MAX_MARKER_SIZE} bytes"
        )));
    }
    check_marker(&content).map_err(|reason| not_a_layout(&reason))
}

/// Check the content of an `oci-layout` file: a 1.x `imageLayoutVersion`.
pub fn check_marker(content: &[u8]) -> Result<(), String> {
    let version = serde_json::from_slice::<serde_json::Value>(content)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
    match version.as_deref() {
        Some(v) if v.starts_with("1.") => Ok(()),
        Some(v) => Err(format!("unsupported imageLayoutVersion `{v}`")),
        None => Err("`oci-layout` has no imageLayoutVersion".into()),
    }
}

fn read_index_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    let file = open_regular(path).map_err(|e| StoreError::io("reading", path, e))?;
    let mut data = Vec::new();
    file.take(MAX_INDEX_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(|e| StoreError::io("reading", path, e))?;
    if data.len() as u64 > MAX_INDEX_SIZE {
        return Err(StoreError::IndexTooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

#[derive(Default)]
struct Published {
    /// Blobs this writer published that did not exist before; removed on rollback.
    new: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    /// Blob directories written to, synced before the index is committed.
    dirs: HashSet<PathBuf>,
    /// The pending list of an existing layout, once something was written to it.
    pending: Option<File>,
}

/// Writes into an OCI layout: in place, into an existing layout, or into a new one.
pub struct OciLayoutWriter {
    name: String,
    /// The layout directory as the user named it.
    target: PathBuf,
    /// For a new layout: the staging directory renamed to `target` at commit.
    staging: Option<TempDir>,
    _lock: Option<Arc<File>>,
    published: Mutex<Published>,
    /// A killed run's pending list, until [`StoreWriter::recover`] runs.
    pending: Option<Vec<u8>>,
    /// Blobs a killed run had left, removed when the layout was opened.
    recovered: Vec<Digest>,
}

impl std::fmt::Debug for OciLayoutWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciLayoutWriter")
            .field("target", &self.target)
            .field("staging", &self.staging.as_ref().map(TempDir::path))
            .finish()
    }
}

impl OciLayoutWriter {
    /// A writer for the layout at `target`: an existing layout is locked and written into;
    /// a missing path or an empty directory gets a new layout, assembled in a staging
    /// directory and moved into place at commit.
    pub fn open(target: &Path) -> Result<OciLayoutWriter, StoreError> {
        let name = format!("oci:{}", target.display());
        match fs::metadata(target) {
            Ok(meta) if meta.is_dir() && is_layout(target) => {
                check_layout(target)?;
                let lock = lock_dir(target, LockMode::Exclusive)?;
                let writer = OciLayoutWriter {
                    name,
                    target: target.to_path_buf(),
                    staging: None,
                    _lock: Some(Arc::new(lock)),
                    published: Mutex::new(Published::default()),
                    pending: sweep_and_read_pending(target),
                    recovered: Vec::new(),
                };
                Ok(writer)
            }
            Ok(meta) if meta.is_dir() => {
                let empty = fs::read_dir(target)
                    .map_err(|e| StoreError::io("reading", target, e))?
                    .next()
                    .is_none();
                if !empty {
                    return Err(StoreError::DestinationOccupied {
                        path: target.to_path_buf(),
                    });
                }
                Self::new_layout(target, name)
            }
            Ok(_) => Err(StoreError::DestinationOccupied {
                path: target.to_path_buf(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::new_layout(target, name),
            Err(e) => Err(StoreError::io("opening", target, e)),
        }
    }

    fn new_layout(target: &Path, name: String) -> Result<OciLayoutWriter, StoreError> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| StoreError::io("creating", &parent, e))?;
        // What killed runs left beside the target goes first.
        temp::sweep(&parent);
        let staging = TempDir::new_in(&parent)
            .map_err(|e| StoreError::io("creating a staging directory in", &parent, e))?;
        let marker = staging.path().join(OCI_LAYOUT_FILE);
        write_file_synced(&marker, OCI_LAYOUT_CONTENT)?;
        Ok(OciLayoutWriter {
            name,
            target: target.to_path_buf(),
            staging: Some(staging),
            _lock: None,
            published: Mutex::new(Published::default()),
            pending: None,
            recovered: Vec::new(),
        })
    }

    /// The blobs a killed run had left unreferenced in an existing layout, which opening it
    /// removed.
    pub fn recovered(&self) -> &[Digest] {
        &self.recovered
    }

    /// Where the blob `digest` lies (or would lie) before the commit: in the staging directory
    /// of a new layout, else in the target.
    pub fn blob_file(&self, digest: &Digest) -> PathBuf {
        blob_path(self.work_dir(), digest)
    }

    /// Every blob held now (before the commit), as named by the blob files.
    pub fn blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let root = self.work_dir().join("blobs");
        let mut out = Vec::new();
        let algorithms = match fs::read_dir(&root) {
            Ok(dirs) => dirs,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::io("reading", root, e)),
        };
        for algorithm in algorithms {
            let algorithm = algorithm.map_err(|e| StoreError::io("reading", &root, e))?;
            let dir = algorithm.path();
            for blob in fs::read_dir(&dir).map_err(|e| StoreError::io("reading", &dir, e))? {
                let blob = blob.map_err(|e| StoreError::io("reading", &dir, e))?;
                let name = format!(
                    "{}:{}",
                    algorithm.file_name().to_string_lossy(),
                    blob.file_name().to_string_lossy()
                );
                // Temporary files and strays do not parse as digests.
                if let Ok(d) = name.parse::<Digest>() {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Where blobs are written now: the staging directory or the target itself.
    fn work_dir(&self) -> &Path {
        self.staging.as_ref().map_or(&self.target, TempDir::path)
    }

    /// Add `digests` to the pending list of the existing layout being written (created on
    /// first use), flushed to disk before anything it names is published or removed.
    fn note_pending(
        &self,
        published: &mut Published,
        digests: &[Digest],
    ) -> Result<(), StoreError> {
        if self.staging.is_some() || digests.is_empty() {
            return Ok(());
        }
        let path = self.target.join(PENDING_FILE);
        if published.pending.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| StoreError::io("creating", &path, e))?;
            sync_dir(&self.target)?;
            published.pending = Some(file);
        }
        let mut lines = String::new();
        for d in digests {
            lines.push_str(&format!("{d}\n"));
        }
        let file = published.pending.as_mut().expect("opened above");
        file.write_all(lines.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| StoreError::io("writing", &path, e))
    }

    /// The run is over (committed or rolled back): its pending list goes.
    fn forget_pending(&self, published: &mut Published) {
        if published.pending.take().is_some() {
            let _ = fs::remove_file(self.target.join(PENDING_FILE));
        }
    }

    fn publish(&self, temp: NamedTempFile, digest: &Digest) -> Result<(), StoreError> {
        let path = blob_path(self.work_dir(), digest);
        let dir = path
            .parent()
            .expect("blob paths have a parent")
            .to_path_buf();
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        let existed = path.exists();
        if !existed {
            self.note_pending(&mut published, std::slice::from_ref(digest))?;
        }
        temp::persist(temp, &path).map_err(|e| StoreError::io("publishing blob", &path, e))?;
        if !existed && published.seen.insert(path.clone()) {
            published.new.push(path);
        }
        published.dirs.insert(dir);
        Ok(())
    }
}

fn write_file_synced(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| StoreError::io("creating", path, e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io("writing", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(PUBLISHED_MODE))
        .map_err(|e| StoreError::io("setting permissions on", path, e))
}

/// Write `data` to a temporary file in `dir`, fsync it and rename it to `dir/name`. The
/// directory is not synced: the caller does it once the rename counts as done.
fn replace_file_atomically(dir: &Path, name: &str, data: &[u8]) -> Result<(), StoreError> {
    let mut temp =
        temp::file_in(dir).map_err(|e| StoreError::io("creating a temporary file in", dir, e))?;
    temp.write_all(data)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| StoreError::io("writing", temp.path().to_path_buf(), e))?;
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(PUBLISHED_MODE))
        .map_err(|e| StoreError::io("setting permissions on", temp.path().to_path_buf(), e))?;
    let path = dir.join(name);
    temp::persist(temp, &path).map_err(|e| StoreError::io("replacing", &path, e))?;
    Ok(())
}

/// Sync `dir` after a commit's rename; the commit stands whatever happens, so a failure is a
/// warning, not an error (an error would make the caller roll back blobs the new index uses).
fn sync_committed(dir: &Path, report: &mut CommitReport) {
    if let Err(e) = sync_dir(dir) {
        report
            .warnings
            .push(format!("the new index is in place, but {e}"));
    }
}

impl BlobSource for OciLayoutWriter {
    fn name(&self) -> &str {
        &self.name
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        read_index_file(&self.work_dir().join(INDEX_FILE))
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        open_verified(&self.name, self.work_dir(), digest, size)
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        blob_path(self.work_dir(), digest).is_file()
    }
}

impl StoreWriter for OciLayoutWriter {
    fn recover(&mut self, reach: Reachability) {
        if let Some(text) = self.pending.take() {
            self.recovered = remove_unreached(&*self, &self.target, &text, reach);
        }
    }

    fn recovered(&self) -> Vec<Digest> {
        self.recovered.clone()
    }

    fn existing_index(&self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.staging.is_some() {
            return Ok(None);
        }
        read_index_file(&self.target.join(INDEX_FILE)).map(Some)
    }

    fn create_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobSink + '_>, StoreError> {
        let dir = self.work_dir().join("blobs").join(algorithm.name());
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("creating", &dir, e))?;
        let temp = temp::file_in(&dir)
            .map_err(|e| StoreError::io("creating a temporary file in", &dir, e))?;
        let file = temp
            .as_file()
            .try_clone()
            .map_err(|e| StoreError::io("opening", temp.path().to_path_buf(), e))?;
        let out = FastWriter::new(file, temp.path());
        // Published only once flushed, synced and made readable, under the digest written.
        let publish = move |out: FastWriter, digest: &Digest| {
            let path = temp.path().to_path_buf();
            out.finish()
                .and_then(|()| temp.as_file().sync_all())
                .map_err(|e| StoreError::io("writing", &path, e))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(PUBLISHED_MODE))
                .map_err(|e| StoreError::io("setting permissions on", &path, e))?;
            self.publish(temp, digest)
        };
        Ok(Box::new(HashingSink::new(out, algorithm, publish)))
    }

    fn commit(
        mut self: Box<Self>,
        index: &[u8],
        garbage: &[Digest],
    ) -> Result<CommitReport, StoreError> {
        let dirs: Vec<PathBuf> = {
            let published = self.published.lock().unwrap_or_else(|p| p.into_inner());
            published.dirs.iter().cloned().collect()
        };
        // Blob names must be durable before an index that references them is.
        for dir in &dirs {
            sync_dir(dir)?;
        }
        let mut report = CommitReport::default();
        if let Some(staging) = self.staging.take() {
            replace_file_atomically(staging.path(), INDEX_FILE, index)?;
            sync_dir(staging.path())?;
            // Complete: it may now be seen by others, under its final name.
            fs::set_permissions(staging.path(), fs::Permissions::from_mode(LAYOUT_DIR_MODE))
                .map_err(|e| StoreError::io("setting permissions on", staging.path(), e))?;
            let (staging_path, _lock) = staging.keep();
            if let Err(e) = fs::rename(&staging_path, &self.target) {
                let _ = fs::remove_dir_all(&staging_path);
                return Err(StoreError::io("moving the new layout to", &self.target, e));
            }
            let parent = match self.target.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            sync_committed(&parent, &mut report);
        } else {
            // If the run dies from here on, the next one knows what to remove whichever index
            // it finds.
            {
                let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
                self.note_pending(&mut published, garbage)?;
            }
            replace_file_atomically(&self.target, INDEX_FILE, index)?;
            // Committed: nothing to roll back.
            self.published
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .new
                .clear();
            sync_committed(&self.target, &mut report);
            for digest in garbage {
                let path = blob_path(&self.target, digest);
                match fs::remove_file(&path) {
                    Ok(()) => report.removed.push(digest.clone()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => report.warnings.push(format!(
                        "could not remove unreferenced blob {}: {e}",
                        path.display()
                    )),
                }
            }
        }
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        published.new.clear();
        self.forget_pending(&mut published);
        Ok(report)
    }
}

impl Drop for OciLayoutWriter {
    fn drop(&mut self) {
        // Not committed: remove what this run published. A staging directory goes with its
        // TempDir.
        if self.staging.is_some() {
            return;
        }
        let published = self.published.get_mut().unwrap_or_else(|p| p.into_inner());
        for path in published.new.drain(..) {
            let _ = fs::remove_file(path);
        }
        if published.pending.take().is_some() {
            let _ = fs::remove_file(self.target.join(PENDING_FILE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_layout(dir: &Path) {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT).unwrap();
        fs::write(
            dir.join(INDEX_FILE),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
    }

    #[test]
    fn new_layout_appears_only_at_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let w = Box::new(OciLayoutWriter::open(&target).unwrap());
        let (d, n) = w.put_blob(b"hello").unwrap();
        assert_eq!((d.clone(), n), (Digest::sha256(b"hello"), 5));
        assert!(!target.exists());
        w.commit(b"{}", &[]).unwrap();
        let layout = OciLayout::open(&target, LockMode::Shared).unwrap();
        assert_eq!(layout.read_index().unwrap(), b"{}");
        assert_eq!(layout.read_small_blob("blob", &d, 5, 10).unwrap(), b"hello");
        // No staging directory is left next to it.
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        {
            let w = OciLayoutWriter::open(&target).unwrap();
            w.put_blob(b"x").unwrap();
        }
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);

        let existing = tmp.path().join("existing");
        make_layout(&existing);
        let before: Vec<_> = fs::read_dir(existing.join("blobs/sha256"))
            .unwrap()
            .collect();
        {
            let w = OciLayoutWriter::open(&existing).unwrap();
            w.put_blob(b"y").unwrap();
        }
        let after: Vec<_> = fs::read_dir(existing.join("blobs/sha256"))
            .unwrap()
            .collect();
        assert_eq!(before.len(), after.len());
    }

    #[test]
    fn a_later_run_removes_the_temporaries_a_killed_one_left() {
        let tmp = tempfile::tempdir().unwrap();
        make_layout(tmp.path());
        let leftovers = [
            tmp.path().join(".layercrypt-tmp-Index0"),
            tmp.path().join("blobs/sha256/.layercrypt-tmp-Blob00"),
        ];
        for l in &leftovers {
            fs::write(l, b"plaintext a killed run was writing").unwrap();
        }
        let keep = [
            tmp.path().join("blobs/sha256/unrelated"),
            tmp.path().join(".layercrypt-tmp-not-ours"),
        ];
        for k in &keep {
            fs::write(k, b"x").unwrap();
        }
        // A reader changes nothing.
        drop(OciLayout::open(tmp.path(), LockMode::Shared).unwrap());
        assert!(leftovers.iter().all(|l| l.exists()));
        drop(OciLayout::open(tmp.path(), LockMode::Exclusive).unwrap());
        assert!(leftovers.iter().all(|l| !l.exists()));
        assert!(keep.iter().all(|k| k.exists()));
        // So does a writer into an existing layout.
        fs::write(&leftovers[1], b"again").unwrap();
        drop(OciLayoutWriter::open(tmp.path()).unwrap());
        assert!(!leftovers[1].exists());
    }

    /// A layout whose index reaches one manifest, its config and one layer, as a killed
    /// in-place run leaves it, with the old image's blobs and the new one's both present;
    /// returns (old blobs, new blobs).
    fn interrupted_layout(root: &Path, new_index: bool) -> (Vec<Digest>, Vec<Digest>) {
        make_layout(root);
        let put = |data: &[u8]| {
            let d = Digest::sha256(data);
            fs::write(blob_path(root, &d), data).unwrap();
            (d, data.len())
        };
        let (config, config_size) = put(b"{}");
        let mut images = Vec::new();
        for layer in [&b"old layer"[..], b"new layer"] {
            let (layer, layer_size) = put(layer);
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
            );
            let (manifest, manifest_size) = put(manifest.as_bytes());
            images.push((vec![manifest.clone(), layer], manifest_size));
        }
        let (current, size) = &images[usize::from(new_index)];
        fs::write(
            root.join(INDEX_FILE),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{size}}}]}}"#,
                current[0]
            ),
        )
        .unwrap();
        // What the run noted: the blobs it added, then those it was to remove, and a line
        // the kill cut short.
        let (old, new) = (images[0].0.clone(), images[1].0.clone());
        let mut pending: String = new.iter().chain(&old).map(|d| format!("{d}\n")).collect();
        pending.push_str("sha256:0123");
        fs::write(root.join(PENDING_FILE), pending).unwrap();
        (old, new)
    }

    #[test]
    fn a_later_run_finishes_what_a_killed_one_began() {
        for new_index in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let (old, new) = interrupted_layout(tmp.path(), new_index);
            let config = Digest::sha256(b"{}");
            // Readers leave it be.
            drop(OciLayout::open(tmp.path(), LockMode::Shared).unwrap());
            assert!(tmp.path().join(PENDING_FILE).exists());
            let mut layout = OciLayout::open(tmp.path(), LockMode::Exclusive).unwrap();
            // The image graph tells the store what the index reaches.
            layout.recover(crate::image::reachable_from_index);
            let (gone, kept) = if new_index { (old, new) } else { (new, old) };
            let mut recovered = layout.recovered().to_vec();
            recovered.sort();
            let mut expected = gone.clone();
            expected.sort();
            assert_eq!(recovered, expected, "index new: {new_index}");
            assert!(gone.iter().all(|d| !layout.has_blob(d)));
            assert!(kept.iter().chain([&config]).all(|d| layout.has_blob(d)));
            assert!(!tmp.path().join(PENDING_FILE).exists());
        }
        // A writer into an existing layout does the same.
        let tmp = tempfile::tempdir().unwrap();
        let (old, _) = interrupted_layout(tmp.path(), true);
        let mut writer = OciLayoutWriter::open(tmp.path()).unwrap();
        StoreWriter::recover(&mut writer, crate::image::reachable_from_index);
        assert_eq!(StoreWriter::recovered(&writer).len(), old.len());
    }

    #[test]
    fn an_unreadable_index_removes_nothing_and_keeps_the_list() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = interrupted_layout(tmp.path(), false);
        fs::write(tmp.path().join(INDEX_FILE), b"not json").unwrap();
        let mut layout = OciLayout::open(tmp.path(), LockMode::Exclusive).unwrap();
        layout.recover(crate::image::reachable_from_index);
        assert!(layout.recovered().is_empty());
        assert!(old.iter().chain(&new).all(|d| layout.has_blob(d)));
        assert!(tmp.path().join(PENDING_FILE).exists());
    }

    #[test]
    fn a_run_in_place_lists_what_it_adds_until_it_ends() {
        let tmp = tempfile::tempdir().unwrap();
        make_layout(tmp.path());
        let layout = OciLayout::open(tmp.path(), LockMode::Exclusive).unwrap();
        let pending = tmp.path().join(PENDING_FILE);
        // Rolled back: the blob and the list go.
        let w = layout.writer_in_place();
        let (d, _) = w.put_blob(b"new").unwrap();
        assert_eq!(fs::read_to_string(&pending).unwrap(), format!("{d}\n"));
        assert_eq!(
            fs::metadata(&pending).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(w);
        assert!(!layout.has_blob(&d) && !pending.exists());
        // Committed: the list goes, the blob stays.
        let w = Box::new(layout.writer_in_place());
        let (d, _) = w.put_blob(b"new").unwrap();
        w.commit(b"{}", &[]).unwrap();
        assert!(layout.has_blob(&d) && !pending.exists());
    }

    #[test]
    fn a_staging_directory_is_private_until_it_is_the_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let w = Box::new(OciLayoutWriter::open(&target).unwrap());
        let staging = w.staging.as_ref().unwrap().path().to_path_buf();
        assert_eq!(
            fs::metadata(&staging).unwrap().permissions().mode() & 0o777,
            0o700
        );
        w.commit(b"{}", &[]).unwrap();
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    #[test]
    fn existing_layout_is_locked_while_written() {
        let tmp = tempfile::tempdir().unwrap();
        make_layout(tmp.path());
        let _w = OciLayoutWriter::open(tmp.path()).unwrap();
        assert!(matches!(
            OciLayout::open(tmp.path(), LockMode::Shared),
            Err(StoreError::Locked { .. })
        ));
        assert!(matches!(
            OciLayoutWriter::open(tmp.path()),
            Err(StoreError::Locked { .. })
        ));
    }

    #[test]
    fn commit_replaces_index_and_removes_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        make_layout(tmp.path());
        let old = Digest::sha256(b"old");
        fs::write(blob_path(tmp.path(), &old), b"old").unwrap();
        let layout = OciLayout::open(tmp.path(), LockMode::Exclusive).unwrap();
        let w = Box::new(layout.writer_in_place());
        let (new, _) = w.put_blob(b"new").unwrap();
        let report = w
            .commit(b"{\"new\":1}", std::slice::from_ref(&old))
            .unwrap();
        assert_eq!(report.removed, vec![old.clone()]);
        assert!(!layout.has_blob(&old) && layout.has_blob(&new));
        assert_eq!(layout.read_index().unwrap(), b"{\"new\":1}");
        let mode = fs::metadata(blob_path(tmp.path(), &new))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn refuses_what_is_not_a_layout() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            OciLayout::open(tmp.path(), LockMode::Shared),
            Err(StoreError::NotALayout { .. })
        ));
        fs::write(tmp.path().join("file"), b"x").unwrap();
        assert!(matches!(
            OciLayoutWriter::open(tmp.path()),
            Err(StoreError::DestinationOccupied { .. })
        ));
        fs::write(
            tmp.path().join(OCI_LAYOUT_FILE),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        assert!(matches!(
            OciLayout::open(tmp.path(), LockMode::Shared),
            Err(StoreError::NotALayout { .. })
        ));
    }

    #[test]
    fn files_that_are_not_regular_files_are_refused_without_reading_them() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        make_layout(root);
        let d = Digest::sha256(b"good");
        // A FIFO would block `open`, /dev/zero would never end.
        let status = std::process::Command::new("mkfifo")
            .arg(blob_path(root, &d))
            .status()
            .unwrap();
        assert!(status.success());
        std::os::unix::fs::symlink("/dev/zero", root.join("index.json.zero")).unwrap();
        fs::rename(root.join("index.json.zero"), root.join(INDEX_FILE)).unwrap();
        let layout = OciLayout::open(root, LockMode::Shared).unwrap();
        let err = layout.open_blob(&d, 4).err().unwrap();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = layout.read_index().unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        drop(layout);
        fs::remove_file(root.join(OCI_LAYOUT_FILE)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join(OCI_LAYOUT_FILE)).unwrap();
        let err = OciLayout::open(root, LockMode::Shared).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        fs::remove_file(root.join(OCI_LAYOUT_FILE)).unwrap();
        fs::write(root.join(OCI_LAYOUT_FILE), vec![b' '; 1 << 20]).unwrap();
        let err = OciLayout::open(root, LockMode::Shared).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn reading_verifies_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        make_layout(tmp.path());
        let d = Digest::sha256(b"good");
        fs::write(blob_path(tmp.path(), &d), b"evil").unwrap();
        let layout = OciLayout::open(tmp.path(), LockMode::Shared).unwrap();
        let mut r = layout.open_blob(&d, 4).unwrap();
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        let missing = Digest::sha256(b"none");
        assert!(matches!(
            layout.open_blob(&missing, 4),
            Err(StoreError::MissingBlob { .. })
        ));
        assert!(matches!(
            layout.read_small_blob("manifest", &d, 100, 10),
            Err(StoreError::TooLarge { .. })
        ));
    }

    /// A blob file whose size is not the declared one is refused when it is opened, before
    /// anything is read or any room is reserved for what would be made of it.
    #[test]
    fn a_blob_of_another_size_is_refused_when_opened() {
        let tmp = tempfile::tempdir().unwrap();
        make_layout(tmp.path());
        let d = Digest::sha256(b"good");
        fs::write(blob_path(tmp.path(), &d), b"good").unwrap();
        let layout = OciLayout::open(tmp.path(), LockMode::Shared).unwrap();
        assert!(layout.open_blob(&d, 4).is_ok());
        for (declared, truncated) in [(5, true), (1 << 62, true), (u64::MAX, true), (3, false)] {
            match layout.open_blob(&d, declared) {
                Err(StoreError::Corrupt { source, .. }) => assert_eq!(
                    matches!(source, VerifyError::Truncated { actual: 4, .. }),
                    truncated,
                    "{declared}: {source}"
                ),
                Err(other) => panic!("{declared}: {other}"),
                Ok(_) => panic!("{declared}: opened"),
            }
        }
    }
}
