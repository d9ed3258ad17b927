//! Selecting: which images, manifests and layers `--platform` and `--layer` choose. One set
//! of rules for every command that walks images (`encrypt`, `decrypt`, `rekey`, `verify`,
//! `inspect`): a platform no image has, a layer index out of range for a selected manifest,
//! or a layer digest no selected manifest has is an error, before anything is decided.
//!
//! Pure: it reads loaded graphs only, never a store.

use std::fmt;

use crate::digest::Digest;
use crate::error::Error;
use crate::image::{Image, ManifestNode, Platform};

/// Which layers of which manifests to work on.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Platforms to select; empty means all.
    pub platforms: Vec<Platform>,
    /// Layers to select in each selected manifest; empty means all.
    pub layers: Vec<LayerSelector>,
    /// The image the selected images were built on (`--base`): `encrypt` leaves the layers
    /// they share with it plain, `verify --require-encrypted` accepts them plain.
    pub base: Option<std::sync::Arc<super::base::Base>>,
}

/// One `--layer` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSelector {
    /// A position: 0 is the bottom layer, negative counts from the top (-1 is the top).
    Index(i64),
    /// A layer digest.
    Digest(Digest),
}

impl LayerSelector {
    /// Parse `N`, `-N` or `sha256:HEX`.
    pub fn parse(s: &str) -> Result<LayerSelector, String> {
        if s.contains(':') {
            return s
                .parse()
                .map(LayerSelector::Digest)
                .map_err(|e| format!("{e}"));
        }
        s.parse().map(LayerSelector::Index).map_err(|_| {
            format!("`{s}` is not a layer (expected an index like 0 or -1, or a digest sha256:…)")
        })
    }
}

impl fmt::Display for LayerSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSelector::Index(i) => write!(f, "{i}"),
            LayerSelector::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// What the selection chose in one image.
#[derive(Clone, Debug)]
pub struct ChosenImage {
    /// The image's name for messages.
    pub name: String,
    /// Per manifest, in the order of [`crate::image::Node::manifests`]: `None` when its
    /// platform is not selected, else one flag per layer.
    pub manifests: Vec<Option<Vec<bool>>>,
}

/// Apply `selection` to the `images` of the store named `store`: one [`ChosenImage`] per
/// image, in order. Fails when a platform or a layer digest matches nothing, or a layer
/// index is out of range for a selected manifest.
pub fn choose(
    store: &str,
    images: &[Image],
    selection: &Selection,
) -> Result<Vec<ChosenImage>, Error> {
    check_platforms_exist(store, images, selection)?;
    let mut digest_used = vec![false; selection.layers.len()];
    let mut chosen = Vec::with_capacity(images.len());
    for image in images {
        let name = image.name(store);
        let manifests = image
            .root
            .manifests()
            .into_iter()
            .map(|m| selected_layers(&name, m, selection, &mut digest_used))
            .collect::<Result<_, _>>()?;
        chosen.push(ChosenImage { name, manifests });
    }
    check_digest_selectors_used(store, selection, &digest_used)?;
    Ok(chosen)
}

/// Each selected manifest of `image` with its layer flags, skipping those whose platform is
/// not selected.
pub fn selected_manifests<'a>(
    image: &'a Image,
    chosen: &'a ChosenImage,
) -> impl Iterator<Item = (&'a ManifestNode, &'a [bool])> {
    image
        .root
        .manifests()
        .into_iter()
        .zip(&chosen.manifests)
        .filter_map(|(m, layers)| layers.as_deref().map(|l| (m, l)))
}

/// Fail unless every `--layer sha256:…` matched a layer of a selected manifest.
fn check_digest_selectors_used(
    store: &str,
    selection: &Selection,
    used: &[bool],
) -> Result<(), Error> {
    for (selector, used) in selection.layers.iter().zip(used) {
        if let (LayerSelector::Digest(d), false) = (selector, used) {
            return Err(Error::Selection {
                image: store.to_string(),
                reason: format!("no selected manifest has a layer {d}"),
            });
        }
    }
    Ok(())
}

/// Fail unless every `--platform` matches some manifest.
fn check_platforms_exist(
    store: &str,
    images: &[Image],
    selection: &Selection,
) -> Result<(), Error> {
    let available: Vec<Platform> = images
        .iter()
        .flat_map(|i| i.root.manifests())
        .filter_map(|m| m.platform.clone())
        .collect();
    for pattern in &selection.platforms {
        if !available.iter().any(|p| p.matches(pattern)) {
            let mut names: Vec<String> = available.iter().map(ToString::to_string).collect();
            names.sort();
            names.dedup();
            return Err(Error::Selection {
                image: store.to_string(),
                reason: format!(
                    "no image has platform {pattern} (available: {})",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            });
        }
    }
    Ok(())
}

/// Which layers of a manifest the selection chooses: `None` when its platform is not
/// selected, else one flag per layer. Index selectors are checked against every selected
/// manifest (as skopeo does); out of range is an error. `digest_used` records which digest
/// selectors matched.
fn selected_layers(
    image: &str,
    manifest: &ManifestNode,
    selection: &Selection,
    digest_used: &mut [bool],
) -> Result<Option<Vec<bool>>, Error> {
    let selected = selection.platforms.is_empty()
        || manifest
            .platform
            .as_ref()
            .is_some_and(|p| selection.platforms.iter().any(|s| p.matches(s)));
    if !selected {
        return Ok(None);
    }
    let n = manifest.layers.len();
    if selection.layers.is_empty() {
        return Ok(Some(vec![true; n]));
    }
    let mut chosen = vec![false; n];
    for (k, selector) in selection.layers.iter().enumerate() {
        match selector {
            LayerSelector::Index(i) => {
                let position = if *i >= 0 {
                    Some(*i)
                } else {
                    (n as i64).checked_add(*i)
                };
                match position.filter(|p| (0..n as i64).contains(p)) {
                    Some(p) => chosen[p as usize] = true,
                    None => {
                        return Err(Error::Selection {
                            image: image.to_string(),
                            reason: format!(
                                "layer index {i} is out of range for manifest {} ({}), which has {n} layer{}",
                                manifest.desc.digest.short(),
                                manifest.platform_name(),
                                if n == 1 { "" } else { "s" }
                            ),
                        });
                    }
                }
            }
            LayerSelector::Digest(d) => {
                for (p, layer) in manifest.layers.iter().enumerate() {
                    if &layer.digest == d {
                        chosen[p] = true;
                        digest_used[k] = true;
                    }
                }
            }
        }
    }
    Ok(Some(chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_selectors() {
        assert_eq!(LayerSelector::parse("0").unwrap(), LayerSelector::Index(0));
        assert_eq!(
            LayerSelector::parse("-1").unwrap(),
            LayerSelector::Index(-1)
        );
        assert!(matches!(
            LayerSelector::parse(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
            Ok(LayerSelector::Digest(_))
        ));
        assert!(LayerSelector::parse("top").is_err());
        assert!(LayerSelector::parse("sha256:xyz").is_err());
    }
}
