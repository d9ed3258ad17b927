//! The ocicrypt wire format in one place: media types ([`media_type`], re-exported here),
//! annotation names, the options JSON and the comma-separated base64 envelope that carries
//! wrapped keys.
//!
//! Everything a peer (skopeo, imgcrypt, ocicrypt-rs) reads or writes is defined here, with the
//! known-answer vectors of `ocicrypt-format.md` as unit tests beside it. Nothing in this module
//! does I/O or touches key material beyond (de)serialising it.

pub mod descriptor;
pub(crate) mod docker_reference;
pub mod json;
pub mod media_type;
pub mod options;

use std::fmt;

pub use media_type::*;
pub use options::{PrivateOptions, PublicOptions, decode_base64_go, encode_base64};

/// Prefix of every annotation in the encryption namespace; all of them are dropped when a layer
/// is decrypted.
pub const ENC_ANNOTATION_PREFIX: &str = "org.opencontainers.image.enc.";

/// Prefix of the annotations that carry wrapped keys, followed by the scheme id.
pub const KEYS_ANNOTATION_PREFIX: &str = "org.opencontainers.image.enc.keys.";

/// The annotation that carries base64 of the public options JSON.
pub const PUBOPTS_ANNOTATION: &str = "org.opencontainers.image.enc.pubopts";

/// The annotation naming an image in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Most wrapped-key blobs one scheme's annotation may hold. Go writes one per scheme; more
/// appear only when recipients are added to an encrypted layer by later runs. Every blob is
/// tried with every fitting key, so a hostile annotation must not list thousands.
pub const MAX_ENVELOPE_ENTRIES: usize = 64;

/// The annotation key of a key-wrap scheme (`org.opencontainers.image.enc.keys.<id>`).
pub fn keys_annotation(scheme_id: &str) -> String {
    format!("{KEYS_ANNOTATION_PREFIX}{scheme_id}")
}

/// The scheme id of a wrapped-keys annotation key, if it is one.
pub fn scheme_of_annotation(key: &str) -> Option<&str> {
    key.strip_prefix(KEYS_ANNOTATION_PREFIX)
        .filter(|id| !id.is_empty())
}

/// One scheme's wrapped keys: the comma-separated list of base64 blobs in its annotation.
///
/// Every blob wraps the same private options; a scheme's value has more than one entry only
/// after recipients were added to an already-encrypted layer.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    entries: Vec<Vec<u8>>,
}

/// Why an annotation value is not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// An entry is not padded standard base64.
    #[error("entry {index} of the annotation is not valid base64: {reason}")]
    BadBase64 {
        /// 0-based entry position.
        index: usize,
        /// The decoder's message.
        reason: String,
    },
    /// No entries at all.
    #[error("the annotation holds no wrapped keys")]
    Empty,
    /// More entries than [`MAX_ENVELOPE_ENTRIES`].
    #[error(
        "the annotation holds {count} wrapped keys, more than the {MAX_ENVELOPE_ENTRIES} allowed"
    )]
    TooMany {
        /// How many entries it holds.
        count: usize,
    },
}

impl Envelope {
    /// An envelope with the given blobs.
    pub fn new(entries: Vec<Vec<u8>>) -> Self {
        Envelope { entries }
    }

    /// Parse an annotation value. Empty entries (a stray comma, or only line breaks, which
    /// base64 decoding ignores) are skipped: no scheme's blob is empty, and writing the
    /// envelope back must not turn them into stray commas.
    pub fn parse(value: &str) -> Result<Envelope, EnvelopeError> {
        let blank = |part: &str| part.bytes().all(|b| b == b'\r' || b == b'\n');
        let count = value.split(',').filter(|part| !blank(part)).count();
        if count > MAX_ENVELOPE_ENTRIES {
            return Err(EnvelopeError::TooMany { count });
        }
        let mut entries = Vec::new();
        for (index, part) in value.split(',').enumerate() {
            if blank(part) {
                continue;
            }
            let blob = decode_base64_go(part).map_err(|e| EnvelopeError::BadBase64 {
                index,
                reason: e.to_string(),
            })?;
            entries.push(blob);
        }
        if entries.is_empty() {
            return Err(EnvelopeError::Empty);
        }
        Ok(Envelope { entries })
    }

    /// The wrapped-key blobs, in annotation order.
    pub fn entries(&self) -> &[Vec<u8>] {
        &self.entries
    }

    /// Append one more blob (recipients added by a later run).
    pub fn push(&mut self, blob: Vec<u8>) {
        self.entries.push(blob);
    }

    /// The annotation value: base64 entries joined by `,`.
    pub fn to_annotation(&self) -> String {
        self.entries
            .iter()
            .map(|e| encode_base64(e))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| format!("<{} bytes>", e.len())))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_and_errors() {
        let e = Envelope::parse("AAE=,,AgM=").unwrap();
        assert_eq!(e.entries(), &[vec![0, 1], vec![2, 3]]);
        assert_eq!(e.to_annotation(), "AAE=,AgM=");
        assert!(matches!(
            Envelope::parse("AAE=,%%%"),
            Err(EnvelopeError::BadBase64 { index: 1, .. })
        ));
        assert_eq!(Envelope::parse(""), Err(EnvelopeError::Empty));
        let most = vec!["AAE="; MAX_ENVELOPE_ENTRIES].join(",");
        assert_eq!(
            Envelope::parse(&most).unwrap().entries().len(),
            MAX_ENVELOPE_ENTRIES
        );
        assert_eq!(
            Envelope::parse(&format!("{most},AAE=")),
            Err(EnvelopeError::TooMany {
                count: MAX_ENVELOPE_ENTRIES + 1
            })
        );
    }

    /// Issue 7, found by the `envelope` fuzz target: an entry of line breaks only decoded to an
    /// empty blob, which was written back as an empty entry, so the value written did not
    /// parse again. Such entries are skipped like empty ones.
    #[test]
    fn issue_7_entries_of_line_breaks_only_are_skipped() {
        assert_eq!(Envelope::parse("\n"), Err(EnvelopeError::Empty));
        let e = Envelope::parse("AAE=,\r\n,AgM=\n").unwrap();
        assert_eq!(e.entries(), &[vec![0, 1], vec![2, 3]]);
        assert_eq!(Envelope::parse(&e.to_annotation()).unwrap(), e);
    }

    #[test]
    fn annotation_names() {
        assert_eq!(
            keys_annotation("jwe"),
            "org.opencontainers.image.enc.keys.jwe"
        );
        assert_eq!(
            scheme_of_annotation("org.opencontainers.image.enc.keys.provider.kbs"),
            Some("provider.kbs")
        );
        assert_eq!(scheme_of_annotation(PUBOPTS_ANNOTATION), None);
        assert_eq!(scheme_of_annotation(KEYS_ANNOTATION_PREFIX), None);
    }
}
