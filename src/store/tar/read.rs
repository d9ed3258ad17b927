//! Reading an archive in place: [`Tarball`] opens and locks it, decompresses it first when it
//! is compressed, indexes it, and hands out readers of its files.
//!
//! A compressed archive (`docker save | gzip`) is decompressed into an unnamed temporary file
//! beside it (or in the system's temporary directory when that directory is read-only), so the
//! index can point into plain tar bytes; that copy is private (0600) and vanishes with the
//! handle. Readers use positioned reads on one shared handle, so many workers can read one
//! archive at once. Never writes to the archive, and never reads a file by any name the index
//! did not vouch for.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::{TarEntry, TarIndex};
use super::{Compression, bad, parent_dir};
use crate::digest::{Digest, VerifyingReader};
use crate::store::StoreError;

/// An archive opened for reading: the (decompressed) tar file, locked, and its index.
#[derive(Debug)]
pub struct Tarball {
    path: PathBuf,
    /// The tar bytes: the archive itself, or a decompressed temporary copy (visible to the
    /// tests, which check that the copy is private).
    pub(super) data: Arc<File>,
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
            crate::store::temp::sweep(&parent_dir(path));
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

/// Reads one file of an archive with positioned reads, so readers share the file handle.
#[derive(Debug)]
pub struct EntryReader {
    file: Arc<File>,
    position: u64,
    end: u64,
}

impl EntryReader {
    /// A reader of `entry`'s bytes in `file`.
    pub(super) fn new(file: Arc<File>, entry: TarEntry) -> EntryReader {
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
