//! A channel of chunks: the last stage of a [`pump`](super::pump) hands its full buffers to a
//! consumer on another thread (a decompressor), which reads them in order as a [`BufRead`]
//! and hands them back empty. Memory stays bounded: `FEED_DEPTH + 1` buffers exist.
//!
//! It must never copy a pipelined chunk (only slices from the serial path are copied) nor
//! stall the pipeline when the consumer stops early: [`ChannelFeed::drain`] takes the rest.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::store::{AlignedBuf, ChunkWrite};

/// The writing end of a channel of chunks, the last stage of the pipeline: full buffers go to
/// the decompressing thread and come back empty.
pub struct ChannelSink {
    chunks: SyncSender<AlignedBuf>,
    free: Receiver<AlignedBuf>,
}

/// The reading end: the chunks, in order, as a [`BufRead`].
pub struct ChannelFeed {
    chunks: Receiver<AlignedBuf>,
    free: SyncSender<AlignedBuf>,
    current: AlignedBuf,
    at: usize,
}

/// Chunks in flight between the pipeline and the decompressor. Buffers circulate: the
/// pipeline's full ones go to the decompressor, which hands them back to the pool the
/// pipeline takes empty ones from; with the decompressor's own, `FEED_DEPTH + 1` exist.
const FEED_DEPTH: usize = 3;

impl ChannelSink {
    /// A channel: its writing end and its reading end.
    pub fn new() -> (ChannelSink, ChannelFeed) {
        let (chunks_tx, chunks_rx) = sync_channel(FEED_DEPTH);
        let (free_tx, free_rx) = sync_channel(FEED_DEPTH + 1);
        for _ in 0..FEED_DEPTH {
            free_tx
                .send(AlignedBuf::new())
                .expect("the channel has room for them");
        }
        (
            ChannelSink {
                chunks: chunks_tx,
                free: free_rx,
            },
            ChannelFeed {
                chunks: chunks_rx,
                free: free_tx,
                current: AlignedBuf::new(),
                at: 0,
            },
        )
    }

    /// Send a full buffer; returns an empty one (waiting for the decompressor to free one).
    fn send(&mut self, chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        let gone = || io::Error::other("the decompressing thread stopped");
        self.chunks.send(chunk).map_err(|_| gone())?;
        self.free.recv().map_err(|_| gone())
    }
}

impl Write for ChannelSink {
    /// Small blobs (streamed without the pipeline) arrive as slices: copied into a buffer.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut chunk = self
            .free
            .recv()
            .map_err(|_| io::Error::other("the decompressing thread stopped"))?;
        let n = buf.len().min(AlignedBuf::CAPACITY);
        chunk.space()[..n].copy_from_slice(&buf[..n]);
        chunk.set_len(n);
        self.chunks
            .send(chunk)
            .map_err(|_| io::Error::other("the decompressing thread stopped"))?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ChunkWrite for ChannelSink {
    fn write_chunk(&mut self, chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        self.send(chunk)
    }
}

impl ChannelFeed {
    /// Take every chunk still to come, handing the buffers back.
    pub fn drain(&mut self) {
        while let Ok(mut chunk) = self.chunks.recv() {
            chunk.set_len(0);
            let _ = self.free.send(chunk);
        }
    }
}

impl Read for ChannelFeed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf()?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelFeed {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.current.len() {
            // The end of the channel is the end of the blob.
            match self.chunks.recv() {
                Ok(next) => {
                    let mut done = std::mem::replace(&mut self.current, next);
                    self.at = 0;
                    done.set_len(0);
                    // The writer has stopped when this fails; the buffer is dropped.
                    let _ = self.free.send(done);
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current.data()[self.at..])
    }

    fn consume(&mut self, amount: usize) {
        self.at = (self.at + amount).min(self.current.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{self, CHUNK_SIZE};

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 % 251) as u8).collect()
    }

    /// Pump `input` into a channel whose reader takes `take` bytes, then drains; returns what
    /// the reader saw.
    fn through_channel(input: &[u8], take: usize) -> Vec<u8> {
        std::thread::scope(|scope| {
            let (mut sink, mut feed) = ChannelSink::new();
            let reader = scope.spawn(move || {
                let mut seen = Vec::new();
                while seen.len() < take {
                    let chunk = feed.fill_buf().unwrap();
                    if chunk.is_empty() {
                        break;
                    }
                    let n = chunk.len().min(take - seen.len()).min(70_000);
                    seen.extend_from_slice(&chunk[..n]);
                    feed.consume(n);
                }
                feed.drain();
                seen
            });
            let mut source = input;
            let pumped = pipeline::pump(&mut source, &mut sink, input.len() as u64, &mut |_| {});
            assert_eq!(pumped.unwrap(), input.len() as u64);
            drop(sink);
            reader.join().unwrap()
        })
    }

    #[test]
    fn the_channel_delivers_every_byte_in_order() {
        // The serial path (slices) and the pipelined one (whole buffers).
        for len in [0, 1, 100_000, 2 * CHUNK_SIZE, 5 * CHUNK_SIZE + 17] {
            let input = data(len);
            assert!(through_channel(&input, usize::MAX) == input, "{len}");
        }
    }

    #[test]
    fn a_reader_that_stops_early_does_not_stall_the_pipeline() {
        let input = data(12 * CHUNK_SIZE + 5);
        for take in [0, 1, CHUNK_SIZE + 3] {
            assert!(through_channel(&input, take) == input[..take], "{take}");
        }
    }
}
