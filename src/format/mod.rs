//! The ocicrypt wire format in one place: media types, annotation names, the options JSON and
//! the comma-separated base64 envelope that carries wrapped keys.
//!
//! Everything a peer (skopeo, imgcrypt, ocicrypt-rs) reads or writes is defined here, with the
//! known-answer vectors of `ocicrypt-format.md` as unit tests beside it. Nothing in this module
//! does I/O or touches key material beyond (de)serialising it.

pub mod descriptor;
pub mod json;
pub mod options;

use std::fmt;

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

/// Media type suffix of encrypted layers.
pub const ENCRYPTED_SUFFIX: &str = "+encrypted";

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The annotation key of a key-wrap scheme (`org.opencontainers.image.enc.keys.<id>`).
pub fn keys_annotation(scheme_id: &str) -> String {
    format!("{KEYS_ANNOTATION_PREFIX}{scheme_id}")
}

/// The scheme id of a wrapped-keys annotation key, if it is one.
pub fn scheme_of_annotation(key: &str) -> Option<&str> {
    key.strip_prefix(KEYS_ANNOTATION_PREFIX)
        .filter(|id| !id.is_empty())
}

/// How a layer media type is treated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerType {
    /// A layer that can be encrypted; `encrypted` is the media type it gets.
    Plain {
        /// The media type after encryption.
        encrypted: String,
    },
    /// An encrypted layer; `plain` is the media type it gets back when decrypted.
    Encrypted {
        /// The media type after decryption.
        plain: String,
    },
    /// A Docker foreign layer: its blob lives elsewhere (`urls`), so it is left as it is.
    Foreign,
    /// Not a filesystem layer (an attestation, an artifact, something unknown): passed through.
    Other,
}

/// OCI layer media types that ocicrypt encrypts by appending `+encrypted`.
const OCI_LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.wasm.content.layer.v1+wasm",
];

/// Classify a layer media type.
///
/// Docker layer types become the OCI ones when encrypted, as containers/image does, because
/// only an OCI manifest can carry encrypted layers. Decryption strips `+encrypted` (the
/// containers/image mapping; imgcrypt would produce Docker types instead).
pub fn classify_layer(media_type: &str) -> LayerType {
    if let Some(plain) = media_type.strip_suffix(ENCRYPTED_SUFFIX) {
        return LayerType::Encrypted {
            plain: plain.to_string(),
        };
    }
    if OCI_LAYER_TYPES.contains(&media_type) {
        return LayerType::Plain {
            encrypted: format!("{media_type}{ENCRYPTED_SUFFIX}"),
        };
    }
    if media_type.starts_with("application/vnd.docker.image.rootfs.foreign.") {
        return LayerType::Foreign;
    }
    match docker_layer_to_oci(media_type) {
        Some(oci) => LayerType::Plain {
            encrypted: format!("{oci}{ENCRYPTED_SUFFIX}"),
        },
        None => LayerType::Other,
    }
}

/// The OCI media type for a Docker layer media type, as containers/image converts them when
/// it must write an OCI manifest (foreign layers become non-distributable ones).
pub fn docker_layer_to_oci(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        }
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.foreign.diff.tar" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar"
        }
        _ => return None,
    })
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
    fn media_types_follow_containers_image() {
        assert_eq!(
            classify_layer("application/vnd.oci.image.layer.v1.tar+gzip"),
            LayerType::Plain {
                encrypted: "application/vnd.oci.image.layer.v1.tar+gzip+encrypted".into()
            }
        );
        assert_eq!(
            classify_layer("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            LayerType::Plain {
                encrypted: "application/vnd.oci.image.layer.v1.tar+gzip+encrypted".into()
            }
        );
        assert_eq!(
            classify_layer(
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd+encrypted"
            ),
            LayerType::Encrypted {
                plain: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd".into()
            }
        );
        assert_eq!(
            classify_layer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            LayerType::Foreign
        );
        assert_eq!(
            classify_layer("application/vnd.in-toto+json"),
            LayerType::Other
        );
    }

    /// Every encrypted media type of containers/ocicrypt's `spec/spec.go` (main, August 2026,
    /// which added WASM), verbatim: each decrypts to its plain type, which encrypts back to it.
    #[test]
    fn every_media_type_of_ocicrypt_spec_go_round_trips() {
        const SPEC_GO: &[&str] = &[
            "application/vnd.oci.image.layer.v1.tar+encrypted",
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            "application/vnd.oci.image.layer.v1.tar+zstd+encrypted",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+encrypted",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd+encrypted",
            "application/vnd.wasm.content.layer.v1+wasm+encrypted",
        ];
        for encrypted in SPEC_GO {
            let LayerType::Encrypted { plain } = classify_layer(encrypted) else {
                panic!("{encrypted} is not recognised as encrypted");
            };
            assert!(OCI_LAYER_TYPES.contains(&plain.as_str()), "{plain}");
            assert_eq!(
                classify_layer(&plain),
                LayerType::Plain {
                    encrypted: encrypted.to_string()
                }
            );
        }
        assert_eq!(OCI_LAYER_TYPES.len(), SPEC_GO.len());
    }

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
