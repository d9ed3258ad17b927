//! Writing an archive out of order: [`TarRegions`] reserves a region of the new archive for
//! each file whose size is known, and many [`RegionWriter`]s fill their regions at once, so a
//! layer is written once, where it ends up, instead of being staged and copied.
//!
//! Every region is padded (by a PAX comment record) so its data starts on a 4 KiB boundary,
//! which every tar reader skips. It must never publish an archive with a region still being
//! written, nor one whose holes (an abandoned region, a duplicate blob) a reader would see:
//! such an archive is rewritten without them by the sequential [`TarWriter`] before the
//! rename. Sizes come from descriptors a hostile image may set, so no arithmetic on them may
//! overflow.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tempfile::NamedTempFile;

use super::index::TarEntry;
use super::read::EntryReader;
use super::write::{TarWriter, copy_exact, header, padding, publish, temp_beside};
use crate::digest::{Digest, VerifyingReader};
use crate::store::direct::{AlignedBuf, FastWriter};
use crate::store::{ChunkWrite, StoreError};

/// Alignment of the data of a file written into a reserved region: the page size and the
/// largest common logical block size, so that no page holds both bytes written with direct
/// I/O and bytes written through the page cache (the kernel would not keep such a page
/// coherent), and direct I/O works on 4K-native disks too.
pub(super) const REGION_ALIGN: u64 = 4096;

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
pub(super) fn comment_record(len: usize) -> Vec<u8> {
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
