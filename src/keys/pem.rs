//! PEM: finding the first key block of a text file, decoding its RFC 1421
//! headers and base64 body, and decrypting OpenSSL's legacy PEM encryption
//! (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`).
//!
//! It must never panic on a truncated or hostile file (a BEGIN line without
//! its END, an IV of the wrong length, which OpenSSL's bindings would assert
//! on) and never leave a decoded or decrypted body outside a `Zeroizing`
//! buffer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::symm::{Cipher, Crypter, Mode};
use zeroize::Zeroizing;

use super::KeyError;
use super::der::private_from_der;

/// One PEM block, not yet decoded: its label and the text between the
/// BEGIN and END lines.
pub(super) struct PemBlock<'a> {
    pub(super) label: &'a str,
    pub(super) inner: &'a str,
}

/// A decoded PEM block: RFC 1421 headers and the binary body.
pub(super) struct DecodedPem {
    headers: Vec<(String, String)>,
    pub(super) body: Zeroizing<Vec<u8>>,
}

impl DecodedPem {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn is_legacy_encrypted(&self) -> bool {
        self.header("Proc-Type")
            .is_some_and(|v| v.replace(' ', "").eq_ignore_ascii_case("4,ENCRYPTED"))
    }
}

impl PemBlock<'_> {
    pub(super) fn decode(&self) -> Result<DecodedPem, KeyError> {
        PemBlock::decode_inner(self.inner)
            .map_err(|why| KeyError::Malformed(format!("the PEM block \"{}\" {why}", self.label)))
    }

    /// Split RFC 1421 headers (`Name: value` lines before the body) from the
    /// base64 body and decode the body. Errors are phrased to follow
    /// "the PEM block X".
    pub(super) fn decode_inner(inner: &str) -> Result<DecodedPem, String> {
        let mut headers = Vec::new();
        let mut b64 = Zeroizing::new(String::with_capacity(inner.len()));
        for line in inner.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // Headers come before the body; base64 never contains ':'.
            if b64.is_empty()
                && let Some((name, value)) = line.split_once(':')
            {
                headers.push((name.trim().to_string(), value.trim().to_string()));
                continue;
            }
            b64.push_str(line);
        }
        if b64.is_empty() {
            return Err("is empty".into());
        }
        let body = STANDARD
            .decode(b64.as_bytes())
            .map(Zeroizing::new)
            .map_err(|e| format!("is not valid base64 ({e}); is the file truncated?"))?;
        Ok(DecodedPem { headers, body })
    }
}

/// Find the first PEM block of `text`, skipping `EC PARAMETERS` blocks that
/// `openssl ecparam -genkey` writes before the key. A BEGIN line without its
/// END line (a truncated file) still yields the block, with everything after
/// BEGIN as its inner text, so the label can be reported; decoding it then
/// fails or yields a truncated body that the DER parsers reject.
pub(super) fn first_pem_block(text: &str) -> Option<PemBlock<'_>> {
    const BEGIN: &str = "-----BEGIN ";
    let mut rest = text;
    loop {
        let start = rest.find(BEGIN)?;
        let after = &rest[start + BEGIN.len()..];
        let label_end = after.find("-----")?;
        let label = &after[..label_end];
        if label.contains('\n') {
            rest = after;
            continue;
        }
        let body = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let (inner, next) = match body.find(&end_marker) {
            Some(end) => (&body[..end], &body[end + end_marker.len()..]),
            None => (body, ""),
        };
        if label == "EC PARAMETERS" {
            rest = next;
            continue;
        }
        return Some(PemBlock { label, inner });
    }
}

/// The key in a decoded PEM block, decrypting legacy PEM encryption first.
pub(super) fn private_from_pem_body(
    pem: &DecodedPem,
    password: Option<&[u8]>,
) -> Result<PKey<Private>, KeyError> {
    if !pem.is_legacy_encrypted() {
        return private_from_der(&pem.body, password);
    }
    let der = decrypt_legacy_pem(pem, password)?;
    // A wrong password passes the CBC padding check about once in 256
    // tries; the DER then fails to parse, which is still a wrong password,
    // not a malformed file.
    private_from_der(&der, None).map_err(|_| KeyError::WrongPassword)
}

/// Decrypt an OpenSSL "traditional" encrypted PEM body (`Proc-Type:
/// 4,ENCRYPTED`, `DEK-Info: CIPHER,IVHEX`): key = EVP_BytesToKey(MD5,
/// password, salt = first 8 IV bytes, 1 round), as OpenSSL and Go do.
fn decrypt_legacy_pem(
    pem: &DecodedPem,
    password: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let dek = pem
        .header("DEK-Info")
        .ok_or_else(|| KeyError::Malformed("encrypted PEM without a DEK-Info header".into()))?;
    let (name, iv_hex) = dek.split_once(',').ok_or_else(|| {
        KeyError::Malformed(format!("DEK-Info header \"{dek}\" is not \"CIPHER,IV\""))
    })?;
    let name = name.trim().to_ascii_uppercase();
    let cipher = match name.as_str() {
        "AES-128-CBC" => Cipher::aes_128_cbc(),
        "AES-192-CBC" => Cipher::aes_192_cbc(),
        "AES-256-CBC" => Cipher::aes_256_cbc(),
        "DES-EDE3-CBC" => Cipher::des_ede3_cbc(),
        "DES-CBC" => Cipher::des_cbc(),
        _ => {
            return Err(KeyError::UnsupportedAlgorithm(format!(
                "private key encrypted with {name} (legacy PEM encryption supports AES-*-CBC and DES)"
            )));
        }
    };
    let iv = hex::decode(iv_hex.trim())
        .map_err(|_| KeyError::Malformed(format!("DEK-Info IV \"{iv_hex}\" is not hex")))?;
    // Checked here because OpenSSL's Rust bindings panic on a short IV.
    if Some(iv.len()) != cipher.iv_len() || iv.len() < 8 {
        return Err(KeyError::Malformed(format!(
            "DEK-Info IV has {} bytes; {name} needs {}",
            iv.len(),
            cipher.iv_len().unwrap_or(0)
        )));
    }
    let password = password.ok_or(KeyError::PasswordRequired)?;
    let key_iv =
        openssl::pkcs5::bytes_to_key(cipher, MessageDigest::md5(), password, Some(&iv[..8]), 1)
            .map_err(|e| {
                KeyError::Malformed(format!("cannot derive the PEM decryption key: {e}"))
            })?;
    let key = Zeroizing::new(key_iv.key);
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, &key, Some(&iv)).map_err(|e| {
        KeyError::UnsupportedAlgorithm(format!(
            "private key encrypted with {name}, which this OpenSSL cannot decrypt ({e})"
        ))
    })?;
    let mut out = Zeroizing::new(vec![0u8; pem.body.len() + cipher.block_size()]);
    let n = crypter
        .update(&pem.body, &mut out)
        .map_err(|_| KeyError::WrongPassword)?;
    let m = crypter
        .finalize(&mut out[n..])
        .map_err(|_| KeyError::WrongPassword)?;
    out.truncate(n + m);
    Ok(out)
}
