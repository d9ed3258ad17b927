//! The legacy (pre-1.10) layer ids and `<id>/json` files of a `docker save` archive, computed
//! byte for byte as skopeo computes them, so that an archive written here is the archive
//! skopeo writes for the same image.
//!
//! Pure computation over a config that has already been verified against its digest: no I/O.
//! Its output must never drift from skopeo's (`legacy_layer_ids_match_skopeo` pins it), because
//! these ids name directories and the top one is what `repositories` points at.

use std::collections::HashMap;

use serde_json::value::RawValue;

use crate::digest::Digest;
use crate::format::json::JsonObject;

/// The config attributes skopeo copies into the top legacy layer's `json`.
const LEGACY_TOP_ATTRIBUTES: [&str; 7] = [
    "architecture",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
];

/// The legacy (pre-1.10) layer ids and `json` files of an image, computed as skopeo does so
/// that an archive written here matches one skopeo writes: each id is the sha256 of the layer
/// config with its chain id in `layer_id`.
///
/// Each layer config is a Go `map[string]any`, so it is written with its members sorted by
/// name; the top layer's copies the config's attributes as `json.RawMessage`s.
pub(super) fn legacy_layers(
    config: &[u8],
    diff_ids: &[Digest],
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(diff_ids.len());
    let mut chain: Option<Digest> = None;
    for (i, diff_id) in diff_ids.iter().enumerate() {
        let mut members = JsonObject::new();
        if let Some((parent, _)) = out.last() {
            members.set("parent", parent);
        }
        if i + 1 == diff_ids.len() {
            let attributes: HashMap<String, Box<RawValue>> = serde_json::from_slice(config)
                .map_err(|e| format!("the config is not a JSON object: {e}"))?;
            for attr in LEGACY_TOP_ATTRIBUTES {
                match attributes.get(attr) {
                    Some(raw) => members.set_raw_message(attr, raw),
                    None => members.set(attr, &()),
                }
            }
        }
        let next = match &chain {
            None => diff_id.clone(),
            Some(c) => Digest::sha256(format!("{c} {diff_id}").as_bytes()),
        };
        members.set("layer_id", &next.to_string());
        members.sort_keys();
        let id = Digest::sha256(&members.to_go_bytes()).hex().to_string();
        members.remove("layer_id");
        members.set("id", &id);
        members.sort_keys();
        out.push((id, members.to_go_bytes()));
        chain = Some(next);
    }
    Ok(out)
}
