//! Loading an image's graph from a store: indexes, manifests and the configs that name a
//! platform, each read verified and bounded, the whole within a budget.
//!
//! Loading reads only small blobs (manifests, indexes, configs); layer blobs are never read
//! here. A hostile image cannot make it read without end: nesting is bounded in depth, and
//! every blob counts against [`GraphBudget`] each time an index lists it.

use crate::digest::Digest;
use crate::format::descriptor::parse_descriptor_list;
use crate::format::json::JsonObject;
use crate::format::media_type::check_unambiguous;
use crate::format::{DOCKER_CONFIG, OCI_CONFIG};
use crate::store::{BlobSource, MAX_MANIFEST_SIZE};

use super::{
    Descriptor, ImageError, IndexNode, ManifestNode, Node, Platform, is_index, is_manifest,
};

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
        refuse_ambiguous(&desc, &doc, &what)?;
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
    refuse_ambiguous(&desc, &doc, &what)?;
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
        diff_ids: None,
    })
}

/// Refuse an index or manifest that another reader could take for the other kind
/// (CVE-2021-41190): what `verify --require-encrypted` checks must be what a runtime runs.
fn refuse_ambiguous(desc: &Descriptor, doc: &JsonObject, what: &str) -> Result<(), ImageError> {
    check_unambiguous(&desc.media_type, doc).map_err(|source| ImageError::Ambiguous {
        what: what.to_string(),
        source,
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

/// The `rootfs.diff_ids` of an image config, one per layer; `None` for manifests whose config
/// is not an image config (artifacts, attestations). `Err` names what is wrong with it.
pub fn read_diff_ids(
    source: &dyn BlobSource,
    manifest: &ManifestNode,
) -> Result<Option<Vec<Digest>>, String> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: Option<RootFs>,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Option<Vec<String>>,
    }
    let config = &manifest.config;
    if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
        return Ok(None);
    }
    let what = format!("config {}", config.digest.short());
    let bytes = source
        .read_small_blob("config", &config.digest, config.size, MAX_MANIFEST_SIZE)
        .map_err(|e| format!("{what}: {e}"))?;
    let parsed: Config =
        serde_json::from_slice(&bytes).map_err(|e| format!("{what} is not valid: {e}"))?;
    let list = parsed
        .rootfs
        .and_then(|r| r.diff_ids)
        .ok_or_else(|| format!("{what} has no rootfs.diff_ids"))?;
    if list.len() != manifest.layers.len() {
        return Err(format!(
            "{what} lists {} diff_ids for {} layers",
            list.len(),
            manifest.layers.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            d.parse()
                .map_err(|e| format!("{what}: rootfs.diff_ids[{i}]: {e}"))
        })
        .collect::<Result<Vec<Digest>, String>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::format::OCI_INDEX;
    use crate::format::OCI_MANIFEST;
    use crate::store::StoreError;

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
    fn documents_that_read_as_both_index_and_manifest_are_refused() {
        let mut blobs = Blobs(Default::default());
        let m = manifest(&mut blobs, 0);
        let list = String::from_utf8(m.json.to_go_bytes()).unwrap();
        // An index that also carries layers: another tool could run them as a manifest.
        let index_with_layers =
            format!(r#"{{"schemaVersion":2,"manifests":[{list}],"layers":[]}}"#);
        let desc = blobs.put(OCI_INDEX, index_with_layers.into_bytes());
        let err = load_node(&blobs, desc, 0).unwrap_err();
        assert!(matches!(err, ImageError::Ambiguous { .. }), "{err}");
        assert!(err.to_string().contains("field `layers`"), "{err}");
        // A manifest that also lists manifests.
        let manifest_with_index = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/x-other","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}},"layers":[],"manifests":[{list}]}}"#
        );
        let desc = blobs.put(OCI_MANIFEST, manifest_with_index.into_bytes());
        let err = load_node(&blobs, desc, 0).unwrap_err();
        assert!(matches!(err, ImageError::Ambiguous { .. }), "{err}");
        // A document whose own mediaType disagrees with its descriptor's.
        let disagreeing =
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","manifests":[{list}]}}"#);
        let desc = blobs.put(OCI_INDEX, disagreeing.into_bytes());
        assert!(matches!(
            load_node(&blobs, desc, 0),
            Err(ImageError::Ambiguous { .. })
        ));
        // The plain index loads.
        let desc = blobs.index(&[&m]);
        assert!(load_node(&blobs, desc, 0).is_ok());
    }
}
