//! Composing the new top-level index: the rewritten images' entries put where they belong
//! (in their old places when rewriting in place, merged by reference name into what the
//! destination already lists otherwise, as skopeo does), and the blobs the old index reached
//! that the new one does not, which the commit then removes.
//!
//! Pure but for reading small blobs to walk reachability; it writes nothing.

use crate::digest::Digest;
use crate::error::Error;
use crate::format::REF_NAME_ANNOTATION;
use crate::image::{self, Descriptor, ImageError, TopIndex};
use crate::store::BlobSource;

/// Where the new index starts from.
pub(super) enum Base {
    /// The source's own index: the result goes into the store it came from.
    Source(TopIndex),
    /// A destination that already has an index: entries are merged into it by reference.
    Existing(TopIndex),
    /// A new destination: the source's index document with no entries yet.
    Fresh(TopIndex),
}

impl Base {
    /// The base for a destination other than the source: its `existing` index, if it has one,
    /// else the source's document emptied.
    pub(super) fn for_destination(
        existing: Option<Vec<u8>>,
        source_top: &TopIndex,
        destination: &str,
    ) -> Result<Base, Error> {
        Ok(match existing {
            Some(bytes) => Base::Existing(
                TopIndex::parse(&bytes)
                    .map_err(|e| Error::image(destination, ImageError::from(e)))?,
            ),
            None => {
                let mut fresh = source_top.clone();
                fresh.entries.clear();
                Base::Fresh(fresh)
            }
        })
    }

    fn top(&self) -> &TopIndex {
        match self {
            Base::Source(t) | Base::Existing(t) | Base::Fresh(t) => t,
        }
    }

    /// The index a commit replaces, whose blobs may become garbage.
    fn old(&self) -> Option<&TopIndex> {
        match self {
            Base::Source(t) | Base::Existing(t) => Some(t),
            Base::Fresh(_) => None,
        }
    }
}

/// The new index: its bytes, parsed, and each image's reference name in it.
pub(super) struct NewIndex {
    /// `index.json` as it will be written.
    pub bytes: Vec<u8>,
    /// The same, parsed.
    pub index: TopIndex,
    /// Per image given, the reference name its entry carries.
    pub references: Vec<Option<String>>,
}

/// How the new entries go into the base.
#[derive(Clone, Copy, Debug)]
pub(super) enum Placement<'a> {
    /// Each replaces the entry at its position in the source index (no destination named).
    Replace,
    /// Each is merged by reference name, named `reference` first if one is given (a
    /// destination named, `oci:DIR[:REF]`).
    Merge(Option<&'a str>),
}

/// Put the images' new `entries` (each with its position in the source index) into `base`.
pub(super) fn compose(
    base: &Base,
    entries: Vec<(usize, Descriptor)>,
    placement: Placement<'_>,
    destination: &str,
) -> Result<NewIndex, Error> {
    let mut all = base.top().entries.clone();
    let mut references = Vec::with_capacity(entries.len());
    for (position, mut entry) in entries {
        let Placement::Merge(reference) = placement else {
            references.push(entry.ref_name());
            all[position] = entry;
            continue;
        };
        if let Some(r) = reference {
            let mut annotations = entry.annotations().unwrap_or_default();
            annotations.set(REF_NAME_ANNOTATION, r);
            entry.set_annotations(&annotations);
        }
        references.push(entry.ref_name());
        merge_entry(&mut all, entry);
    }
    let bytes = base.top().to_bytes_with(&all);
    let index =
        TopIndex::parse(&bytes).map_err(|e| Error::image(destination, ImageError::from(e)))?;
    Ok(NewIndex {
        bytes,
        index,
        references,
    })
}

/// Blobs the index being replaced reached that `new` does not: what the commit removes.
pub(super) fn garbage(
    store: &dyn BlobSource,
    base: &Base,
    new: &TopIndex,
) -> Result<Vec<Digest>, ImageError> {
    match base.old() {
        Some(old) => image::garbage(store, old, new),
        None => Ok(Vec::new()),
    }
}

/// Put `entry` into `entries` as skopeo does: replace the first entry with the same reference
/// name, or append.
fn merge_entry(entries: &mut Vec<Descriptor>, entry: Descriptor) {
    let name = entry.ref_name();
    match entries.iter().position(|e| e.ref_name() == name) {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json::JsonObject;

    fn entry(digest_byte: u8, name: Option<&str>) -> Descriptor {
        let digest = Digest::sha256(&[digest_byte]);
        let mut json = JsonObject::parse(
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":1}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        if let Some(n) = name {
            let mut a = JsonObject::new();
            a.set(REF_NAME_ANNOTATION, n);
            json.set_object("annotations", &a);
        }
        Descriptor::parse(json, "test").unwrap()
    }

    fn top(entries: &[Descriptor]) -> TopIndex {
        let empty = TopIndex::parse(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        TopIndex::parse(&empty.to_bytes_with(entries)).unwrap()
    }

    fn digests(index: &TopIndex) -> Vec<Digest> {
        index.entries.iter().map(|e| e.digest.clone()).collect()
    }

    #[test]
    fn in_place_entries_keep_their_positions() {
        let base = Base::Source(top(&[entry(1, Some("a")), entry(2, Some("b"))]));
        let new = compose(
            &base,
            vec![(1, entry(3, Some("b")))],
            Placement::Replace,
            "d",
        )
        .unwrap();
        assert_eq!(
            digests(&new.index),
            [Digest::sha256(&[1]), Digest::sha256(&[3])]
        );
        assert_eq!(new.references, [Some("b".to_string())]);
    }

    #[test]
    fn a_destination_merges_by_reference_name_like_skopeo() {
        let base = Base::Existing(top(&[entry(1, Some("a")), entry(2, Some("b"))]));
        // Same name: replaced where it was; new name: appended.
        let new = compose(
            &base,
            vec![(0, entry(3, Some("b"))), (1, entry(4, Some("c")))],
            Placement::Merge(None),
            "d",
        )
        .unwrap();
        assert_eq!(
            digests(&new.index),
            [
                Digest::sha256(&[1]),
                Digest::sha256(&[3]),
                Digest::sha256(&[4])
            ]
        );
    }

    #[test]
    fn a_destination_reference_names_the_entry() {
        let base = Base::Fresh(top(&[]));
        let new = compose(
            &base,
            vec![(5, entry(1, Some("old")))],
            Placement::Merge(Some("v2")),
            "d",
        )
        .unwrap();
        assert_eq!(new.references, [Some("v2".to_string())]);
        assert_eq!(new.index.entries[0].ref_name().as_deref(), Some("v2"));
        // A fresh destination replaces nothing, so nothing becomes garbage.
        assert!(base.old().is_none());
    }
}
