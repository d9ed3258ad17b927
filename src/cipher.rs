//! The layer cipher `AES_256_CTR_HMAC_SHA256`: AES-256 in CTR mode with the whole 16-byte nonce
//! as a 128-bit big-endian counter, and HMAC-SHA256 over the ciphertext keyed with the same
//! 32-byte key (encrypt-then-MAC; ciphertext length equals plaintext length).
//!
//! [`Encryptor`] and [`Decryptor`] work in place on buffers, which is what the engine's
//! one-pass pipeline uses; [`EncryptingReader`] and [`DecryptingWriter`] wrap them as
//! `Read`/`Write` streams for library users.
//!
//! What this module must never do: call data *verified* before the HMAC over the whole
//! ciphertext has been checked in constant time. A [`DecryptingWriter`] hands its inner writer
//! unverified plaintext as it goes; only [`DecryptingWriter::finish`] says whether it may be
//! used, so callers write into a temporary file and publish it after `finish` succeeds.
//! Parameters Go accepts by mistake (no nonce, a short nonce, a short key, an empty HMAC, an
//! unknown cipher name) are refused here, before any data is touched.

use std::fmt;
use std::io::{self, Read, Write};

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::format::{PrivateOptions, PublicOptions};

/// The only cipher ocicrypt defines.
pub const AES_256_CTR_HMAC_SHA256: &str = "AES_256_CTR_HMAC_SHA256";

/// Key length in bytes (AES-256, also the HMAC key).
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes (the full initial counter block).
pub const NONCE_LEN: usize = 16;
/// HMAC-SHA256 output length.
pub const HMAC_LEN: usize = 32;

/// The `cipheroptions` member that holds the nonce.
const NONCE_OPTION: &str = "nonce";

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Why layer cipher parameters or data were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The public options name no cipher.
    #[error("the layer's public options name no cipher")]
    MissingCipher,
    /// The public options name a cipher other than AES_256_CTR_HMAC_SHA256.
    #[error("unsupported layer cipher `{0}` (only {AES_256_CTR_HMAC_SHA256} is defined)")]
    UnknownCipher(String),
    /// The layer key is not 32 bytes.
    #[error("invalid layer key length of {0} bytes; need {KEY_LEN}")]
    InvalidKeyLength(usize),
    /// No nonce in the private (or public) options.
    #[error("the layer's options carry no nonce; decrypting would produce garbage")]
    MissingNonce,
    /// The nonce is not 16 bytes.
    #[error("invalid nonce length of {0} bytes; need {NONCE_LEN}")]
    InvalidNonceLength(usize),
    /// Public and private options carry different nonces.
    #[error("the public and private options carry different nonces")]
    ConflictingNonce,
    /// The public options carry no HMAC.
    #[error("the layer's public options carry no HMAC, so its integrity cannot be checked")]
    MissingHmac,
    /// The HMAC is not 32 bytes.
    #[error("invalid HMAC length of {0} bytes; need {HMAC_LEN}")]
    InvalidHmacLength(usize),
    /// The ciphertext does not match its HMAC: it was modified, truncated or extended, or
    /// the options belong to another layer.
    #[error(
        "the layer's HMAC does not match its ciphertext (data modified, truncated, or options from another layer)"
    )]
    HmacMismatch,
    /// The OS random generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// `finish` was called before the stream reached its end.
    #[error("the layer stream was not read to its end, so it cannot be finalised")]
    NotFinished,
}

/// A 256-bit layer key. Zeroised on drop; never printed.
#[derive(Clone)]
pub struct LayerKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LayerKey(<redacted>)")
    }
}

impl LayerKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// The per-layer secrets: key and nonce.
#[derive(Clone, Debug)]
pub struct LayerSecrets {
    key: LayerKey,
    nonce: [u8; NONCE_LEN],
}

/// Everything needed to decrypt and verify one layer.
#[derive(Clone, Debug)]
pub struct DecryptionParams {
    /// Key and nonce.
    pub secrets: LayerSecrets,
    /// The HMAC the ciphertext must have.
    pub hmac: [u8; HMAC_LEN],
}

impl LayerSecrets {
    /// A fresh random key and nonce from the operating system's generator.
    pub fn generate() -> Result<LayerSecrets, CipherError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut key[..]).map_err(|e| CipherError::Rng(e.to_string()))?;
        getrandom::fill(&mut nonce).map_err(|e| CipherError::Rng(e.to_string()))?;
        Ok(LayerSecrets {
            key: LayerKey(key),
            nonce,
        })
    }

    /// Secrets from raw parts, checking their lengths.
    pub fn from_parts(key: &[u8], nonce: &[u8]) -> Result<LayerSecrets, CipherError> {
        let key: [u8; KEY_LEN] = key
            .try_into()
            .map_err(|_| CipherError::InvalidKeyLength(key.len()))?;
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| CipherError::InvalidNonceLength(nonce.len()))?;
        Ok(LayerSecrets {
            key: LayerKey(Zeroizing::new(key)),
            nonce,
        })
    }

    /// The layer key.
    pub fn key(&self) -> &LayerKey {
        &self.key
    }

    /// The nonce (initial counter block).
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The private options to wrap for recipients; `digest` is the digest of the blob before
    /// encryption.
    pub fn private_options(&self, digest: &str) -> PrivateOptions {
        PrivateOptions {
            symkey: Zeroizing::new(self.key.0.to_vec()),
            digest: digest.to_string(),
            cipher_options: [(NONCE_OPTION.to_string(), self.nonce.to_vec())].into(),
        }
    }
}

impl DecryptionParams {
    /// Check unwrapped private options and the layer's public options, refusing everything
    /// that would let a decryption run without a meaningful result.
    pub fn from_options(
        private: &PrivateOptions,
        public: &PublicOptions,
    ) -> Result<DecryptionParams, CipherError> {
        check_cipher(public)?;
        // Go looks options up in the public map first; a nonce there is unauthenticated, so
        // it is used only when the private map has none, and a disagreement is an error.
        let nonce = match (
            private.cipher_options.get(NONCE_OPTION),
            public.cipher_options.get(NONCE_OPTION),
        ) {
            (Some(p), Some(q)) if p != q => return Err(CipherError::ConflictingNonce),
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => return Err(CipherError::MissingNonce),
        };
        let secrets = LayerSecrets::from_parts(&private.symkey, nonce)?;
        let hmac = expected_hmac(public)?;
        Ok(DecryptionParams { secrets, hmac })
    }
}

/// Check that public options name the one cipher ocicrypt defines.
pub fn check_cipher(public: &PublicOptions) -> Result<(), CipherError> {
    match public.cipher.as_str() {
        "" => Err(CipherError::MissingCipher),
        AES_256_CTR_HMAC_SHA256 => Ok(()),
        other => Err(CipherError::UnknownCipher(other.to_string())),
    }
}

/// The HMAC public options promise for the ciphertext, which must be exactly [`HMAC_LEN`]
/// bytes.
pub fn expected_hmac(public: &PublicOptions) -> Result<[u8; HMAC_LEN], CipherError> {
    if public.hmac.is_empty() {
        return Err(CipherError::MissingHmac);
    }
    public
        .hmac
        .as_slice()
        .try_into()
        .map_err(|_| CipherError::InvalidHmacLength(public.hmac.len()))
}

/// The public options for a layer whose ciphertext has HMAC `hmac`.
pub fn public_options(hmac: [u8; HMAC_LEN]) -> PublicOptions {
    PublicOptions {
        cipher: AES_256_CTR_HMAC_SHA256.to_string(),
        hmac: hmac.to_vec(),
        cipher_options: Default::default(),
    }
}

/// Encrypts a layer in place, chunk by chunk, and computes the HMAC of the ciphertext.
pub struct Encryptor {
    ctr: Aes256Ctr,
    mac: HmacSha256,
}

impl Encryptor {
    /// Start encrypting with `secrets`.
    pub fn new(secrets: &LayerSecrets) -> Self {
        Encryptor {
            ctr: Aes256Ctr::new(secrets.key.0.as_ref().into(), (&secrets.nonce).into()),
            mac: new_mac(&secrets.key),
        }
    }

    /// Encrypt the next chunk of plaintext in place.
    pub fn apply(&mut self, chunk: &mut [u8]) {
        self.ctr.apply_keystream(chunk);
        self.mac.update(chunk);
    }

    /// The HMAC of all ciphertext produced.
    pub fn finish(self) -> [u8; HMAC_LEN] {
        self.mac.finalize().into_bytes().into()
    }
}

/// Decrypts a layer in place, chunk by chunk, and checks the HMAC at the end.
pub struct Decryptor {
    ctr: Aes256Ctr,
    mac: HmacSha256,
    expected: [u8; HMAC_LEN],
}

impl Decryptor {
    /// Start decrypting with `params`.
    pub fn new(params: &DecryptionParams) -> Self {
        Decryptor {
            ctr: Aes256Ctr::new(
                params.secrets.key.0.as_ref().into(),
                (&params.secrets.nonce).into(),
            ),
            mac: new_mac(&params.secrets.key),
            expected: params.hmac,
        }
    }

    /// Decrypt the next chunk of ciphertext in place. The output is unverified until
    /// [`Decryptor::verify`] succeeds.
    pub fn apply(&mut self, chunk: &mut [u8]) {
        self.mac.update(chunk);
        self.ctr.apply_keystream(chunk);
    }

    /// Check the HMAC over everything processed, in constant time.
    pub fn verify(self) -> Result<(), CipherError> {
        self.mac
            .verify_slice(&self.expected)
            .map_err(|_| CipherError::HmacMismatch)
    }
}

fn new_mac(key: &LayerKey) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(&key.0[..]).expect("HMAC accepts keys of any length")
}

/// A reader that yields the ciphertext of its inner reader.
pub struct EncryptingReader<R> {
    inner: R,
    encryptor: Encryptor,
    done: bool,
}

impl<R: Read> EncryptingReader<R> {
    /// Encrypt `inner` with `secrets`.
    pub fn new(inner: R, secrets: &LayerSecrets) -> Self {
        EncryptingReader {
            inner,
            encryptor: Encryptor::new(secrets),
            done: false,
        }
    }

    /// The HMAC of the ciphertext; only available once the reader has returned end of file.
    pub fn finish(self) -> Result<[u8; HMAC_LEN], CipherError> {
        if !self.done {
            return Err(CipherError::NotFinished);
        }
        Ok(self.encryptor.finish())
    }
}

impl<R: Read> Read for EncryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
        }
        self.encryptor.apply(&mut buf[..n]);
        Ok(n)
    }
}

/// A writer that decrypts what is written to it into its inner writer.
///
/// The inner writer receives **unverified** plaintext; it may be used only after
/// [`DecryptingWriter::finish`] returns `Ok`. Write into a temporary file and publish it then.
pub struct DecryptingWriter<W> {
    inner: W,
    decryptor: Decryptor,
    scratch: Vec<u8>,
}

impl<W: Write> DecryptingWriter<W> {
    /// Decrypt into `inner` with `params`.
    pub fn new(inner: W, params: &DecryptionParams) -> Self {
        DecryptingWriter {
            inner,
            decryptor: Decryptor::new(params),
            scratch: Vec::new(),
        }
    }

    /// Flush, check the HMAC, and return the inner writer if the ciphertext was authentic.
    pub fn finish(mut self) -> Result<W, io::Error> {
        self.inner.flush()?;
        self.decryptor
            .verify()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for DecryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.scratch.clear();
        self.scratch.extend_from_slice(buf);
        self.decryptor.apply(&mut self.scratch);
        self.inner.write_all(&self.scratch)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Spec §1.3, verified with Go's stdlib and Python/OpenSSL.
    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const IV: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdffff";
    const PT: &[u8] = b"The quick brown fox jumps over the lazy dog, twice: The quick brown fox jumps over the lazy dog.";
    const CT: &str = "a38a3de6850f0f7d140470dc87f4314cec0719d99dc96d6f235fbd38f70425c61d747f213131f7f7088598115e37124f767e3d148581ad97e6b4566486d575c5e9a24447894326b41700137e9f75d581c5f5382a6152178f891dead88d89c6fd";
    const HMAC: &str = "ae888e69ad934090c574afffa19ecef103f745356d6980a488bd96c6237625a4";
    const EMPTY_HMAC: &str = "d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb";

    fn vector_secrets() -> LayerSecrets {
        LayerSecrets::from_parts(&hex::decode(KEY).unwrap(), &hex::decode(IV).unwrap()).unwrap()
    }

    fn params(hmac: &str) -> DecryptionParams {
        DecryptionParams {
            secrets: vector_secrets(),
            hmac: hex::decode(hmac).unwrap().try_into().unwrap(),
        }
    }

    #[test]
    fn known_answer_encrypt() {
        let mut buf = PT.to_vec();
        let mut enc = Encryptor::new(&vector_secrets());
        // Uneven chunks cross the counter carry in byte 13.
        let (a, b) = buf.split_at_mut(17);
        enc.apply(a);
        enc.apply(b);
        assert_eq!(hex::encode(&buf), CT);
        assert_eq!(hex::encode(enc.finish()), HMAC);
    }

    #[test]
    fn known_answer_decrypt() {
        let mut out = DecryptingWriter::new(Vec::new(), &params(HMAC));
        out.write_all(&hex::decode(CT).unwrap()).unwrap();
        assert_eq!(out.finish().unwrap(), PT);
    }

    #[test]
    fn known_answer_empty_layer() {
        let mut r = EncryptingReader::new(&b""[..], &vector_secrets());
        let mut ct = Vec::new();
        r.read_to_end(&mut ct).unwrap();
        assert!(ct.is_empty());
        assert_eq!(hex::encode(r.finish().unwrap()), EMPTY_HMAC);
        let w = DecryptingWriter::new(Vec::new(), &params(EMPTY_HMAC));
        assert!(w.finish().unwrap().is_empty());
    }

    #[test]
    fn tampering_is_caught_only_at_the_end() {
        let mut ct = hex::decode(CT).unwrap();
        ct[40] ^= 1;
        let mut out = DecryptingWriter::new(Vec::new(), &params(HMAC));
        out.write_all(&ct).unwrap();
        let err = out.finish().unwrap_err();
        assert!(err.to_string().contains("HMAC"), "{err}");
        // Truncation.
        let ct = hex::decode(CT).unwrap();
        let mut out = DecryptingWriter::new(Vec::new(), &params(HMAC));
        out.write_all(&ct[..95]).unwrap();
        assert!(out.finish().is_err());
    }

    /// The counter is the whole nonce as one 128-bit big-endian number and wraps from
    /// all-ones to zero, as Go's `cipher.NewCTR` does: no panic, no error, and the keystream
    /// is AES of each counter value.
    #[test]
    fn the_counter_wraps_at_128_bits_like_go() {
        use aes::cipher::{BlockEncrypt, KeyInit};
        let key = [7u8; KEY_LEN];
        let nonce = [0xff; NONCE_LEN];
        let secrets = LayerSecrets::from_parts(&key, &nonce).unwrap();
        let mut data = vec![0u8; 3 * 16];
        let mut enc = Encryptor::new(&secrets);
        enc.apply(&mut data);
        let aes = Aes256::new(&key.into());
        for (i, counter) in [u128::MAX, 0, 1].into_iter().enumerate() {
            let mut block = counter.to_be_bytes().into();
            aes.encrypt_block(&mut block);
            assert_eq!(&data[16 * i..16 * (i + 1)], &block[..], "block {i}");
        }
    }

    #[test]
    fn finish_before_eof_is_refused() {
        let mut r = EncryptingReader::new(PT, &vector_secrets());
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(r.finish(), Err(CipherError::NotFinished));
    }

    fn options(private: &str, public: &str) -> Result<DecryptionParams, CipherError> {
        DecryptionParams::from_options(
            &PrivateOptions::from_json(private.as_bytes()).unwrap(),
            &PublicOptions::from_json(public.as_bytes()).unwrap(),
        )
    }

    const GOOD_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const GOOD_NONCE: &str = "8PHy8/T19vf4+fr7/P3//w==";
    const GOOD_HMAC: &str = "roiOaa2TQJDFdK//oZ7O8QP3RTVtaYCkiL2WxiN2JaQ=";

    #[test]
    fn refuses_what_go_accepts_by_mistake() {
        let public = format!(r#"{{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"{GOOD_HMAC}"}}"#);
        let private = |k: &str, n: &str| format!(r#"{{"symkey":"{k}","cipheroptions":{{{n}}}}}"#);
        let nonce = format!(r#""nonce":"{GOOD_NONCE}""#);
        assert!(options(&private(GOOD_KEY, &nonce), &public).is_ok());
        assert_eq!(
            options(&private(GOOD_KEY, ""), &public).unwrap_err(),
            CipherError::MissingNonce
        );
        assert_eq!(
            options(&private(GOOD_KEY, r#""nonce":"AAECAw==""#), &public).unwrap_err(),
            CipherError::InvalidNonceLength(4)
        );
        assert_eq!(
            options(&private("AAECAw==", &nonce), &public).unwrap_err(),
            CipherError::InvalidKeyLength(4)
        );
        assert_eq!(
            options(
                &private(GOOD_KEY, &nonce),
                r#"{"cipher":"AES_256_CTR_HMAC_SHA256"}"#
            )
            .unwrap_err(),
            CipherError::MissingHmac
        );
        assert_eq!(
            options(
                &private(GOOD_KEY, &nonce),
                r#"{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"AAE="}"#
            )
            .unwrap_err(),
            CipherError::InvalidHmacLength(2)
        );
        assert_eq!(
            options(
                &private(GOOD_KEY, &nonce),
                &format!(r#"{{"cipher":"CHACHA","hmac":"{GOOD_HMAC}"}}"#)
            )
            .unwrap_err(),
            CipherError::UnknownCipher("CHACHA".into())
        );
        assert_eq!(
            options(
                &private(GOOD_KEY, &nonce),
                &format!(r#"{{"hmac":"{GOOD_HMAC}"}}"#)
            )
            .unwrap_err(),
            CipherError::MissingCipher
        );
        let conflicting = format!(
            r#"{{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"{GOOD_HMAC}","cipheroptions":{{"nonce":"AAAAAAAAAAAAAAAAAAAAAA=="}}}}"#
        );
        assert_eq!(
            options(&private(GOOD_KEY, &nonce), &conflicting).unwrap_err(),
            CipherError::ConflictingNonce
        );
    }

    #[test]
    fn generated_secrets_are_fresh() {
        let a = LayerSecrets::generate().unwrap();
        let b = LayerSecrets::generate().unwrap();
        assert_ne!(a.key().as_bytes(), b.key().as_bytes());
        assert_ne!(a.nonce(), b.nonce());
        assert!(!format!("{a:?}").contains(&hex::encode(a.key().as_bytes())));
    }

    #[test]
    fn debug_never_shows_the_layer_key() {
        // A key whose bytes are easy to spot in any rendering.
        let key: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(101))
            .collect();
        let secrets = LayerSecrets::from_parts(&key, &[9; NONCE_LEN]).unwrap();
        let params = DecryptionParams {
            secrets: secrets.clone(),
            hmac: [0; HMAC_LEN],
        };
        let decimal = key
            .iter()
            .take(4)
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let b64 = crate::format::encode_base64(&key);
        for text in [
            format!("{secrets:?}"),
            format!("{secrets:#?}"),
            format!("{params:?}"),
            format!("{:?}", secrets.key()),
            format!("{:?}", secrets.private_options("sha256:x")),
        ] {
            assert!(text.contains("redacted"), "{text}");
            assert!(
                !text.contains(&hex::encode(&key[..8]))
                    && !text.contains(&decimal)
                    && !text.contains(&b64[..12]),
                "{text}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any plaintext, read and written in any chunking, round-trips.
        #[test]
        fn round_trip_any_chunking(data in proptest::collection::vec(any::<u8>(), 0..5000),
                                   read_chunk in 1usize..700, write_chunk in 1usize..700) {
            let secrets = LayerSecrets::generate().unwrap();
            let mut reader = EncryptingReader::new(&data[..], &secrets);
            let mut ct = Vec::new();
            let mut buf = vec![0u8; read_chunk];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 { break; }
                ct.extend_from_slice(&buf[..n]);
            }
            prop_assert_eq!(ct.len(), data.len());
            let hmac = reader.finish().unwrap();
            let params = DecryptionParams { secrets, hmac };
            let mut w = DecryptingWriter::new(Vec::new(), &params);
            for chunk in ct.chunks(write_chunk) { w.write_all(chunk).unwrap(); }
            prop_assert_eq!(w.finish().unwrap(), data);
        }

        /// Flipping any bit of the ciphertext is detected.
        #[test]
        fn any_bit_flip_is_detected(data in proptest::collection::vec(any::<u8>(), 1..2000),
                                    pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let secrets = LayerSecrets::generate().unwrap();
            let mut ct = data.clone();
            let mut enc = Encryptor::new(&secrets);
            enc.apply(&mut ct);
            let hmac = enc.finish();
            let i = pos.index(ct.len());
            ct[i] ^= 1 << bit;
            let mut dec = Decryptor::new(&DecryptionParams { secrets, hmac });
            dec.apply(&mut ct);
            prop_assert_eq!(dec.verify(), Err(CipherError::HmacMismatch));
        }

        /// How a layer is cut into chunks changes neither its ciphertext nor its HMAC, for any
        /// key and nonce (counters near the 128-bit wrap included); decrypting in other chunks
        /// gives the plaintext back and verifies.
        #[test]
        fn chunking_never_changes_the_ciphertext(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            key in any::<[u8; KEY_LEN]>(),
            nonce in prop_oneof![any::<[u8; NONCE_LEN]>(), Just([0xff; NONCE_LEN])],
            enc_chunks in proptest::collection::vec(1usize..600, 1..20),
            dec_chunks in proptest::collection::vec(1usize..600, 1..20),
        ) {
            let secrets = LayerSecrets::from_parts(&key, &nonce).unwrap();
            let mut whole = data.clone();
            let mut enc = Encryptor::new(&secrets);
            enc.apply(&mut whole);
            let hmac = enc.finish();

            let mut chunked = data.clone();
            let mut enc = Encryptor::new(&secrets);
            for range in chunk_ranges(chunked.len(), &enc_chunks) {
                enc.apply(&mut chunked[range]);
            }
            prop_assert_eq!(&chunked, &whole);
            prop_assert_eq!(enc.finish(), hmac);

            let mut dec = Decryptor::new(&DecryptionParams { secrets, hmac });
            for range in chunk_ranges(chunked.len(), &dec_chunks) {
                dec.apply(&mut chunked[range]);
            }
            prop_assert_eq!(dec.verify(), Ok(()));
            prop_assert_eq!(chunked, data);
        }

        /// The streams round-trip whatever sizes the source yields and the reader asks for, and
        /// whatever sizes are written.
        #[test]
        fn streams_round_trip_any_read_and_write_sizes(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            source_sizes in proptest::collection::vec(1usize..600, 1..20),
            read_sizes in proptest::collection::vec(1usize..600, 1..20),
            write_sizes in proptest::collection::vec(1usize..600, 1..20),
        ) {
            let secrets = LayerSecrets::generate().unwrap();
            let source = Trickle { data: &data, sizes: source_sizes, at: 0, turn: 0 };
            let mut reader = EncryptingReader::new(source, &secrets);
            let mut ct = Vec::new();
            for size in read_sizes.iter().cycle() {
                let mut buf = vec![0u8; *size];
                let n = reader.read(&mut buf).unwrap();
                if n == 0 { break; }
                ct.extend_from_slice(&buf[..n]);
            }
            prop_assert_eq!(ct.len(), data.len());
            let hmac = reader.finish().unwrap();
            let mut w = DecryptingWriter::new(Vec::new(), &DecryptionParams { secrets, hmac });
            for range in chunk_ranges(ct.len(), &write_sizes) {
                w.write_all(&ct[range]).unwrap();
            }
            prop_assert_eq!(w.finish().unwrap(), data);
        }

        /// Any change to a layer is refused by the streaming decryptor, however it is written:
        /// a bit flipped in the ciphertext or in the recorded HMAC, bytes cut off the end, bytes
        /// appended.
        #[test]
        fn any_tampering_is_refused(
            data in proptest::collection::vec(any::<u8>(), 1..3000),
            change in 0u8..4,
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
            extra in proptest::collection::vec(any::<u8>(), 1..40),
            write_sizes in proptest::collection::vec(1usize..600, 1..20),
        ) {
            let secrets = LayerSecrets::generate().unwrap();
            let mut ct = data.clone();
            let mut enc = Encryptor::new(&secrets);
            enc.apply(&mut ct);
            let mut hmac = enc.finish();
            let at = pos.index(ct.len());
            match change {
                0 => ct[at] ^= 1 << bit,
                1 => hmac[pos.index(HMAC_LEN)] ^= 1 << bit,
                2 => ct.truncate(at),
                _ => ct.extend_from_slice(&extra),
            }
            let mut w = DecryptingWriter::new(Vec::new(), &DecryptionParams { secrets, hmac });
            for range in chunk_ranges(ct.len(), &write_sizes) {
                w.write_all(&ct[range]).unwrap();
            }
            let err = w.finish().unwrap_err();
            prop_assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }

    /// `len` bytes cut into chunks of the given sizes, repeated as often as needed.
    fn chunk_ranges(len: usize, sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
        let mut ranges = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= len {
                break;
            }
            let end = (at + size).min(len);
            ranges.push(at..end);
            at = end;
        }
        ranges
    }

    /// A source that yields its data in pieces of the given sizes, in turn.
    struct Trickle<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        at: usize,
        turn: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()];
            self.turn += 1;
            let n = size.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }
}
