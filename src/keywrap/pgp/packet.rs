//! OpenPGP packet framing (RFC 4880 §4.2, RFC 9580 §4.2): splitting a byte string into packets
//! and writing packet headers.
//!
//! Reading joins partial-body chunks of any size. Go ocicrypt ≤ 1.3.1 (golang.org/x/crypto
//! openpgp) writes data packets whose first partial chunk is 128 bytes, below the 512 bytes the
//! RFCs require, and strict parsers (sequoia among them) refuse such messages; joining the
//! chunks here and handing out whole packet bodies (re-framed with a definite length where
//! another parser needs them) is what lets layercrypt read what skopeo wrote.
//!
//! Writing always uses new-format headers with definite lengths, which every implementation
//! reads.
//!
//! Nothing here may panic on any input: every length is checked against what is left.

use zeroize::Zeroizing;

/// Packet tags this scheme meets.
pub mod tag {
    /// Public-Key Encrypted Session Key.
    pub const PKESK: u8 = 1;
    /// Symmetric-Key Encrypted Session Key.
    pub const SKESK: u8 = 3;
    /// One-Pass Signature.
    pub const ONE_PASS_SIG: u8 = 4;
    /// Compressed Data.
    pub const COMPRESSED: u8 = 8;
    /// Symmetrically Encrypted Data, without integrity protection.
    pub const SED: u8 = 9;
    /// Marker (ignored by readers).
    pub const MARKER: u8 = 10;
    /// Literal Data.
    pub const LITERAL: u8 = 11;
    /// Symmetrically Encrypted and Integrity Protected Data.
    pub const SEIPD: u8 = 18;
    /// Modification Detection Code. Kept for a complete table: the MDC is read inside the
    /// decrypted SEIPD stream, never as a framed packet.
    #[allow(dead_code)]
    pub const MDC: u8 = 19;
    /// AEAD Encrypted Data (the LibrePGP v5 draft packet).
    pub const AEAD: u8 = 20;
    /// Padding.
    pub const PADDING: u8 = 21;
}

/// One packet: its tag and its whole body (partial chunks joined).
pub struct RawPacket {
    /// The packet tag.
    pub tag: u8,
    /// The body. Zeroized on drop: inside an encrypted container bodies are plaintext.
    pub body: Zeroizing<Vec<u8>>,
    /// Whether the body came in partial-length chunks.
    pub partial: bool,
    /// Where the whole packet (header and body) lies in the input.
    pub span: std::ops::Range<usize>,
}

impl std::fmt::Debug for RawPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPacket")
            .field("tag", &self.tag)
            .field("len", &self.body.len())
            .field("partial", &self.partial)
            .finish()
    }
}

/// Why a byte string is not a sequence of packets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The input ended inside a packet.
    #[error("truncated: packet {index} (tag {tag}) needs {needed} more bytes than are left")]
    Truncated {
        /// Which packet (0-based).
        index: usize,
        /// Its tag.
        tag: u8,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A header byte without the high bit set.
    #[error("byte {offset} is not a packet header (0x{byte:02x})")]
    NotAHeader {
        /// Where.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// Partial lengths on a packet that may not have them.
    #[error("packet {index} (tag {tag}) uses partial body lengths, which only data packets may")]
    PartialNotAllowed {
        /// Which packet (0-based).
        index: usize,
        /// Its tag.
        tag: u8,
    },
    /// An old-format packet of indeterminate length that is not last, or not a data packet.
    #[error(
        "packet {index} (tag {tag}) has an indeterminate length, which only a final data packet may"
    )]
    Indeterminate {
        /// Which packet (0-based).
        index: usize,
        /// Its tag.
        tag: u8,
    },
    /// More packets than any real message has.
    #[error("more than {0} packets")]
    TooMany(usize),
}

/// Whether packets with this tag may use partial body lengths (RFC 9580 §4.2.1.4).
fn is_data_packet(tag: u8) -> bool {
    matches!(
        tag,
        tag::COMPRESSED | tag::SED | tag::LITERAL | tag::SEIPD | tag::AEAD
    )
}

/// Split `data` into packets, joining partial-body chunks. At most `max_packets` packets are
/// read (a bound on hostile input).
pub fn parse(data: &[u8], max_packets: usize) -> Result<Vec<RawPacket>, FramingError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        if out.len() == max_packets {
            return Err(FramingError::TooMany(max_packets));
        }
        let index = out.len();
        let start = pos;
        let ctb = data[pos];
        if ctb & 0x80 == 0 {
            return Err(FramingError::NotAHeader {
                offset: pos,
                byte: ctb,
            });
        }
        pos += 1;
        let truncated = |tag, needed| FramingError::Truncated { index, tag, needed };
        let mut body = Zeroizing::new(Vec::new());
        let mut partial = false;
        let tag;
        if ctb & 0x40 != 0 {
            tag = ctb & 0x3f;
            loop {
                let (len, is_partial, used) =
                    new_format_length(&data[pos..]).ok_or_else(|| truncated(tag, 1))?;
                pos += used;
                if is_partial && !is_data_packet(tag) {
                    return Err(FramingError::PartialNotAllowed { index, tag });
                }
                let left = data.len() - pos;
                if len > left {
                    return Err(truncated(tag, len - left));
                }
                body.extend_from_slice(&data[pos..pos + len]);
                pos += len;
                if !is_partial {
                    break;
                }
                partial = true;
            }
        } else {
            tag = (ctb >> 2) & 0x0f;
            let len = match ctb & 0x03 {
                3 => {
                    // Indeterminate: the rest of the input (old format, data packets only).
                    if !is_data_packet(tag) {
                        return Err(FramingError::Indeterminate { index, tag });
                    }
                    data.len() - pos
                }
                kind => {
                    let n = 1usize << kind; // 1, 2 or 4 length bytes
                    let bytes = data
                        .get(pos..pos + n)
                        .ok_or_else(|| truncated(tag, pos + n - data.len()))?;
                    pos += n;
                    bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize)
                }
            };
            let left = data.len() - pos;
            if len > left {
                return Err(truncated(tag, len - left));
            }
            body.extend_from_slice(&data[pos..pos + len]);
            pos += len;
        }
        out.push(RawPacket {
            tag,
            body,
            partial,
            span: start..pos,
        });
    }
    Ok(out)
}

/// A new-format length at the start of `data`: (length, is it a partial chunk, bytes used).
fn new_format_length(data: &[u8]) -> Option<(usize, bool, usize)> {
    let first = *data.first()? as usize;
    match first {
        0..=191 => Some((first, false, 1)),
        192..=223 => {
            let second = *data.get(1)? as usize;
            Some((((first - 192) << 8) + second + 192, false, 2))
        }
        224..=254 => Some((1usize << (first & 0x1f), true, 1)),
        _ => {
            let b = data.get(1..5)?;
            let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            Some((len, false, 5))
        }
    }
}

/// Append a new-format header for a packet of `tag` with a definite body length `len`.
pub fn write_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(0xc0 | (tag & 0x3f));
    if len < 192 {
        out.push(len as u8);
    } else if len < 8384 {
        let l = len - 192;
        out.push(((l >> 8) as u8) + 192);
        out.push(l as u8);
    } else {
        out.push(0xff);
        // Bodies here are bounded far below 4 GiB (options JSON ≤ 64 KiB).
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// A whole packet with a definite length: header and body (tests build messages with it).
#[cfg(test)]
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 6);
    write_header(&mut out, tag, body.len());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
/// Write `body` as Go ocicrypt ≤ 1.3.1 did: partial chunks of `chunk` bytes (a power of
/// two), then the rest with a definite length.
pub(crate) fn partial_frame(tag: u8, body: &[u8], chunk: usize) -> Vec<u8> {
    assert!(chunk.is_power_of_two() && chunk <= 1 << 30);
    let mut out = vec![0xc0 | tag];
    let mut rest = body;
    while rest.len() > chunk {
        out.push(224 + chunk.trailing_zeros() as u8);
        out.extend_from_slice(&rest[..chunk]);
        rest = &rest[chunk..];
    }
    let mut last = Vec::new();
    write_header(&mut last, tag, rest.len());
    out.extend_from_slice(&last[1..]);
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;

    #[test]
    fn lengths_round_trip_at_every_boundary() {
        for len in [0, 1, 191, 192, 193, 8383, 8384, 70_000] {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let framed = frame(tag::LITERAL, &body);
            let packets = parse(&framed, 10).unwrap();
            assert_eq!(packets.len(), 1);
            assert_eq!(packets[0].tag, tag::LITERAL);
            assert_eq!(&packets[0].body[..], &body[..], "len {len}");
            assert!(!packets[0].partial);
        }
        assert_eq!(frame(tag::PKESK, &[0; 191])[..2], [0xc1, 191]);
        assert_eq!(frame(tag::PKESK, &[0; 192])[..3], [0xc1, 192, 0]);
        assert_eq!(
            frame(tag::SEIPD, &[0; 8384])[..6],
            [0xd2, 0xff, 0, 0, 0x20, 0xc0]
        );
    }

    #[test]
    fn short_partial_chunks_are_joined() {
        // 128-byte first chunk: what Go ocicrypt ≤ 1.3.1 writes and RFC 4880 forbids.
        let body: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let mut data = frame(tag::PKESK, b"pkesk");
        data.extend(partial_frame(tag::SEIPD, &body, 128));
        let packets = parse(&data, 10).unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!(&packets[0].body[..], b"pkesk");
        assert_eq!(packets[1].tag, tag::SEIPD);
        assert!(packets[1].partial);
        assert_eq!(&packets[1].body[..], &body[..]);
        // A last chunk of length zero is fine too.
        let exact = partial_frame(tag::LITERAL, &body[..256], 128);
        assert_eq!(&parse(&exact, 10).unwrap()[0].body[..], &body[..256]);
    }

    #[test]
    fn old_format_headers_are_read() {
        // Tag 1 with a one-byte length, tag 18 with a two-byte length, tag 11 indeterminate.
        let mut data = vec![0x84, 2, 0xaa, 0xbb];
        data.extend([0x89, 0, 3, 1, 2, 3]);
        data.extend([0xaf, 9, 9, 9]);
        let packets = parse(&data, 10).unwrap();
        assert_eq!(
            packets.iter().map(|p| p.tag).collect::<Vec<_>>(),
            vec![1, 2, 11]
        );
        assert_eq!(&packets[2].body[..], &[9, 9, 9]);
    }

    #[test]
    fn hostile_framing_is_refused() {
        assert!(matches!(
            parse(&[0x41], 10),
            Err(FramingError::NotAHeader { .. })
        ));
        assert!(matches!(
            parse(&[0xc1, 10, 1, 2], 10),
            Err(FramingError::Truncated { needed: 8, .. })
        ));
        assert!(matches!(
            parse(&[0xc1], 10),
            Err(FramingError::Truncated { .. })
        ));
        assert!(matches!(
            parse(&[0xc1, 0xe1, 0, 0], 10),
            Err(FramingError::PartialNotAllowed { tag: 1, .. })
        ));
        assert!(matches!(
            parse(&[0x87, 1, 2], 10),
            Err(FramingError::Indeterminate { tag: 1, .. })
        ));
        assert!(matches!(
            parse(&[0xcb, 0xff, 0xff, 0xff, 0xff, 0xff], 10),
            Err(FramingError::Truncated { .. })
        ));
        // A partial chunk that claims 1 GiB.
        assert!(matches!(
            parse(&[0xd2, 0xfe, 1], 10),
            Err(FramingError::Truncated { .. })
        ));
        assert!(matches!(
            parse(&[0xca, 0, 0xca, 0, 0xca, 0], 2),
            Err(FramingError::TooMany(2))
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
        for len in 0..400 {
            let data = rng.bytes(len);
            let _ = parse(&data, 50);
        }
    }
}
