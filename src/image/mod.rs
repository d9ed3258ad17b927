//! The OCI image graph: manifests and (nested) indexes, loaded from a store (`graph`) and kept
//! as order-preserving JSON so they can be rewritten without loss, and reachability over it
//! (`gc`). The descriptors, platforms and top-level index it is made of are wire format
//! ([`crate::format::descriptor`]), re-exported here.
//!
//! This layer sits above the store interface, as umoci's `casext` sits above its `cas`: stores
//! know blobs and the index, the graph knows what the blobs mean. Loading reads only small
//! blobs (manifests, indexes, configs), each verified against its descriptor and bounded in
//! size, refuses documents that read as both index and manifest, and bounds nesting and the
//! whole graph. Layer blobs are never read here.

mod gc;
mod graph;

pub use gc::{garbage, reachable, reachable_from_index};
pub use graph::{
    GraphBudget, MAX_GRAPH_BYTES, MAX_GRAPH_NODES, MAX_NESTING, MAX_STORE_GRAPH_BYTES,
    MAX_STORE_GRAPH_NODES, load_node, load_node_within, read_diff_ids,
};
// The pure descriptor types live with the wire format; they are named here too because every
// user of the graph needs them.
pub use crate::format::descriptor::{
    DESCRIPTOR_FIELDS_BEFORE_ANNOTATIONS, Descriptor, DescriptorError, Platform, TopIndex,
};
pub use crate::format::media_type::{is_index, is_manifest};

use std::fmt;

use crate::digest::Digest;
use crate::format::json::{JsonError, JsonObject};
use crate::store::StoreError;

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
    /// An index or manifest could be read as the other kind of document (CVE-2021-41190), so
    /// what layercrypt checks might not be what a runtime runs.
    #[error("{what}: {source}")]
    Ambiguous {
        /// The document (`manifest sha256:…`).
        what: String,
        /// Which field makes it ambiguous.
        #[source]
        source: crate::format::media_type::AmbiguousDocument,
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

impl From<DescriptorError> for ImageError {
    fn from(e: DescriptorError) -> ImageError {
        match e {
            DescriptorError::Json { what, source } => ImageError::Json { what, source },
            DescriptorError::Bad { what, reason } => ImageError::BadDescriptor { what, reason },
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
    /// Its config's `rootfs.diff_ids`, one per layer, once something has asked for them
    /// ([`read_diff_ids`]: comparing with a base image); `None` until then, and for a config
    /// that is not an image config.
    pub diff_ids: Option<Vec<Digest>>,
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

impl Image {
    /// The image's name for messages: `oci:/path:ref`, or `oci:/path@sha256:…` when its index
    /// entry has no reference name.
    pub fn name(&self, store: &str) -> String {
        Image::name_of(store, self.root.descriptor())
    }

    /// The name of the image an index `entry` of `store` points to (see [`Image::name`]).
    pub fn name_of(store: &str, entry: &Descriptor) -> String {
        match entry.ref_name() {
            Some(r) => format!("{store}:{r}"),
            None => format!("{store}@{}", entry.digest),
        }
    }
}

/// A layer's position, for messages: image, platform, index and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRef {
    /// The image (`oci:/srv/app:v1`).
    pub image: String,
    /// The platform (`linux/amd64`).
    pub platform: String,
    /// The layer index, 0 = bottom.
    pub index: usize,
    /// The layer digest.
    pub digest: Digest,
}

impl fmt::Display for LayerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, layer {} ({})",
            self.image,
            self.platform,
            self.index,
            self.digest.short()
        )
    }
}
