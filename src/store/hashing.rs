//! The one blob sink every store builds on: [`HashingSink`] hashes and counts the bytes on
//! their way to the store's own writer, and on commit hands that writer and the digest to the
//! store's publish step (rename a temporary file into `blobs/`, seal an archive region, …).
//!
//! It must never let a blob be published under any digest but that of the bytes its writer
//! accepted: a short write hashes only the part written, the digest is taken after the last
//! byte, and nothing is published unless `commit` is called. A sink dropped without commit
//! drops the writer and the publish step unused, which is how each store discards the blob.

use std::io::{self, Write};

use super::direct::{AlignedBuf, FastWriter};
use super::{BlobSink, ChunkWrite, StoreError};
use crate::digest::{Algorithm, Digest, Hasher};

/// A blob being written through `out`, hashed with one algorithm and counted on the way; on
/// [`BlobSink::commit`], `publish` makes what `out` wrote durable and names it by the digest.
pub(crate) struct HashingSink<W, P> {
    out: W,
    hasher: Hasher,
    size: u64,
    publish: P,
}

impl<W, P> HashingSink<W, P>
where
    W: ChunkWrite,
    P: FnOnce(W, &Digest) -> Result<(), StoreError> + Send,
{
    /// A sink writing through `out`, to be named by its `algorithm` digest by `publish`.
    pub(crate) fn new(out: W, algorithm: Algorithm, publish: P) -> Self {
        HashingSink {
            out,
            hasher: Hasher::new(algorithm),
            size: 0,
            publish,
        }
    }
}

impl<W: Write, P> Write for HashingSink<W, P> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: ChunkWrite, P: Send> ChunkWrite for HashingSink<W, P> {
    fn write_chunk(&mut self, chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        self.hasher.update(chunk.data());
        self.size += chunk.len() as u64;
        self.out.write_chunk(chunk)
    }
}

/// The writer of a layout's blob files takes whole buffers too, so an OCI layout's sink can be
/// a [`HashingSink`] over it. (Kept beside the sink that needs it, until `ChunkWrite` and
/// `HashingSink` share one store API module.)
impl ChunkWrite for FastWriter {
    fn write_chunk(&mut self, chunk: AlignedBuf) -> io::Result<AlignedBuf> {
        FastWriter::write_chunk(self, chunk)
    }
}

impl<W, P> BlobSink for HashingSink<W, P>
where
    W: ChunkWrite,
    P: FnOnce(W, &Digest) -> Result<(), StoreError> + Send,
{
    fn commit(self: Box<Self>) -> Result<(Digest, u64), StoreError> {
        let HashingSink {
            out,
            hasher,
            size,
            publish,
        } = *self;
        let digest = hasher.finish();
        publish(out, &digest)?;
        Ok((digest, size))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A writer that takes at most three bytes a call, and keeps what it took.
    struct Short(Vec<u8>);

    impl Write for Short {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl ChunkWrite for Short {}

    #[test]
    fn publishes_what_was_written_under_its_digest() {
        let published = Mutex::new(None);
        let mut sink = Box::new(HashingSink::new(
            Short(Vec::new()),
            Algorithm::Sha256,
            |out: Short, digest: &Digest| {
                *published.lock().unwrap() = Some((out.0, digest.clone()));
                Ok(())
            },
        ));
        // Short writes: only what the writer took is hashed and counted.
        assert_eq!(sink.write(b"hello").unwrap(), 3);
        sink.write_all(b"lo, world").unwrap();
        let mut chunk = AlignedBuf::new();
        chunk.space()[..1].copy_from_slice(b"!");
        chunk.set_len(1);
        sink.write_chunk(chunk).unwrap();
        let (digest, size) = (sink as Box<dyn BlobSink>).commit().unwrap();
        assert_eq!(digest, Digest::sha256(b"hello, world!"));
        assert_eq!(size, 13);
        assert_eq!(
            published.into_inner().unwrap(),
            Some((b"hello, world!".to_vec(), digest))
        );
    }

    /// The shape of an OCI layout's sink: a [`FastWriter`] over a temporary file, published by
    /// a step that finishes the writer, syncs the file and renames it after its digest.
    #[test]
    fn a_fast_writer_sink_publishes_a_temporary_file_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let renamed = Mutex::new(Vec::new());
        let temp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let out = FastWriter::new(temp.as_file().try_clone().unwrap(), temp.path());
        let (names, root) = (&renamed, dir.path());
        let mut sink: Box<dyn BlobSink + '_> = Box::new(HashingSink::new(
            out,
            Algorithm::Sha256,
            move |out: FastWriter, digest: &Digest| {
                let path = temp.path().to_path_buf();
                out.finish()
                    .and_then(|()| temp.as_file().sync_all())
                    .map_err(|e| StoreError::io("writing", &path, e))?;
                let target = root.join(digest.hex());
                temp.persist(&target)
                    .map_err(|e| StoreError::io("replacing", &target, e.error))?;
                names.lock().unwrap().push(target);
                Ok(())
            },
        ));
        let data: Vec<u8> = (0..AlignedBuf::CAPACITY + 7 + AlignedBuf::CAPACITY / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        sink.write_all(&data[..AlignedBuf::CAPACITY + 3]).unwrap();
        let rest = &data[AlignedBuf::CAPACITY + 3..];
        let mut chunk = AlignedBuf::new();
        chunk.space()[..rest.len()].copy_from_slice(rest);
        chunk.set_len(rest.len());
        sink.write_chunk(chunk).unwrap();
        let (digest, size) = sink.commit().unwrap();
        assert_eq!(
            (digest.clone(), size),
            (Digest::sha256(&data), data.len() as u64)
        );
        let target = dir.path().join(digest.hex());
        assert_eq!(renamed.into_inner().unwrap(), std::slice::from_ref(&target));
        assert!(std::fs::read(&target).unwrap() == data);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_publish_fails_the_commit_and_a_dropped_sink_publishes_nothing() {
        let sink = Box::new(HashingSink::new(
            Short(Vec::new()),
            Algorithm::Sha512,
            |_: Short, digest: &Digest| {
                Err(StoreError::CannotStore {
                    store: "test".into(),
                    reason: digest.to_string(),
                })
            },
        ));
        let e = (sink as Box<dyn BlobSink>).commit().unwrap_err();
        assert!(e.to_string().contains("sha512:"), "{e}");

        let called = Mutex::new(false);
        drop(HashingSink::new(
            Short(Vec::new()),
            Algorithm::Sha256,
            |_: Short, _: &Digest| {
                *called.lock().unwrap() = true;
                Ok(())
            },
        ));
        assert!(!*called.lock().unwrap());
    }
}
