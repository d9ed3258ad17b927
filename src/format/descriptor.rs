//! OCI descriptors, platforms and the top-level index (`index.json`): the wire form of the
//! content graph, parsed from order-preserving JSON and rewritten without loss.
//!
//! Pure values and their validation: nothing here reads a store. Loading the graph a
//! descriptor points to lives in [`crate::image`].

use std::fmt;

use crate::digest::Digest;

use super::REF_NAME_ANNOTATION;
use super::json::{JsonError, JsonObject};

/// Go's field order for an OCI descriptor, used to place members that are added.
pub const DESCRIPTOR_FIELDS_BEFORE_ANNOTATIONS: &[&str] = &["mediaType", "digest", "size", "urls"];

/// A descriptor, or a list of them, that cannot be used; names the document and member.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// The document is not valid JSON, or a member has the wrong type.
    #[error("{what}: {source}")]
    Json {
        /// The document (`manifest sha256:…`, `index.json`).
        what: String,
        /// The parse error.
        #[source]
        source: JsonError,
    },
    /// A descriptor is unusable.
    #[error("{what}: {reason}")]
    Bad {
        /// Where the descriptor is.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A target platform, `os/architecture[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// CPU variant (`v8`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `os/arch[/variant]` as given on the command line.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || !(2..=3).contains(&parts.len()) {
            return Err(format!(
                "`{s}` is not a platform (expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64/v8)"
            ));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// Read a platform object (`{"architecture":…,"os":…,"variant":…}`).
    pub fn from_json(obj: &JsonObject) -> Result<Platform, JsonError> {
        Ok(Platform {
            os: obj.get_str("os")?.unwrap_or_default(),
            architecture: obj.get_str("architecture")?.unwrap_or_default(),
            variant: obj.get_str("variant")?.filter(|v| !v.is_empty()),
        })
    }

    /// Architecture and variant in canonical form (`aarch64` → `arm64`, `arm64/v8` →
    /// `arm64`, `armhf` → `arm/v7`), as container runtimes normalise them.
    fn normalized(&self) -> (String, String, Option<String>) {
        let arch = self.architecture.to_ascii_lowercase();
        let mut variant = self.variant.as_ref().map(|v| v.to_ascii_lowercase());
        let arch = match arch.as_str() {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            "i386" => "386".to_string(),
            "armhf" => {
                variant = Some("v7".into());
                "arm".to_string()
            }
            "armel" => {
                variant = Some("v6".into());
                "arm".to_string()
            }
            _ => arch,
        };
        let variant = match (arch.as_str(), variant.as_deref()) {
            ("arm64", Some("v8" | "8")) | ("amd64", Some("v1")) => None,
            (_, v) => v.map(str::to_string),
        };
        (self.os.to_ascii_lowercase(), arch, variant)
    }

    /// Whether this platform (of an image) is selected by `pattern` (from the command line).
    /// A pattern without a variant matches every variant of its architecture.
    pub fn matches(&self, pattern: &Platform) -> bool {
        let (os, arch, variant) = self.normalized();
        let (p_os, p_arch, p_variant) = pattern.normalized();
        os == p_os && arch == p_arch && (pattern.variant.is_none() || variant == p_variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor: media type, digest, size, and all its other members as read.
#[derive(Clone, Debug)]
pub struct Descriptor {
    /// The media type.
    pub media_type: String,
    /// The content digest.
    pub digest: Digest,
    /// The content size in bytes.
    pub size: u64,
    /// The whole descriptor, including members this crate does not interpret.
    pub json: JsonObject,
}

impl Descriptor {
    /// Validate a descriptor object; `what` names it in errors.
    pub fn parse(json: JsonObject, what: &str) -> Result<Descriptor, DescriptorError> {
        let bad = |reason: String| DescriptorError::Bad {
            what: what.to_string(),
            reason,
        };
        let json_err = |source| DescriptorError::Json {
            what: what.to_string(),
            source,
        };
        let media_type = json
            .get_str("mediaType")
            .map_err(json_err)?
            .unwrap_or_default();
        let digest_text: String = json
            .get_str("digest")
            .map_err(json_err)?
            .ok_or_else(|| bad("it has no digest".into()))?;
        let digest = digest_text.parse().map_err(|e| bad(format!("{e}")))?;
        let size = match json.get::<serde_json::Value>("size").map_err(json_err)? {
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| bad(format!("size {n} is not a non-negative integer")))?,
            Some(other) => return Err(bad(format!("size {other} is not a number"))),
            None => return Err(bad("it has no size".into())),
        };
        // Annotations are a map of strings, as Go unmarshals them (it refuses anything else).
        // Checked here so that no later step can drop or misread them.
        json.get::<std::collections::HashMap<String, String>>("annotations")
            .map_err(json_err)?;
        Ok(Descriptor {
            media_type,
            digest,
            size,
            json,
        })
    }

    /// Whether it names the empty blob: size 0 and the digest of zero bytes. Encrypting such a
    /// layer would give a ciphertext of zero bytes with the very same digest, which peers
    /// cannot tell from the plain blob (see [`crate::plan::KeepReason::Empty`]).
    pub fn is_empty_blob(&self) -> bool {
        self.size == 0 && self.digest.is_of_nothing()
    }

    /// The descriptor's annotations (empty if it has none).
    pub fn annotations(&self) -> Result<JsonObject, JsonError> {
        Ok(self.json.get_object("annotations")?.unwrap_or_default())
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.annotations().ok()?.get_str(key).ok()?
    }

    /// The `platform` member, if present.
    pub fn platform(&self) -> Result<Option<Platform>, JsonError> {
        self.json
            .get_object("platform")?
            .map(|p| Platform::from_json(&p))
            .transpose()
    }

    /// The `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<String> {
        self.annotation(REF_NAME_ANNOTATION)
    }

    /// Point the descriptor at new content.
    pub fn set_content(&mut self, digest: &Digest, size: u64) {
        self.digest = digest.clone();
        self.size = size;
        self.json.set("digest", &digest.to_string());
        self.json.set("size", &size);
    }

    /// Change the media type.
    pub fn set_media_type(&mut self, media_type: &str) {
        self.media_type = media_type.to_string();
        self.json.set_after("mediaType", media_type, &[]);
    }

    /// Replace the annotations; an empty set removes the member, as Go's `omitempty` does.
    pub fn set_annotations(&mut self, annotations: &JsonObject) {
        if annotations.is_empty() {
            self.json.remove("annotations");
        } else {
            self.json.set_object_after(
                "annotations",
                annotations,
                DESCRIPTOR_FIELDS_BEFORE_ANNOTATIONS,
            );
        }
    }
}

/// The parsed top-level index of a store.
#[derive(Clone, Debug)]
pub struct TopIndex {
    /// The whole `index.json` document.
    pub doc: JsonObject,
    /// Its `manifests` entries.
    pub entries: Vec<Descriptor>,
}

impl TopIndex {
    /// Parse `index.json`.
    pub fn parse(bytes: &[u8]) -> Result<TopIndex, DescriptorError> {
        let what = "index.json";
        let doc = JsonObject::parse(bytes).map_err(|source| DescriptorError::Json {
            what: what.into(),
            source,
        })?;
        let entries = parse_descriptor_list(&doc, "manifests", what)?;
        Ok(TopIndex { doc, entries })
    }

    /// The document with `entries` as its `manifests`, compact as Go writes it.
    pub fn to_bytes_with(&self, entries: &[Descriptor]) -> Vec<u8> {
        let mut doc = self.doc.clone();
        let items: Vec<JsonObject> = entries.iter().map(|d| d.json.clone()).collect();
        doc.set_object_array("manifests", &items);
        doc.to_go_bytes()
    }
}

pub(crate) fn parse_descriptor_list(
    doc: &JsonObject,
    field: &str,
    what: &str,
) -> Result<Vec<Descriptor>, DescriptorError> {
    let items = doc
        .get_object_array(field)
        .map_err(|source| DescriptorError::Json {
            what: what.to_string(),
            source,
        })?
        .unwrap_or_default();
    items
        .into_iter()
        .enumerate()
        .map(|(i, obj)| Descriptor::parse(obj, &format!("{what}: {field}[{i}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parsing_and_matching() {
        let p = |s| Platform::parse(s).unwrap();
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/aarch64").matches(&p("linux/arm64")));
        assert!(p("linux/amd64").matches(&p("linux/x86_64")));
        assert!(p("linux/arm/v6").matches(&p("linux/arm")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm/v7")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
        assert!(!p("linux/amd64").matches(&p("linux/arm64")));
    }

    #[test]
    fn descriptors_are_validated() {
        let parse = |s: &str| Descriptor::parse(JsonObject::parse(s.as_bytes()).unwrap(), "d");
        let ok = parse(r#"{"mediaType":"m","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#).unwrap();
        assert_eq!(ok.size, 0);
        for bad in [
            r#"{"mediaType":"m","size":1}"#,
            r#"{"digest":"sha256:abc","size":1}"#,
            r#"{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}"#,
            r#"{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1.5}"#,
            r#"{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":"1"}"#,
            r#"{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#,
            r#"{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"annotations":{"a":1}}"#,
            r#"{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"annotations":["a"]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn setting_annotations_follows_go_field_order() {
        let mut d = Descriptor::parse(
            JsonObject::parse(br#"{"mediaType":"m","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"platform":{"os":"linux","architecture":"amd64"}}"#).unwrap(),
            "d",
        )
        .unwrap();
        let mut a = JsonObject::new();
        a.set("k", "v");
        d.set_annotations(&a);
        let text = String::from_utf8(d.json.to_go_bytes()).unwrap();
        assert!(
            text.contains(r#""size":0,"annotations":{"k":"v"},"platform""#),
            "{text}"
        );
        d.set_annotations(&JsonObject::new());
        assert!(
            !String::from_utf8(d.json.to_go_bytes())
                .unwrap()
                .contains("annotations")
        );
    }
}
