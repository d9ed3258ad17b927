//! The base image (`--base`): which bottom layers an image shares with the image it was built
//! on, so that `encrypt` leaves them plain (registries keep deduplicating a public base's
//! layers across every image built on it) and `verify --require-encrypted` accepts them plain.
//!
//! A layer is shared when it sits at the same position as a layer of the base and has the same
//! digest, or else the same diff_id (the digest of its uncompressed tar: the same content
//! compressed another way). Every layer of the base must be shared, bottom up: an image whose
//! bottom layers are not the base's was not built on it, and is refused rather than half
//! protected.
//!
//! Which of the base's manifests to compare with: the one the image names in its
//! `org.opencontainers.image.base.digest` annotation (directly, or through the base index that
//! digest names) unless the base was named by digest; among those, the ones of the image's
//! platform; among those, the one that matches most layers.
//!
//! Pure: it compares loaded graphs and diff_ids, never reads a store.

use std::fmt;

use crate::digest::Digest;
use crate::image::{ManifestNode, Platform};

/// The annotation in which image builders (BuildKit, `buildah --identity-label`) record the
/// digest of the base image.
pub const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";

/// A base image: every manifest of the images its reference names, loaded.
#[derive(Clone, Debug)]
pub struct Base {
    /// Its name for messages (`oci:/srv/base:3.19`).
    pub name: String,
    /// Whether it was named by digest (`docker://…@sha256:…`): then the images' own
    /// annotations do not choose among its manifests.
    pub by_digest: bool,
    /// Its manifests, in the order its images and indexes list them.
    pub manifests: Vec<BaseManifest>,
}

/// One manifest of a base image.
#[derive(Clone, Debug)]
pub struct BaseManifest {
    /// The image it belongs to, for messages.
    pub image: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The digests of the indexes above it, the image's own first.
    pub parents: Vec<Digest>,
    /// Its platform, when known.
    pub platform: Option<Platform>,
    /// Its layer digests, bottom first.
    pub layers: Vec<Digest>,
    /// Its config's `rootfs.diff_ids`, when it is an image config that has them.
    pub diff_ids: Option<Vec<Digest>>,
}

impl BaseManifest {
    fn names(&self, digest: &Digest) -> bool {
        &self.digest == digest || self.parents.contains(digest)
    }

    fn platform_name(&self) -> String {
        self.platform
            .as_ref()
            .map_or_else(|| "unknown platform".into(), ToString::to_string)
    }
}

/// Why an image is not built on the base given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotOnBase(pub String);

impl fmt::Display for NotOnBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digest of the base an image manifest says it was built on, from the manifest's own
/// annotations or else from its descriptor's.
pub fn recorded_base(manifest: &ManifestNode) -> Option<Digest> {
    let from_doc = manifest
        .doc
        .get_object("annotations")
        .ok()
        .flatten()
        .and_then(|a| a.get_str(BASE_DIGEST_ANNOTATION).ok().flatten());
    from_doc
        .or_else(|| manifest.desc.annotation(BASE_DIGEST_ANNOTATION))
        .and_then(|d| d.parse().ok())
}

/// How many bottom layers of `manifest` (whose config's diff_ids are `diff_ids`, when they
/// were read) are the base's: every layer of the chosen base manifest, or an error that says
/// which layer differs.
pub fn shared_layers(
    base: &Base,
    manifest: &ManifestNode,
    diff_ids: Option<&[Digest]>,
) -> Result<usize, NotOnBase> {
    let mut candidates: Vec<&BaseManifest> = base.manifests.iter().collect();
    if !base.by_digest
        && let Some(recorded) = recorded_base(manifest)
    {
        candidates.retain(|m| m.names(&recorded));
        if candidates.is_empty() {
            return Err(NotOnBase(format!(
                "it records its base as {recorded} ({BASE_DIGEST_ANNOTATION}), which {} does not hold; name that image, e.g. REPOSITORY@{recorded}",
                base.name
            )));
        }
    }
    if let Some(platform) = &manifest.platform {
        let same = |p: &Option<Platform>| {
            p.as_ref()
                .is_none_or(|p| p.matches(platform) && platform.matches(p))
        };
        if candidates.iter().any(|m| m.platform.is_some()) {
            candidates.retain(|m| same(&m.platform));
        }
        if candidates.is_empty() {
            return Err(NotOnBase(format!(
                "{} has no manifest for {platform}",
                base.name
            )));
        }
    }
    if candidates.is_empty() {
        return Err(NotOnBase(format!("{} holds no image manifest", base.name)));
    }
    // The longest base that matches in full; else report the one that matched furthest.
    let mut best: Option<(usize, &BaseManifest)> = None;
    let mut closest: Option<(usize, &BaseManifest, String)> = None;
    for candidate in candidates {
        match compare(candidate, manifest, diff_ids) {
            Ok(n) => {
                if best.is_none_or(|(b, _)| n > b) {
                    best = Some((n, candidate));
                }
            }
            Err((n, why)) => {
                if closest.as_ref().is_none_or(|(c, _, _)| n > *c) {
                    closest = Some((n, candidate, why));
                }
            }
        }
    }
    match (best, closest) {
        (Some((n, _)), _) => Ok(n),
        (None, Some((_, candidate, why))) => Err(NotOnBase(format!(
            "{why} (compared with {}, {}, manifest {})",
            candidate.image,
            candidate.platform_name(),
            candidate.digest.short()
        ))),
        (None, None) => unreachable!("at least one candidate was compared"),
    }
}

/// Compare `base` with the bottom of `manifest`: `Ok(layers shared)`, or the number of
/// layers that matched before the first difference and what the difference is.
fn compare(
    base: &BaseManifest,
    manifest: &ManifestNode,
    diff_ids: Option<&[Digest]>,
) -> Result<usize, (usize, String)> {
    if base.layers.len() > manifest.layers.len() {
        return Err((
            0,
            format!(
                "the base has {} layers and the image {}",
                base.layers.len(),
                manifest.layers.len()
            ),
        ));
    }
    for (i, base_layer) in base.layers.iter().enumerate() {
        let layer = &manifest.layers[i].digest;
        if layer == base_layer {
            continue;
        }
        let ours = diff_ids.and_then(|d| d.get(i));
        let theirs = base.diff_ids.as_ref().and_then(|d| d.get(i));
        if ours.is_some() && ours == theirs {
            continue;
        }
        let diff_id = match (ours, theirs) {
            (Some(o), Some(t)) => format!(", diff_id {} against {}", o.short(), t.short()),
            // Nothing else to recognise the same content by.
            _ => " (no diff_ids to compare: a config lists none)".into(),
        };
        return Err((
            i,
            format!(
                "layer {i} is {} and the base's is {}{diff_id}",
                layer.short(),
                base_layer.short()
            ),
        ));
    }
    Ok(base.layers.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json::JsonObject;
    use crate::image::Descriptor;

    fn digest(n: u8) -> Digest {
        Digest::sha256(&[n])
    }

    fn descriptor(media_type: &str, digest: &Digest, annotations: &str) -> Descriptor {
        let json =
            format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":1{annotations}}}"#);
        Descriptor::parse(JsonObject::parse(json.as_bytes()).unwrap(), "test").unwrap()
    }

    /// An image manifest for `platform` with layers `layers` (digests of single bytes) and,
    /// if given, the base digest annotation.
    fn manifest(platform: &str, layers: &[u8], recorded: Option<&Digest>) -> ManifestNode {
        let annotations = recorded
            .map(|d| format!(r#","annotations":{{"{BASE_DIGEST_ANNOTATION}":"{d}"}}"#))
            .unwrap_or_default();
        let doc = format!(r#"{{"schemaVersion":2{annotations}}}"#);
        ManifestNode {
            desc: descriptor(crate::format::OCI_MANIFEST, &digest(200), ""),
            doc: JsonObject::parse(doc.as_bytes()).unwrap(),
            platform: Some(Platform::parse(platform).unwrap()),
            config: descriptor(crate::format::OCI_CONFIG, &digest(201), ""),
            layers: layers
                .iter()
                .map(|&n| descriptor(crate::format::OCI_LAYER_GZIP, &digest(n), ""))
                .collect(),
            diff_ids: None,
        }
    }

    fn base_manifest(image: &str, id: u8, platform: &str, layers: &[u8]) -> BaseManifest {
        BaseManifest {
            image: image.into(),
            digest: digest(id),
            parents: vec![digest(id + 100)],
            platform: Some(Platform::parse(platform).unwrap()),
            layers: layers.iter().map(|&n| digest(n)).collect(),
            diff_ids: None,
        }
    }

    fn base(manifests: Vec<BaseManifest>) -> Base {
        Base {
            name: "oci:/base".into(),
            by_digest: false,
            manifests,
        }
    }

    #[test]
    fn bottom_layers_with_the_base_digests_are_shared() {
        let base = base(vec![
            base_manifest("oci:/base:1", 1, "linux/amd64", &[10, 11]),
            base_manifest("oci:/base:1", 2, "linux/arm64", &[20, 21]),
        ]);
        let amd64 = manifest("linux/amd64", &[10, 11, 12], None);
        assert_eq!(shared_layers(&base, &amd64, None), Ok(2));
        let arm64 = manifest("linux/arm64", &[20, 21, 22, 23], None);
        assert_eq!(shared_layers(&base, &arm64, None), Ok(2));
        // The image may be the base itself.
        let same = manifest("linux/amd64", &[10, 11], None);
        assert_eq!(shared_layers(&base, &same, None), Ok(2));
        // No manifest of the base for that platform.
        let err = shared_layers(&base, &manifest("linux/s390x", &[10], None), None).unwrap_err();
        assert!(err.0.contains("no manifest for linux/s390x"), "{err}");
    }

    #[test]
    fn a_layer_compressed_another_way_is_shared_by_diff_id() {
        let mut b = base_manifest("oci:/base:1", 1, "linux/amd64", &[10, 11]);
        b.diff_ids = Some(vec![digest(50), digest(51)]);
        let base = base(vec![b]);
        // Layer 1 is another blob with the same uncompressed content.
        let image = manifest("linux/amd64", &[10, 99, 12], None);
        let diff_ids = [digest(50), digest(51), digest(52)];
        assert_eq!(shared_layers(&base, &image, Some(&diff_ids)), Ok(2));
        // Without the image's diff_ids, it is a difference, named.
        let err = shared_layers(&base, &image, None).unwrap_err();
        assert!(
            err.0.contains("layer 1 is") && err.0.contains("oci:/base:1"),
            "{err}"
        );
        // Other content: the diff_ids say so.
        let other = [digest(50), digest(60), digest(52)];
        let err = shared_layers(&base, &image, Some(&other)).unwrap_err();
        assert!(err.0.contains("diff_id"), "{err}");
    }

    #[test]
    fn an_image_not_built_on_the_base_is_refused() {
        let base = base(vec![base_manifest(
            "oci:/base:1",
            1,
            "linux/amd64",
            &[10, 11, 12],
        )]);
        let err =
            shared_layers(&base, &manifest("linux/amd64", &[10, 13, 12], None), None).unwrap_err();
        assert!(err.0.contains("layer 1 is"), "{err}");
        let err =
            shared_layers(&base, &manifest("linux/amd64", &[10, 11], None), None).unwrap_err();
        assert!(
            err.0.contains("the base has 3 layers and the image 2"),
            "{err}"
        );
    }

    #[test]
    fn the_longest_matching_base_manifest_wins() {
        let base = base(vec![
            base_manifest("oci:/base:small", 1, "linux/amd64", &[10]),
            base_manifest("oci:/base:big", 2, "linux/amd64", &[10, 11]),
            base_manifest("oci:/base:other", 3, "linux/amd64", &[10, 11, 14]),
        ]);
        let image = manifest("linux/amd64", &[10, 11, 12], None);
        assert_eq!(shared_layers(&base, &image, None), Ok(2));
    }

    #[test]
    fn the_recorded_base_digest_chooses_the_base_manifest() {
        let base_v1 = base_manifest("oci:/base:v1", 1, "linux/amd64", &[10]);
        let base_v2 = base_manifest("oci:/base:v2", 2, "linux/amd64", &[10, 11]);
        let mut named = base(vec![base_v1.clone(), base_v2.clone()]);
        // Built on v1 (by its manifest digest, or by its index's): one layer, though v2 would
        // match two.
        for recorded in [digest(1), digest(101)] {
            let image = manifest("linux/amd64", &[10, 11, 12], Some(&recorded));
            assert_eq!(shared_layers(&named, &image, None), Ok(1));
        }
        // A base the store does not hold.
        let image = manifest("linux/amd64", &[10, 11, 12], Some(&digest(77)));
        let err = shared_layers(&named, &image, None).unwrap_err();
        assert!(err.0.contains(BASE_DIGEST_ANNOTATION), "{err}");
        // A base named by digest overrides what the image records.
        named.by_digest = true;
        named.manifests = vec![base_v2];
        assert_eq!(shared_layers(&named, &image, None), Ok(2));
    }
}
