//! docker-archive `manifest.json` (`store::docker_archive`): any bytes as the `manifest.json`
//! of a `docker save` archive, optionally followed by a NUL byte and an `index.json` (the
//! Docker 25 form), in an archive that also holds the members of every committed Docker
//! fixture archive (configs and manifests whole, compressed layers whole, uncompressed layers
//! as 512-byte stubs, which opening only sniffs). Opened as `DockerArchive::open` opens a
//! file, then its index loaded, tags resolved and the images planned.
//!
//! Invariants: no panic; an error has a message; an archive that opens lists one image per
//! `manifest.json` item, serves an index that parses and loads (or exceeds a graph budget),
//! and resolves every valid tag of its images to a reference its index carries.

#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use layercrypt::error::Error;
use layercrypt::fuzzing::normalize_reference;
use layercrypt::image::{ImageError, TopIndex};
use layercrypt::source::load_images;
use layercrypt::store::BlobSource;
use layercrypt::store::docker_archive::DockerArchive;
use layercrypt_fuzz::{check_images, check_message, with_scratch_file};
use libfuzzer_sys::fuzz_target;

/// The committed Docker archives (`testdata/images/`, see its README).
const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../testdata/images/docker-archive-skopeo.tar"),
    include_bytes!("../../testdata/images/docker-save-legacy.tar"),
    include_bytes!("../../testdata/images/docker-save-two.tar"),
    include_bytes!("../../testdata/images/docker26-c8d-save-gzip.tar"),
    include_bytes!("../../testdata/images/docker26-c8d-save-multi.tar"),
    include_bytes!("../../testdata/images/docker26-c8d-save.tar"),
    include_bytes!("../../testdata/images/docker26-save-two.tar"),
    include_bytes!("../../testdata/images/docker26-save.tar"),
];

/// The tar bytes of every fixture member but `manifest.json` and `index.json` (the first of
/// each name), without the end-of-archive blocks.
fn members() -> &'static [u8] {
    static MEMBERS: OnceLock<Vec<u8>> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        let mut seen = std::collections::HashSet::new();
        let mut builder = tar::Builder::new(Vec::new());
        for fixture in FIXTURES {
            let mut archive = tar::Archive::new(*fixture);
            for entry in archive.entries().expect("fixture tar") {
                let mut entry = entry.expect("fixture entry");
                let name = entry
                    .path()
                    .expect("fixture name")
                    .to_string_lossy()
                    .into_owned();
                let base = name
                    .trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string();
                if base == "manifest.json" || base == "index.json" || !seen.insert(base) {
                    continue;
                }
                let mut header = entry.header().clone();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("fixture data");
                let compressed =
                    data.starts_with(&[0x1f, 0x8b]) || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
                if data.len() > 16 * 1024 && !compressed {
                    data = vec![0; 512];
                    header.set_size(512);
                    header.set_cksum();
                }
                builder.append(&header, &data[..]).expect("append");
            }
        }
        let mut bytes = builder.into_inner().expect("tar");
        // into_inner wrote the two zero blocks that end an archive.
        bytes.truncate(bytes.len() - 1024);
        bytes
    })
}

fn archive_with(manifest: &[u8], index: Option<&[u8]>) -> Vec<u8> {
    let mut builder = tar::Builder::new(members().to_vec());
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, data)
            .expect("append");
    };
    add("manifest.json", manifest);
    if let Some(index) = index {
        add("index.json", index);
    }
    builder.into_inner().expect("tar")
}

fuzz_target!(|data: &[u8]| {
    let (manifest, index) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let tar = archive_with(manifest, index);
    with_scratch_file(&tar, |_, path| {
        let archive = match DockerArchive::open(path, false) {
            Ok(archive) => archive,
            Err(e) => return check_message(&e),
        };
        // Counted as the reader reads them: members it ignores are not validated.
        let items: Vec<serde::de::IgnoredAny> = serde_json::from_slice(manifest)
            .expect("an archive that opens has a manifest.json list");
        assert_eq!(archive.images().len(), items.len());
        let top = TopIndex::parse(&archive.read_index().expect("index"))
            .expect("an archive that opens serves an index that parses");
        let images = match load_images(&archive, &top, None) {
            Ok(images) => images,
            Err(Error::Image { source, .. })
                if matches!(*source, ImageError::GraphTooLarge { .. }) =>
            {
                return;
            }
            Err(e) => panic!("an archive that opens serves an index that does not load: {e}"),
        };
        check_images(&images);
        let refs: Vec<String> = top.entries.iter().filter_map(|e| e.ref_name()).collect();
        for image in archive.images() {
            for tag in &image.repo_tags {
                let Ok(normalized) = normalize_reference(tag) else {
                    continue;
                };
                assert_eq!(
                    normalize_reference(&normalized).as_deref(),
                    Ok(normalized.as_str()),
                    "normalising {tag} twice"
                );
                let resolved = archive.resolve(tag).expect("a valid tag resolves");
                let resolved =
                    resolved.unwrap_or_else(|| panic!("tag {tag} of an image is unknown"));
                assert!(
                    refs.contains(&resolved),
                    "{tag} resolves to {resolved}, not in the index"
                );
            }
        }
    });
});
