//! Every media type layercrypt knows, and every decision made from one: what a layer type
//! becomes when encrypted or decrypted, how a layer is compressed, whether its blob lives
//! elsewhere, what a table shows of it, and whether an index or manifest is ambiguous.
//!
//! The OCI and Docker names are spelled out here and nowhere else; the rest of the crate
//! names them through these constants and asks these functions. The mapping follows
//! containers/image and containers/ocicrypt (`spec/spec.go`), so images round-trip with skopeo.
//!
//! Pure functions only: nothing here does I/O, reads a blob or decides on its own what to do
//! with a layer it does not recognise (unknown types are [`LayerType::Other`], passed through
//! by the caller). It must never accept a document as an index *and* a manifest at once:
//! [`check_unambiguous`] is the one place that refuses such documents (CVE-2021-41190).

use super::json::JsonObject;

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

/// Media type of an uncompressed OCI layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer; also the type a zstd-compressed layer of a
/// Docker archive is given (Docker has no registered type for it).
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Media type of an uncompressed OCI non-distributable layer.
pub const OCI_NONDISTRIBUTABLE_LAYER: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// Media type of a gzip-compressed OCI non-distributable layer.
pub const OCI_NONDISTRIBUTABLE_LAYER_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// Media type of a zstd-compressed OCI non-distributable layer.
pub const OCI_NONDISTRIBUTABLE_LAYER_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// Media type of a WebAssembly module layer, which ocicrypt encrypts like a filesystem layer.
pub const WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// Media type of an uncompressed Docker layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Media type of a gzip-compressed Docker layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Media type of a zstd-compressed Docker layer (unregistered, but containers/image knows it).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Media type of an uncompressed Docker foreign layer (its blob lives at its `urls`).
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
/// Media type of a gzip-compressed Docker foreign layer (its blob lives at its `urls`).
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// What every Docker foreign layer type starts with.
const DOCKER_FOREIGN_PREFIX: &str = "application/vnd.docker.image.rootfs.foreign.";

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
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_NONDISTRIBUTABLE_LAYER,
    OCI_NONDISTRIBUTABLE_LAYER_GZIP,
    OCI_NONDISTRIBUTABLE_LAYER_ZSTD,
    WASM_LAYER,
];

/// Classify a layer media type.
///
/// Docker layer types become the OCI ones when encrypted, as containers/image does, because
/// only an OCI manifest can carry encrypted layers. Decryption strips `+encrypted` (the
/// containers/image mapping; imgcrypt would produce Docker types instead).
///
/// This looks at the media type alone; a layer descriptor that lists `urls` is foreign
/// whatever its type says, which [`classify_descriptor`] takes into account.
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
    if media_type.starts_with(DOCKER_FOREIGN_PREFIX) {
        return LayerType::Foreign;
    }
    match docker_layer_to_oci(media_type) {
        Some(oci) => LayerType::Plain {
            encrypted: format!("{oci}{ENCRYPTED_SUFFIX}"),
        },
        None => LayerType::Other,
    }
}

/// Classify a layer descriptor: [`LayerType::Foreign`] when its blob lives elsewhere
/// ([`is_foreign`]), else what its media type says ([`classify_layer`]).
///
/// `media_type` is the descriptor's `mediaType`; `descriptor` is the descriptor itself.
pub fn classify_descriptor(media_type: &str, descriptor: &JsonObject) -> LayerType {
    if is_foreign(descriptor) {
        LayerType::Foreign
    } else {
        classify_layer(media_type)
    }
}

/// Whether a layer descriptor's blob lives elsewhere: it lists `urls` (a Docker foreign
/// layer, or an OCI non-distributable one with the places to fetch it from). Such a blob is
/// usually absent from the image, so it is never encrypted, decrypted or required.
pub fn is_foreign(descriptor: &JsonObject) -> bool {
    descriptor.contains("urls")
}

/// Whether a layer media type says the layer may not be redistributed (Docker foreign or OCI
/// non-distributable, compressed or not, encrypted or not), whether or not it lists `urls`.
pub fn is_non_distributable(media_type: &str) -> bool {
    media_type.contains(".foreign.") || media_type.contains(".nondistributable.")
}

/// The OCI media type for a Docker layer media type, as containers/image converts them when
/// it must write an OCI manifest (foreign layers become non-distributable ones).
pub fn docker_layer_to_oci(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        DOCKER_LAYER => OCI_LAYER,
        DOCKER_LAYER_ZSTD => OCI_LAYER_ZSTD,
        DOCKER_FOREIGN_LAYER_GZIP => OCI_NONDISTRIBUTABLE_LAYER_GZIP,
        DOCKER_FOREIGN_LAYER => OCI_NONDISTRIBUTABLE_LAYER,
        _ => return None,
    })
}

/// Whether a media type is an image index (OCI or Docker list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a media type is an image manifest (OCI or Docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// How a stream (an archive file, a layer blob) is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Recognise a compressed stream by its magic number.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// How a writable layer media type is compressed; `None` for anything that is not a plain
/// (distributable, unencrypted) filesystem layer.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        DOCKER_LAYER | OCI_LAYER => Some(Compression::None),
        DOCKER_LAYER_GZIP | OCI_LAYER_GZIP => Some(Compression::Gzip),
        DOCKER_LAYER_ZSTD | OCI_LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// A layer media type short enough for a table column (`tar+gzip+encrypted`,
/// `rootfs.diff.tar.gzip` for Docker, `wasm`); anything unknown comes back whole.
pub fn short_name(media_type: &str) -> &str {
    const PREFIXES: &[&str] = &[
        "application/vnd.oci.image.layer.v1.",
        "application/vnd.oci.image.layer.",
        "application/vnd.docker.image.",
        "application/vnd.wasm.content.layer.v1+",
    ];
    PREFIXES
        .iter()
        .find_map(|p| media_type.strip_prefix(p))
        .unwrap_or(media_type)
}

/// An index or manifest that another reader could take for the other kind of document, so
/// that what one tool checks is not what another runs (CVE-2021-41190; umoci refuses the same
/// documents in `oci/casext/mediatype/parse.go`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousDocument {
    /// The descriptor says index, and the document carries a manifest's `config` or `layers`.
    #[error(
        "field `{field}` is not allowed in an image index: with it the document could also be read as a manifest (CVE-2021-41190)"
    )]
    ManifestFieldInIndex {
        /// `config` or `layers`.
        field: &'static str,
    },
    /// The descriptor says manifest, and the document carries an index's `manifests`.
    #[error(
        "field `manifests` is not allowed in an image manifest: with it the document could also be read as an index (CVE-2021-41190)"
    )]
    IndexFieldInManifest,
    /// The document's own `mediaType` is not the one the descriptor pointing at it declares.
    #[error(
        "field `mediaType` is `{found}`, but the descriptor pointing at the document says `{declared}` (CVE-2021-41190)"
    )]
    MediaTypeMismatch {
        /// The media type the descriptor declares.
        declared: String,
        /// The document's `mediaType` (its JSON text when it is not a string), cut short and
        /// with control characters escaped.
        found: String,
    },
}

/// Refuse an index or manifest whose fields could make another reader take it for the other
/// kind of document (CVE-2021-41190), given the document and the media type the descriptor
/// pointing at it declares:
///
/// - an index (`declared` is [`OCI_INDEX`] or [`DOCKER_MANIFEST_LIST`]) must not carry
///   `config` or `layers`;
/// - a manifest (`declared` is [`OCI_MANIFEST`] or [`DOCKER_MANIFEST`]) must not carry
///   `manifests`;
/// - either one's own `mediaType`, when present and not empty, must be `declared`.
///
/// A field counts as carried when it is present, even as `null`, as umoci counts it (Go
/// decodes `null` into its `json.RawMessage` as the four bytes `null`). Other media types
/// (configs, layers, artifacts) are opaque to layercrypt and always pass.
pub fn check_unambiguous(declared: &str, document: &JsonObject) -> Result<(), AmbiguousDocument> {
    if is_index(declared) {
        if let Some(field) = ["config", "layers"]
            .into_iter()
            .find(|f| document.contains(f))
        {
            return Err(AmbiguousDocument::ManifestFieldInIndex { field });
        }
    } else if is_manifest(declared) {
        if document.contains("manifests") {
            return Err(AmbiguousDocument::IndexFieldInManifest);
        }
    } else {
        return Ok(());
    }
    let found = match document.get::<serde_json::Value>("mediaType") {
        Ok(None) => return Ok(()),
        Ok(Some(serde_json::Value::String(s))) if s.is_empty() || s == declared => return Ok(()),
        Ok(Some(serde_json::Value::String(s))) => s,
        Ok(Some(other)) => other.to_string(),
        // A value serde_json cannot hold (nested past its recursion limit) is no media type.
        Err(_) => "(a value that is not a media type)".to_string(),
    };
    Err(AmbiguousDocument::MediaTypeMismatch {
        declared: declared.to_string(),
        found: crate::digest::shown(&found),
    })
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

    /// containers/image's `manifest/docker_schema2.go` and `oci.go` conversions, verbatim.
    #[test]
    fn docker_layers_map_to_oci_as_containers_image_maps_them() {
        for (docker, oci) in [
            (
                "application/vnd.docker.image.rootfs.diff.tar",
                "application/vnd.oci.image.layer.v1.tar",
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.zstd",
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar",
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            ),
        ] {
            assert_eq!(docker_layer_to_oci(docker), Some(oci), "{docker}");
        }
        assert_eq!(docker_layer_to_oci(OCI_LAYER_GZIP), None);
        assert_eq!(docker_layer_to_oci(DOCKER_MANIFEST), None);
    }

    #[test]
    fn layer_compression_knows_only_plain_distributable_layers() {
        for (media_type, expected) in [
            (DOCKER_LAYER, Some(Compression::None)),
            (OCI_LAYER, Some(Compression::None)),
            (DOCKER_LAYER_GZIP, Some(Compression::Gzip)),
            (OCI_LAYER_GZIP, Some(Compression::Gzip)),
            (DOCKER_LAYER_ZSTD, Some(Compression::Zstd)),
            (OCI_LAYER_ZSTD, Some(Compression::Zstd)),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                None,
            ),
            (OCI_NONDISTRIBUTABLE_LAYER_GZIP, None),
            (DOCKER_FOREIGN_LAYER_GZIP, None),
            (WASM_LAYER, None),
            ("application/vnd.in-toto+json", None),
        ] {
            assert_eq!(layer_compression(media_type), expected, "{media_type}");
        }
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
        assert_eq!(Compression::sniff(&[0x1f]), Compression::None);
    }

    #[test]
    fn foreign_layers_are_told_by_urls_and_non_distributable_ones_by_type() {
        let parse = |s: &str| JsonObject::parse(s.as_bytes()).unwrap();
        let with_urls = parse(r#"{"mediaType":"x","urls":["https://example.com/l"]}"#);
        let without = parse(r#"{"mediaType":"x"}"#);
        assert!(is_foreign(&with_urls));
        assert!(is_foreign(&parse(r#"{"urls":null}"#)));
        assert!(!is_foreign(&without));
        assert_eq!(
            classify_descriptor(OCI_LAYER_GZIP, &with_urls),
            LayerType::Foreign
        );
        assert_eq!(
            classify_descriptor(OCI_LAYER_GZIP, &without),
            classify_layer(OCI_LAYER_GZIP)
        );
        assert_eq!(
            classify_descriptor(DOCKER_FOREIGN_LAYER, &without),
            LayerType::Foreign
        );
        for media_type in [
            DOCKER_FOREIGN_LAYER,
            DOCKER_FOREIGN_LAYER_GZIP,
            OCI_NONDISTRIBUTABLE_LAYER,
            OCI_NONDISTRIBUTABLE_LAYER_ZSTD,
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted",
        ] {
            assert!(is_non_distributable(media_type), "{media_type}");
        }
        for media_type in [OCI_LAYER, DOCKER_LAYER_GZIP, WASM_LAYER] {
            assert!(!is_non_distributable(media_type), "{media_type}");
        }
    }

    #[test]
    fn short_names_fit_a_table_column() {
        for (full, short) in [
            (
                "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                "tar+gzip+encrypted",
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                "nondistributable.v1.tar",
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "rootfs.diff.tar.gzip",
            ),
            ("application/vnd.wasm.content.layer.v1+wasm", "wasm"),
            (
                "application/vnd.in-toto+json",
                "application/vnd.in-toto+json",
            ),
        ] {
            assert_eq!(short_name(full), short);
        }
    }

    #[test]
    fn index_and_manifest_types() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_MANIFEST_LIST));
        assert!(is_manifest(OCI_MANIFEST) && is_manifest(DOCKER_MANIFEST));
        assert!(!is_index(OCI_MANIFEST) && !is_manifest(OCI_INDEX));
        assert!(!is_index(OCI_CONFIG) && !is_manifest(DOCKER_CONFIG));
    }

    /// The documents of CVE-2021-41190, as umoci's `indexParser` and `manifestParser` refuse
    /// them: each error names the field that makes the document ambiguous.
    #[test]
    fn ambiguous_documents_are_refused_naming_the_field() {
        let check = |declared: &str, doc: &str| {
            check_unambiguous(declared, &JsonObject::parse(doc.as_bytes()).unwrap())
        };
        let index = r#""schemaVersion":2,"manifests":[]"#;
        let manifest = r#""schemaVersion":2,"config":{},"layers":[]"#;
        for (declared, doc, expected, field) in [
            (
                OCI_INDEX,
                format!(r#"{{{index},"config":{{}}}}"#),
                AmbiguousDocument::ManifestFieldInIndex { field: "config" },
                "`config`",
            ),
            (
                OCI_INDEX,
                format!(r#"{{{index},"layers":[]}}"#),
                AmbiguousDocument::ManifestFieldInIndex { field: "layers" },
                "`layers`",
            ),
            (
                DOCKER_MANIFEST_LIST,
                format!(r#"{{{index},"config":null}}"#),
                AmbiguousDocument::ManifestFieldInIndex { field: "config" },
                "`config`",
            ),
            (
                OCI_MANIFEST,
                format!(r#"{{{manifest},"manifests":[]}}"#),
                AmbiguousDocument::IndexFieldInManifest,
                "`manifests`",
            ),
            (
                DOCKER_MANIFEST,
                format!(r#"{{{manifest},"manifests":null}}"#),
                AmbiguousDocument::IndexFieldInManifest,
                "`manifests`",
            ),
            (
                OCI_INDEX,
                format!(r#"{{{index},"mediaType":"{OCI_MANIFEST}"}}"#),
                AmbiguousDocument::MediaTypeMismatch {
                    declared: OCI_INDEX.into(),
                    found: OCI_MANIFEST.into(),
                },
                "`mediaType`",
            ),
            (
                OCI_MANIFEST,
                format!(r#"{{{manifest},"mediaType":"{DOCKER_MANIFEST}"}}"#),
                AmbiguousDocument::MediaTypeMismatch {
                    declared: OCI_MANIFEST.into(),
                    found: DOCKER_MANIFEST.into(),
                },
                "`mediaType`",
            ),
            (
                OCI_MANIFEST,
                format!(r#"{{{manifest},"mediaType":7}}"#),
                AmbiguousDocument::MediaTypeMismatch {
                    declared: OCI_MANIFEST.into(),
                    found: "7".into(),
                },
                "`mediaType`",
            ),
        ] {
            let e = check(declared, &doc).unwrap_err();
            assert_eq!(e, expected, "{doc}");
            let message = e.to_string();
            assert!(message.contains(field), "{message}");
        }
    }

    #[test]
    fn unambiguous_documents_pass() {
        let check = |declared: &str, doc: &str| {
            check_unambiguous(declared, &JsonObject::parse(doc.as_bytes()).unwrap())
        };
        for (declared, doc) in [
            (
                OCI_INDEX,
                format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[]}}"#),
            ),
            (OCI_INDEX, r#"{"manifests":[]}"#.to_string()),
            (OCI_INDEX, r#"{"mediaType":"","manifests":[]}"#.to_string()),
            (
                OCI_INDEX,
                r#"{"mediaType":null,"manifests":[]}"#.to_string(),
            ),
            (
                DOCKER_MANIFEST_LIST,
                format!(r#"{{"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[]}}"#),
            ),
            (
                OCI_MANIFEST,
                format!(r#"{{"mediaType":"{OCI_MANIFEST}","config":{{}},"layers":[]}}"#),
            ),
            (OCI_MANIFEST, r#"{"config":{},"layers":[]}"#.to_string()),
            (
                DOCKER_MANIFEST,
                format!(r#"{{"mediaType":"{DOCKER_MANIFEST}","config":{{}},"layers":[]}}"#),
            ),
            // Configs and artifacts are not image-spec documents: never checked.
            (
                OCI_CONFIG,
                r#"{"mediaType":"x","manifests":[],"layers":[]}"#.to_string(),
            ),
        ] {
            assert_eq!(check(declared, &doc), Ok(()), "{declared}: {doc}");
        }
    }

    #[test]
    fn a_hostile_media_type_is_shown_short_and_escaped() {
        let long = format!("\u{1b}[31m{}", "x".repeat(10_000));
        let doc = serde_json::json!({"manifests": [], "mediaType": long}).to_string();
        let e = check_unambiguous(OCI_INDEX, &JsonObject::parse(doc.as_bytes()).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400, "{e}");
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
}
