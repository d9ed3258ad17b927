//! Image indexes (`image::TopIndex`, `source::load_images`): any bytes as a store's
//! `index.json`, beside the fixture images' blobs, parsed, written back, loaded image by
//! image within the graph budgets, walked for reachable blobs, and planned.
//!
//! Invariants: no panic and bounded memory (nesting, node and byte budgets); an error has a
//! message; a parsed index is written back as Go writes it, re-parses to the same entries and
//! is written identically again; loading by reference returns only images of that name; every
//! entry is among the reachable blobs; see `check_images` for the loaded images.

#![no_main]

use layercrypt::image::{TopIndex, reachable};
use layercrypt::source::load_images;
use layercrypt_fuzz::{MemStore, check_images, check_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let top = match TopIndex::parse(data) {
        Ok(top) => top,
        Err(e) => return check_message(&e),
    };
    let written = top.to_bytes_with(&top.entries);
    let again = TopIndex::parse(&written).expect("a written index.json parses");
    assert_eq!(again.entries.len(), top.entries.len());
    for (a, b) in again.entries.iter().zip(&top.entries) {
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.size, b.size);
        assert_eq!(a.media_type, b.media_type);
        assert_eq!(a.ref_name(), b.ref_name());
    }
    assert_eq!(
        again.to_bytes_with(&again.entries),
        written,
        "index.json not written stably"
    );

    let store = MemStore::new(&[], data);
    match load_images(&store, &top, None) {
        Ok(images) => {
            assert_eq!(images.len(), top.entries.len());
            check_images(&images);
        }
        Err(e) => check_message(&e),
    }
    if let Some(name) = top.entries.iter().find_map(|e| e.ref_name()) {
        match load_images(&store, &top, Some(&name)) {
            Ok(images) => assert!(images.iter().all(|i| i.ref_name.as_deref() == Some(&name))),
            Err(e) => check_message(&e),
        }
    }
    match reachable(&store, &top) {
        Ok(blobs) => assert!(top.entries.iter().all(|e| blobs.contains(&e.digest))),
        Err(e) => check_message(&e),
    }
});
