//! Tar archives of images, read in place and written atomically.
//!
//! An archive is never extracted: [`TarIndex::scan`] walks its headers once and records where
//! each regular file's bytes lie, and blobs are then read straight from those offsets (with
//! positioned reads, so many workers can read one archive at once). Because nothing is ever
//! written from an archive's names, a hostile archive cannot put a file anywhere; it is still
//! refused outright, with a clear error, when its entries are dubious: absolute paths or `..`
//! components, links that leave the archive or dangle, duplicate names, devices and FIFOs,
//! and sizes that run past the end of the file.
//!
//! Compressed archives (`docker save | gzip`) are decompressed first into an unnamed
//! temporary file beside the archive (or in the system's temporary directory when that one is
//! read-only), so the index can point into plain tar bytes.
//!
//! [`TarWriter`] writes the deterministic archives layercrypt produces (owner root, mode 0644,
//! time 0) into a temporary file that [`TarWriter::finish`] renames over the target, one file
//! after another. [`TarRegions`] writes the same kind of archive with many files at once: each
//! file whose size is known goes straight into a region of the archive reserved for it, so a
//! layer is written once, where it ends up, instead of being staged and copied.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tempfile::NamedTempFile;

use super::direct::{AlignedBuf, FastWriter, read_full};
use super::{ChunkWrite, StoreError};
use crate::digest::{Digest, VerifyingReader};
/// How an archive file is compressed, from its first bytes (the crate's one compression
/// vocabulary, shared with layer media types).
pub use crate::format::media_type::Compression;

/// Most entries an archive may have (a Docker archive of a large image has a few hundred).
pub const MAX_ENTRIES: usize = 1 << 20;

/// Most symbolic links followed to reach a regular file.
const MAX_LINK_HOPS: usize = 16;

/// Where a regular file's bytes lie in an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarEntry {
    /// Offset of the first byte of data from the start of the (decompressed) archive.
    pub offset: u64,
    /// Number of bytes.
    pub size: u64,
}

/// The regular files of an archive by normalised path (`blobs/sha256/…`, no leading `./`),
/// with links resolved to the files they name.
#[derive(Clone, Debug, Default)]
pub struct TarIndex {
    files: BTreeMap<String, TarEntry>,
}

/// What a header declared, before links are resolved.
enum Scanned {
    File(TarEntry),
    Dir,
    /// A symbolic link, with its target resolved against the link's directory.
    Link(String),
}

fn bad(archive: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::BadArchive {
        path: archive.to_path_buf(),
        reason: reason.into(),
    }
}

/// Normalise an entry name: drop `.` components, a leading `./` and a trailing `/`; refuse
/// absolute names, `..` components, empty names and names that are not UTF-8.
pub fn normalize_name(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "a name that is not UTF-8".to_string())?;
    if text.starts_with('/') {
        return Err(format!("an absolute path `{text}`"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("a `..` path `{text}`")),
            p if p.contains('\0') => return Err("a name with a NUL byte".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("an empty name `{text}`"));
    }
    Ok(parts.join("/"))
}

/// Whether a relative name names the archive's root (`.`, `./`).
fn is_root(raw: &[u8]) -> bool {
    !raw.is_empty()
        && !raw.starts_with(b"/")
        && raw.split(|&b| b == b'/').all(|p| p.is_empty() || p == b".")
}

/// Resolve a symbolic link's target against the directory of `link` (a normalised name);
/// refuse targets that are absolute or climb out of the archive.
fn resolve_link(link: &str, target: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(target).map_err(|_| "a link target that is not UTF-8")?;
    if text.starts_with('/') {
        return Err(format!(
            "link `{link}` points to the absolute path `{text}`"
        ));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "link `{link}` points outside the archive (`{text}`)"
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("link `{link}` points to the archive's root"));
    }
    Ok(parts.join("/"))
}

impl TarIndex {
    /// Walk the headers of the plain tar `file` (named `archive` in messages) and index its
    /// regular files, refusing dubious entries (see the module documentation).
    pub fn scan(file: &File, archive: &Path) -> Result<TarIndex, StoreError> {
        let length = file
            .metadata()
            .map_err(|e| StoreError::io("reading", archive, e))?
            .len();
        let mut reader = file;
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::io("reading", archive, e))?;
        let mut tar = tar::Archive::new(reader);
        let entries = tar
            .entries_with_seek()
            .map_err(|e| bad(archive, format!("it is not a tar archive ({e})")))?;
        let mut scanned: BTreeMap<String, Scanned> = BTreeMap::new();
        for (count, entry) in entries.enumerate() {
            let entry = entry.map_err(|e| bad(archive, format!("it is not a valid tar ({e})")))?;
            if count >= MAX_ENTRIES {
                return Err(bad(
                    archive,
                    format!("it has more than {MAX_ENTRIES} entries"),
                ));
            }
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            // `tar -C layout -cf image.tar .` starts with the archive's root, `./`.
            if kind == tar::EntryType::Directory && is_root(&entry.path_bytes()) {
                continue;
            }
            let name = normalize_name(&entry.path_bytes())
                .map_err(|e| bad(archive, format!("it holds {e}")))?;
            let item = match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let offset = entry.raw_file_position();
                    let size = entry.size();
                    if offset.checked_add(size).is_none_or(|end| end > length) {
                        return Err(bad(
                            archive,
                            format!(
                                "entry `{name}` claims {size} bytes, more than the archive holds"
                            ),
                        ));
                    }
                    Scanned::File(TarEntry { offset, size })
                }
                tar::EntryType::Directory => Scanned::Dir,
                tar::EntryType::Symlink => {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    Scanned::Link(resolve_link(&name, &target).map_err(|e| bad(archive, e))?)
                }
                tar::EntryType::Link => {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    let target = normalize_name(&target)
                        .map_err(|e| bad(archive, format!("hard link `{name}` points to {e}")))?;
                    Scanned::Link(target)
                }
                other => {
                    return Err(bad(
                        archive,
                        format!("entry `{name}` is a {other:?}, not a file, directory or link"),
                    ));
                }
            };
            match (scanned.get(&name), &item) {
                // Directories may be repeated harmlessly (some writers emit parents twice).
                (Some(Scanned::Dir), Scanned::Dir) => {}
                (Some(_), _) => {
                    return Err(bad(archive, format!("entry `{name}` appears twice")));
                }
                (None, _) => {
                    scanned.insert(name, item);
                }
            }
        }
        let mut files = BTreeMap::new();
        for (name, item) in &scanned {
            let entry = match item {
                Scanned::File(entry) => *entry,
                Scanned::Dir => continue,
                Scanned::Link(target) => {
                    let mut at = target;
                    let mut hops = 0;
                    loop {
                        match scanned.get(at) {
                            Some(Scanned::File(entry)) => break *entry,
                            Some(Scanned::Link(next)) if hops < MAX_LINK_HOPS => {
                                hops += 1;
                                at = next;
                            }
                            Some(Scanned::Link(_)) => {
                                return Err(bad(
                                    archive,
                                    format!("link `{name}` is part of a loop or a long chain"),
                                ));
                            }
                            Some(Scanned::Dir) => {
                                return Err(bad(
                                    archive,
                                    format!("link `{name}` points to the directory `{at}`"),
                                ));
                            }
                            None => {
                                return Err(bad(
                                    archive,
                                    format!(
                                        "link `{name}` points to `{at}`, which it does not hold"
                                    ),
                                ));
                            }
                        }
                    }
                }
            };
            files.insert(name.clone(), entry);
        }
        Ok(TarIndex { files })
    }

    /// The regular file (or link to one) named `name`.
    pub fn get(&self, name: &str) -> Option<TarEntry> {
        self.files.get(name).copied()
    }

    /// Every file name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

/// An archive opened for reading: the (decompressed) tar file, locked, and its index.
#[derive(Debug)]
pub struct Tarball {
    path: PathBuf,
    /// The tar bytes: the archive itself, or a decompressed temporary copy.
    data: Arc<File>,
    /// The archive file itself, which holds the lock.
    _lock: File,
    compression: Compression,
    index: TarIndex,
}

impl Tarball {
    /// Open, lock (shared or exclusive) and index the archive at `path`. Opened exclusively
    /// (to be rewritten), it first removes the temporaries killed runs left beside it.
    pub fn open(path: &Path, exclusive: bool) -> Result<Tarball, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io("opening", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("reading", path, e))?;
        if !meta.is_file() {
            return Err(bad(path, "it is not a regular file"));
        }
        let locked = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match locked {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io("locking", path, e)),
        }
        if exclusive {
            // About to be rewritten: what killed runs left beside it (a staging directory, a
            // half-written archive) goes, even if this run finds nothing to change.
            super::temp::sweep(&parent_dir(path));
        }
        let mut head = [0u8; 4];
        let n = file
            .read_at(&mut head, 0)
            .map_err(|e| StoreError::io("reading", path, e))?;
        let compression = Compression::sniff(&head[..n]);
        let data = match compression {
            Compression::None => file
                .try_clone()
                .map_err(|e| StoreError::io("opening", path, e))?,
            _ => decompress_to_temp(&file, path, compression)?,
        };
        let index = TarIndex::scan(&data, path)?;
        Ok(Tarball {
            path: path.to_path_buf(),
            data: Arc::new(data),
            _lock: file,
            compression,
            index,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the archive file is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The index of its files.
    pub fn index(&self) -> &TarIndex {
        &self.index
    }

    /// Whether it holds a file (or a link to one) named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.get(name).is_some()
    }

    /// A reader of the file `name`, if the archive holds it.
    pub fn open_file(&self, name: &str) -> Option<EntryReader> {
        self.index
            .get(name)
            .map(|entry| EntryReader::new(self.data.clone(), entry))
    }

    /// A reader of `name` that fails at its end unless it has `size` bytes with `digest`;
    /// `None` when the archive does not hold it.
    pub fn open_verified(
        &self,
        name: &str,
        digest: &Digest,
        size: u64,
    ) -> Option<VerifyingReader<EntryReader>> {
        self.open_file(name)
            .map(|r| VerifyingReader::new(r, digest.clone(), size))
    }

    /// Read the whole file `name` into memory, refusing one larger than `limit`.
    pub fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(entry) = self.index.get(name) else {
            return Ok(None);
        };
        if entry.size > limit {
            return Err(bad(
                &self.path,
                format!(
                    "`{name}` is {} bytes, more than the {limit} allowed",
                    entry.size
                ),
            ));
        }
        let mut out = Vec::with_capacity(entry.size as usize);
        self.open_file(name)
            .expect("indexed")
            .read_to_end(&mut out)
            .map_err(|e| StoreError::io("reading", &self.path, e))?;
        Ok(Some(out))
    }
}

/// Decompress `file` into an unnamed temporary file in the archive's directory.
fn decompress_to_temp(
    file: &File,
    path: &Path,
    compression: Compression,
) -> Result<File, StoreError> {
    // Beside the archive (same filesystem, so the space is where the user expects it), or in
    // the system's temporary directory when the archive's directory is read-only.
    let dir = parent_dir(path);
    // An unnamed (O_TMPFILE) file is made 0666 less the umask: 0600 like every temporary.
    let mut temp = tempfile::tempfile_in(&dir)
        .or_else(|_| tempfile::tempfile())
        .and_then(|f| {
            f.set_permissions(fs::Permissions::from_mode(0o600))
                .map(|()| f)
        })
        .map_err(|e| StoreError::io("creating a temporary file in", &dir, e))?;
    let source = io::BufReader::new(
        file.try_clone()
            .map_err(|e| StoreError::io("opening", path, e))?,
    );
    let undecodable = |e: io::Error| bad(path, format!("it cannot be decompressed ({e})"));
    let mut decoder: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(source)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(source).map_err(undecodable)?)
        }
        Compression::None => unreachable!("only compressed archives are decompressed"),
    };
    // A failed read is the archive's fault; a failed write (a full disk) is not.
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(undecodable(e)),
        };
        temp.write_all(&buf[..n])
            .map_err(|e| StoreError::io("writing a decompressed copy of", path, e))?;
    }
    Ok(temp)
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads one file of an archive with positioned reads, so readers share the file handle.
#[derive(Debug)]
pub struct EntryReader {
    file: Arc<File>,
    position: u64,
    end: u64,
}

impl EntryReader {
    /// A reader of `entry`'s bytes in `file`.
    fn new(file: Arc<File>, entry: TarEntry) -> EntryReader {
        EntryReader {
            file,
            position: entry.offset,
            end: entry.offset + entry.size,
        }
    }
}

impl Read for EntryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.position;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ended in the middle of a file",
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}

/// Writes a new archive into a temporary file beside its target; [`TarWriter::finish`]
/// flushes it to disk and renames it over the target.
pub struct TarWriter {
    target: PathBuf,
    builder: tar::Builder<TarOut>,
}

/// The temporary file an archive is written to: [`FastWriter`] writes the layers past the page
/// cache; `temp` names the file and removes it unless it is published.
struct TarOut {
    out: FastWriter,
    temp: NamedTempFile,
}

impl Write for TarOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl std::fmt::Debug for TarWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarWriter")
            .field("target", &self.target)
            .finish()
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

impl TarWriter {
    /// Start an archive that will replace (or create) `target`.
    pub fn create(target: &Path) -> Result<TarWriter, StoreError> {
        let (temp, file) = temp_beside(target)?;
        let out = FastWriter::new(file, temp.path());
        let mut builder = tar::Builder::new(TarOut { out, temp });
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(TarWriter {
            target: target.to_path_buf(),
            builder,
        })
    }

    fn err(&self, e: io::Error) -> StoreError {
        StoreError::io("writing", self.target.clone(), e)
    }

    /// Add a directory entry (`name` without a trailing slash).
    pub fn add_dir(&mut self, name: &str) -> Result<(), StoreError> {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        self.builder
            .append_data(&mut h, format!("{name}/"), io::empty())
            .map_err(|e| self.err(e))
    }

    /// Add a file of `size` bytes read from `data`; fails unless `data` has exactly that many.
    pub fn add_file(
        &mut self,
        name: &str,
        size: u64,
        mut data: impl Read,
    ) -> Result<(), StoreError> {
        if size >= AlignedBuf::CAPACITY as u64 && name.len() <= 100 {
            // A large file: copied in whole buffers (a tar builder copies 8 KiB at a time),
            // which the writer hands to the disk without another copy.
            let out = &mut self.builder.get_mut().out;
            let result = (|| {
                let mut h = header(tar::EntryType::Regular, size, 0o644);
                h.set_path(name)?;
                h.set_cksum();
                out.write_all(h.as_bytes())?;
                copy_exact(&mut data, size, |chunk| out.write_chunk(chunk))?;
                out.write_all(&[0u8; 512][..padding(size)])
            })();
            return result.map_err(|e| self.err(e));
        }
        let mut h = header(tar::EntryType::Regular, size, 0o644);
        let mut counted = CountingReader {
            inner: data,
            count: 0,
        };
        let result = self.builder.append_data(&mut h, name, &mut counted);
        // `append_data` pads a short reader with zeros; a short or long source is an error.
        let mut rest = [0u8; 1];
        let longer = counted.inner.read(&mut rest).map(|n| n > 0);
        match (result, longer) {
            (Err(e), _) | (_, Err(e)) => Err(self.err(e)),
            (Ok(()), Ok(false)) if counted.count == size => Ok(()),
            _ => Err(self.err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{name}` did not have the {size} bytes announced"),
            ))),
        }
    }

    /// Add a file whose size is known only once `data` is exhausted (a layer being
    /// decompressed): the header is written after the data, in the place reserved for it.
    /// Returns the number of bytes added. `name` must fit a plain header (100 bytes).
    pub fn add_file_unsized(&mut self, name: &str, mut data: impl Read) -> Result<u64, StoreError> {
        if name.len() > 100 {
            return Err(self.err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is too long for a plain tar header"),
            )));
        }
        let out = &mut self.builder.get_mut().out;
        let result = (|| {
            let start = out.position();
            out.write_all(&[0u8; 512])?;
            let size = copy_to_end(&mut data, |chunk| out.write_chunk(chunk))?;
            out.write_all(&[0u8; 512][..padding(size)])?;
            let mut h = header(tar::EntryType::Regular, size, 0o644);
            h.set_path(name)?;
            h.set_cksum();
            out.patch(start, h.as_bytes())?;
            Ok(size)
        })();
        result.map_err(|e| self.err(e))
    }

    /// Add a file from memory.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.add_file(name, data.len() as u64, data)
    }

    /// Add a symbolic link `name` → `target`.
    pub fn add_symlink(&mut self, name: &str, target: &str) -> Result<(), StoreError> {
        let mut h = header(tar::EntryType::Symlink, 0, 0o777);
        self.builder
            .append_link(&mut h, name, target)
            .map_err(|e| self.err(e))
    }

    /// Finish the archive, flush it to stable storage and rename it over the target.
    /// `mode` is the new file's permission bits.
    pub fn finish(self, mode: u32) -> Result<(), StoreError> {
        let target = self.target;
        let err = |e: io::Error| StoreError::io("writing", target.clone(), e);
        let TarOut { out, temp } = self.builder.into_inner().map_err(err)?;
        out.finish().map_err(err)?;
        publish(temp, &target, mode)
    }
}

/// The temporary file a new archive for `target` is written to (beside it, so that it can be
/// renamed over it), and a second handle to it.
fn temp_beside(target: &Path) -> Result<(NamedTempFile, File), StoreError> {
    let dir = parent_dir(target);
    let temp = super::temp::file_in(&dir)
        .map_err(|e| StoreError::io("creating a temporary file in", &dir, e))?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| StoreError::io("opening", temp.path().to_path_buf(), e))?;
    Ok((temp, file))
}

/// Flush a finished archive to stable storage, give it its permission bits and rename it over
/// `target` (then sync the directory, so the rename survives a crash).
fn publish(temp: NamedTempFile, target: &Path, mode: u32) -> Result<(), StoreError> {
    let err = |e: io::Error| StoreError::io("writing", target.to_path_buf(), e);
    temp.as_file().sync_all().map_err(err)?;
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(mode)).map_err(err)?;
    super::temp::persist(temp, target).map_err(|e| StoreError::io("replacing", target, e))?;
    let dir = parent_dir(target);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing", &dir, e))
}

/// Zero bytes that pad a file of `size` bytes to the 512-byte blocks of a tar archive.
fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// Copy exactly `size` bytes of `data` through whole [`AlignedBuf`]s into `write`, which
/// returns an empty buffer for the next chunk; a source shorter or longer than `size` is an
/// error.
fn copy_exact(
    data: &mut dyn Read,
    size: u64,
    mut write: impl FnMut(AlignedBuf) -> io::Result<AlignedBuf>,
) -> io::Result<()> {
    let mut buf = AlignedBuf::new();
    let mut left = size;
    while left > 0 {
        let want = left.min(AlignedBuf::CAPACITY as u64) as usize;
        let got = read_full(data, &mut buf.space()[..want])?;
        if got < want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the source ended {} bytes short", left - got as u64),
            ));
        }
        buf.set_len(want);
        buf = write(buf)?;
        left -= want as u64;
    }
    if read_full(data, &mut [0u8; 1])? > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the source is longer than the {size} bytes announced"),
        ));
    }
    Ok(())
}

/// Copy all of `data` through whole [`AlignedBuf`]s into `write` (as [`copy_exact`] does);
/// returns the number of bytes.
fn copy_to_end(
    data: &mut dyn Read,
    mut write: impl FnMut(AlignedBuf) -> io::Result<AlignedBuf>,
) -> io::Result<u64> {
    let mut buf = AlignedBuf::new();
    let mut total = 0u64;
    loop {
        let got = read_full(data, buf.space())?;
        if got == 0 {
            return Ok(total);
        }
        total += got as u64;
        buf.set_len(got);
        buf = write(buf)?;
    }
}

/// Alignment of the data of a file written into a reserved region: the page size and the
/// largest common logical block size, so that no page holds both bytes written with direct
/// I/O and bytes written through the page cache (the kernel would not keep such a page
/// coherent), and direct I/O works on 4K-native disks too.
const REGION_ALIGN: u64 = 4096;

/// A new archive written out of order: small entries are appended, and each large file is
/// written straight into a region reserved for it as soon as its size is known, by as many
/// writers at once as there are files. [`TarRegions::finish`] ends the archive and renames it
/// over its target, like [`TarWriter::finish`].
///
/// A region starts with a PAX extended header whose only record is a comment sized so that the
/// file's data starts on a 4 KiB boundary; every tar reader (Go's `archive/tar` in skopeo and
/// podman, GNU tar, bsdtar, Python's `tarfile`) reads past it. Names must fit a plain header
/// (100 bytes; `blobs/sha256/…` takes 77).
pub struct TarRegions {
    target: PathBuf,
    temp: NamedTempFile,
    /// The temporary file, for positioned writes and reads.
    file: Arc<File>,
    state: Mutex<Regions>,
}

impl std::fmt::Debug for TarRegions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarRegions")
            .field("target", &self.target)
            .finish()
    }
}

/// What [`TarRegions`] has reserved and written.
#[derive(Default)]
struct Regions {
    /// Where the next region or entry starts; everything before is reserved or written.
    next: u64,
    /// Entries in archive order: a directory (no data) or a sealed file.
    order: Vec<(String, Option<TarEntry>)>,
    /// Sealed files by name.
    files: BTreeMap<String, TarEntry>,
    /// Regions reserved and not yet sealed or abandoned.
    open: usize,
    /// Whether some region holds no file (a duplicate of a sealed one, or abandoned after an
    /// error): then the archive is rewritten without the holes before it is published.
    holes: bool,
}

impl TarRegions {
    /// Start an archive that will replace (or create) `target`.
    pub fn create(target: &Path) -> Result<TarRegions, StoreError> {
        let (temp, file) = temp_beside(target)?;
        Ok(TarRegions {
            target: target.to_path_buf(),
            temp,
            file: Arc::new(file),
            state: Mutex::new(Regions::default()),
        })
    }

    fn err(&self, e: io::Error) -> StoreError {
        StoreError::io("writing", self.target.clone(), e)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Regions> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Append a directory entry (`name` without a trailing slash).
    pub fn add_dir(&self, name: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        h.set_path(format!("{name}/")).map_err(|e| self.err(e))?;
        h.set_cksum();
        self.file
            .write_all_at(h.as_bytes(), state.next)
            .map_err(|e| self.err(e))?;
        state.next += 512;
        state.order.push((name.to_string(), None));
        Ok(())
    }

    /// Append a small file from memory.
    pub fn add_bytes(&self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        if self.contains(name) {
            return Ok(());
        }
        let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
        h.set_path(name).map_err(|e| self.err(e))?;
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len() + padding(data.len() as u64), 0);
        let mut state = self.state();
        let at = state.next;
        self.file
            .write_all_at(&bytes, at)
            .map_err(|e| self.err(e))?;
        state.next += bytes.len() as u64;
        let entry = TarEntry {
            offset: at + 512,
            size: data.len() as u64,
        };
        state.files.insert(name.to_string(), entry);
        state.order.push((name.to_string(), Some(entry)));
        Ok(())
    }

    /// Add a file of `size` bytes read from `data` (through whole buffers); fails unless
    /// `data` has exactly that many. A name the archive already holds is skipped.
    pub fn add_file(&self, name: &str, size: u64, mut data: impl Read) -> Result<(), StoreError> {
        if self.contains(name) {
            return Ok(());
        }
        let mut region = self.reserve(size)?;
        copy_exact(&mut data, size, |chunk| region.write_chunk(chunk)).map_err(|e| self.err(e))?;
        region.seal(name).map(|_| ())
    }

    /// Reserve a region for a file of exactly `size` bytes, to be written through the
    /// returned writer and named by [`RegionWriter::seal`].
    pub fn reserve(&self, size: u64) -> Result<RegionWriter<'_>, StoreError> {
        let (start, data_at) = {
            let mut state = self.state();
            let start = state.next;
            // Room for the PAX header and at least one block of records (a PAX header
            // without records would also do, but one that says why it is there is kinder to
            // whoever inspects the archive), then the file's header.
            // Sizes come from descriptors, which a hostile image may set to anything: no
            // arithmetic here may overflow.
            let too_large = || {
                self.err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a file of {size} bytes would make the archive too large"),
                ))
            };
            let data_at = start
                .checked_add(3 * 512)
                .and_then(|at| at.checked_next_multiple_of(REGION_ALIGN))
                .ok_or_else(too_large)?;
            let end = size
                .checked_next_multiple_of(512)
                .and_then(|padded| data_at.checked_add(padded))
                .ok_or_else(too_large)?;
            state.next = end;
            state.open += 1;
            (start, data_at)
        };
        let file = self.file.try_clone().map_err(|e| self.err(e))?;
        Ok(RegionWriter {
            tar: self,
            start,
            data_at,
            size,
            written: 0,
            out: Some(FastWriter::at(file, self.temp.path(), data_at)),
        })
    }

    /// Whether the archive holds a file named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.state().files.contains_key(name)
    }

    /// A reader of the file `name` that fails at its end unless it has `size` bytes with
    /// `digest`; `None` when the archive does not hold it.
    pub fn open_verified(
        &self,
        name: &str,
        digest: &Digest,
        size: u64,
    ) -> Option<VerifyingReader<EntryReader>> {
        let entry = *self.state().files.get(name)?;
        let reader = EntryReader::new(self.file.clone(), entry);
        Some(VerifyingReader::new(reader, digest.clone(), size))
    }

    /// End the archive, flush it to stable storage and rename it over the target. `mode` is
    /// the new file's permission bits. An archive with holes is first rewritten without them.
    pub fn finish(self, mode: u32) -> Result<(), StoreError> {
        let TarRegions {
            target,
            temp,
            file,
            state,
        } = self;
        let state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
        if state.open > 0 {
            return Err(StoreError::io(
                "writing",
                target,
                io::Error::other("a file of the archive was still being written"),
            ));
        }
        if state.holes {
            // Rare (two layers that came out identical): copy what is live into a new
            // archive, then drop this one.
            let mut out = TarWriter::create(&target)?;
            for (name, entry) in &state.order {
                match entry {
                    None => out.add_dir(name)?,
                    Some(entry) => {
                        out.add_file(name, entry.size, EntryReader::new(file.clone(), *entry))?
                    }
                }
            }
            return out.finish(mode);
        }
        // The end-of-archive marker: two zero blocks.
        let end = state.next + 1024;
        file.write_all_at(&[0u8; 1024], state.next)
            .and_then(|()| file.set_len(end))
            .map_err(|e| StoreError::io("writing", target.clone(), e))?;
        publish(temp, &target, mode)
    }
}

/// Writes one file into the region [`TarRegions::reserve`] set aside for it; dropped without
/// [`RegionWriter::seal`], the region becomes a hole (an error elsewhere has usually doomed the
/// archive anyway).
pub struct RegionWriter<'a> {
    tar: &'a TarRegions,
    /// Where the region starts (its PAX header).
    start: u64,
    /// Where the file's data starts (after its header).
    data_at: u64,
    size: u64,
    written: u64,
    out: Option<FastWriter>,
}

impl RegionWriter<'_> {
    /// Count `n` more bytes, refusing more than the region holds.
    fn count(&mut self, n: usize) -> io::Result<()> {
        self.written += n as u64;
        if self.written > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than the {} bytes announced", self.size),
            ));
        }
        Ok(())
    }

    fn out(&mut self) -> &mut FastWriter {
        self.out.as_mut().expect("not sealed")
    }

    /// Finish the file and name it `name`; returns `false` (and leaves a hole) when the
    /// archive already holds a file of that name: the same blob, written twice.
    pub fn seal(mut self, name: &str) -> Result<bool, StoreError> {
        let tar = self.tar;
        let out = self.out.take().expect("sealed once");
        let finished = out.finish().map_err(|e| tar.err(e)).and_then(|()| {
            if self.written == self.size {
                Ok(())
            } else {
                Err(tar.err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} bytes written of the {} announced",
                        self.written, self.size
                    ),
                )))
            }
        });
        // Checking the name and writing the headers under the lock makes them one step: two
        // writers of the same blob cannot both name their region after it.
        let mut state = tar.state();
        state.open -= 1;
        let sealed = finished.and_then(|()| {
            if state.files.contains_key(name) {
                return Ok(None);
            }
            self.write_headers(name).map(Some)
        });
        match sealed {
            Ok(Some(entry)) => {
                state.files.insert(name.to_string(), entry);
                state.order.push((name.to_string(), Some(entry)));
                Ok(true)
            }
            Ok(None) => {
                state.holes = true;
                Ok(false)
            }
            Err(e) => {
                state.holes = true;
                Err(e)
            }
        }
    }

    /// Write the headers of the region (the PAX padding, then the file's) naming it `name`.
    fn write_headers(&self, name: &str) -> Result<TarEntry, StoreError> {
        let tar = self.tar;
        // The PAX header and its record, which fill the gap before the file's header.
        let records = (self.data_at - self.start - 2 * 512) as usize;
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(records as u64);
        pax.set_mode(0o644);
        pax.set_mtime(0);
        pax.set_path("PaxHeaders/padding").map_err(|e| tar.err(e))?;
        pax.set_cksum();
        let mut bytes = pax.as_bytes().to_vec();
        bytes.extend_from_slice(&comment_record(records));
        let mut h = header(tar::EntryType::Regular, self.size, 0o644);
        h.set_path(name).map_err(|e| tar.err(e))?;
        h.set_cksum();
        bytes.extend_from_slice(h.as_bytes());
        debug_assert_eq!(self.start + bytes.len() as u64, self.data_at);
        tar.file
            .write_all_at(&bytes, self.start)
            .map_err(|e| tar.err(e))?;
        Ok(TarEntry {
            offset: self.data_at,
            size: self.size,
        })
    }
}

/// A PAX record of exactly `len` bytes (at least 16): a comment saying why it is there.
fn comment_record(len: usize) -> Vec<u8> {
    const WHY: &str = "layercrypt: aligns the next file to 4 KiB";
    // The record starts with its own length in decimal: "<len> comment=<text>\n".
    let head = format!("{len} comment=");
    let text_len = len - head.len() - 1;
    let mut text: Vec<u8> = WHY.bytes().take(text_len).collect();
    text.resize(text_len, b' ');
    let mut record = head.into_bytes();
    record.extend_from_slice(&text);
    record.push(b'\n');
    record
}

impl Write for RegionWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count(buf.len())?;
        let n = self.out().write(buf)?;
        // FastWriter takes what fits in its buffer; count only that.
        self.written -= (buf.len() - n) as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out().flush()
    }
}

impl ChunkWrite for RegionWriter<'_> {
    fn write_chunk(&mut self, chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        self.count(chunk.len())?;
        self.out().write_chunk(chunk)
    }
}

impl Drop for RegionWriter<'_> {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let mut state = self.tar.state();
            state.open -= 1;
            state.holes = true;
        }
    }
}

/// Counts what passes through, to detect a source that was shorter than announced.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a raw tar from (name, type, link target, data) entries, bypassing the builder's
    /// own path checks so hostile names can be written.
    fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn scan(bytes: &[u8]) -> Result<TarIndex, StoreError> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        TarIndex::scan(&f, Path::new("test.tar"))
    }

    fn reason(bytes: &[u8]) -> String {
        match scan(bytes) {
            Err(StoreError::BadArchive { reason, .. }) => reason,
            other => panic!("accepted or wrong error: {other:?}"),
        }
    }

    use tar::EntryType::{Directory, Link, Regular, Symlink};

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// An archive written by `TarRegions` with files of every shape written at once.
    fn regions_archive(dir: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
        let path = dir.join("r.tar");
        let tar = TarRegions::create(&path).unwrap();
        tar.add_bytes("oci-layout", b"{}").unwrap();
        tar.add_dir("blobs").unwrap();
        let sizes = [
            0,
            1,
            511,
            512,
            4096,
            AlignedBuf::CAPACITY,
            2 * AlignedBuf::CAPACITY + 77,
        ];
        let files: Vec<(String, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| (format!("blobs/f{i}"), pattern(len, i as u8)))
            .collect();
        std::thread::scope(|s| {
            for (name, data) in &files {
                let tar = &tar;
                s.spawn(move || {
                    let mut region = tar.reserve(data.len() as u64).unwrap();
                    for piece in data.chunks(300_000) {
                        region.write_all(piece).unwrap();
                    }
                    assert!(region.seal(name).unwrap());
                });
            }
        });
        tar.add_file(
            "big-from-reader",
            3 * 1024 * 1024 + 5,
            &pattern(3 * 1024 * 1024 + 5, 9)[..],
        )
        .unwrap();
        tar.add_bytes("index.json", b"{\"x\":1}").unwrap();
        tar.finish(0o640).unwrap();
        (path, files)
    }

    #[test]
    fn regions_make_an_archive_every_reader_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, files) = regions_archive(tmp.path());
        let file = File::open(&path).unwrap();
        let index = TarIndex::scan(&file, &path).unwrap();
        for (name, data) in &files {
            let entry = index.get(name).unwrap();
            assert_eq!(entry.size, data.len() as u64, "{name}");
            assert_eq!(entry.offset % REGION_ALIGN, 0, "{name}: data is aligned");
            let mut back = vec![0; data.len()];
            file.read_exact_at(&mut back, entry.offset).unwrap();
            assert!(back == *data, "{name}");
        }
        assert!(index.get("index.json").is_some() && index.get("oci-layout").is_some());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // Beside the target, nothing but the archive.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);

        // GNU tar (what a user inspects an archive with) sees the files and no padding.
        let listed = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&path)
            .output()
            .unwrap();
        assert!(listed.status.success(), "{listed:?}");
        let names = String::from_utf8(listed.stdout).unwrap();
        let mut expected: Vec<&str> = vec!["oci-layout", "blobs/"];
        expected.extend(names.lines().filter(|n| n.starts_with("blobs/f")));
        expected.extend(["big-from-reader", "index.json"]);
        assert_eq!(names.lines().collect::<Vec<_>>(), expected);
        assert_eq!(
            names.lines().filter(|n| n.starts_with("blobs/f")).count(),
            files.len()
        );
        // And it extracts them intact.
        let out = tmp.path().join("x");
        fs::create_dir(&out).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&path)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        for (name, data) in &files {
            assert!(fs::read(out.join(name)).unwrap() == *data, "{name}");
        }
    }

    #[test]
    fn a_region_left_empty_or_filled_twice_is_compacted_away() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("h.tar");
        let tar = TarRegions::create(&path).unwrap();
        let data = pattern(AlignedBuf::CAPACITY + 3, 1);
        for _ in 0..2 {
            let mut r = tar.reserve(data.len() as u64).unwrap();
            r.write_all(&data).unwrap();
            r.seal("blobs/same").unwrap();
        }
        let mut abandoned = tar.reserve(100).unwrap();
        abandoned.write_all(b"partial").unwrap();
        drop(abandoned);
        let mut short = tar.reserve(100).unwrap();
        short.write_all(b"short").unwrap();
        assert!(short.seal("blobs/short").is_err());
        let mut long = tar.reserve(3).unwrap();
        assert!(long.write_all(b"long").is_err());
        drop(long);
        tar.add_bytes("index.json", b"{}").unwrap();
        tar.finish(0o644).unwrap();
        let file = File::open(&path).unwrap();
        let index = TarIndex::scan(&file, &path).unwrap();
        assert_eq!(
            index.names().collect::<Vec<_>>(),
            ["blobs/same", "index.json"]
        );
        let entry = index.get("blobs/same").unwrap();
        let mut back = vec![0; data.len()];
        file.read_exact_at(&mut back, entry.offset).unwrap();
        assert!(back == data);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_size_no_archive_can_hold_is_refused_without_overflow() {
        let tmp = tempfile::tempdir().unwrap();
        let tar = TarRegions::create(&tmp.path().join("big.tar")).unwrap();
        for size in [u64::MAX, u64::MAX - 511, u64::MAX - 4096] {
            assert!(tar.reserve(size).is_err(), "{size}");
        }
        // A size that fits the arithmetic but not the file system: the region cannot be
        // sealed, nothing after it can be written (an error, not a panic), and the archive,
        // dropped unfinished, leaves nothing behind.
        let mut huge = tar.reserve(1 << 62).unwrap();
        assert!(huge.write_all(&[1; 10]).is_ok());
        assert!(huge.seal("blobs/huge").is_err());
        assert!(tar.reserve(u64::MAX - (1 << 62)).is_err());
        assert!(tar.add_bytes("index.json", b"{}").is_err());
        drop(tar);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn writers_of_the_same_blob_at_once_name_one_region() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.tar");
        let tar = TarRegions::create(&path).unwrap();
        let data = pattern(10_000, 3);
        let named = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let mut r = tar.reserve(data.len() as u64).unwrap();
                        r.write_all(&data).unwrap();
                        r.seal("blobs/same").unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&named| named)
                .count()
        });
        assert_eq!(named, 1);
        tar.finish(0o644).unwrap();
        let index = TarIndex::scan(&File::open(&path).unwrap(), &path).unwrap();
        assert_eq!(index.names().collect::<Vec<_>>(), ["blobs/same"]);
    }

    #[test]
    fn a_region_still_open_fails_the_archive_and_dropping_it_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("o.tar");
        let tar = TarRegions::create(&path).unwrap();
        let region = tar.reserve(10).unwrap();
        std::mem::forget(region);
        assert!(tar.finish(0o644).is_err());
        assert!(!path.exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn comment_records_have_the_length_they_declare() {
        for len in [512, 1000, 3584, 4607] {
            let r = comment_record(len);
            assert_eq!(r.len(), len);
            let text = String::from_utf8(r).unwrap();
            let (declared, _) = text.split_once(' ').unwrap();
            assert_eq!(declared.parse::<usize>().unwrap(), len);
            assert!(text.ends_with('\n') && text.contains(" comment=layercrypt"));
        }
    }

    #[test]
    fn indexes_files_and_resolves_links_inside_the_archive() {
        let bytes = raw_tar(&[
            ("./blobs/", Directory, "", b""),
            ("./blobs/sha256/abc", Regular, "", b"hello"),
            ("x/layer.tar", Symlink, "../blobs/sha256/abc", b""),
            ("y/layer.tar", Link, "blobs/sha256/abc", b""),
            ("z", Symlink, "x/layer.tar", b""),
        ]);
        let index = scan(&bytes).unwrap();
        let e = index.get("blobs/sha256/abc").unwrap();
        assert_eq!(e.size, 5);
        for alias in ["x/layer.tar", "y/layer.tar", "z"] {
            assert_eq!(index.get(alias), Some(e), "{alias}");
        }
        assert_eq!(
            &bytes[e.offset as usize..(e.offset + e.size) as usize],
            b"hello"
        );
    }

    #[test]
    fn accepts_the_root_directory_gnu_tar_writes() {
        // `tar -C layout -cf image.tar .`
        let bytes = raw_tar(&[
            ("./", Directory, "", b""),
            ("./oci-layout", Regular, "", b"{}"),
        ]);
        let index = scan(&bytes).unwrap();
        assert_eq!(index.names().collect::<Vec<_>>(), ["oci-layout"]);
        // A root that is a file, or an absolute one, is still refused.
        assert!(reason(&raw_tar(&[("./", Regular, "", b"x")])).contains("empty name"));
        assert!(reason(&raw_tar(&[("/", Directory, "", b"")])).contains("absolute"));
    }

    #[test]
    fn refuses_hostile_entries() {
        for (entries, expect) in [
            (vec![("/etc/passwd", Regular, "", &b"x"[..])], "absolute"),
            (vec![("a/../../x", Regular, "", &b"x"[..])], "`..`"),
            (
                vec![("a", Symlink, "/etc/shadow", &b""[..])],
                "absolute path",
            ),
            (vec![("a/b", Symlink, "../../x", &b""[..])], "outside"),
            (vec![("a", Symlink, "missing", &b""[..])], "does not hold"),
            (vec![("a", Link, "../x", &b""[..])], "`..`"),
            (
                vec![("a", Symlink, "b", &b""[..]), ("b", Symlink, "a", &b""[..])],
                "loop",
            ),
            (
                vec![
                    ("a", Regular, "", &b"1"[..]),
                    ("./a", Regular, "", &b"2"[..]),
                ],
                "twice",
            ),
            (vec![("fifo", tar::EntryType::Fifo, "", &b""[..])], "Fifo"),
        ] {
            let r = reason(&raw_tar(&entries));
            assert!(r.contains(expect), "{entries:?}: {r}");
        }
    }

    #[test]
    fn refuses_sizes_that_lie() {
        let mut bytes = raw_tar(&[("a", Regular, "", b"12345")]);
        // Claim 1 MiB in the header of a 5-byte file, then cut the archive short.
        let mut h = tar::Header::from_byte_slice(&bytes[..512]).clone();
        h.set_size(1 << 20);
        h.set_cksum();
        bytes[..512].copy_from_slice(h.as_bytes());
        bytes.truncate(1024);
        assert!(reason(&bytes).contains("more than the archive holds"));
        assert!(!reason(b"not a tar at all, just some text that is long enough").is_empty());
    }

    #[test]
    fn writer_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        fs::write(&target, b"old").unwrap();
        let mut w = TarWriter::create(&target).unwrap();
        w.add_dir("blobs").unwrap();
        w.add_bytes("blobs/sha256/aa", b"data").unwrap();
        w.add_symlink("l", "blobs/sha256/aa").unwrap();
        assert!(
            w.add_file("short", 10, &b"abc"[..]).is_err(),
            "a short source must fail"
        );
        drop(w);
        assert_eq!(
            fs::read(&target).unwrap(),
            b"old",
            "dropped writer changed the target"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut w = TarWriter::create(&target).unwrap();
        w.add_bytes("blobs/sha256/aa", b"data").unwrap();
        w.add_symlink("l", "blobs/sha256/aa").unwrap();
        assert_eq!(w.add_file_unsized("late", &b"sized late"[..]).unwrap(), 10);
        w.add_bytes("after", b"!").unwrap();
        w.finish(0o644).unwrap();
        let t = Tarball::open(&target, false).unwrap();
        let mut s = String::new();
        t.open_file("l").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
        assert_eq!(t.read_file("late", 100).unwrap().unwrap(), b"sized late");
        assert_eq!(t.read_file("after", 100).unwrap().unwrap(), b"!");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn reads_gzip_compressed_archives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw_tar(&[("f", Regular, "", b"zipped")]))
            .unwrap();
        fs::write(&path, gz.finish().unwrap()).unwrap();
        let t = Tarball::open(&path, false).unwrap();
        assert_eq!(t.compression(), Compression::Gzip);
        // The decompressed copy has no name and is private.
        assert_eq!(
            t.data.metadata().unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(t.read_file("f", 100).unwrap().unwrap(), b"zipped");
        assert!(t.read_file("f", 2).is_err());
    }

    #[test]
    fn locks_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        fs::write(&path, raw_tar(&[("f", Regular, "", b"x")])).unwrap();
        let _reader = Tarball::open(&path, false).unwrap();
        assert!(Tarball::open(&path, false).is_ok());
        assert!(matches!(
            Tarball::open(&path, true),
            Err(StoreError::Locked { .. })
        ));
    }

    #[test]
    fn opening_an_archive_to_rewrite_it_removes_what_killed_runs_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        fs::write(&path, raw_tar(&[("f", Regular, "", b"x")])).unwrap();
        let stale = [
            dir.path().join(".layercrypt-tmp-Stage1"),
            dir.path().join(".layercrypt-tmp-Tar001"),
        ];
        fs::create_dir_all(stale[0].join("layout")).unwrap();
        fs::write(&stale[1], b"half an archive").unwrap();
        drop(Tarball::open(&path, false).unwrap());
        assert!(stale.iter().all(|p| p.exists()), "a reader removed them");
        drop(Tarball::open(&path, true).unwrap());
        assert!(stale.iter().all(|p| !p.exists()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
