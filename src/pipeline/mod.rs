//! One layer, every core: the stages that stream a blob run concurrently.
//!
//! Layer work is bound by hashing. Each byte is hashed three times: the source digest is
//! checked as the blob is read, the HMAC covers the ciphertext, and the output blob's digest is
//! computed as it is written. Splitting the layers across threads uses every core only while
//! there are more layers than cores, and an image is often one big layer followed by small
//! ones. So each large blob is streamed as three stages that run concurrently:
//!
//! 1. read (and verify the source digest, which the reader does itself);
//! 2. transform in place (cipher and HMAC);
//! 3. write (and hash the output, which the sink does itself).
//!
//! Each stage is one hash chain and must see the chunks in order, but a stage can move between
//! threads from one chunk to the next. Three chains on two cores do not map onto a thread per
//! stage without the kernel time-slicing them (measured: 165-175% CPU of 200%), so a small
//! scheduler shares the stages among [`workers`] threads: a worker takes whichever stage has a
//! chunk ready and nobody running it, preferring later stages so that buffers come back to the
//! reader soon. A fixed set of [`DEPTH`] buffers of [`CHUNK_SIZE`] bytes circulates, so memory
//! is bounded per layer whatever its size, and no byte is copied between stages: a buffer
//! moves, its contents stay put.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::store::read_full;
use crate::store::{AlignedBuf, ChunkWrite};

mod channel;

pub use channel::{ChannelFeed, ChannelSink};

/// Size of the buffers a blob is streamed through.
pub const CHUNK_SIZE: usize = AlignedBuf::CAPACITY;

/// Buffers in flight per pipelined blob: enough that every stage finds work while another
/// worker holds a buffer, without much memory (8 MiB per layer being streamed).
pub const DEPTH: usize = 8;

/// Blobs up to this size are streamed on the caller's thread: starting threads costs more than
/// the overlap gains on a couple of chunks, and small blobs dominate start-up time.
pub const SERIAL_LIMIT: u64 = 2 * CHUNK_SIZE as u64;

/// Threads that share the stages of one blob: one per core, and no more than there are stages.
pub fn workers() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get().min(STAGES))
}

/// The worker threads blobs are streamed on, side by side: `jobs`, or one per core.
pub fn worker_pool(jobs: Option<usize>) -> Result<rayon::ThreadPool, crate::error::Error> {
    let threads = jobs.unwrap_or(0);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::error::Error::ThreadPool {
            threads,
            reason: e.to_string(),
        })
}

/// Which side of the stream failed.
#[derive(Debug)]
pub enum PumpError {
    /// Reading the source (including a digest or size mismatch found at its end).
    Read(io::Error),
    /// Writing the destination.
    Write(io::Error),
}

/// Stream all of `reader` through `transform` into `sink`; returns the number of bytes.
///
/// `size` is the blob's expected size; it only chooses between the serial and the pipelined
/// path (the reader enforces the real size). On error, nothing more is read or written; a read
/// error is reported before a write error, because it is the cause more often than not.
pub fn pump(
    reader: &mut (dyn Read + Send),
    sink: &mut dyn ChunkWrite,
    size: u64,
    transform: &mut (dyn FnMut(&mut [u8]) + Send),
) -> Result<u64, PumpError> {
    let workers = workers();
    if size <= SERIAL_LIMIT || workers < 2 {
        return serial(reader, sink, size, transform);
    }
    let shared = Shared {
        sched: Mutex::new(Sched {
            free: (0..DEPTH).map(|_| AlignedBuf::new()).collect(),
            ..Sched::default()
        }),
        wake: Condvar::new(),
        reader: Mutex::new(reader),
        transform: Mutex::new(transform),
        sink: Mutex::new(sink),
    };
    thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers)
            .filter_map(|_| {
                // Without a second thread (a process limit) the caller's thread does all the
                // work; slower, not wrong.
                thread::Builder::new()
                    .name("layercrypt-stage".into())
                    .spawn_scoped(scope, || shared.work())
                    .ok()
            })
            .collect();
        shared.work();
        for helper in helpers {
            if let Err(panic) = helper.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let sched = shared
        .sched
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match (sched.read_error, sched.write_error) {
        (Some(e), _) => Err(PumpError::Read(e)),
        (None, Some(e)) => Err(PumpError::Write(e)),
        (None, None) => Ok(sched.written),
    }
}

/// The stages, in stream order.
const STAGES: usize = 3;
const READ: usize = 0;
const TRANSFORM: usize = 1;
const WRITE: usize = 2;

/// The transform stage: the cipher (and HMAC) applied to each chunk in place.
type Transform<'a> = &'a mut (dyn FnMut(&mut [u8]) + Send);

/// What the workers share.
struct Shared<'a> {
    sched: Mutex<Sched>,
    /// Signalled whenever a stage finishes a chunk, fails, or the stream ends.
    wake: Condvar,
    // Each stage's state, locked by the worker running it. The scheduler never gives one stage
    // to two workers, so these locks are never contended; they only make the hand-over safe.
    reader: Mutex<&'a mut (dyn Read + Send)>,
    transform: Mutex<Transform<'a>>,
    sink: Mutex<&'a mut dyn ChunkWrite>,
}

/// The scheduler's state.
#[derive(Default)]
struct Sched {
    /// Empty buffers for the reader.
    free: Vec<AlignedBuf>,
    /// Read chunks waiting for the transform, in order.
    read: VecDeque<AlignedBuf>,
    /// Transformed chunks waiting for the writer, in order.
    transformed: VecDeque<AlignedBuf>,
    /// Which stages a worker is running now.
    busy: [bool; STAGES],
    /// The reader reached the end of the blob.
    eof: bool,
    read_error: Option<io::Error>,
    write_error: Option<io::Error>,
    /// A worker panicked: everyone stops, and the panic is passed on by `join`.
    panicked: bool,
    written: u64,
}

impl Sched {
    fn stopped(&self) -> bool {
        self.read_error.is_some() || self.write_error.is_some() || self.panicked
    }

    fn finished(&self) -> bool {
        self.stopped()
            || (self.eof
                && self.read.is_empty()
                && self.transformed.is_empty()
                && !self.busy.iter().any(|&b| b))
    }

    /// The next stage to run and its input, latest stage first.
    fn take(&mut self) -> Option<(usize, AlignedBuf)> {
        if self.stopped() {
            return None;
        }
        if !self.busy[WRITE]
            && let Some(chunk) = self.transformed.pop_front()
        {
            self.busy[WRITE] = true;
            return Some((WRITE, chunk));
        }
        if !self.busy[TRANSFORM]
            && let Some(chunk) = self.read.pop_front()
        {
            self.busy[TRANSFORM] = true;
            return Some((TRANSFORM, chunk));
        }
        if !self.busy[READ]
            && !self.eof
            && let Some(buf) = self.free.pop()
        {
            self.busy[READ] = true;
            return Some((READ, buf));
        }
        None
    }
}

/// Marks the pipeline as stopped if a worker unwinds, so the others do not wait for ever.
struct PanicGuard<'s, 'a>(&'s Shared<'a>);

impl Drop for PanicGuard<'_, '_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.lock().panicked = true;
            self.0.wake.notify_all();
        }
    }
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One worker: run ready stages until the stream is done or has failed.
    fn work(&self) {
        let _guard = PanicGuard(self);
        let mut sched = self.lock();
        loop {
            if sched.finished() {
                self.wake.notify_all();
                return;
            }
            let Some((stage, chunk)) = sched.take() else {
                sched = self
                    .wake
                    .wait(sched)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            drop(sched);
            let outcome = self.run(stage, chunk);
            sched = self.lock();
            sched.busy[stage] = false;
            match (stage, outcome) {
                (READ, Ok(chunk)) if chunk.is_empty() => {
                    sched.eof = true;
                    sched.free.push(chunk);
                }
                (READ, Ok(chunk)) => sched.read.push_back(chunk),
                (TRANSFORM, Ok(chunk)) => sched.transformed.push_back(chunk),
                (_, Ok(empty)) => sched.free.push(empty),
                (READ, Err(e)) => sched.read_error = Some(e),
                (_, Err(e)) => sched.write_error = Some(e),
            }
            self.wake.notify_all();
        }
    }

    /// Run one stage on one chunk, outside the scheduler's lock. The writer returns an empty
    /// buffer, which need not be the one it was given.
    fn run(&self, stage: usize, mut chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        match stage {
            READ => {
                let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
                let len = read_full(&mut **reader, chunk.space())?;
                chunk.set_len(len);
                Ok(chunk)
            }
            TRANSFORM => {
                let mut transform = self
                    .transform
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                (*transform)(chunk.data_mut());
                Ok(chunk)
            }
            _ => {
                let len = chunk.len() as u64;
                let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
                let empty = sink.write_chunk(chunk)?;
                drop(sink);
                self.lock().written += len;
                Ok(empty)
            }
        }
    }
}

/// The serial path for small blobs: one buffer, sized to the blob.
fn serial(
    reader: &mut (dyn Read + Send),
    sink: &mut dyn ChunkWrite,
    size: u64,
    transform: &mut (dyn FnMut(&mut [u8]) + Send),
) -> Result<u64, PumpError> {
    let len = usize::try_from(size)
        .unwrap_or(CHUNK_SIZE)
        .clamp(1, CHUNK_SIZE);
    let mut buf = vec![0u8; len];
    let mut total = 0u64;
    loop {
        let n = read_full(reader, &mut buf).map_err(PumpError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        transform(&mut buf[..n]);
        sink.write_all(&buf[..n]).map_err(PumpError::Write)?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ChunkWrite for Vec<u8> {}
    impl ChunkWrite for io::Sink {}
    impl ChunkWrite for FullAfter {}

    /// A reader that returns short reads of varying sizes, like a pipe.
    struct Jagged {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Read for Jagged {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.step = self.step % 7919 + 4099;
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 % 251) as u8).collect()
    }

    #[test]
    fn every_size_arrives_transformed_and_in_order() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            2 * CHUNK_SIZE + 1,
            7 * CHUNK_SIZE + 12345,
        ] {
            let input = data(len);
            let mut reader = Jagged {
                data: input.clone(),
                pos: 0,
                step: 1,
            };
            let mut out = Vec::new();
            let n = pump(&mut reader, &mut out, len as u64, &mut |c| {
                c.iter_mut().for_each(|b| *b ^= 0x5a)
            })
            .unwrap();
            assert_eq!(n, len as u64);
            let expected: Vec<u8> = input.iter().map(|b| b ^ 0x5a).collect();
            assert!(out == expected, "length {len}");
        }
    }

    /// A reader that fails after some chunks, as a digest mismatch at the end does.
    struct FailsAfter(usize);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad digest"));
            }
            self.0 -= 1;
            buf.fill(1);
            Ok(buf.len())
        }
    }

    /// A sink that fails after some bytes, as a full disk does.
    struct FullAfter(usize);

    impl io::Write for FullAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 < buf.len() {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_read_error_is_reported_as_such() {
        let mut out = Vec::new();
        let e = pump(&mut FailsAfter(5), &mut out, u64::MAX, &mut |_| {}).unwrap_err();
        assert!(matches!(e, PumpError::Read(e) if e.kind() == io::ErrorKind::InvalidData));
    }

    #[test]
    fn a_write_error_stops_the_reader_and_is_reported() {
        // The reader would run for ever; the failing writer must stop it.
        let mut forever = io::repeat(3);
        let mut sink = FullAfter(3 * CHUNK_SIZE);
        let e = pump(&mut forever, &mut sink, u64::MAX, &mut |_| {}).unwrap_err();
        assert!(matches!(e, PumpError::Write(e) if e.kind() == io::ErrorKind::StorageFull));
    }

    #[test]
    #[should_panic(expected = "transform bug")]
    fn a_panicking_stage_is_passed_on_without_hanging_the_others() {
        let mut forever = io::repeat(3);
        let mut n = 0;
        let _ = pump(&mut forever, &mut io::sink(), u64::MAX, &mut |_| {
            n += 1;
            if n == 3 {
                panic!("transform bug");
            }
        });
    }

    #[test]
    fn small_blobs_take_the_serial_path_with_the_same_result() {
        let input = data(1000);
        let mut out = Vec::new();
        let n = pump(&mut &input[..], &mut out, 1000, &mut |_| {}).unwrap();
        assert_eq!((n, out), (1000, input));
    }
}
