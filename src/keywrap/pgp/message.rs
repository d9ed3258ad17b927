//! The OpenPGP message ocicrypt exchanges: PKESKs, then one SEIPD v1 packet (with MDC) around
//! one literal data packet holding the private-options JSON.
//!
//! Writing ([`encrypt`]) produces exactly what Go ocicrypt writes: one v3 PKESK per recipient
//! key, then SEIPD v1 (AES-128 or AES-256 in OpenPGP CFB mode, with MDC), containing a literal
//! packet (format `u`, empty file name, date 0) and no compression, signature or padding;
//! binary, not armored.
//!
//! Reading ([`Message::parse`], [`decrypt_payload`]) frames the packets itself (joining the
//! undersized partial chunks Go ≤ 1.3.1 writes, see [`super::packet`]), lets sequoia decrypt a
//! PKESK, then decrypts the SEIPD itself and checks its MDC in constant time.
//!
//! This module must never return plaintext whose MDC did not verify, nor panic on any input.

use openssl::symm::{Cipher, Crypter, Mode};
use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::crypto::SessionKey;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::{Key, PKESK};
use openpgp::parse::Parse;
use openpgp::serialize::Marshal;
use openpgp::types::SymmetricAlgorithm;

use super::packet::{self, RawPacket, tag};

/// Largest private-options JSON wrapped or unwrapped (real ones are about 200 bytes).
pub const MAX_OPTIONS: usize = 64 * 1024;
/// Most recipients (PKESKs) in one message.
pub const MAX_RECIPIENTS: usize = 1000;
/// Packets besides the PKESKs that a message may carry (SEIPD, markers, padding, SKESKs).
const MAX_OTHER_PACKETS: usize = 16;

/// The MDC packet header inside a SEIPD v1 plaintext: new-format tag 19, length 20.
const MDC_HEADER: [u8; 2] = [0xd3, 0x14];
/// The block size of AES, the only cipher family ocicrypt uses; the SEIPD v1 prefix is one
/// block plus two bytes. (OpenSSL reports 1 for CFB, a stream mode, so it is not asked.)
const AES_BLOCK: usize = 16;
/// SHA-1 output length (the MDC).
const MDC_LEN: usize = 20;

/// One PKESK of a message.
pub struct Pkesk {
    /// Packet version (3 in everything ocicrypt writes).
    pub version: u8,
    /// The recipient key id (`0` is the wildcard "try every key").
    pub key_id: u64,
    /// The public-key algorithm id.
    pub algorithm: u8,
    /// The curve of an ECDH recipient, as far as the ephemeral point tells.
    pub curve: Option<&'static str>,
    /// The packet as sequoia parsed it (`None` for versions this scheme does not decrypt).
    parsed: Option<PKESK>,
}

impl std::fmt::Debug for Pkesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkesk")
            .field("version", &self.version)
            .field("key_id", &format_args!("{}", go_key_id(self.key_id)))
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl Pkesk {
    /// Whether the PKESK names no key (a "wildcard" or anonymous recipient).
    pub fn is_wildcard(&self) -> bool {
        self.key_id == 0
    }

    /// The algorithm's name, as `inspect` shows it.
    pub fn algorithm_name(&self) -> String {
        algorithm_name(self.algorithm)
    }

    /// The packet as sequoia sees it, for decryption.
    pub fn packet(&self) -> Option<&PKESK> {
        self.parsed.as_ref()
    }
}

/// A key id as Go ocicrypt prints it: `0x%x`, lowercase, no zero padding.
pub fn go_key_id(id: u64) -> String {
    format!("0x{id:x}")
}

/// Name of an OpenPGP public-key algorithm id.
pub fn algorithm_name(id: u8) -> String {
    match id {
        1..=3 => "RSA".into(),
        16 | 20 => "ElGamal".into(),
        18 => "ECDH".into(),
        25 => "X25519".into(),
        26 => "X448".into(),
        other => format!("algorithm {other}"),
    }
}

/// A parsed message: its PKESKs and the body of its SEIPD v1 packet.
pub struct Message {
    /// The recipients, in order.
    pub pkesks: Vec<Pkesk>,
    /// The SEIPD body after its version byte (the CFB ciphertext), if there is a usable one.
    payload: Result<Vec<u8>, String>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("pkesks", &self.pkesks)
            .field("payload", &self.payload.as_ref().map(Vec::len))
            .finish()
    }
}

impl Message {
    /// Parse a wrapped blob. Framing errors and malformed PKESKs are errors; a payload this
    /// scheme cannot decrypt (no MDC, AEAD, trailing packets) is recorded and reported by
    /// [`Message::payload`], so the recipients can still be listed, as Go lists them.
    pub fn parse(blob: &[u8]) -> Result<Message, String> {
        let packets = packet::parse(blob, MAX_RECIPIENTS + MAX_OTHER_PACKETS)
            .map_err(|e| format!("not an OpenPGP message: {e}"))?;
        let mut pkesks = Vec::new();
        let mut payload = None;
        for (index, p) in packets.iter().enumerate() {
            match p.tag {
                tag::PKESK if payload.is_none() => {
                    if pkesks.len() == MAX_RECIPIENTS {
                        return Err(format!("more than {MAX_RECIPIENTS} recipients"));
                    }
                    pkesks.push(parse_pkesk(p).map_err(|e| format!("recipient {index}: {e}"))?);
                }
                tag::SKESK | tag::MARKER | tag::PADDING if payload.is_none() => {}
                tag::SEIPD | tag::SED | tag::AEAD if payload.is_none() => {
                    payload = Some(seipd_payload(p));
                }
                tag::PADDING => {}
                other if payload.is_some() => {
                    payload = Some(Err(format!(
                        "packet {index} (tag {other}) follows the encrypted data; a message holds one"
                    )));
                }
                other => {
                    return Err(format!(
                        "packet {index} has tag {other}, which does not belong before the encrypted data"
                    ));
                }
            }
        }
        let payload =
            payload.unwrap_or_else(|| Err("the message has no encrypted data packet".into()));
        Ok(Message { pkesks, payload })
    }

    /// The SEIPD v1 ciphertext, or why it cannot be decrypted.
    pub fn payload(&self) -> Result<&[u8], String> {
        self.payload.as_deref().map_err(Clone::clone)
    }
}

/// The ciphertext of a SEIPD v1 packet, or why this packet is not one ocicrypt reads.
fn seipd_payload(p: &RawPacket) -> Result<Vec<u8>, String> {
    match (p.tag, p.body.first()) {
        (tag::SED, _) => Err(
            "the data is not integrity protected (a Symmetrically Encrypted Data packet without MDC); refused".into(),
        ),
        (tag::AEAD, _) => Err(
            "AEAD Encrypted Data (tag 20) is not written by ocicrypt and not supported".into(),
        ),
        (_, Some(1)) => Ok(p.body[1..].to_vec()),
        (_, Some(2)) => Err(
            "SEIPD version 2 (RFC 9580 AEAD) is not written by ocicrypt and not supported".into(),
        ),
        (_, Some(v)) => Err(format!("unknown SEIPD version {v}")),
        (_, None) => Err("empty SEIPD packet".into()),
    }
}

/// A PKESK's key id (`None` when it names no key: a wildcard, or a version other than 3) and
/// where the whole packet lies in its message.
pub type PkeskSpan = (Option<u64>, std::ops::Range<usize>);

/// The PKESKs of a message, in order, with where each lies in it.
pub fn pkesk_spans(blob: &[u8]) -> Result<Vec<PkeskSpan>, String> {
    let packets = packet::parse(blob, MAX_RECIPIENTS + MAX_OTHER_PACKETS)
        .map_err(|e| format!("not an OpenPGP message: {e}"))?;
    let mut out = Vec::new();
    for p in &packets {
        match p.tag {
            tag::PKESK => {
                let named = match (p.body.first(), p.body.get(1..9)) {
                    (Some(3), Some(id)) => {
                        Some(u64::from_be_bytes(id.try_into().expect("8 bytes")))
                            .filter(|&id| id != 0)
                    }
                    (Some(_), _) => None,
                    (None, _) => return Err("empty PKESK packet".into()),
                };
                out.push((named, p.span.clone()));
            }
            tag::SEIPD | tag::SED | tag::AEAD => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Read a PKESK's key id and algorithm; have sequoia parse the v3 ones for decryption.
fn parse_pkesk(p: &RawPacket) -> Result<Pkesk, String> {
    let body = &p.body[..];
    let version = *body.first().ok_or("empty PKESK packet")?;
    if version != 3 {
        // Version 6 (RFC 9580) names a fingerprint, not a key id; ocicrypt never writes it.
        return Ok(Pkesk {
            version,
            key_id: 0,
            algorithm: 0,
            curve: None,
            parsed: None,
        });
    }
    if body.len() < 11 {
        return Err(format!(
            "a version 3 PKESK needs at least 11 bytes, this one has {}",
            body.len()
        ));
    }
    let key_id = u64::from_be_bytes(body[1..9].try_into().expect("8 bytes"));
    let algorithm = body[9];
    let curve = (algorithm == 18).then(|| ecdh_curve(&body[10..])).flatten();
    // sequoia parses a packet body without its header ("naked"), and insists on exact MPI
    // bit counts, which golang.org/x/crypto does not write (it gives the byte length × 8).
    let canonical = canonical_mpis(body, algorithm).ok_or("truncated encrypted session key")?;
    let parsed =
        PKESK::from_bytes(&canonical[..]).map_err(|e| format!("malformed version 3 PKESK: {e}"))?;
    Ok(Pkesk {
        version,
        key_id,
        algorithm,
        curve,
        parsed: Some(parsed),
    })
}

/// A v3 PKESK body with its MPIs rewritten with exact bit counts and no leading zero bytes
/// (RFC 9580 §3.2). golang.org/x/crypto/openpgp (skopeo 1.9) writes an RSA ciphertext as
/// 8 × its byte length bits, whatever its top byte is; gpg tolerates that, sequoia does not.
/// `None` if an MPI runs past the end.
fn canonical_mpis(body: &[u8], algorithm: u8) -> Option<Vec<u8>> {
    let mpis = match algorithm {
        1..=3 | 18 => 1, // RSA: m^e; ECDH: the ephemeral point (then the wrapped key, as is)
        16 | 20 => 2,    // ElGamal: g^k, m·y^k
        _ => 0,          // X25519/X448 and unknown algorithms have no MPIs to fix
    };
    let mut out = body.get(..10)?.to_vec();
    let mut rest = &body[10..];
    for _ in 0..mpis {
        let bits = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
        let len = bits.div_ceil(8);
        let value = rest.get(2..2 + len)?;
        let value = &value[value.iter().take_while(|&&b| b == 0).count()..];
        let exact = match value.first() {
            Some(&top) => (value.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
            None => 0,
        };
        out.extend_from_slice(&(exact as u16).to_be_bytes());
        out.extend_from_slice(value);
        rest = &rest[2 + len..];
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The curve of an ECDH PKESK, from the size and prefix of its ephemeral point (an MPI).
fn ecdh_curve(esk: &[u8]) -> Option<&'static str> {
    let bits = u16::from_be_bytes([*esk.first()?, *esk.get(1)?]) as usize;
    let first = *esk.get(2)?;
    match (first, bits.div_ceil(8)) {
        (0x40, 33) => Some("Curve25519"),
        (0x04, 65) => Some("P-256"),
        (0x04, 97) => Some("P-384"),
        (0x04, 133) => Some("P-521"),
        _ => None,
    }
}

/// Why a SEIPD payload did not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The session key does not fit the data (the CFB quick check failed).
    #[error("the session key does not decrypt the data")]
    WrongKey,
    /// The MDC does not match: the data was changed.
    #[error(
        "the encrypted options fail their integrity check (MDC): the entry is corrupt or was tampered with"
    )]
    Integrity,
    /// A cipher ocicrypt never uses.
    #[error(
        "the data is encrypted with {0}, which this scheme does not support (ocicrypt uses AES)"
    )]
    UnsupportedCipher(String),
    /// The plaintext is not one literal data packet.
    #[error("the decrypted message is not what ocicrypt writes: {0}")]
    Malformed(String),
}

/// The OpenSSL CFB cipher for an OpenPGP symmetric algorithm (AES only: ocicrypt never uses
/// anything else).
fn cfb_cipher(algo: SymmetricAlgorithm) -> Result<Cipher, PayloadError> {
    match algo {
        SymmetricAlgorithm::AES128 => Ok(Cipher::aes_128_cfb128()),
        SymmetricAlgorithm::AES192 => Ok(Cipher::aes_192_cfb128()),
        SymmetricAlgorithm::AES256 => Ok(Cipher::aes_256_cfb128()),
        other => Err(PayloadError::UnsupportedCipher(other.to_string())),
    }
}

/// Run CFB over `input` with a zero IV (SEIPD v1 uses plain CFB over prefix and data).
fn cfb(
    cipher: Cipher,
    mode: Mode,
    key: &[u8],
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, openssl::error::ErrorStack> {
    let iv = [0u8; 16];
    let mut crypter = Crypter::new(cipher, mode, key, Some(&iv))?;
    let mut out = Zeroizing::new(vec![0u8; input.len() + cipher.block_size()]);
    let mut n = crypter.update(input, &mut out)?;
    n += crypter.finalize(&mut out[n..])?;
    out.truncate(n);
    Ok(out)
}

/// Decrypt a SEIPD v1 ciphertext with a session key, check the MDC, and return the literal
/// data (the options JSON). Plaintext leaves this function only after the MDC matched.
pub fn decrypt_payload(
    ciphertext: &[u8],
    algo: SymmetricAlgorithm,
    session_key: &SessionKey,
) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    literal_body(&decrypt_inner(ciphertext, algo, session_key)?)
}

/// Decrypt a SEIPD v1 ciphertext and check its MDC; returns the packets inside.
pub(crate) fn decrypt_inner(
    ciphertext: &[u8],
    algo: SymmetricAlgorithm,
    session_key: &SessionKey,
) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    let cipher = cfb_cipher(algo)?;
    if session_key.len() != cipher.key_len() {
        return Err(PayloadError::WrongKey);
    }
    let bs = AES_BLOCK;
    // Prefix (block size + 2), at least an empty packet header, the MDC packet.
    if ciphertext.len() < bs + 2 + MDC_HEADER.len() + MDC_LEN {
        return Err(PayloadError::Malformed(format!(
            "the encrypted data is {} bytes, too short to hold anything",
            ciphertext.len()
        )));
    }
    let plain = match cfb(cipher, Mode::Decrypt, session_key, ciphertext) {
        Ok(plain) if plain.len() == ciphertext.len() => plain,
        _ => return Err(PayloadError::WrongKey),
    };
    // The quick check: the last two prefix bytes are repeated. It only tells a wrong session
    // key early; the MDC below is what authenticates.
    if plain[bs - 2..bs] != plain[bs..bs + 2] {
        return Err(PayloadError::WrongKey);
    }
    let (hashed, mdc) = plain.split_at(plain.len() - MDC_LEN);
    let expected = openssl::sha::sha1(hashed);
    let header_ok = hashed[hashed.len() - 2..] == MDC_HEADER;
    if !(openssl::memcmp::eq(&expected, mdc) && header_ok) {
        return Err(PayloadError::Integrity);
    }
    // Authenticated from here on.
    Ok(Zeroizing::new(hashed[bs + 2..hashed.len() - 2].to_vec()))
}

/// The data of the single literal packet that the decrypted SEIPD holds.
fn literal_body(inner: &[u8]) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    let bad = |s: String| PayloadError::Malformed(s);
    let packets = packet::parse(inner, 4).map_err(|e| bad(e.to_string()))?;
    let mut packets = packets.into_iter().filter(|p| p.tag != tag::PADDING);
    let literal = match (packets.next(), packets.next()) {
        (Some(p), None) if p.tag == tag::LITERAL => p,
        (Some(p), None) if p.tag == tag::COMPRESSED => {
            return Err(bad(
                "it is compressed, which ocicrypt never does; refused".into()
            ));
        }
        (Some(p), _) if p.tag == tag::ONE_PASS_SIG => {
            return Err(bad(
                "it is signed, which ocicrypt never does; refused".into()
            ));
        }
        (Some(p), None) => return Err(bad(format!("it holds a packet with tag {}", p.tag))),
        (Some(_), Some(_)) => return Err(bad("it holds more than one packet".into())),
        (None, _) => return Err(bad("it is empty".into())),
    };
    let body = &literal.body[..];
    // format (1), file name length (1), file name, date (4), data.
    let name_len = *body
        .get(1)
        .ok_or_else(|| bad("truncated literal packet".into()))? as usize;
    let start = 2 + name_len + 4;
    if body.len() < start {
        return Err(bad("truncated literal packet".into()));
    }
    let data = &body[start..];
    if data.len() > MAX_OPTIONS {
        return Err(bad(format!(
            "the options are {} bytes; at most {MAX_OPTIONS} are accepted",
            data.len()
        )));
    }
    Ok(Zeroizing::new(data.to_vec()))
}

/// The symmetric algorithm of a new message: AES-256 if every recipient prefers it, else
/// AES-128, as Go ocicrypt chooses.
pub fn choose_cipher(all_prefer_aes256: bool) -> SymmetricAlgorithm {
    if all_prefer_aes256 {
        SymmetricAlgorithm::AES256
    } else {
        SymmetricAlgorithm::AES128
    }
}

/// Encrypt `options` for `recipients` (one encryption key each) with `algo`, as Go ocicrypt
/// writes it.
pub fn encrypt(
    recipients: &[&Key<PublicParts, UnspecifiedRole>],
    algo: SymmetricAlgorithm,
    options: &[u8],
) -> Result<Vec<u8>, String> {
    if recipients.is_empty() {
        return Err("no OpenPGP recipients".into());
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(format!(
            "{} recipients; at most {MAX_RECIPIENTS} are supported",
            recipients.len()
        ));
    }
    if options.len() > MAX_OPTIONS {
        return Err(format!(
            "the options are {} bytes; at most {MAX_OPTIONS} are supported",
            options.len()
        ));
    }
    let cipher = cfb_cipher(algo).map_err(|e| e.to_string())?;
    let session_key = SessionKey::new(cipher.key_len()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for key in recipients {
        let pkesk = openpgp::packet::pkesk::PKESK3::for_recipient(algo, &session_key, *key)
            .map_err(|e| format!("cannot encrypt to key {}: {e}", key.keyid()))?;
        openpgp::Packet::from(pkesk)
            .serialize(&mut out)
            .map_err(|e| format!("cannot write the PKESK for {}: {e}", key.keyid()))?;
    }
    let literal = literal_packet(options);
    let body = seipd_body(algo, &session_key, &literal)?;
    packet::write_header(&mut out, tag::SEIPD, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A literal data packet as Go writes it: format `u`, no file name, date 0.
pub(crate) fn literal_packet(data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() + 12));
    packet::write_header(&mut out, tag::LITERAL, 6 + data.len());
    out.extend_from_slice(&[b'u', 0, 0, 0, 0, 0]);
    out.extend_from_slice(data);
    out
}

/// The body of a SEIPD v1 packet (version byte and ciphertext) around `inner` packets.
pub(crate) fn seipd_body(
    algo: SymmetricAlgorithm,
    session_key: &SessionKey,
    inner: &[u8],
) -> Result<Vec<u8>, String> {
    let cipher = cfb_cipher(algo).map_err(|e| e.to_string())?;
    // Plaintext: a random block, its last two bytes again, the packets, the MDC packet
    // header, and SHA-1 over all of that.
    let bs = AES_BLOCK;
    let mut plain = Zeroizing::new(vec![0u8; bs]);
    getrandom::fill(&mut plain[..]).map_err(|e| format!("no randomness: {e}"))?;
    plain.extend_from_within(bs - 2..bs);
    plain.extend_from_slice(inner);
    plain.extend_from_slice(&MDC_HEADER);
    let mdc = openssl::sha::sha1(&plain);
    plain.extend_from_slice(&mdc);
    let ciphertext = cfb(cipher, Mode::Encrypt, session_key, &plain)
        .map_err(|e| format!("the symmetric encryption failed: {e}"))?;
    if ciphertext.len() != plain.len() {
        return Err("the symmetric encryption failed".into());
    }
    let mut body = Vec::with_capacity(1 + ciphertext.len());
    body.push(1);
    body.extend_from_slice(&ciphertext);
    Ok(body)
}
