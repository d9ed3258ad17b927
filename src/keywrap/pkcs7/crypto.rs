//! The cryptography of a PKCS#7 envelope, all through OpenSSL: RSA key transport (PKCS#1 v1.5
//! and OAEP) and the content ciphers (AES-GCM, AES-CBC, DES-EDE3-CBC, DES-CBC).
//!
//! Every length is checked before OpenSSL sees it (the `openssl` crate asserts on short keys
//! and IVs and on short output buffers). Content keys and plaintext live in [`Zeroizing`]
//! buffers. Nothing here decides whether a result may be trusted: the caller knows that a
//! PKCS#1 v1.5 decryption with the wrong key can "succeed" (OpenSSL's implicit rejection
//! returns a random key) and that only GCM content proves the key right.

use openssl::encrypt::{Decrypter, Encrypter};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKeyRef, Private, Public};
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use zeroize::Zeroizing;

use super::MAX_OPTIONS;
use super::envelope::{
    Content, ContentCipher, GCM_NONCE_LEN, GCM_TAG_LEN, Hash, KeyTransport, KeyTransportAlgorithm,
};

/// The content-key length Go uses (AES-128).
pub(super) const CONTENT_KEY_LEN: usize = 16;

/// Why the content could not be decrypted with a content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ContentError {
    /// The GCM tag does not verify: wrong key, or tampered content.
    NotAuthentic,
    /// CBC padding is wrong: wrong key, or damaged content.
    BadPadding,
    /// The content key does not have the length the cipher needs.
    KeyLength {
        /// What the key transport gave.
        got: usize,
        /// What the cipher needs.
        want: usize,
    },
    /// The cipher is not supported (or not available in this OpenSSL).
    Unsupported(String),
    /// The ciphertext cannot be valid for the cipher.
    Malformed(String),
}

impl std::fmt::Display for ContentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentError::NotAuthentic => f.write_str("content does not authenticate"),
            ContentError::BadPadding => {
                f.write_str("the content's padding is wrong (wrong key or damaged content)")
            }
            ContentError::KeyLength { got, want } => write!(
                f,
                "the decrypted content key has {got} bytes, the cipher needs {want}"
            ),
            ContentError::Unsupported(why) | ContentError::Malformed(why) => f.write_str(why),
        }
    }
}

/// Whether `key` is an RSA key (PKCS#7 key transport is RSA only).
pub(super) fn is_rsa<T>(key: &PKeyRef<T>) -> bool {
    key.id() == Id::RSA
}

fn digest(hash: Hash) -> MessageDigest {
    match hash {
        Hash::Sha1 => MessageDigest::sha1(),
        Hash::Sha224 => MessageDigest::sha224(),
        Hash::Sha256 => MessageDigest::sha256(),
        Hash::Sha384 => MessageDigest::sha384(),
        Hash::Sha512 => MessageDigest::sha512(),
    }
}

/// Decrypt a RecipientInfo's content key with an RSA private key.
///
/// An error means the key certainly does not open the entry; success does not mean it does
/// (PKCS#1 v1.5 implicit rejection), so the caller must check the content.
pub(super) fn decrypt_content_key(
    key: &PKeyRef<Private>,
    entry: &KeyTransport<'_>,
) -> Result<Zeroizing<Vec<u8>>, String> {
    if !is_rsa(key) {
        return Err("PKCS#7 key transport needs an RSA key".into());
    }
    let size = key.size();
    if entry.encrypted_key.len() != size {
        return Err(format!(
            "the encrypted content key has {} bytes, but an RSA-{} key decrypts {size}-byte blocks",
            entry.encrypted_key.len(),
            key.bits()
        ));
    }
    let attempt = |padding: Padding, oaep: Option<(Hash, Hash, &[u8])>| {
        let run = || -> Result<Zeroizing<Vec<u8>>, openssl::error::ErrorStack> {
            let mut d = Decrypter::new(key)?;
            d.set_rsa_padding(padding)?;
            if let Some((hash, mgf1, label)) = oaep {
                d.set_rsa_oaep_md(digest(hash))?;
                d.set_rsa_mgf1_md(digest(mgf1))?;
                if !label.is_empty() {
                    d.set_rsa_oaep_label(label)?;
                }
            }
            let mut out = Zeroizing::new(vec![0u8; d.decrypt_len(&entry.encrypted_key)?]);
            let n = d.decrypt(&entry.encrypted_key, &mut out)?;
            out.truncate(n);
            Ok(out)
        };
        run().ok()
    };
    let opened = match &entry.algorithm {
        KeyTransportAlgorithm::RsaPkcs1 => attempt(Padding::PKCS1, None),
        KeyTransportAlgorithm::RsaOaep { hash, mgf1, label } => {
            // Without explicit MGF1 parameters RFC 4055 means MGF1-SHA-1, but Go encrypts with
            // MGF1 over the OAEP hash: try both (OAEP failures are reliable, so this is safe).
            let candidates: Vec<Hash> = match mgf1 {
                Some(m) => vec![*m],
                None if *hash == Hash::Sha1 => vec![Hash::Sha1],
                None => vec![*hash, Hash::Sha1],
            };
            candidates
                .into_iter()
                .find_map(|m| attempt(Padding::PKCS1_OAEP, Some((*hash, m, label))))
        }
        KeyTransportAlgorithm::Unsupported(oid) => {
            return Err(format!(
                "key transport {oid} is not supported (RSAES-PKCS1-v1_5 and RSAES-OAEP are)"
            ));
        }
    };
    opened.ok_or_else(|| {
        format!(
            "{} decryption of the content key failed (not this recipient's key)",
            entry.algorithm.name()
        )
    })
}

/// Decrypt the content with a content key. GCM content is returned only if its tag verifies.
pub(super) fn decrypt_content(
    content: &Content<'_>,
    key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ContentError> {
    let Some(want) = content.cipher.key_len() else {
        return Err(ContentError::Unsupported(format!(
            "{} is not supported (AES-GCM, AES-CBC and DES-EDE3-CBC are)",
            content.cipher.name()
        )));
    };
    if key.len() != want {
        return Err(ContentError::KeyLength {
            got: key.len(),
            want,
        });
    }
    let data: &[u8] = &content.ciphertext;
    match &content.cipher {
        ContentCipher::AesGcm { nonce, tag_len, .. } => {
            let cipher = match want {
                16 => Cipher::aes_128_gcm(),
                24 => Cipher::aes_192_gcm(),
                _ => Cipher::aes_256_gcm(),
            };
            if data.len() < *tag_len {
                return Err(ContentError::Malformed(format!(
                    "the GCM content has {} bytes, shorter than its {tag_len}-byte tag",
                    data.len()
                )));
            }
            let (ciphertext, tag) = data.split_at(data.len() - tag_len);
            let run = || -> Result<Zeroizing<Vec<u8>>, ContentError> {
                let fail = |_| ContentError::NotAuthentic;
                let mut c = Crypter::new(cipher, Mode::Decrypt, key, Some(nonce)).map_err(|e| {
                    ContentError::Unsupported(format!("OpenSSL cannot set up AES-GCM: {e}"))
                })?;
                c.set_tag(tag).map_err(fail)?;
                let mut out = Zeroizing::new(vec![0u8; ciphertext.len() + 16]);
                let n = c.update(ciphertext, &mut out).map_err(fail)?;
                let m = c.finalize(&mut out[n..]).map_err(fail)?;
                out.truncate(n + m);
                Ok(out)
            };
            run()
        }
        ContentCipher::AesCbc { iv, .. } => {
            let cipher = match want {
                16 => Cipher::aes_128_cbc(),
                24 => Cipher::aes_192_cbc(),
                _ => Cipher::aes_256_cbc(),
            };
            cbc(cipher, "AES-CBC", 16, key, iv, data)
        }
        ContentCipher::DesEde3Cbc { iv } => {
            cbc(Cipher::des_ede3_cbc(), "DES-EDE3-CBC", 8, key, iv, data)
        }
        ContentCipher::DesCbc { iv } => cbc(Cipher::des_cbc(), "DES-CBC", 8, key, iv, data),
        // Refused above (it has no key length); kept here so the match needs no wildcard.
        ContentCipher::Unsupported(_) => Err(ContentError::Unsupported(content.cipher.name())),
    }
}

fn cbc(
    cipher: Cipher,
    name: &str,
    block: usize,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ContentError> {
    if data.is_empty() || !data.len().is_multiple_of(block) {
        return Err(ContentError::Malformed(format!(
            "the {name} content has {} bytes, not a whole number of {block}-byte blocks",
            data.len()
        )));
    }
    let mut c = Crypter::new(cipher, Mode::Decrypt, key, Some(iv)).map_err(|e| {
        // OpenSSL 3 keeps single DES in its legacy provider, which is not loaded by default.
        ContentError::Unsupported(format!(
            "{name} is not available in this OpenSSL ({}); re-encrypt the layer with AES",
            e.errors()
                .first()
                .and_then(|e| e.reason())
                .unwrap_or("cipher unavailable")
        ))
    })?;
    let mut out = Zeroizing::new(vec![0u8; data.len() + block]);
    let n = c
        .update(data, &mut out)
        .map_err(|_| ContentError::BadPadding)?;
    let m = c
        .finalize(&mut out[n..])
        .map_err(|_| ContentError::BadPadding)?;
    out.truncate(n + m);
    Ok(out)
}

/// Content sealed for an envelope: the content key (to be wrapped per recipient), the nonce
/// and ciphertext‖tag. `Debug` does not show the key.
pub(super) struct Sealed {
    /// The fresh AES-128 content key.
    pub key: Zeroizing<[u8; CONTENT_KEY_LEN]>,
    /// The fresh GCM nonce.
    pub nonce: [u8; GCM_NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key", &"<redacted>")
            .field("nonce", &hex::encode(self.nonce))
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// Seal `plaintext` with a fresh AES-128 content key and GCM nonce (no additional data), as Go
/// does it.
pub(super) fn seal(plaintext: &[u8]) -> Result<Sealed, String> {
    if plaintext.len() > MAX_OPTIONS {
        return Err(format!(
            "the options have {} bytes, more than the {MAX_OPTIONS} allowed",
            plaintext.len()
        ));
    }
    let mut key = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
    let mut nonce = [0u8; GCM_NONCE_LEN];
    getrandom::fill(&mut key[..]).map_err(|e| format!("no random numbers: {e}"))?;
    getrandom::fill(&mut nonce).map_err(|e| format!("no random numbers: {e}"))?;
    let mut tag = [0u8; GCM_TAG_LEN];
    let mut data = openssl::symm::encrypt_aead(
        Cipher::aes_128_gcm(),
        &key[..],
        Some(&nonce),
        &[],
        plaintext,
        &mut tag,
    )
    .map_err(|e| format!("AES-128-GCM encryption failed: {e}"))?;
    data.extend_from_slice(&tag);
    Ok(Sealed { key, nonce, data })
}

/// RSAES-PKCS1-v1_5 encryption of a content key for a certificate's RSA key.
pub(super) fn encrypt_content_key(
    key: &PKeyRef<Public>,
    content_key: &[u8],
) -> Result<Vec<u8>, String> {
    let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut e = Encrypter::new(key)?;
        e.set_rsa_padding(Padding::PKCS1)?;
        let mut out = vec![0u8; e.encrypt_len(content_key)?];
        let n = e.encrypt(content_key, &mut out)?;
        out.truncate(n);
        Ok(out)
    };
    run().map_err(|e| format!("RSA encryption of the content key failed: {e}"))
}
