//! Opening a source: the one way `encrypt`, `decrypt`, `rekey`, `verify` and `inspect` get at
//! images. Open the store an [`ImageRef`] names, resolve the reference it gives, read and parse
//! the top-level index, and load the graph of every image it selects, each within its own
//! budget and all within the store's.
//!
//! Only small blobs (indexes, manifests, configs) are read here, each verified; never a layer.
//! What a killed run left in a store opened for rewriting is put right on the way, with the
//! image graph's reachability handed down to the store.

use crate::digest::Digest;
use crate::error::Error;
use crate::image::{
    self, Descriptor, GraphBudget, Image, Node, TopIndex, load_node_within, read_diff_ids,
};
use crate::plan::base::{Base, BaseManifest};
use crate::store::{self, BlobSource, ImageRef, LockMode, SourceStore};

/// An opened source: its store, its top-level index and the images the reference selects.
pub struct Source {
    /// The store, locked as asked.
    pub store: Box<dyn SourceStore>,
    /// Its top-level index as it was read.
    pub top: TopIndex,
    /// The selected images with their graphs loaded, in index order.
    pub images: Vec<Image>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("store", &self.store.name())
            .field("images", &self.images.len())
            .finish()
    }
}

impl Source {
    /// The store's name for messages (`oci:/srv/images/app`).
    pub fn name(&self) -> &str {
        self.store.name()
    }
}

/// Open the store `image` names (locked as `mode` says) and load the images it selects: the
/// one its reference names, else every image of the index.
pub fn open(image: &ImageRef, mode: LockMode) -> Result<Source, Error> {
    let store = store::open_source(image, mode, image::reachable_from_index)?;
    let reference = image
        .reference()
        .map(|r| store.resolve_reference(r))
        .transpose()
        .map_err(|reason| Error::Selection {
            image: store.name().to_string(),
            reason,
        })?;
    let top = TopIndex::parse(&store.read_index()?)
        .map_err(|e| Error::image(store.name(), image::ImageError::from(e)))?;
    let images = load_images(store.as_ref(), &top, reference.as_deref())?;
    Ok(Source { store, top, images })
}

/// Load the images of `top` selected by `reference` (all when `None`). Naming an image that
/// is not there, or a store that holds none, is an error that lists what there is.
pub fn load_images(
    store: &dyn BlobSource,
    top: &TopIndex,
    reference: Option<&str>,
) -> Result<Vec<Image>, Error> {
    let mut images = Vec::new();
    let mut total = GraphBudget::store_wide();
    for (position, entry) in top.entries.iter().enumerate() {
        let ref_name = entry.ref_name();
        if reference.is_some() && ref_name.as_deref() != reference {
            continue;
        }
        // Each image within its own budget, and all of them within the store's.
        let mut budget = GraphBudget::new();
        let root = load_node_within(store, entry.clone(), 0, &mut budget)
            .and_then(|root| total.absorb(&budget, "image", entry).map(|()| root))
            .map_err(|e| Error::image(Image::name_of(store.name(), entry), e))?;
        images.push(Image {
            position,
            ref_name,
            root,
        });
    }
    if images.is_empty() {
        let mut names: Vec<String> = top
            .entries
            .iter()
            .filter_map(Descriptor::ref_name)
            .collect();
        names.sort();
        let reason = match reference {
            Some(r) => format!(
                "no image named `{r}` (available: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ),
            None => "the layout holds no images".into(),
        };
        return Err(Error::Selection {
            image: store.name().to_string(),
            reason,
        });
    }
    Ok(images)
}

/// Read the config `rootfs.diff_ids` of every manifest of `images` (from `store`, where they
/// were loaded) into [`image::ManifestNode::diff_ids`], to compare them with a base image's.
/// A config that is not an image config, or that cannot be read or does not list one diff_id
/// per layer (an attestation, a damaged image), leaves `None`: its layers are then compared
/// with the base's by digest alone, and a difference is reported as such.
pub fn read_image_diff_ids(store: &dyn BlobSource, images: &mut [Image]) {
    for image in images {
        for manifest in image.root.manifests_mut() {
            manifest.diff_ids = read_diff_ids(store, manifest).ok().flatten();
        }
    }
}

/// Open the base image `base` names (`--base`) and load every manifest of what it selects,
/// with its layers, platform, the indexes above it and its config's diff_ids (when it has
/// usable ones). Only indexes,
/// manifests and configs are read, never a layer, so a registry base costs a few small
/// requests.
pub fn load_base(base: &ImageRef) -> Result<Base, Error> {
    let opened = open(base, LockMode::Shared)?;
    let store = opened.store.as_ref();
    let mut manifests = Vec::new();
    for image in &opened.images {
        let name = image.name(store.name());
        collect_base(store, &name, &image.root, &mut Vec::new(), &mut manifests);
    }
    Ok(Base {
        name: base.to_string(),
        by_digest: base.names_digest(),
        manifests,
    })
}

fn collect_base(
    store: &dyn BlobSource,
    image: &str,
    node: &Node,
    parents: &mut Vec<Digest>,
    out: &mut Vec<BaseManifest>,
) {
    match node {
        Node::Index(index) => {
            parents.push(index.desc.digest.clone());
            for child in &index.children {
                collect_base(store, image, child, parents, out);
            }
            parents.pop();
        }
        Node::Manifest(m) => {
            // As for the image's: without usable diff_ids, layers compare by digest.
            let diff_ids = read_diff_ids(store, m).ok().flatten();
            out.push(BaseManifest {
                image: image.to_string(),
                digest: m.desc.digest.clone(),
                parents: parents.clone(),
                platform: m.platform.clone(),
                layers: m.layers.iter().map(|l| l.digest.clone()).collect(),
                diff_ids,
            });
        }
        Node::Other(_) => {}
    }
}
