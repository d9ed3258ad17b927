//! The crate's one reader of ASN.1 tag-length-value headers, shared by the key-file parsers
//! (`keys`, which read strict DER) and the PKCS#7 envelope reader (`keywrap::pkcs7::ber`,
//! which reads the BER that Go and other CMS writers produce).
//!
//! It reads an element's identifier octet and length ([`read_header`]) and splits a
//! definite-length element from what follows it ([`Header::split`], [`der_element`]). It gives
//! tags no meaning and does not descend into elements: an indefinite length is reported as
//! such, and the BER reader finds its end-of-contents itself, under its own nesting limit.
//! Both callers refuse the same things: multi-byte tag numbers, which neither key files nor
//! PKCS#7 use, and lengths of more than four octets.
//!
//! It must never panic, allocate, or trust a length: every length is checked against the
//! bytes that remain before a slice is taken.

/// Universal identifier octets (class universal, low tag numbers).
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING, primitive.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING, primitive.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// SEQUENCE (constructed, as DER requires).
    pub const SEQUENCE: u8 = 0x30;
    /// SET.
    pub const SET: u8 = 0x31;
    /// The constructed bit of an identifier octet.
    pub const CONSTRUCTED: u8 = 0x20;
}

/// The length an element's header states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// This many content octets follow the header (short or long form, minimal or not).
    Definite(usize),
    /// The content runs to an end-of-contents marker (`00 00`); BER only.
    Indefinite,
}

/// An element's identifier and length octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The identifier octet (class, constructed bit and a tag number below 31).
    pub tag: u8,
    /// The stated length of the content.
    pub length: Length,
    /// How many octets the identifier and length take; the content starts there.
    pub header_len: usize,
}

/// Why an element's header could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// There is no byte at all.
    Empty,
    /// The identifier starts a multi-byte tag number (its low five bits are all set).
    HighTagNumber(u8),
    /// The data ends after the identifier octet.
    EndsInHeader,
    /// The data ends inside the octets of a long-form length.
    EndsInLength,
    /// A length octet that states more than four length octets (4 GiB and above), or the
    /// reserved value `0xff`.
    BadLength(u8),
}

/// Read the header of the element at the start of `data`.
pub fn read_header(data: &[u8]) -> Result<Header, HeaderError> {
    let Some(&identifier) = data.first() else {
        return Err(HeaderError::Empty);
    };
    if identifier & 0x1f == 0x1f {
        return Err(HeaderError::HighTagNumber(identifier));
    }
    let Some(&first) = data.get(1) else {
        return Err(HeaderError::EndsInHeader);
    };
    let (header_len, length) = match first {
        0x00..=0x7f => (2, Length::Definite(usize::from(first))),
        0x80 => (2, Length::Indefinite),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let Some(bytes) = data.get(2..2 + n) else {
                return Err(HeaderError::EndsInLength);
            };
            let value = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (2 + n, Length::Definite(value))
        }
        _ => return Err(HeaderError::BadLength(first)),
    };
    Ok(Header {
        tag: identifier,
        length,
        header_len,
    })
}

impl Header {
    /// Split `data`, the bytes this header was read from, into the element's content and what
    /// follows the element. `None` for an indefinite length, or when the stated length runs
    /// past the end of `data`.
    pub fn split<'a>(&self, data: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
        let Length::Definite(len) = self.length else {
            return None;
        };
        let rest = data.get(self.header_len..)?;
        if rest.len() < len {
            return None;
        }
        Some(rest.split_at(len))
    }
}

/// Read one definite-length element, as DER requires: (tag, content, rest). `None` on
/// truncation and on encodings DER key files never use (multi-byte tag numbers, indefinite
/// lengths, lengths of more than four octets).
pub fn der_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let header = read_header(data).ok()?;
    let (content, rest) = header.split(data)?;
    Some((header.tag, content, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_long_and_indefinite_lengths() {
        let short = read_header(&[0x30, 0x03, 0x02, 0x01, 0x05]).unwrap();
        assert_eq!(
            short,
            Header {
                tag: 0x30,
                length: Length::Definite(3),
                header_len: 2
            }
        );
        // Long form, not minimal: BER allows it, and so does this reader.
        let long = read_header(&[0x04, 0x82, 0x00, 0x01, 0xaa]).unwrap();
        assert_eq!(long.length, Length::Definite(1));
        assert_eq!(long.header_len, 4);
        let indefinite = read_header(&[0x30, 0x80, 0x00, 0x00]).unwrap();
        assert_eq!(indefinite.length, Length::Indefinite);
        assert_eq!(indefinite.split(&[0x30, 0x80, 0x00, 0x00]), None);
        let four = read_header(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(four.length, Length::Definite(0xffff_ffff));
    }

    #[test]
    fn odd_headers_are_errors() {
        for (data, why) in [
            (&[][..], HeaderError::Empty),
            (&[0x1f, 0x01, 0x00][..], HeaderError::HighTagNumber(0x1f)),
            (&[0x30][..], HeaderError::EndsInHeader),
            (&[0x30, 0x82, 0x01][..], HeaderError::EndsInLength),
            (
                &[0x30, 0x85, 1, 1, 1, 1, 1][..],
                HeaderError::BadLength(0x85),
            ),
            (&[0x30, 0xff][..], HeaderError::BadLength(0xff)),
        ] {
            assert_eq!(read_header(data), Err(why), "{data:02x?}");
        }
    }

    #[test]
    fn der_elements_are_definite_and_within_the_data() {
        let data = [0x30, 0x03, 0x02, 0x01, 0x05, 0x04, 0x00];
        let (tag, content, rest) = der_element(&data).unwrap();
        assert_eq!((tag, content, rest), (0x30, &data[2..5], &data[5..]));
        assert_eq!(der_element(rest), Some((0x04, &[][..], &[][..])));
        for bad in [
            &[][..],
            &[0x30, 0x04, 0x02, 0x01, 0x05][..],
            &[0x30, 0x80, 0x00, 0x00][..],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x3f, 0x00][..],
        ] {
            assert_eq!(der_element(bad), None, "{bad:02x?}");
        }
    }
}
