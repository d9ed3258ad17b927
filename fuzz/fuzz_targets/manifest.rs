//! Image manifests (`image`): any bytes as a manifest (or an index, when its `mediaType`
//! says so) in a store that also holds the fixture images' blobs, loaded as the engine loads
//! an image, then classified, described, opened with the test keys and planned
//! (`format::classify_layer`, `keywrap::describe_layer`, `plan::open_layer`, `plan::build`).
//!
//! Invariants: no panic and bounded memory (4 MiB per manifest, the graph budgets); an error
//! has a message; see `check_images` for what holds of a manifest that loads.

#![no_main]

use layercrypt::digest::Digest;
use layercrypt::format::json::JsonObject;
use layercrypt::format::{OCI_MANIFEST, json::to_go_vec};
use layercrypt::image::{Descriptor, Image, is_index, is_manifest, load_node};
use layercrypt_fuzz::{MemStore, check_images, check_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let declared = JsonObject::parse(data)
        .ok()
        .and_then(|doc| doc.get_str("mediaType").ok().flatten())
        .filter(|t| is_index(t) || is_manifest(t));
    let media_type = declared.as_deref().unwrap_or(OCI_MANIFEST);
    let descriptor = format!(
        r#"{{"mediaType":{},"digest":"{}","size":{}}}"#,
        String::from_utf8(to_go_vec(media_type)).expect("JSON is UTF-8"),
        Digest::sha256(data),
        data.len()
    );
    let descriptor = Descriptor::parse(
        JsonObject::parse(descriptor.as_bytes()).expect("descriptor JSON"),
        "fuzz input",
    )
    .expect("a valid descriptor");
    let store = MemStore::new(&[data], b"{}");
    match load_node(&store, descriptor, 0) {
        Ok(root) => {
            for manifest in root.manifests() {
                // What was loaded is what the descriptors say.
                assert!(!manifest.desc.digest.to_string().is_empty());
                let _ = manifest.doc.to_go_bytes();
            }
            check_images(&[Image {
                position: 0,
                ref_name: None,
                root,
            }]);
        }
        Err(e) => check_message(&e),
    }
});
