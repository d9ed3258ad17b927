//! Content digests (`sha256:…`, `sha512:…`) and readers that verify them while streaming (or,
//! where no digest is known yet, compute one: [`HashingReader`]).
//!
//! Every blob layercrypt reads is checked against the digest *and* size its descriptor names,
//! at the moment the stream ends: a reader never reports a clean end of a blob whose bytes do
//! not match. Only the algorithms registered by the OCI image spec are accepted, because a
//! digest that cannot be recomputed cannot be verified.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm registered by the OCI image specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm every tool writes.
    Sha256,
    /// SHA-512, allowed by the image spec and accepted when reading.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:e3b0c442…`.
///
/// Parsing rejects anything that could not name a file under `blobs/<alg>/` safely: only
/// lowercase hex of the exact length is allowed, so a digest can never contain `/` or `..`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a string is not a usable digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string has no `algorithm:` prefix.
    #[error("`{0}` is not a digest (expected `sha256:<64 hex digits>`)")]
    Malformed(String),
    /// The algorithm is not one the OCI image spec registers.
    #[error("digest `{0}` uses an unsupported algorithm (only sha256 and sha512 can be verified)")]
    UnsupportedAlgorithm(String),
    /// The encoded part has the wrong length or characters.
    #[error(
        "digest `{0}` has an invalid encoded part (expected lowercase hex of the algorithm's length)"
    )]
    BadEncoding(String),
}

impl Digest {
    /// The algorithm of this digest.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part (the blob's file name under `blobs/<alg>/`).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of `data` with `algorithm`.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    /// The SHA-256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }

    /// Whether this is the digest of zero bytes (`sha256:e3b0c442…` for SHA-256).
    pub fn is_of_nothing(&self) -> bool {
        *self == Digest::of(self.algorithm, b"")
    }

    /// A shortened form for tables and messages (`sha256:0123456789ab`).
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.name(), &self.hex[..12])
    }
}

/// Longest part of a refused digest string repeated in a message.
const SHOWN_CHARS: usize = 100;

/// A refused digest string as messages show it: cut at [`SHOWN_CHARS`] characters, with control
/// characters escaped, so a hostile image cannot flood the terminal or send it escape
/// sequences. Also how other hostile strings (a document's `mediaType`) are shown.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(SHOWN_CHARS)
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    if s.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(shown(s)))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ if !alg.is_empty()
                && alg.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                }) =>
            {
                return Err(DigestError::UnsupportedAlgorithm(shown(s)));
            }
            _ => return Err(DigestError::Malformed(shown(s))),
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadEncoding(shown(s)));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An incremental hash for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(Sha256),
    /// SHA-512 state.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// What a verifying reader found wrong with a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The blob has more bytes than its descriptor says.
    #[error("blob {digest} is longer than the {expected} bytes its descriptor declares")]
    TooLong {
        /// The expected digest.
        digest: Digest,
        /// The declared size.
        expected: u64,
    },
    /// The blob ended before its declared size.
    #[error("blob {digest} is truncated: {actual} of {expected} bytes")]
    Truncated {
        /// The expected digest.
        digest: Digest,
        /// The declared size.
        expected: u64,
        /// The bytes actually present.
        actual: u64,
    },
    /// The bytes hash to a different digest.
    #[error("blob content does not match its digest: expected {expected}, found {actual}")]
    DigestMismatch {
        /// The declared digest.
        expected: Digest,
        /// The digest of the bytes read.
        actual: Digest,
    },
}

impl VerifyError {
    /// Wrap into an `io::Error` so it can travel through `Read`; recover it with
    /// [`VerifyError::from_io`].
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The verification failure inside an `io::Error`, if that is what it carries.
    pub fn from_io(e: &io::Error) -> Option<&VerifyError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<VerifyError>())
    }
}

/// A reader that hashes what passes through and fails at the end of the stream unless the
/// bytes have exactly the expected size and digest.
///
/// It reads at most `expected_size + 1` bytes from the inner reader, so a blob that lies about
/// its size cannot make it read without bound.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: u64,
    seen: u64,
}

impl<R: Read> VerifyingReader<R> {
    /// Verify `inner` against `expected` and `expected_size`.
    pub fn new(inner: R, expected: Digest, expected_size: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Some(Hasher::new(expected.algorithm())),
            expected,
            expected_size,
            seen: 0,
        }
    }

    /// Bytes delivered so far.
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }

    fn check_end(&mut self) -> io::Result<()> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        if self.seen < self.expected_size {
            return Err(VerifyError::Truncated {
                digest: self.expected.clone(),
                expected: self.expected_size,
                actual: self.seen,
            }
            .into_io());
        }
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(VerifyError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            }
            .into_io());
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.hasher.is_none() {
            return Ok(0);
        }
        // Every blob is read through here: a stop request ends the stream with an error.
        crate::interrupt::check()?;
        // Ask for one byte more than the declared remainder so an over-long blob is noticed.
        let remaining = self.expected_size - self.seen;
        let want = (remaining.saturating_add(1)).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.check_end()?;
            return Ok(0);
        }
        if n as u64 > remaining {
            self.hasher = None;
            return Err(VerifyError::TooLong {
                digest: self.expected.clone(),
                expected: self.expected_size,
            }
            .into_io());
        }
        self.seen += n as u64;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A reader that hashes and counts what passes through it, for content whose digest is not
/// known in advance (a layer's compressed bytes, or what it decompresses to), unlike
/// [`VerifyingReader`], which checks a digest it is given.
///
/// It keeps the first error of its source, so that once the bytes have been copied somewhere a
/// failure to read them can be told from a failure to write them.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
    failed: Option<io::Error>,
}

impl<R> HashingReader<R> {
    /// Hash what is read from `inner` with `algorithm`.
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
            failed: None,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first error the source returned, if any (taken: a second call returns `None`).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// The digest of every byte read.
    pub fn finish(self) -> Digest {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failed.get_or_insert(e);
                return Err(copy);
            }
        };
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::sha256(b""));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
    }

    #[test]
    fn the_digest_of_nothing_is_known_for_each_algorithm() {
        assert!(EMPTY.parse::<Digest>().unwrap().is_of_nothing());
        assert!(Digest::of(Algorithm::Sha512, b"").is_of_nothing());
        assert!(!Digest::sha256(b"\0").is_of_nothing());
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../etc/passwd",
            "sha256:e3b0",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            ":abc",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            "blake3:abc".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn refused_digests_are_shown_short_and_without_control_characters() {
        let err = "sha256:\u{1b}]0;owned\u{7}\u{1b}[2J"
            .parse::<Digest>()
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains(r"\u{1b}]0;owned"), "{text}");
        let long = format!("sha256:{}", "a".repeat(1 << 20));
        let text = long.parse::<Digest>().unwrap_err().to_string();
        assert!(text.len() < 300 && text.contains('…'), "{}", text.len());
    }

    fn read_all(data: &[u8], digest: Digest, size: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        VerifyingReader::new(data, digest, size).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn verifying_reader_accepts_exact_blob() {
        let data = b"hello world";
        assert_eq!(read_all(data, Digest::sha256(data), 11).unwrap(), data);
    }

    #[test]
    fn verifying_reader_catches_every_lie() {
        let data = b"hello world";
        let d = Digest::sha256(data);
        let err = read_all(data, d.clone(), 10).unwrap_err();
        assert!(matches!(
            VerifyError::from_io(&err),
            Some(VerifyError::TooLong { .. })
        ));
        let err = read_all(data, d.clone(), 12).unwrap_err();
        assert!(matches!(
            VerifyError::from_io(&err),
            Some(VerifyError::Truncated { .. })
        ));
        let err = read_all(b"hello w0rld", d, 11).unwrap_err();
        assert!(matches!(
            VerifyError::from_io(&err),
            Some(VerifyError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn hashing_reader_hashes_counts_and_keeps_the_first_error() {
        let mut r = HashingReader::new(&b"hello"[..], Algorithm::Sha256);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.count(), 5);
        assert!(r.take_error().is_none());
        assert_eq!(r.finish(), Digest::sha256(b"hello"));

        /// Two bytes, then a failure of its own.
        struct Failing(u8);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += 1;
                match self.0 {
                    1 => {
                        buf[..2].copy_from_slice(b"ab");
                        Ok(2)
                    }
                    n => Err(io::Error::other(format!("failure {n}"))),
                }
            }
        }
        let mut r = HashingReader::new(Failing(0), Algorithm::Sha256);
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert_eq!(e.to_string(), "failure 2");
        assert!(r.read(&mut [0; 4]).is_err());
        assert_eq!(r.count(), 2);
        assert_eq!(r.take_error().unwrap().to_string(), "failure 2");
        assert!(r.take_error().is_none());
        assert_eq!(r.finish(), Digest::sha256(b"ab"));
    }
}
