//! The OCI image graph: descriptors, platforms, manifests and (nested) indexes, loaded from a
//! store and kept as order-preserving JSON so they can be rewritten without loss.
//!
//! Loading reads only small blobs (manifests, indexes, configs), each verified against its
//! descriptor and bounded in size; nesting is bounded in depth. Layer blobs are never read here.

use std::collections::HashSet;
use std::fmt;

use crate::digest::Digest;
use crate::format::json::{JsonError, JsonObject};
use crate::format::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
    REF_NAME_ANNOTATION,
};
use crate::store::{BlobSource, MAX_MANIFEST_SIZE, StoreError};

/// How deep indexes may nest before the image is refused as hostile.
pub const MAX_NESTING: usize = 16;

/// Most indexes and manifests one image may consist of, each counted every time an index
/// lists it. Content addressing rules out cycles but not sharing: three small indexes that
/// each list the next a thousand times would otherwise reach a billion manifests. Real
/// multi-platform images have a few dozen.
pub const MAX_GRAPH_NODES: usize = 1024;

/// Most bytes of index, manifest and config JSON read for one image, counted the same way:
/// every loaded manifest is kept in memory until the run ends, and planning holds a few
/// hundred bytes per layer descriptor. Four times the largest single manifest.
pub const MAX_GRAPH_BYTES: u64 = 16 * 1024 * 1024;

/// Most indexes and manifests loaded for all the images of one store together (an
/// `index.json` may list many images, or one heavy image many times).
pub const MAX_STORE_GRAPH_NODES: usize = 16 * MAX_GRAPH_NODES;

/// Most bytes of index, manifest and config JSON loaded for all the images of one store.
pub const MAX_STORE_GRAPH_BYTES: u64 = 16 * MAX_GRAPH_BYTES;

/// Go's field order for an OCI descriptor, used to place members that are added.
pub const DESCRIPTOR_FIELDS_BEFORE_ANNOTATIONS: &[&str] = &["mediaType", "digest", "size", "urls"];

/// A problem with an image's manifests or indexes, naming the blob involved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The store failed to deliver a blob.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest, index or config is not valid JSON or has a member of the wrong type.
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
    BadDescriptor {
        /// Where the descriptor is.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Indexes nest deeper than [`MAX_NESTING`] (or refer to themselves).
    #[error("index {digest} nests more than {MAX_NESTING} levels deep (or refers to itself)")]
    TooDeep {
        /// The index at which the limit was hit.
        digest: Digest,
    },
    /// The image reaches more indexes and manifests, or more bytes of them, than
    /// [`MAX_GRAPH_NODES`] and [`MAX_GRAPH_BYTES`] allow.
    #[error(
        "{what} {digest}: the image reaches more than {limit}, counting each time an index lists one; refusing it as hostile"
    )]
    GraphTooLarge {
        /// `index`, `manifest` or `config`.
        what: &'static str,
        /// The blob at which the limit was hit.
        digest: Digest,
        /// The limit, in words.
        limit: String,
    },
}

/// What loading one image's graph has used so far, checked against [`MAX_GRAPH_NODES`] and
/// [`MAX_GRAPH_BYTES`]. One budget can be carried across the images of a store, so that an
/// `index.json` listing one image a thousand times is bounded as a whole.
#[derive(Debug)]
pub struct GraphBudget {
    nodes: usize,
    bytes: u64,
    max_nodes: usize,
    max_bytes: u64,
}

impl Default for GraphBudget {
    fn default() -> Self {
        GraphBudget::new()
    }
}

impl GraphBudget {
    /// A budget for one image, with nothing spent.
    pub fn new() -> GraphBudget {
        GraphBudget {
            nodes: 0,
            bytes: 0,
            max_nodes: MAX_GRAPH_NODES,
            max_bytes: MAX_GRAPH_BYTES,
        }
    }

    /// A budget for every image of a store ([`MAX_STORE_GRAPH_NODES`],
    /// [`MAX_STORE_GRAPH_BYTES`]), with nothing spent.
    pub fn store_wide() -> GraphBudget {
        GraphBudget {
            nodes: 0,
            bytes: 0,
            max_nodes: MAX_STORE_GRAPH_NODES,
            max_bytes: MAX_STORE_GRAPH_BYTES,
        }
    }

    /// Charge what `image` spent to this (store-wide) budget.
    pub fn absorb(
        &mut self,
        image: &GraphBudget,
        what: &'static str,
        desc: &Descriptor,
    ) -> Result<(), ImageError> {
        self.nodes += image.nodes;
        self.bytes = self.bytes.saturating_add(image.bytes);
        self.check(what, desc)
    }

    /// Account for the blob of `desc`, just read (so within [`MAX_MANIFEST_SIZE`]); `node` is
    /// false for a config.
    fn spend(
        &mut self,
        what: &'static str,
        desc: &Descriptor,
        node: bool,
    ) -> Result<(), ImageError> {
        if node {
            self.nodes += 1;
        }
        self.bytes = self.bytes.saturating_add(desc.size);
        self.check(what, desc)
    }

    fn check(&self, what: &'static str, desc: &Descriptor) -> Result<(), ImageError> {
        let too_large = |limit: String| ImageError::GraphTooLarge {
            what,
            digest: desc.digest.clone(),
            limit,
        };
        if self.nodes > self.max_nodes {
            return Err(too_large(format!(
                "{} indexes and manifests",
                self.max_nodes
            )));
        }
        if self.bytes > self.max_bytes {
            return Err(too_large(format!(
                "{} MiB of index, manifest and config JSON",
                self.max_bytes >> 20
            )));
        }
        Ok(())
    }
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
    pub fn parse(json: JsonObject, what: &str) -> Result<Descriptor, ImageError> {
        let bad = |reason: String| ImageError::BadDescriptor {
            what: what.to_string(),
            reason,
        };
        let json_err = |source| ImageError::Json {
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

/// A node of the image graph.
#[derive(Clone, Debug)]
pub enum Node {
    /// An image index (or Docker manifest list).
    Index(Box<IndexNode>),
    /// An image manifest.
    Manifest(Box<ManifestNode>),
    /// Anything else an index points to; passed through untouched.
    Other(Descriptor),
}

impl Node {
    /// The descriptor that points to this node.
    pub fn descriptor(&self) -> &Descriptor {
        match self {
            Node::Index(i) => &i.desc,
            Node::Manifest(m) => &m.desc,
            Node::Other(d) => d,
        }
    }

    /// Every manifest below (or at) this node, depth first.
    pub fn manifests(&self) -> Vec<&ManifestNode> {
        let mut out = Vec::new();
        self.collect_manifests(&mut out);
        out
    }

    fn collect_manifests<'a>(&'a self, out: &mut Vec<&'a ManifestNode>) {
        match self {
            Node::Index(i) => i.children.iter().for_each(|c| c.collect_manifests(out)),
            Node::Manifest(m) => out.push(m),
            Node::Other(_) => {}
        }
    }

    /// Mutable access to every manifest below (or at) this node, depth first.
    pub fn manifests_mut(&mut self) -> Vec<&mut ManifestNode> {
        let mut out = Vec::new();
        self.collect_manifests_mut(&mut out);
        out
    }

    fn collect_manifests_mut<'a>(&'a mut self, out: &mut Vec<&'a mut ManifestNode>) {
        match self {
            Node::Index(i) => i
                .children
                .iter_mut()
                .for_each(|c| c.collect_manifests_mut(out)),
            Node::Manifest(m) => out.push(m),
            Node::Other(_) => {}
        }
    }
}

/// An image index with its children loaded.
#[derive(Clone, Debug)]
pub struct IndexNode {
    /// The descriptor pointing to the index.
    pub desc: Descriptor,
    /// The index document.
    pub doc: JsonObject,
    /// The nodes its `manifests` point to, in order.
    pub children: Vec<Node>,
}

/// An image manifest with its config and layer descriptors.
#[derive(Clone, Debug)]
pub struct ManifestNode {
    /// The descriptor pointing to the manifest.
    pub desc: Descriptor,
    /// The manifest document.
    pub doc: JsonObject,
    /// The platform, from the parent index or else from the config.
    pub platform: Option<Platform>,
    /// The config descriptor.
    pub config: Descriptor,
    /// Layer descriptors, bottom (0) first.
    pub layers: Vec<Descriptor>,
}

impl ManifestNode {
    /// The platform as text for messages (`linux/amd64`, or `unknown platform`).
    pub fn platform_name(&self) -> String {
        self.platform
            .as_ref()
            .map_or_else(|| "unknown platform".to_string(), ToString::to_string)
    }
}

/// One entry of the top-level `index.json`: an image, with its graph loaded.
#[derive(Clone, Debug)]
pub struct Image {
    /// Position of the entry in `index.json`'s `manifests`.
    pub position: usize,
    /// The entry's `org.opencontainers.image.ref.name`, if any.
    pub ref_name: Option<String>,
    /// The entry's node.
    pub root: Node,
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
    pub fn parse(bytes: &[u8]) -> Result<TopIndex, ImageError> {
        let what = "index.json";
        let doc = JsonObject::parse(bytes).map_err(|source| ImageError::Json {
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

fn parse_descriptor_list(
    doc: &JsonObject,
    field: &str,
    what: &str,
) -> Result<Vec<Descriptor>, ImageError> {
    let items = doc
        .get_object_array(field)
        .map_err(|source| ImageError::Json {
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

/// Whether a media type is an image index (OCI or Docker list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a media type is an image manifest (OCI or Docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Load the graph below `desc`, within a fresh [`GraphBudget`].
pub fn load_node(
    store: &dyn BlobSource,
    desc: Descriptor,
    depth: usize,
) -> Result<Node, ImageError> {
    load_node_within(store, desc, depth, &mut GraphBudget::new())
}

/// Load the graph below `desc`, charging every index, manifest and config read to `budget`.
pub fn load_node_within(
    store: &dyn BlobSource,
    desc: Descriptor,
    depth: usize,
    budget: &mut GraphBudget,
) -> Result<Node, ImageError> {
    if is_index(&desc.media_type) {
        if depth >= MAX_NESTING {
            return Err(ImageError::TooDeep {
                digest: desc.digest.clone(),
            });
        }
        let what = format!("index {}", desc.digest);
        let bytes = store.read_small_blob("index", &desc.digest, desc.size, MAX_MANIFEST_SIZE)?;
        budget.spend("index", &desc, true)?;
        let doc = JsonObject::parse(&bytes).map_err(|source| ImageError::Json {
            what: what.clone(),
            source,
        })?;
        let children = parse_descriptor_list(&doc, "manifests", &what)?
            .into_iter()
            .map(|child| load_node_within(store, child, depth + 1, budget))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Node::Index(Box::new(IndexNode {
            desc,
            doc,
            children,
        })))
    } else if is_manifest(&desc.media_type) {
        load_manifest(store, desc, budget).map(|m| Node::Manifest(Box::new(m)))
    } else {
        Ok(Node::Other(desc))
    }
}

fn load_manifest(
    store: &dyn BlobSource,
    desc: Descriptor,
    budget: &mut GraphBudget,
) -> Result<ManifestNode, ImageError> {
    let what = format!("manifest {}", desc.digest);
    let json_err = |source| ImageError::Json {
        what: what.clone(),
        source,
    };
    let bytes = store.read_small_blob("manifest", &desc.digest, desc.size, MAX_MANIFEST_SIZE)?;
    budget.spend("manifest", &desc, true)?;
    let doc = JsonObject::parse(&bytes).map_err(json_err)?;
    let config_obj =
        doc.get_object("config")
            .map_err(json_err)?
            .ok_or_else(|| ImageError::BadDescriptor {
                what: what.clone(),
                reason: "it has no config".into(),
            })?;
    let config = Descriptor::parse(config_obj, &format!("{what}: config"))?;
    let layers = parse_descriptor_list(&doc, "layers", &what)?;
    let mut platform = desc.platform().map_err(json_err)?;
    if platform.is_none() && (config.media_type == OCI_CONFIG || config.media_type == DOCKER_CONFIG)
    {
        platform = platform_from_config(store, &config, budget)?;
    }
    Ok(ManifestNode {
        desc,
        doc,
        platform,
        config,
        layers,
    })
}

/// The platform an image config declares, if it declares one.
fn platform_from_config(
    store: &dyn BlobSource,
    config: &Descriptor,
    budget: &mut GraphBudget,
) -> Result<Option<Platform>, ImageError> {
    let bytes = store.read_small_blob("config", &config.digest, config.size, MAX_MANIFEST_SIZE)?;
    budget.spend("config", config, false)?;
    let Ok(obj) = JsonObject::parse(&bytes) else {
        return Ok(None);
    };
    Ok(Platform::from_json(&obj)
        .ok()
        .filter(|p| !p.os.is_empty() && !p.architecture.is_empty()))
}

/// Every blob digest reachable from `index`, following indexes, manifests (config, layers,
/// `subject`, `blobs`) at any depth. Used to decide which old blobs a rewrite left unreferenced.
pub fn reachable(store: &dyn BlobSource, index: &TopIndex) -> Result<HashSet<Digest>, ImageError> {
    let mut seen = HashSet::new();
    for entry in &index.entries {
        walk_reachable(store, entry, 0, &mut seen)?;
    }
    Ok(seen)
}

fn walk_reachable(
    store: &dyn BlobSource,
    desc: &Descriptor,
    depth: usize,
    seen: &mut HashSet<Digest>,
) -> Result<(), ImageError> {
    if !seen.insert(desc.digest.clone()) {
        return Ok(());
    }
    if depth >= MAX_NESTING {
        return Err(ImageError::TooDeep {
            digest: desc.digest.clone(),
        });
    }
    if !is_index(&desc.media_type) && !is_manifest(&desc.media_type) {
        return Ok(());
    }
    let what = format!(
        "{} {}",
        if is_index(&desc.media_type) {
            "index"
        } else {
            "manifest"
        },
        desc.digest
    );
    let bytes = store.read_small_blob("manifest", &desc.digest, desc.size, MAX_MANIFEST_SIZE)?;
    let doc = JsonObject::parse(&bytes).map_err(|source| ImageError::Json {
        what: what.clone(),
        source,
    })?;
    let mut children = Vec::new();
    for field in ["manifests", "layers", "blobs"] {
        children.extend(parse_descriptor_list(&doc, field, &what)?);
    }
    for field in ["config", "subject"] {
        if let Some(obj) = doc.get_object(field).map_err(|source| ImageError::Json {
            what: what.clone(),
            source,
        })? {
            children.push(Descriptor::parse(obj, &format!("{what}: {field}"))?);
        }
    }
    for child in &children {
        walk_reachable(store, child, depth + 1, seen)?;
    }
    Ok(())
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

    /// Blobs in memory.
    struct Blobs(std::collections::HashMap<Digest, Vec<u8>>);

    impl Blobs {
        fn put(&mut self, media_type: &str, data: Vec<u8>) -> Descriptor {
            let digest = Digest::sha256(&data);
            let json = format!(
                r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{}}}"#,
                data.len()
            );
            self.0.insert(digest, data);
            Descriptor::parse(JsonObject::parse(json.as_bytes()).unwrap(), "test").unwrap()
        }

        fn index(&mut self, children: &[&Descriptor]) -> Descriptor {
            let list: Vec<String> = children
                .iter()
                .map(|d| String::from_utf8(d.json.to_go_bytes()).unwrap())
                .collect();
            let doc = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, list.join(","));
            self.put(OCI_INDEX, doc.into_bytes())
        }
    }

    impl BlobSource for Blobs {
        fn name(&self) -> &str {
            "memory"
        }
        fn read_index(&self) -> Result<Vec<u8>, StoreError> {
            // Tests load graphs from descriptors; the store's own index is empty.
            Ok(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec())
        }
        fn open_blob(
            &self,
            digest: &Digest,
            size: u64,
        ) -> Result<Box<dyn std::io::Read + Send + '_>, StoreError> {
            Ok(Box::new(crate::digest::VerifyingReader::new(
                &self.0[digest][..],
                digest.clone(),
                size,
            )))
        }
        fn has_blob(&self, digest: &Digest) -> bool {
            self.0.contains_key(digest)
        }
    }

    /// A manifest (with `padding` bytes of annotation) whose config is not read.
    fn manifest(blobs: &mut Blobs, padding: usize) -> Descriptor {
        let doc = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/x-other","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}},"layers":[],"annotations":{{"p":"{}"}}}}"#,
            "x".repeat(padding)
        );
        blobs.put(OCI_MANIFEST, doc.into_bytes())
    }

    #[test]
    fn shared_subgraphs_are_counted_each_time_they_are_reached() {
        let mut blobs = Blobs(Default::default());
        let m = manifest(&mut blobs, 0);
        // The index and MAX_GRAPH_NODES - 1 manifests: the limit itself is fine.
        let fits = blobs.index(&vec![&m; MAX_GRAPH_NODES - 1]);
        let Node::Index(node) = load_node(&blobs, fits, 0).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(node.children.len(), MAX_GRAPH_NODES - 1);
        // 1000 x 1000 x 1000 manifests from three small indexes stop at the limit.
        let mut desc = m.clone();
        for _ in 0..3 {
            desc = blobs.index(&vec![&desc; 1000]);
        }
        let err = load_node(&blobs, desc, 0).unwrap_err();
        assert!(
            matches!(err, ImageError::GraphTooLarge { .. })
                && err
                    .to_string()
                    .contains("more than 1024 indexes and manifests"),
            "{err}"
        );
        // Few nodes, but large ones.
        let big = manifest(&mut blobs, 1 << 20);
        let heavy = blobs.index(&vec![&big; 100]);
        let err = load_node(&blobs, heavy, 0).unwrap_err();
        assert!(err.to_string().contains("more than 16 MiB"), "{err}");
        // One budget across several loads bounds them together.
        let mut budget = GraphBudget::new();
        let half = blobs.index(&vec![&m; MAX_GRAPH_NODES / 2]);
        load_node_within(&blobs, half.clone(), 0, &mut budget).unwrap();
        assert!(load_node_within(&blobs, half.clone(), 0, &mut budget).is_err());

        // The store-wide budget bounds many images that each fit their own.
        let mut total = GraphBudget::store_wide();
        let mut absorbed = 0;
        let err = loop {
            let mut one = GraphBudget::new();
            load_node_within(&blobs, half.clone(), 0, &mut one).unwrap();
            match total.absorb(&one, "image", &half) {
                Ok(()) => absorbed += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, ImageError::GraphTooLarge { .. }));
        assert_eq!(absorbed, MAX_STORE_GRAPH_NODES / (MAX_GRAPH_NODES / 2 + 1));
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
