//! Docker archives against the real skopeo (1.9.3): what `skopeo copy … docker-archive:` writes,
//! layercrypt reads through its library API with every blob verified; what layercrypt writes is
//! byte-for-byte what skopeo writes for the same image (apart from file modes), and skopeo reads
//! it back. These tests fail (never skip) when skopeo is missing; `scripts/deps.sh --test`
//! installs it.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::common;

use common::{skopeo_ok, testdata};
use layercrypt::image::{Node, TopIndex, load_node};
use layercrypt::store::docker_archive::{DockerArchive, DockerArchiveWriter};
use layercrypt::store::oci::{LockMode, OciLayout};
use layercrypt::store::tar::Tarball;
use layercrypt::store::{BlobSource, StoreWriter};

const REFERENCE: &str = "layercrypt/plain:v1";

/// `testdata/images/plain:v1` as skopeo writes it to a Docker archive.
fn skopeo_archive(dir: &Path) -> PathBuf {
    let path = dir.join("skopeo.tar");
    let src = format!("oci:{}:v1", testdata("images/plain").display());
    skopeo_ok(&[
        "copy",
        "-q",
        &src,
        &format!("docker-archive:{}:{REFERENCE}", path.display()),
    ]);
    path
}

/// Load every image of `store` as the engine does, reading every blob to its end (which
/// verifies it); returns (config digest, layer digests) per image.
fn load_all(store: &dyn BlobSource) -> Vec<(String, Vec<String>)> {
    let index = TopIndex::parse(&store.read_index().unwrap()).unwrap();
    let mut out = Vec::new();
    for entry in index.entries {
        let Node::Manifest(m) = load_node(store, entry, 0).unwrap() else {
            panic!("an entry is not a manifest");
        };
        for d in std::iter::once(&m.config).chain(&m.layers) {
            let mut r = store.open_blob(&d.digest, d.size).unwrap();
            io::copy(&mut r, &mut io::sink()).unwrap();
        }
        out.push((
            m.config.digest.to_string(),
            m.layers.iter().map(|l| l.digest.to_string()).collect(),
        ));
    }
    out
}

fn diff_ids(config: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(config).unwrap();
    v["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reads_what_skopeo_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = skopeo_archive(dir.path());
    let archive = DockerArchive::open(&path, false).unwrap();
    assert_eq!(
        archive.resolve(REFERENCE).unwrap().as_deref(),
        Some("docker.io/layercrypt/plain:v1")
    );
    assert_eq!(archive.resolve("layercrypt/plain:v2").unwrap(), None);
    let images = load_all(&archive);
    assert_eq!(images.len(), 1);
    let (config, layers) = &images[0];
    let config_bytes =
        fs::read(testdata("images/plain/blobs/sha256").join(config.trim_start_matches("sha256:")))
            .unwrap();
    assert_eq!(layers, &diff_ids(&config_bytes));

    // The same archive compressed, as `docker save | gzip` users keep them.
    let gz_path = dir.path().join("skopeo.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(&gz_path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&fs::read(&path).unwrap()).unwrap();
    gz.finish().unwrap();
    let archive = DockerArchive::open(&gz_path, false).unwrap();
    assert_eq!(load_all(&archive), images);
}

#[test]
fn the_fixture_made_by_skopeo_reads_if_present() {
    // Another part of the test suite may ship a skopeo-made archive; read it when it is there.
    let fixture = testdata("images/docker-archive-skopeo.tar");
    if fixture.exists() {
        let archive = DockerArchive::open(&fixture, false).unwrap();
        assert!(!load_all(&archive).is_empty());
    }
}

/// Write `testdata/images/plain:v1` to a Docker archive with layercrypt, tagged `tag`.
fn layercrypt_archive(target: &Path, tag: &str) {
    let layout = OciLayout::open(&testdata("images/plain"), LockMode::Shared).unwrap();
    let writer = Box::new(DockerArchiveWriter::create(target).unwrap());
    let index = TopIndex::parse(&layout.read_index().unwrap()).unwrap();
    let entry = index
        .entries
        .iter()
        .find(|e| e.ref_name().as_deref() == Some("v1"))
        .unwrap()
        .clone();
    let Node::Manifest(m) = load_node(&layout, entry.clone(), 0).unwrap() else {
        panic!("v1 is not a manifest");
    };
    for d in [&m.desc, &m.config].into_iter().chain(&m.layers) {
        let mut data = Vec::new();
        layout
            .open_blob(&d.digest, d.size)
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(writer.put_blob(&data).unwrap().0, d.digest);
    }
    let mut entry = entry;
    let mut annotations = entry.annotations().unwrap();
    annotations.set("org.opencontainers.image.ref.name", tag);
    entry.set_annotations(&annotations);
    writer.commit(&index.to_bytes_with(&[entry]), &[]).unwrap();
}

#[test]
fn writes_what_skopeo_writes_and_skopeo_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let theirs_path = skopeo_archive(dir.path());
    let ours_path = dir.path().join("ours.tar");
    layercrypt_archive(&ours_path, REFERENCE);

    let theirs = Tarball::open(&theirs_path, false).unwrap();
    let ours = Tarball::open(&ours_path, false).unwrap();
    let names = |t: &Tarball| {
        t.index()
            .names()
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(names(&ours), names(&theirs));
    for name in names(&theirs) {
        // Links resolve to the same content too (`<id>/layer.tar` → `../<diffid>.tar`).
        assert_eq!(
            ours.read_file(&name, 1 << 30).unwrap(),
            theirs.read_file(&name, 1 << 30).unwrap(),
            "{name} differs"
        );
    }
    drop((ours, theirs));

    // skopeo reads our archive back to the same image.
    let back = dir.path().join("back");
    skopeo_ok(&[
        "copy",
        "-q",
        &format!("docker-archive:{}", ours_path.display()),
        &format!("oci:{}:v1", back.display()),
    ]);
    let layout = OciLayout::open(&back, LockMode::Shared).unwrap();
    let (config, _) = &load_all(&layout)[0];
    let original = OciLayout::open(&testdata("images/plain"), LockMode::Shared).unwrap();
    let index = TopIndex::parse(&original.read_index().unwrap()).unwrap();
    let v1 = index
        .entries
        .iter()
        .find(|e| e.ref_name().as_deref() == Some("v1"))
        .unwrap()
        .clone();
    let Node::Manifest(m) = load_node(&original, v1, 0).unwrap() else {
        panic!("v1 is not a manifest");
    };
    assert_eq!(config, &m.config.digest.to_string());
    let inspected: serde_json::Value = serde_json::from_slice(
        &skopeo_ok(&[
            "inspect",
            &format!("docker-archive:{}:{REFERENCE}", ours_path.display()),
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(inspected["Architecture"], "amd64");
}
