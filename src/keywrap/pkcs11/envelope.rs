//! The PKCS#11 wrapped-key blob and RSA-OAEP in software.
//!
//! The blob is ocicrypt's `Pkcs11Blob` JSON, written byte for byte as Go's `json.Marshal`
//! writes it (field order of the Go structs, standard padded base64, the `hash` always
//! present): `{"version":0,"recipients":[{"version":0,"blob":"…","hash":"sha256"}]}`. Each
//! recipient entry is RSA-OAEP (MGF1 with the same hash, empty label) of the whole private
//! options JSON.
//!
//! Blobs come from images and are hostile: [`Pkcs11Blob::parse`] bounds the size, the number
//! of entries and each ciphertext, and never panics. Nothing here touches a token.

use openssl::encrypt::{Decrypter, Encrypter};
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKeyRef, Private};
use openssl::rsa::Padding;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::format::{decode_base64_go, encode_base64};

/// Largest blob JSON accepted (a thousand RSA-16384 entries fit).
pub const MAX_BLOB_BYTES: usize = 4 * 1024 * 1024;
/// Most recipient entries accepted in one blob.
pub const MAX_RECIPIENTS: usize = 1024;
/// Largest RSA-OAEP ciphertext accepted: an RSA-16384 modulus.
pub const MAX_CIPHERTEXT: usize = 16384 / 8;

/// The OAEP hash (also MGF1's hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OaepHash {
    /// SHA-1: what SoftHSM 2.6 supports, and what entries without `hash` use.
    Sha1,
    /// SHA-256: ocicrypt's default since 1.1.4.
    Sha256,
}

impl OaepHash {
    /// The hash for wrapping, from `OCICRYPT_OAEP_HASHALG` (case-insensitive): unset or
    /// `sha256` → SHA-256, `sha1` → SHA-1, anything else is an error.
    pub fn from_env(value: Option<&str>) -> Result<OaepHash, String> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("sha256") => Ok(OaepHash::Sha256),
            Some("sha1") => Ok(OaepHash::Sha1),
            Some(_) => Err(format!(
                "OCICRYPT_OAEP_HASHALG={} is not an OAEP hash ocicrypt knows; use sha256 (the default) or sha1",
                value.unwrap_or_default()
            )),
        }
    }

    /// The hash of an entry as Go reads it (case-sensitive): missing or empty → SHA-1 (older
    /// writers left SHA-1 unnamed), `sha1`, `sha256`; `None` for anything else.
    pub fn from_entry(value: Option<&str>) -> Option<OaepHash> {
        match value {
            None | Some("") | Some("sha1") => Some(OaepHash::Sha1),
            Some("sha256") => Some(OaepHash::Sha256),
            Some(_) => None,
        }
    }

    /// The name written into entries and shown by `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            OaepHash::Sha1 => "sha1",
            OaepHash::Sha256 => "sha256",
        }
    }

    /// The name in messages (`SHA-256`).
    pub fn display(self) -> &'static str {
        match self {
            OaepHash::Sha1 => "SHA-1",
            OaepHash::Sha256 => "SHA-256",
        }
    }

    /// Digest length in bytes (hLen).
    pub fn digest_len(self) -> usize {
        match self {
            OaepHash::Sha1 => 20,
            OaepHash::Sha256 => 32,
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            OaepHash::Sha1 => MessageDigest::sha1(),
            OaepHash::Sha256 => MessageDigest::sha256(),
        }
    }

    /// The most bytes RSA-OAEP with this hash carries under a `modulus_bits` key:
    /// k − 2·hLen − 2 (RFC 8017 §7.1.1).
    pub fn capacity(self, modulus_bits: u32) -> usize {
        let k = (modulus_bits as usize).div_ceil(8);
        k.saturating_sub(2 * self.digest_len() + 2)
    }
}

/// Refuse, before any key is used, a message that RSA-OAEP cannot carry under this key, saying
/// plainly what to change. `what` names the key (`RSA-2048 key on token "x"`).
pub fn check_capacity(
    message_len: usize,
    modulus_bits: u32,
    hash: OaepHash,
    what: &str,
) -> Result<(), String> {
    let capacity = hash.capacity(modulus_bits);
    if message_len <= capacity {
        return Ok(());
    }
    let mut fixes = Vec::new();
    if hash == OaepHash::Sha256 && message_len <= OaepHash::Sha1.capacity(modulus_bits) {
        fixes.push("set OCICRYPT_OAEP_HASHALG=sha1".to_string());
    }
    // The smallest usual key size that fits: k ≥ len + 2·hLen + 2.
    let needed = (message_len + 2 * hash.digest_len() + 2) * 8;
    let size = [2048usize, 3072, 4096, 8192, 16384]
        .into_iter()
        .find(|s| *s >= needed)
        .unwrap_or(needed);
    fixes.push(format!("use an RSA key of {size} bits or more"));
    Err(format!(
        "the layer options ({message_len} bytes) are too long for RSA-OAEP with {} under the {what} ({modulus_bits} bits), which carries at most {capacity} bytes; {}",
        hash.display(),
        fixes.join(", or ")
    ))
}

/// RSA-OAEP encryption in software (for plain public keys given as `pkcs11:` recipients):
/// MGF1 with the same hash, empty label, as Go's `rsa.EncryptOAEP`.
pub fn oaep_encrypt<T: HasPublic>(
    key: &PKeyRef<T>,
    hash: OaepHash,
    message: &[u8],
) -> Result<Vec<u8>, String> {
    let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut enc = Encrypter::new(key)?;
        enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
        enc.set_rsa_oaep_md(hash.digest())?;
        enc.set_rsa_mgf1_md(hash.digest())?;
        let mut out = vec![0u8; enc.encrypt_len(message)?];
        let n = enc.encrypt(message, &mut out)?;
        out.truncate(n);
        Ok(out)
    };
    run().map_err(|e| format!("RSA-OAEP encryption failed: {e}"))
}

/// RSA-OAEP decryption in software; used by tests to check what is written.
pub fn oaep_decrypt(
    key: &PKeyRef<Private>,
    hash: OaepHash,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let run = || -> Result<Zeroizing<Vec<u8>>, openssl::error::ErrorStack> {
        let mut dec = Decrypter::new(key)?;
        dec.set_rsa_padding(Padding::PKCS1_OAEP)?;
        dec.set_rsa_oaep_md(hash.digest())?;
        dec.set_rsa_mgf1_md(hash.digest())?;
        let mut out = Zeroizing::new(vec![0u8; dec.decrypt_len(ciphertext)?]);
        let n = dec.decrypt(ciphertext, &mut out)?;
        out.truncate(n);
        Ok(out)
    };
    run().map_err(|e| format!("RSA-OAEP decryption failed: {e}"))
}

/// One recipient entry as written: the ciphertext and the hash it was made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenEntry {
    /// RSA-OAEP ciphertext.
    pub ciphertext: Vec<u8>,
    /// The OAEP hash.
    pub hash: OaepHash,
}

/// Write the blob JSON exactly as Go's `json.Marshal(&Pkcs11Blob{…})` does. Base64 and the
/// hash names need no JSON escaping, so the text is assembled directly.
pub fn write_blob(entries: &[WrittenEntry]) -> Vec<u8> {
    let recipients: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                r#"{{"version":0,"blob":"{}","hash":"{}"}}"#,
                encode_base64(&e.ciphertext),
                e.hash.name()
            )
        })
        .collect();
    format!(r#"{{"version":0,"recipients":[{}]}}"#, recipients.join(",")).into_bytes()
}

/// One recipient entry as read: usable, or why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A ciphertext and its hash.
    Usable {
        /// RSA-OAEP ciphertext.
        ciphertext: Vec<u8>,
        /// The OAEP hash.
        hash: OaepHash,
    },
    /// An entry that cannot be tried (bad base64, empty, too long, unknown hash); the hash
    /// name as written, if any, for `inspect`.
    Unusable {
        /// Why.
        reason: String,
        /// The `hash` member as written.
        hash: Option<String>,
    },
}

/// A parsed blob: its entries in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Blob {
    /// The recipient entries.
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct RawBlob {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    recipients: Option<BoundedRecipients>,
}

/// The `recipients` array, refused as soon as it holds more than [`MAX_RECIPIENTS`] entries,
/// so a blob of a million `{}` costs no more than a small one.
struct BoundedRecipients(Vec<RawRecipient>);

impl<'de> Deserialize<'de> for BoundedRecipients {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = BoundedRecipients;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_RECIPIENTS} recipients")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BoundedRecipients, A::Error> {
                let mut out = Vec::new();
                while let Some(r) = seq.next_element::<RawRecipient>()? {
                    if out.len() == MAX_RECIPIENTS {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_RECIPIENTS} recipients"
                        )));
                    }
                    out.push(r);
                }
                Ok(BoundedRecipients(out))
            }
        }
        d.deserialize_seq(Visit)
    }
}

#[derive(Deserialize)]
struct RawRecipient {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    blob: Option<String>,
    #[serde(default)]
    hash: Option<String>,
}

impl Pkcs11Blob {
    /// Read a blob as Go does: JSON (unknown members ignored; `null` is the zero value),
    /// version 0, every recipient version 0. Entries that cannot be tried are kept with the
    /// reason, so each key can report it.
    pub fn parse(data: &[u8]) -> Result<Pkcs11Blob, String> {
        if data.len() > MAX_BLOB_BYTES {
            return Err(format!(
                "the PKCS#11 blob is {} bytes, more than the {MAX_BLOB_BYTES} accepted",
                data.len()
            ));
        }
        // Go's json.Unmarshal wants an object; serde would also take an array for a struct.
        if data.trim_ascii_start().first() != Some(&b'{') {
            return Err("the PKCS#11 blob is not ocicrypt's JSON: not a JSON object".into());
        }
        let raw: RawBlob = serde_json::from_slice(data)
            .map_err(|e| format!("the PKCS#11 blob is not ocicrypt's JSON: {e}"))?;
        let version = raw.version.unwrap_or(0);
        if version != 0 {
            return Err(format!(
                "the PKCS#11 blob has version {version}; only version 0 is known"
            ));
        }
        let recipients = raw.recipients.map(|r| r.0).unwrap_or_default();
        if recipients.is_empty() {
            return Err("the PKCS#11 blob has no recipients".into());
        }
        let mut entries = Vec::with_capacity(recipients.len());
        for (i, r) in recipients.into_iter().enumerate() {
            let v = r.version.unwrap_or(0);
            if v != 0 {
                return Err(format!(
                    "recipient {i} of the PKCS#11 blob has version {v}; only version 0 is known"
                ));
            }
            let unusable = |reason: String| Entry::Unusable {
                reason,
                hash: r.hash.clone(),
            };
            let text = r.blob.as_deref().unwrap_or_default();
            let entry = if text.len() > MAX_CIPHERTEXT.div_ceil(3) * 4 + 64 {
                unusable(format!(
                    "recipient {i}: the ciphertext is longer than an RSA-16384 key produces"
                ))
            } else {
                match decode_base64_go(text) {
                    Err(e) => {
                        unusable(format!("recipient {i}: the blob is not valid base64 ({e})"))
                    }
                    Ok(c) if c.is_empty() => unusable(format!("recipient {i}: the blob is empty")),
                    Ok(c) if c.len() > MAX_CIPHERTEXT => unusable(format!(
                        "recipient {i}: the ciphertext is longer than an RSA-16384 key produces"
                    )),
                    Ok(ciphertext) => match OaepHash::from_entry(r.hash.as_deref()) {
                        Some(hash) => Entry::Usable { ciphertext, hash },
                        None => unusable(format!(
                            "recipient {i}: unsupported OAEP hash `{}`",
                            r.hash.as_deref().unwrap_or_default()
                        )),
                    },
                }
            };
            entries.push(entry);
        }
        Ok(Pkcs11Blob { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    #[test]
    fn envelope_bytes_are_gos() {
        let entries = [
            WrittenEntry {
                ciphertext: vec![0xfb, 0xff, 0x00, 0x01],
                hash: OaepHash::Sha256,
            },
            WrittenEntry {
                ciphertext: vec![0x3e, 0x3f],
                hash: OaepHash::Sha1,
            },
        ];
        assert_eq!(
            String::from_utf8(write_blob(&entries)).unwrap(),
            r#"{"version":0,"recipients":[{"version":0,"blob":"+/8AAQ==","hash":"sha256"},{"version":0,"blob":"Pj8=","hash":"sha1"}]}"#
        );
        // The golden file holds the same bytes (no trailing newline), as a reviewer-readable
        // record of the format.
        let golden = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/pkcs11/envelope-two-recipients.json"),
        )
        .unwrap();
        assert_eq!(write_blob(&entries), golden);
        let back = Pkcs11Blob::parse(&golden).unwrap();
        assert_eq!(
            back.entries,
            [
                Entry::Usable {
                    ciphertext: vec![0xfb, 0xff, 0x00, 0x01],
                    hash: OaepHash::Sha256
                },
                Entry::Usable {
                    ciphertext: vec![0x3e, 0x3f],
                    hash: OaepHash::Sha1
                }
            ]
        );
    }

    #[test]
    fn a_missing_or_empty_hash_is_sha1() {
        for json in [
            r#"{"version":0,"recipients":[{"version":0,"blob":"AQ=="}]}"#,
            r#"{"version":0,"recipients":[{"version":0,"blob":"AQ==","hash":""}]}"#,
            r#"{"version":0,"recipients":[{"version":0,"blob":"AQ==","hash":null}]}"#,
            r#"{"recipients":[{"blob":"AQ==","extra":1}],"more":true}"#,
        ] {
            let blob = Pkcs11Blob::parse(json.as_bytes()).unwrap();
            assert_eq!(
                blob.entries,
                [Entry::Usable {
                    ciphertext: vec![1],
                    hash: OaepHash::Sha1
                }],
                "{json}"
            );
        }
    }

    #[test]
    fn hash_names() {
        assert_eq!(OaepHash::from_env(None), Ok(OaepHash::Sha256));
        assert_eq!(OaepHash::from_env(Some("")), Ok(OaepHash::Sha256));
        assert_eq!(OaepHash::from_env(Some("SHA256")), Ok(OaepHash::Sha256));
        assert_eq!(OaepHash::from_env(Some("Sha1")), Ok(OaepHash::Sha1));
        let err = OaepHash::from_env(Some("sha512")).unwrap_err();
        assert!(err.contains("OCICRYPT_OAEP_HASHALG=sha512"), "{err}");
        // Reading is case-sensitive, as in Go.
        assert_eq!(OaepHash::from_entry(Some("SHA256")), None);
        assert_eq!(OaepHash::from_entry(Some("sha256")), Some(OaepHash::Sha256));
    }

    #[test]
    fn the_size_check_names_the_fix() {
        // RSA-2048: 256 − 66 = 190 bytes with SHA-256, 256 − 42 = 214 with SHA-1.
        assert_eq!(OaepHash::Sha256.capacity(2048), 190);
        assert_eq!(OaepHash::Sha1.capacity(2048), 214);
        assert_eq!(OaepHash::Sha256.capacity(3072), 318);
        assert_eq!(OaepHash::Sha256.capacity(2047), 190);
        assert_eq!(OaepHash::Sha256.capacity(8), 0);
        let err = check_capacity(193, 2048, OaepHash::Sha256, "RSA key in k.pem").unwrap_err();
        assert_eq!(
            err,
            "the layer options (193 bytes) are too long for RSA-OAEP with SHA-256 under the RSA key in k.pem (2048 bits), which carries at most 190 bytes; set OCICRYPT_OAEP_HASHALG=sha1, or use an RSA key of 3072 bits or more"
        );
        assert!(check_capacity(193, 2048, OaepHash::Sha1, "k").is_ok());
        assert!(check_capacity(193, 3072, OaepHash::Sha256, "k").is_ok());
        assert!(check_capacity(190, 2048, OaepHash::Sha256, "k").is_ok());
        let err = check_capacity(257, 2048, OaepHash::Sha1, "k").unwrap_err();
        assert!(
            err.ends_with("; use an RSA key of 3072 bits or more"),
            "{err}"
        );
    }

    #[test]
    fn software_oaep_round_trips_with_both_hashes() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let message = vec![b'x'; 193];
        for hash in [OaepHash::Sha1, OaepHash::Sha256] {
            let c = oaep_encrypt(&key, hash, &message[..hash.capacity(2048).min(193)]).unwrap();
            assert_eq!(c.len(), 256);
            let p = oaep_decrypt(&key, hash, &c).unwrap();
            assert_eq!(&p[..], &message[..p.len()]);
            let other = if hash == OaepHash::Sha1 {
                OaepHash::Sha256
            } else {
                OaepHash::Sha1
            };
            assert!(oaep_decrypt(&key, other, &c).is_err());
        }
        // Too long for SHA-256 under RSA-2048: OpenSSL refuses it too (the check comes first).
        assert!(oaep_encrypt(&key, OaepHash::Sha256, &message).is_err());
    }

    #[test]
    fn hostile_blobs_are_refused_or_marked_never_panicking() {
        let bad: &[(&[u8], &str)] = &[
            (b"", "not ocicrypt's JSON"),
            (b"[]", "not ocicrypt's JSON"),
            (b"{\"version\":1,\"recipients\":[]}", "version 1"),
            (b"{\"version\":-1}", "not ocicrypt's JSON"),
            (b"{\"version\":0.5}", "not ocicrypt's JSON"),
            (b"{\"version\":0}", "no recipients"),
            (b"{\"recipients\":null}", "no recipients"),
            (
                b"{\"recipients\":[{\"version\":2,\"blob\":\"AQ==\"}]}",
                "recipient 0 of the PKCS#11 blob has version 2",
            ),
            (b"{\"recipients\":[{\"blob\":5}]}", "not ocicrypt's JSON"),
            (b"{\"recipients\":{}}", "not ocicrypt's JSON"),
        ];
        for (data, why) in bad {
            let err = Pkcs11Blob::parse(data).unwrap_err();
            assert!(
                err.contains(why),
                "{}: {err}",
                String::from_utf8_lossy(data)
            );
        }
        // Huge arrays and huge blobs are refused by size before anything is built.
        let many = format!(
            "{{\"recipients\":[{}]}}",
            vec!["{}"; MAX_RECIPIENTS + 1].join(",")
        );
        let err = Pkcs11Blob::parse(many.as_bytes()).unwrap_err();
        assert!(err.contains("more than 1024 recipients"), "{err}");
        let huge = vec![b' '; MAX_BLOB_BYTES + 1];
        assert!(Pkcs11Blob::parse(&huge).unwrap_err().contains("more than"));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(Pkcs11Blob::parse(deep.as_bytes()).is_err());

        // Entries that cannot be tried are kept, with the reason.
        let long = "A".repeat(4 * 1024);
        let json = format!(
            r#"{{"recipients":[{{"blob":"!!"}},{{"blob":""}},{{}},{{"blob":"AQ==","hash":"md5"}},{{"blob":"{long}"}},{{"blob":"AQ==","hash":"sha256"}}]}}"#
        );
        let blob = Pkcs11Blob::parse(json.as_bytes()).unwrap();
        let reasons: Vec<String> = blob
            .entries
            .iter()
            .map(|e| match e {
                Entry::Unusable { reason, .. } => reason.clone(),
                Entry::Usable { .. } => "usable".into(),
            })
            .collect();
        assert!(reasons[0].contains("not valid base64"), "{reasons:?}");
        assert!(reasons[1].contains("is empty"), "{reasons:?}");
        assert!(reasons[2].contains("is empty"), "{reasons:?}");
        assert!(
            reasons[3].contains("unsupported OAEP hash `md5`"),
            "{reasons:?}"
        );
        assert!(reasons[4].contains("longer than"), "{reasons:?}");
        assert_eq!(reasons[5], "usable");

        // Random mutations of a valid blob never panic.
        let good = write_blob(&[WrittenEntry {
            ciphertext: vec![7; 256],
            hash: OaepHash::Sha1,
        }]);
        let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
        for _ in 0..3000 {
            let mut data = good.clone();
            rng.mutate(&mut data, 6, None);
            let cut = rng.below(data.len() + 1);
            let _ = Pkcs11Blob::parse(&data);
            let _ = Pkcs11Blob::parse(&data[..cut]);
        }
    }
}
