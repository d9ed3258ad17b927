//! Writing an archive sequentially: [`TarWriter`] appends deterministic entries (owner root,
//! mode 0644, time 0) to a temporary file beside the target, and [`TarWriter::finish`] flushes
//! it to stable storage and renames it over the target.
//!
//! It must never leave a half-written archive under the target's name: a writer dropped
//! without `finish` removes its temporary file, and the target is replaced in one rename.
//! A source shorter or longer than the size announced for it is an error, never padding. The
//! helpers below (headers, padding, copying in whole buffers, publishing) are shared with the
//! concurrent writer in `regions.rs`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::parent_dir;
use crate::store::StoreError;
use crate::store::direct::{AlignedBuf, FastWriter, read_full};

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

/// A header of the deterministic kind layercrypt writes: owner root, time 0, the given type,
/// size and mode (the caller sets the path and checksum).
pub(super) fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
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
pub(super) fn temp_beside(target: &Path) -> Result<(NamedTempFile, File), StoreError> {
    let dir = parent_dir(target);
    let temp = crate::store::temp::file_in(&dir)
        .map_err(|e| StoreError::io("creating a temporary file in", &dir, e))?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| StoreError::io("opening", temp.path().to_path_buf(), e))?;
    Ok((temp, file))
}

/// Flush a finished archive to stable storage, give it its permission bits and rename it over
/// `target` (then sync the directory, so the rename survives a crash).
pub(super) fn publish(temp: NamedTempFile, target: &Path, mode: u32) -> Result<(), StoreError> {
    let err = |e: io::Error| StoreError::io("writing", target.to_path_buf(), e);
    temp.as_file().sync_all().map_err(err)?;
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(mode)).map_err(err)?;
    crate::store::temp::persist(temp, target)
        .map_err(|e| StoreError::io("replacing", target, e))?;
    let dir = parent_dir(target);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing", &dir, e))
}

/// Zero bytes that pad a file of `size` bytes to the 512-byte blocks of a tar archive.
pub(super) fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// Copy exactly `size` bytes of `data` through whole [`AlignedBuf`]s into `write`, which
/// returns an empty buffer for the next chunk; a source shorter or longer than `size` is an
/// error.
pub(super) fn copy_exact(
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
