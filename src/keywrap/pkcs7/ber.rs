//! A small, bounded reader for the BER that PKCS#7 envelopes arrive in.
//!
//! The `der` crate reads strict DER, but the envelopes this scheme must accept are not all
//! DER: Go writes the GCM parameters under identifier octet `0x10` (a "primitive SEQUENCE",
//! which `der` cannot represent), skopeo 1.9 writes the content as a constructed `[0]` around
//! an OCTET STRING, and other CMS writers use constructed, segmented or indefinite-length
//! OCTET STRINGs. This reader walks such input one TLV at a time, leaving the meaning of each
//! element to the caller.
//!
//! Each element's header is read by the crate's one TLV reader, [`crate::asn1`], which the key
//! parsers share; this module adds what only BER needs: indefinite lengths, segmented strings,
//! nesting limits and messages that name the element.
//!
//! It must never panic or allocate according to a length read from the input: every length is
//! checked against the bytes that remain, nesting (of indefinite lengths and of segmented
//! strings) is limited to [`MAX_DEPTH`], and [`Tlv::octets`] refuses to gather more than its
//! caller's limit.

use std::borrow::Cow;

use crate::asn1::{self, HeaderError, Length};

/// How deep constructed elements may nest while being scanned or gathered.
pub(super) const MAX_DEPTH: usize = 24;

/// Identifier octets used by PKCS#7 / CMS.
pub(super) mod tag {
    pub use crate::asn1::tag::{CONSTRUCTED, INTEGER, NULL, OCTET_STRING, OID, SEQUENCE, SET};

    /// OCTET STRING, constructed from segments (BER).
    pub const OCTET_STRING_CONSTRUCTED: u8 = 0x24;
    /// Go's GCM parameters: a SEQUENCE tag without the constructed bit.
    pub const GO_GCM_PARAMETERS: u8 = 0x10;
    /// `[0]`, primitive.
    pub const CONTEXT_0: u8 = 0x80;
    /// `[4]`, primitive (Go's GCM nonce).
    pub const CONTEXT_4: u8 = 0x84;
    /// `[0]`, constructed.
    pub const CONTEXT_0_CONSTRUCTED: u8 = 0xa0;
    /// `[1]`, constructed.
    pub const CONTEXT_1_CONSTRUCTED: u8 = 0xa1;
    /// `[2]`, constructed.
    pub const CONTEXT_2_CONSTRUCTED: u8 = 0xa2;
    /// `[3]`, constructed.
    pub const CONTEXT_3_CONSTRUCTED: u8 = 0xa3;
    /// `[4]`, constructed.
    pub const CONTEXT_4_CONSTRUCTED: u8 = 0xa4;
}

/// One element: its identifier octet and its content.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tlv<'a> {
    /// The identifier octet (class, constructed bit and a tag number below 31).
    pub tag: u8,
    /// The content octets; for an indefinite length, everything before the end-of-contents.
    pub content: &'a [u8],
    /// The whole element, identifier to end (end-of-contents included).
    pub raw: &'a [u8],
    depth: usize,
}

/// Reads consecutive elements from a byte slice.
#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    depth: usize,
}

/// Why input could not be read, in words that name the element.
pub(super) type BerResult<T> = Result<T, String>;

impl<'a> Reader<'a> {
    /// A reader over `data`, at the outermost level.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader {
            data,
            pos: 0,
            depth: 0,
        }
    }

    /// Whether every element has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The identifier octet of the next element, if there is one.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Read the next element, whatever it is.
    pub fn read(&mut self) -> BerResult<Tlv<'a>> {
        let (tlv, len) = read_tlv(&self.data[self.pos..], self.depth)?;
        self.pos += len;
        Ok(tlv)
    }

    /// Read the next element, which must have identifier `tag`; `what` names it in errors.
    pub fn expect(&mut self, tag: u8, what: &str) -> BerResult<Tlv<'a>> {
        match self.peek_tag() {
            None => Err(format!("{what} is missing")),
            Some(t) if t != tag => Err(format!(
                "{what}: expected identifier 0x{tag:02x}, found 0x{t:02x}"
            )),
            Some(_) => self.read().map_err(|e| format!("{what}: {e}")),
        }
    }

    /// Read the next element if it has identifier `tag`.
    pub fn optional(&mut self, tag: u8, what: &str) -> BerResult<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Insist that nothing follows; `what` names the enclosing element.
    pub fn finish(&self, what: &str) -> BerResult<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what}: {} unexpected byte(s) after its last element",
                self.data.len() - self.pos
            ))
        }
    }
}

impl<'a> Tlv<'a> {
    /// Whether the constructed bit is set.
    pub fn is_constructed(&self) -> bool {
        self.tag & tag::CONSTRUCTED != 0
    }

    /// A reader over the elements inside this one.
    pub fn children(&self, what: &str) -> BerResult<Reader<'a>> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(format!("{what}: nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(Reader {
            data: self.content,
            pos: 0,
            depth: self.depth + 1,
        })
    }

    /// The octets of a string-like element: the content of a primitive element, or the
    /// concatenated segments (primitive or themselves segmented OCTET STRINGs) of a
    /// constructed one, at most `limit` bytes in all.
    pub fn octets(&self, limit: usize, what: &str) -> BerResult<Cow<'a, [u8]>> {
        if !self.is_constructed() {
            if self.content.len() > limit {
                return Err(format!(
                    "{what} has {} bytes, more than the {limit} allowed",
                    self.content.len()
                ));
            }
            return Ok(Cow::Borrowed(self.content));
        }
        let mut out = Vec::new();
        self.gather(&mut out, limit, what)?;
        Ok(Cow::Owned(out))
    }

    fn gather(&self, out: &mut Vec<u8>, limit: usize, what: &str) -> BerResult<()> {
        let mut segments = self.children(what)?;
        while !segments.is_empty() {
            let segment = segments.read().map_err(|e| format!("{what}: {e}"))?;
            match segment.tag {
                tag::OCTET_STRING => {
                    if out.len() + segment.content.len() > limit {
                        return Err(format!("{what} has more than the {limit} bytes allowed"));
                    }
                    out.extend_from_slice(segment.content);
                }
                tag::OCTET_STRING_CONSTRUCTED => segment.gather(out, limit, what)?,
                other => {
                    return Err(format!(
                        "{what}: a segment has identifier 0x{other:02x}, not an OCTET STRING"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Read one element from the start of `data`; returns it and the bytes it spans.
fn read_tlv(data: &[u8], depth: usize) -> BerResult<(Tlv<'_>, usize)> {
    let header = asn1::read_header(data).map_err(|e| match e {
        HeaderError::Empty => "unexpected end of data".to_string(),
        HeaderError::HighTagNumber(identifier) => format!(
            "identifier 0x{identifier:02x} starts a multi-byte tag number, which PKCS#7 does not use"
        ),
        HeaderError::EndsInHeader => "the data ends inside an element header".into(),
        HeaderError::EndsInLength => "the data ends inside a length field".into(),
        HeaderError::BadLength(first) => format!(
            "length field 0x{first:02x} is not valid (lengths above 4 GiB or reserved)"
        ),
    })?;
    let identifier = header.tag;
    let constructed = identifier & tag::CONSTRUCTED != 0;
    let content_start = header.header_len;
    let rest = &data[content_start..];
    match header.length {
        Length::Definite(len) => {
            let Some((content, _)) = header.split(data) else {
                return Err(format!(
                    "an element of identifier 0x{identifier:02x} claims {len} bytes, but only {} remain",
                    rest.len()
                ));
            };
            let end = content_start + len;
            Ok((
                Tlv {
                    tag: identifier,
                    content,
                    raw: &data[..end],
                    depth,
                },
                end,
            ))
        }
        Length::Indefinite => {
            // Indefinite length (BER): the content runs to an end-of-contents marker, found by
            // reading the elements inside, each bounded like this one.
            if !constructed {
                return Err(format!(
                    "primitive element 0x{identifier:02x} has an indefinite length"
                ));
            }
            if depth + 1 > MAX_DEPTH {
                return Err(format!(
                    "indefinite lengths nested more than {MAX_DEPTH} levels deep"
                ));
            }
            let mut pos = 0;
            loop {
                match rest.get(pos..pos + 2) {
                    None => {
                        return Err(
                            "an indefinite-length element has no end-of-contents marker".into()
                        );
                    }
                    Some([0, 0]) => break,
                    Some(_) => {
                        let (_, len) = read_tlv(&rest[pos..], depth + 1)?;
                        pos += len;
                    }
                }
            }
            let end = content_start + pos + 2;
            Ok((
                Tlv {
                    tag: identifier,
                    content: &rest[..pos],
                    raw: &data[..end],
                    depth,
                },
                end,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_definite_and_indefinite_lengths() {
        let data = [0x30, 0x03, 0x02, 0x01, 0x05, 0x04, 0x81, 0x01, 0xaa];
        let mut r = Reader::new(&data);
        let seq = r.expect(tag::SEQUENCE, "seq").unwrap();
        assert_eq!(seq.content, &[0x02, 0x01, 0x05]);
        let mut inner = seq.children("seq").unwrap();
        assert_eq!(inner.expect(tag::INTEGER, "int").unwrap().content, &[5]);
        inner.finish("seq").unwrap();
        // A non-minimal long-form length is BER, and accepted.
        assert_eq!(r.read().unwrap().content, &[0xaa]);
        r.finish("all").unwrap();

        let indefinite = [
            0x24, 0x80, 0x04, 0x01, 0x61, 0x04, 0x02, 0x62, 0x63, 0x00, 0x00,
        ];
        let tlv = Reader::new(&indefinite).read().unwrap();
        assert_eq!(tlv.raw.len(), indefinite.len());
        assert_eq!(&*tlv.octets(10, "s").unwrap(), b"abc");
    }

    #[test]
    fn gathers_nested_segments_within_a_limit() {
        // a0 { 04 "ab", 24 { 04 "c" } }
        let data = [
            0xa0, 0x09, 0x04, 0x02, 0x61, 0x62, 0x24, 0x03, 0x04, 0x01, 0x63,
        ];
        let tlv = Reader::new(&data).read().unwrap();
        assert_eq!(&*tlv.octets(3, "content").unwrap(), b"abc");
        let err = tlv.octets(2, "content").unwrap_err();
        assert!(err.contains("more than the 2 bytes"), "{err}");
        // A segment that is not an OCTET STRING.
        let bad = [0xa0, 0x03, 0x02, 0x01, 0x01];
        let err = Reader::new(&bad)
            .read()
            .unwrap()
            .octets(9, "c")
            .unwrap_err();
        assert!(err.contains("not an OCTET STRING"), "{err}");
    }

    #[test]
    fn lying_lengths_and_odd_headers_are_errors() {
        for (data, why) in [
            (&[][..], "end of data"),
            (&[0x30][..], "inside an element header"),
            (&[0x30, 0x05, 0x00][..], "claims 5 bytes"),
            (&[0x30, 0x82, 0x01][..], "inside a length field"),
            (&[0x30, 0x85, 1, 1, 1, 1, 1][..], "not valid"),
            (&[0x30, 0xff][..], "not valid"),
            (&[0x04, 0x80, 0x00, 0x00][..], "indefinite length"),
            (&[0x30, 0x80, 0x02, 0x01, 0x01][..], "no end-of-contents"),
            (&[0x1f, 0x01, 0x00][..], "multi-byte tag"),
            (
                &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
                "claims 4294967295 bytes",
            ),
        ] {
            let err = Reader::new(data).read().unwrap_err();
            assert!(err.contains(why), "{data:02x?}: {err}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // 200 nested indefinite-length SEQUENCEs: refused, not a stack overflow.
        let mut data = vec![];
        for _ in 0..200 {
            data.extend([0x30, 0x80]);
        }
        for _ in 0..200 {
            data.extend([0x00, 0x00]);
        }
        let err = Reader::new(&data).read().unwrap_err();
        assert!(err.contains("nested more than"), "{err}");
        // Segmented strings nested past the limit.
        let mut data = vec![0x04, 0x00];
        for _ in 0..(MAX_DEPTH + 2) {
            let mut outer = vec![0x24, data.len() as u8];
            outer.extend(&data);
            data = outer;
        }
        let err = Reader::new(&data)
            .read()
            .unwrap()
            .octets(10, "s")
            .unwrap_err();
        assert!(err.contains("nested more than"), "{err}");
    }

    #[test]
    fn expect_and_finish_name_the_element() {
        let data = [0x02, 0x01, 0x00, 0x05, 0x00];
        let mut r = Reader::new(&data);
        let err = r.expect(tag::SEQUENCE, "EnvelopedData").unwrap_err();
        assert_eq!(err, "EnvelopedData: expected identifier 0x30, found 0x02");
        r.read().unwrap();
        assert!(
            r.finish("outer")
                .unwrap_err()
                .contains("2 unexpected byte(s)")
        );
        r.read().unwrap();
        assert!(r.expect(tag::NULL, "x").unwrap_err().contains("missing"));
    }
}
