//! The layer block cipher options JSON: the private options (wrapped for recipients) and the
//! public options (stored in clear in `org.opencontainers.image.enc.pubopts`).
//!
//! Written byte for byte as Go's `encoding/json` writes ocicrypt's structs (field order
//! `symkey`, `digest`, `cipheroptions`; padded standard base64; map keys sorted), so the same
//! private options can be wrapped by any scheme and read by any peer. Read as leniently as Go
//! reads them: member names match case-insensitively, unknown members are ignored, a byte
//! field may be a base64 string or an array of numbers, and the last duplicate wins.
//!
//! The private options carry the layer key: they only ever live in [`Zeroizing`] buffers and
//! their `Debug` output is redacted.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use super::json::write_go_string;

/// Upper bound on the size of an options document; real ones are about 200 bytes, and a
/// hostile wrapped blob must not make us parse megabytes.
pub const MAX_OPTIONS_LEN: usize = 64 * 1024;

/// Go's `base64.StdEncoding` as `encoding/json` uses it for `[]byte`: padding required,
/// non-zero trailing bits tolerated.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decode standard base64 as Go does (padded; `\r` and `\n` are ignored).
pub fn decode_base64_go(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.contains(['\r', '\n']) {
        let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        GO_STD.decode(cleaned)
    } else {
        GO_STD.decode(text)
    }
}

/// Encode standard padded base64, as Go writes `[]byte` and annotation values.
pub fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Why an options document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// Not JSON, or not an object.
    #[error("{which} options are not a JSON object: {reason}")]
    NotAnObject {
        /// `private` or `public`.
        which: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// Larger than [`MAX_OPTIONS_LEN`].
    #[error("{which} options are {len} bytes, more than the {MAX_OPTIONS_LEN} allowed")]
    TooLarge {
        /// `private` or `public`.
        which: &'static str,
        /// The size found.
        len: usize,
    },
    /// A member has a value Go would refuse.
    #[error("{which} options field `{field}` is invalid: {reason}")]
    BadField {
        /// `private` or `public`.
        which: &'static str,
        /// The member name.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// The private layer block cipher options: the layer key, the nonce and the digest of the
/// unencrypted blob. This is the plaintext every key-wrap scheme protects.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateOptions {
    /// The symmetric layer key (32 bytes for AES-256-CTR, but kept as read).
    pub symkey: Zeroizing<Vec<u8>>,
    /// Digest of the blob before encryption, as the encrypting tool recorded it (may be empty).
    pub digest: String,
    /// Cipher options; ocicrypt stores the `nonce` here.
    pub cipher_options: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for PrivateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateOptions")
            .field("symkey", &"<redacted>")
            .field("digest", &self.digest)
            .field(
                "cipher_options",
                &self.cipher_options.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Drop for PrivateOptions {
    fn drop(&mut self) {
        for v in self.cipher_options.values_mut() {
            v.zeroize();
        }
    }
}

impl PrivateOptions {
    /// The bytes every scheme wraps, exactly as Go writes them.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        out.extend_from_slice(b"{\"symkey\":\"");
        let mut key_b64 = Zeroizing::new(STANDARD.encode(&*self.symkey));
        out.extend_from_slice(key_b64.as_bytes());
        key_b64.zeroize();
        out.extend_from_slice(b"\",\"digest\":");
        write_go_string(&mut out, &self.digest);
        out.extend_from_slice(b",\"cipheroptions\":");
        write_byte_map(&mut out, &self.cipher_options);
        out.push(b'}');
        out
    }

    /// Read private options as Go would.
    pub fn from_json(data: &[u8]) -> Result<PrivateOptions, OptionsError> {
        const WHICH: &str = "private";
        let object = parse_object(WHICH, data)?;
        let mut opts = PrivateOptions {
            symkey: Zeroizing::new(Vec::new()),
            digest: String::new(),
            cipher_options: BTreeMap::new(),
        };
        for (name, value) in &object {
            match name.to_ascii_lowercase().as_str() {
                "symkey" => opts.symkey = Zeroizing::new(byte_field(WHICH, name, value)?),
                "digest" => {
                    opts.digest = match value {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        _ => return Err(bad(WHICH, name, "expected a string")),
                    }
                }
                "cipheroptions" => opts.cipher_options = byte_map(WHICH, name, value)?,
                _ => {}
            }
        }
        Ok(opts)
    }
}

/// The public layer block cipher options: the cipher name and the HMAC of the ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicOptions {
    /// Cipher identifier, `AES_256_CTR_HMAC_SHA256`.
    pub cipher: String,
    /// HMAC-SHA256 of the ciphertext.
    pub hmac: Vec<u8>,
    /// Public cipher options; empty when written by Go or by us.
    pub cipher_options: BTreeMap<String, Vec<u8>>,
}

impl PublicOptions {
    /// The JSON stored (base64-encoded) in `org.opencontainers.image.enc.pubopts`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"{\"cipher\":");
        write_go_string(&mut out, &self.cipher);
        out.extend_from_slice(b",\"hmac\":\"");
        out.extend_from_slice(STANDARD.encode(&self.hmac).as_bytes());
        out.extend_from_slice(b"\",\"cipheroptions\":");
        write_byte_map(&mut out, &self.cipher_options);
        out.push(b'}');
        out
    }

    /// Read public options as Go would. A missing `cipheroptions` is an empty map.
    pub fn from_json(data: &[u8]) -> Result<PublicOptions, OptionsError> {
        const WHICH: &str = "public";
        let object = parse_object(WHICH, data)?;
        let mut opts = PublicOptions {
            cipher: String::new(),
            hmac: Vec::new(),
            cipher_options: BTreeMap::new(),
        };
        for (name, value) in &object {
            match name.to_ascii_lowercase().as_str() {
                "cipher" => {
                    opts.cipher = match value {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        _ => return Err(bad(WHICH, name, "expected a string")),
                    }
                }
                "hmac" => opts.hmac = byte_field(WHICH, name, value)?,
                "cipheroptions" => opts.cipher_options = byte_map(WHICH, name, value)?,
                _ => {}
            }
        }
        Ok(opts)
    }
}

fn parse_object(
    which: &'static str,
    data: &[u8],
) -> Result<serde_json::Map<String, Value>, OptionsError> {
    if data.len() > MAX_OPTIONS_LEN {
        return Err(OptionsError::TooLarge {
            which,
            len: data.len(),
        });
    }
    // Duplicate members: serde_json keeps the last one, as Go does.
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OptionsError::NotAnObject {
            which,
            reason: "the document is not an object".into(),
        }),
        Err(e) => Err(OptionsError::NotAnObject {
            which,
            reason: e.to_string(),
        }),
    }
}

fn bad(which: &'static str, field: &str, reason: &str) -> OptionsError {
    OptionsError::BadField {
        which,
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// A Go `[]byte` member: base64 string, array of 0..=255 numbers, or null.
fn byte_field(which: &'static str, field: &str, value: &Value) -> Result<Vec<u8>, OptionsError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => decode_base64_go(s)
            .map_err(|e| bad(which, field, &format!("not padded standard base64 ({e})"))),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| bad(which, field, "array elements must be numbers 0-255"))
            })
            .collect(),
        _ => Err(bad(
            which,
            field,
            "expected a base64 string or an array of bytes",
        )),
    }
}

/// A Go `map[string][]byte` member (null is an empty map).
fn byte_map(
    which: &'static str,
    field: &str,
    value: &Value,
) -> Result<BTreeMap<String, Vec<u8>>, OptionsError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), byte_field(which, &format!("{field}.{k}"), v)?)))
            .collect(),
        _ => Err(bad(which, field, "expected an object")),
    }
}

/// A Go `map[string][]byte`: keys sorted, values padded base64.
fn write_byte_map(out: &mut Vec<u8>, map: &BTreeMap<String, Vec<u8>>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_go_string(out, k);
        out.extend_from_slice(b":\"");
        out.extend_from_slice(STANDARD.encode(v).as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §1.2, verified against Go's encoding/json.
    const PRIV: &str = r#"{"symkey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","digest":"sha256:0ddff955440556faf94e26c2f9fb29b62554605f4987c0e332e141eeb469c2ec","cipheroptions":{"nonce":"8PHy8/T19vf4+fr7/P3//w=="}}"#;
    const PUB: &str = r#"{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"roiOaa2TQJDFdK//oZ7O8QP3RTVtaYCkiL2WxiN2JaQ=","cipheroptions":{}}"#;
    const PUBOPTS_ANNOTATION: &str = "eyJjaXBoZXIiOiJBRVNfMjU2X0NUUl9ITUFDX1NIQTI1NiIsImhtYWMiOiJyb2lPYWEyVFFKREZkSy8vb1o3TzhRUDNSVFZ0YVlDa2lMMld4aU4ySmFRPSIsImNpcGhlcm9wdGlvbnMiOnt9fQ==";

    fn spec_private() -> PrivateOptions {
        PrivateOptions {
            symkey: Zeroizing::new((0u8..32).collect()),
            digest: "sha256:0ddff955440556faf94e26c2f9fb29b62554605f4987c0e332e141eeb469c2ec"
                .into(),
            cipher_options: BTreeMap::from([(
                "nonce".to_string(),
                hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdffff").unwrap(),
            )]),
        }
    }

    #[test]
    fn private_options_are_written_as_go_writes_them() {
        let json = spec_private().to_json();
        assert_eq!(std::str::from_utf8(&json).unwrap(), PRIV);
        assert_eq!(json.len(), 193);
    }

    #[test]
    fn public_options_and_annotation_match_the_spec_vector() {
        let p = PublicOptions {
            cipher: "AES_256_CTR_HMAC_SHA256".into(),
            hmac: hex::decode("ae888e69ad934090c574afffa19ecef103f745356d6980a488bd96c6237625a4")
                .unwrap(),
            cipher_options: BTreeMap::new(),
        };
        assert_eq!(std::str::from_utf8(&p.to_json()).unwrap(), PUB);
        assert_eq!(encode_base64(&p.to_json()), PUBOPTS_ANNOTATION);
    }

    #[test]
    fn reads_what_skopeo_wrote() {
        let raw = include_bytes!("../../testdata/samples/privopts.raw.json").trim_ascii_end();
        let p = PrivateOptions::from_json(raw).unwrap();
        assert_eq!(p.symkey.len(), 32);
        assert_eq!(p.cipher_options["nonce"].len(), 16);
        assert_eq!(&p.to_json()[..], raw);
        let raw = include_bytes!("../../testdata/samples/pubopts.raw.json");
        let p = PublicOptions::from_json(raw.trim_ascii_end()).unwrap();
        assert_eq!(p.to_json(), raw.trim_ascii_end());
    }

    #[test]
    fn reads_leniently_like_go() {
        let p = PrivateOptions::from_json(
            br#"{"SymKey":[1,2,3],"DIGEST":"d","CipherOptions":{"nonce":"AAE="},"extra":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(&p.symkey[..], &[1, 2, 3]);
        assert_eq!(p.digest, "d");
        assert_eq!(p.cipher_options["nonce"], vec![0, 1]);
        // Missing members are zero values; null byte maps are empty.
        let p = PublicOptions::from_json(br#"{"cipher":"X","cipheroptions":null}"#).unwrap();
        assert!(p.hmac.is_empty() && p.cipher_options.is_empty());
        // Last duplicate wins.
        let p = PublicOptions::from_json(br#"{"cipher":"A","cipher":"B"}"#).unwrap();
        assert_eq!(p.cipher, "B");
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            &br#"{"symkey":"AAE"}"#[..], // unpadded
            br#"{"symkey":"!!!!"}"#,
            br#"{"symkey":[256]}"#,
            br#"{"symkey":[-1]}"#,
            br#"{"symkey":5}"#,
            br#"{"digest":5}"#,
            br#"{"cipheroptions":[1]}"#,
            br#"[]"#,
            br#"{"#,
            b"",
        ] {
            assert!(
                PrivateOptions::from_json(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b' '; MAX_OPTIONS_LEN + 1];
        assert!(matches!(
            PublicOptions::from_json(&huge),
            Err(OptionsError::TooLarge { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let text = format!("{:?}", spec_private());
        assert!(
            text.contains("redacted") && !text.contains("AAECAw"),
            "{text}"
        );
    }
}
