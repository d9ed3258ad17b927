//! Writing large new files past the page cache, from a thread of their own.
//!
//! Measured on the development machine (2 cores, virtio disk, `dd` of 1 GiB with fsync): a
//! buffered write costs 2.6 s of kernel CPU time (copying into the page cache, and reclaiming
//! memory for it), a write with `O_DIRECT` 0.15 s and a third of the wall time. Layer work is
//! CPU-bound, so every kernel cycle spent copying is a cycle not spent hashing. Hence a blob of
//! more than one chunk is written with `O_DIRECT`: whole aligned chunks go straight from our
//! buffer to the device, from a dedicated I/O thread so that the thread that hashes the blob
//! never waits for the disk. The unaligned tail goes through an ordinary buffered handle, as
//! does everything when the file system refuses direct I/O (tmpfs before Linux 6.6, some FUSE
//! and network file systems): the fallback is silent and only slower.
//!
//! Durability is unchanged: the caller still fsyncs the file (which flushes the device cache
//! and the metadata) before it renames it into place.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{self, JoinHandle};

/// Size of the chunks handed to the I/O thread; a multiple of every logical block size.
const CHUNK: usize = AlignedBuf::CAPACITY;

/// Memory and file-offset alignment for `O_DIRECT`: 4096 covers every common logical block
/// size (512-byte and 4K-native disks).
const ALIGN: usize = 4096;

/// Chunks in flight: one being filled, one being written, one spare.
const BUFFERS: usize = 3;

/// A `CHUNK`-byte buffer aligned to `ALIGN`, carved out of a slightly larger vector (safe code
/// cannot ask the allocator for alignment; the vector never reallocates, so the offset holds),
/// and how many of its bytes hold data.
///
/// The engine streams layers through these buffers, so that a full one can be handed to the
/// I/O thread as it is (see [`FastWriter::write_chunk`]) instead of being copied.
pub struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

impl Default for AlignedBuf {
    fn default() -> Self {
        AlignedBuf::new()
    }
}

impl AlignedBuf {
    /// Bytes a buffer holds (1 MiB): large enough that per-chunk costs (a system call, a
    /// hand-over between threads) vanish next to hashing it.
    pub const CAPACITY: usize = 1024 * 1024;

    /// An empty buffer of [`AlignedBuf::CAPACITY`] bytes.
    pub fn new() -> AlignedBuf {
        let storage = vec![0u8; CHUNK + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN);
        AlignedBuf {
            storage,
            start,
            len: 0,
        }
    }

    /// The bytes that hold data.
    pub fn data(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The bytes that hold data, to transform in place.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    /// All [`AlignedBuf::CAPACITY`] bytes, to fill; then say how many hold data with [`AlignedBuf::set_len`].
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + CHUNK]
    }

    /// How many bytes hold data.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte holds data.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Declare the first `len` bytes to hold data.
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= CHUNK, "an AlignedBuf holds at most CAPACITY bytes");
        self.len = len;
    }

    /// Append as much of `buf` as fits; returns how much did.
    fn fill(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(CHUNK - self.len);
        let at = self.start + self.len;
        self.storage[at..at + n].copy_from_slice(&buf[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == CHUNK
    }
}

/// Read until `buf` is full or the stream ends; returns how many bytes it holds. Large, full
/// chunks keep the cipher and hash loops efficient.
///
/// Every blob stream reads its chunks through here, so this is where a stop request
/// ([`crate::interrupt`]) is noticed: the read fails with [`crate::interrupt::Interrupted`].
pub fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    crate::interrupt::check()?;
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Sequential writer for a new, empty file (or a region of one, from `base` on): small files
/// are written directly through `file`; once a file grows past one chunk, whole chunks are
/// written with `O_DIRECT` by an I/O thread. Offsets (`position`, `patch`) are relative to
/// `base`.
pub struct FastWriter {
    /// The ordinary handle: small files, the tail, and the fallback.
    file: File,
    /// A second handle opened with `O_DIRECT`, until the I/O thread takes it.
    direct: Option<File>,
    pending: AlignedBuf,
    /// Bytes already handed to the file or the I/O thread.
    offset: u64,
    /// Where in the file the first byte goes.
    base: u64,
    io: Option<IoThread>,
}

struct IoThread {
    chunks: SyncSender<(AlignedBuf, u64)>,
    free: Receiver<AlignedBuf>,
    handle: JoinHandle<io::Result<()>>,
}

impl FastWriter {
    /// Write into `file`, which was just created empty at `path`.
    pub fn new(file: File, path: &Path) -> FastWriter {
        FastWriter::at(file, path, 0)
    }

    /// Write into the file at `path` (`file` is a handle to it) from offset `base` on, over
    /// bytes that nothing else writes: a region of an archive reserved for one of its files.
    /// Direct I/O needs `base` aligned to the device's logical block size (512 bytes or 4 KiB);
    /// where it is not, the writes fall back to buffered ones.
    pub fn at(file: File, path: &Path, base: u64) -> FastWriter {
        // A file system without direct I/O refuses the open (EINVAL); then everything is
        // buffered.
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        FastWriter {
            file,
            direct,
            pending: AlignedBuf::new(),
            offset: 0,
            base,
            io: None,
        }
    }

    /// Hand a full pending chunk to the I/O thread (starting it on the first chunk).
    fn ship(&mut self) -> io::Result<()> {
        let next = self.free_buffer()?;
        let full = std::mem::replace(&mut self.pending, next);
        self.send(full)
    }

    /// A free buffer from the I/O thread's pool (starting the thread on first use); waiting
    /// for one is what keeps the writer from running ahead of the disk.
    fn free_buffer(&mut self) -> io::Result<AlignedBuf> {
        if self.io.is_none() {
            self.io = Some(self.start_io()?);
        }
        let io = self.io.as_ref().expect("started above");
        match io.free.recv() {
            Ok(buf) => Ok(buf),
            // The thread has stopped: it failed.
            Err(_) => Err(self.thread_error()),
        }
    }

    /// Send a full chunk to the I/O thread, to be written at the current offset.
    fn send(&mut self, full: AlignedBuf) -> io::Result<()> {
        let io = self.io.as_ref().expect("a buffer came from the thread");
        let at = self.base + self.offset;
        self.offset += full.len as u64;
        if io.chunks.send((full, at)).is_err() {
            return Err(self.thread_error());
        }
        Ok(())
    }

    /// Write the data in `chunk` and return an empty buffer for the caller's next chunk. A full
    /// chunk at a chunk boundary goes to the I/O thread as it is, which saves copying it.
    pub fn write_chunk(&mut self, chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        if self.pending.is_empty() && chunk.len == CHUNK && self.offset.is_multiple_of(CHUNK as u64)
        {
            let empty = self.free_buffer()?;
            self.send(chunk)?;
            return Ok(empty);
        }
        let mut chunk = chunk;
        self.write_all(chunk.data())?;
        chunk.len = 0;
        Ok(chunk)
    }

    fn start_io(&mut self) -> io::Result<IoThread> {
        let (chunks_tx, chunks_rx) = sync_channel::<(AlignedBuf, u64)>(BUFFERS);
        let (free_tx, free_rx) = sync_channel::<AlignedBuf>(BUFFERS);
        for _ in 1..BUFFERS {
            free_tx
                .send(AlignedBuf::new())
                .expect("the channel holds BUFFERS buffers");
        }
        let buffered = self.file.try_clone()?;
        let direct = self.direct.take();
        let handle = thread::Builder::new()
            .name("layercrypt-io".into())
            .spawn(move || io_thread(buffered, direct, chunks_rx, free_tx))?;
        Ok(IoThread {
            chunks: chunks_tx,
            free: free_rx,
            handle,
        })
    }

    /// Stop the I/O thread, which has stopped taking chunks, and return its error.
    fn thread_error(&mut self) -> io::Error {
        match self.join() {
            Err(e) => e,
            Ok(()) => io::Error::other("the I/O thread stopped early"),
        }
    }

    fn join(&mut self) -> io::Result<()> {
        let Some(IoThread { chunks, handle, .. }) = self.io.take() else {
            return Ok(());
        };
        drop(chunks);
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Bytes written so far (the position of the next write).
    pub fn position(&self) -> u64 {
        self.offset + self.pending.len as u64
    }

    /// Overwrite `data` at `at`, inside what was already written (a tar header whose size was
    /// known only after its file). Chunks already handed to the I/O thread are waited for
    /// first, so that none of them can land on top of the patch.
    pub fn patch(&mut self, at: u64, data: &[u8]) -> io::Result<()> {
        let end = at + data.len() as u64;
        if end > self.position() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "patch beyond the end of the file",
            ));
        }
        // The part still in the pending chunk is patched there; the rest is on its way to
        // the file, or in it.
        let split = self.offset.clamp(at, end);
        if split < end {
            let from = (split - self.offset) as usize;
            let slice = &data[(split - at) as usize..];
            let start = self.pending.start + from;
            self.pending.storage[start..start + slice.len()].copy_from_slice(slice);
        }
        if at < split {
            // The thread restarts on the next full chunk.
            self.join()?;
            self.file
                .write_all_at(&data[..(split - at) as usize], self.base + at)?;
        }
        Ok(())
    }

    /// Write out everything; the caller fsyncs the file.
    pub fn finish(mut self) -> io::Result<()> {
        if self.pending.len > 0 {
            self.file
                .write_all_at(self.pending.data(), self.base + self.offset)?;
            self.offset += self.pending.len as u64;
            self.pending.len = 0;
        }
        self.join()
    }
}

impl Write for FastWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.pending.fill(buf);
        if self.pending.is_full() {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Data is made durable by `finish` and the caller's fsync; a flush in between has
        // nothing useful to do.
        Ok(())
    }
}

impl Drop for FastWriter {
    fn drop(&mut self) {
        // An abandoned file (an error elsewhere): stop the thread; its result no longer
        // matters, and the caller removes the file.
        let _ = self.join();
    }
}

/// The I/O thread: write each chunk at its offset, directly when possible, and hand the buffer
/// back.
fn io_thread(
    buffered: File,
    mut direct: Option<File>,
    chunks: Receiver<(AlignedBuf, u64)>,
    free: SyncSender<AlignedBuf>,
) -> io::Result<()> {
    for (mut buf, at) in chunks {
        let written = match &direct {
            Some(d) => match d.write_all_at(buf.data(), at) {
                Ok(()) => true,
                // The file system or device wants a larger alignment than ours: go buffered
                // from here on (nothing of this chunk was written, or it is rewritten whole).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    direct = None;
                    false
                }
                Err(e) => return Err(e),
            },
            None => false,
        };
        if !written {
            buffered.write_all_at(buf.data(), at)?;
        }
        buf.len = 0;
        // The writer has finished or given up when this fails; the buffer is dropped.
        let _ = free.send(buf);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    fn roundtrip(len: usize, piece: usize, dir: &Path) {
        let path = dir.join(format!("f{len}-{piece}"));
        let file = File::create(&path).unwrap();
        let mut w = FastWriter::new(file, &path);
        let input = data(len);
        for part in input.chunks(piece.max(1)) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == input, "length {len}, pieces of {piece}");
    }

    #[test]
    fn files_of_every_shape_are_written_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            4095,
            4096,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            5 * CHUNK + 777,
        ] {
            for piece in [1000, CHUNK, 3 * CHUNK] {
                roundtrip(len, piece, tmp.path());
            }
        }
    }

    #[test]
    fn without_direct_io_everything_is_buffered() {
        // /dev/shm is tmpfs, which refuses O_DIRECT before Linux 6.6; either way the file
        // must come out right.
        let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
        roundtrip(3 * CHUNK + 5, CHUNK, tmp.path());
    }

    #[test]
    fn patches_land_in_the_pending_chunk_or_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let mut w = FastWriter::new(File::create(&path).unwrap(), &path);
        let mut expected = data(3 * CHUNK + 100);
        w.write_all(&expected).unwrap();
        assert_eq!(w.position(), expected.len() as u64);
        // One patch inside shipped chunks, one across the pending boundary, one pending only.
        for (at, len) in [(10, 600), (3 * CHUNK - 5, 50), (3 * CHUNK + 60, 40)] {
            let patch = vec![0xee; len];
            w.patch(at as u64, &patch).unwrap();
            expected[at..at + len].copy_from_slice(&patch);
        }
        assert!(w.patch(3 * CHUNK as u64 + 90, &[0; 20]).is_err());
        // Writing goes on after a patch (the I/O thread restarts).
        let more = data(2 * CHUNK);
        w.write_all(&more).unwrap();
        expected.extend_from_slice(&more);
        w.finish().unwrap();
        assert!(std::fs::read(&path).unwrap() == expected);
    }

    #[test]
    fn a_region_is_written_from_its_base_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, vec![0x55; 5 * CHUNK]).unwrap();
        let mut expected = vec![0x55; 5 * CHUNK];
        // A 512-aligned base that is not 4096-aligned, and one that is not aligned at all:
        // both land exactly (directly or through the fallback).
        for (base, len) in [(512 + CHUNK, 2 * CHUNK + 3), (7, CHUNK + 100)] {
            let mut w = FastWriter::at(
                File::options().write(true).open(&path).unwrap(),
                &path,
                base as u64,
            );
            let input = data(len);
            w.write_all(&input).unwrap();
            w.patch(1, &[0xaa; 3]).unwrap();
            w.finish().unwrap();
            expected[base..base + len].copy_from_slice(&input);
            expected[base + 1..base + 4].copy_from_slice(&[0xaa; 3]);
        }
        assert!(std::fs::read(&path).unwrap() == expected);
    }

    #[test]
    fn buffers_are_aligned() {
        for _ in 0..8 {
            let b = AlignedBuf::new();
            assert_eq!(b.storage[b.start..].as_ptr() as usize % ALIGN, 0);
            assert!(b.storage.len() - b.start >= CHUNK);
        }
    }
}
