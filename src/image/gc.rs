//! Reachability over the image graph: which blobs an index reaches, and which a rewrite left
//! unreferenced (mark and sweep, as umoci's `casext.GC` does above its blob store).
//!
//! Stores never walk manifests themselves: a layout putting right what a killed run left is
//! handed [`reachable_from_index`] from here. Nothing here removes a blob.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::format::descriptor::parse_descriptor_list;
use crate::format::json::JsonObject;
use crate::store::{BlobSource, MAX_MANIFEST_SIZE};

use super::{Descriptor, ImageError, MAX_NESTING, TopIndex, is_index, is_manifest};

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

/// The blobs the index `bytes` reaches in `store`, or `None` when the index or a blob below it
/// cannot be read: the reachability a store is given to clean up after a killed run (it then
/// removes nothing).
pub fn reachable_from_index(store: &dyn BlobSource, bytes: &[u8]) -> Option<HashSet<Digest>> {
    let index = TopIndex::parse(bytes).ok()?;
    reachable(store, &index).ok()
}

/// Blobs the old index reached and the new one does not, sorted.
pub fn garbage(
    store: &dyn BlobSource,
    old: &TopIndex,
    new: &TopIndex,
) -> Result<Vec<Digest>, ImageError> {
    let before = reachable(store, old)?;
    let after = reachable(store, new)?;
    let mut out: Vec<Digest> = before.difference(&after).cloned().collect();
    out.sort();
    Ok(out)
}
