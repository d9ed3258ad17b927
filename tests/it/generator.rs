//! Tests of the test-image generator (`tests/it/common/mkimage.rs`): it must be reproducible, write
//! JSON the way Go does, keep its own bookkeeping honest (blob names, diff_ids), and produce
//! layouts that skopeo accepts and copies without rewriting.
//!
//! The skopeo tests fail when `skopeo` is not on `PATH` (`scripts/deps.sh --test` installs it).

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mkimage::{
    self, Compression, Descriptor, ImageSpec, LayerSpec, MTIME, write_image, write_multiarch,
};
use serde_json::Value;

/// A scratch directory under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("mkimage-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn layer(size: u64, compression: Compression) -> LayerSpec {
    LayerSpec::new(size, compression)
}

/// Three layers covering every content mode and the three media types, with annotations.
fn varied_image(seed: u64) -> ImageSpec {
    let mut image = ImageSpec::new("linux", "amd64", seed);
    let mut text = layer(40_000, Compression::Gzip);
    text.compressible = true;
    text.files = 4;
    let mut titled = layer(3_000, Compression::Zstd);
    titled.annotations = vec![
        (
            "org.opencontainers.image.title".into(),
            "top <&> layer".into(),
        ),
        ("com.example.a".into(), "first key when sorted".into()),
    ];
    image.layers = vec![text, layer(20_000, Compression::None), titled];
    image.manifest_annotations = vec![("org.opencontainers.image.version".into(), "1.0".into())];
    image
}

/// Every file under `dir` with its bytes, keyed by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn decompressed(desc: &Descriptor, dir: &Path) -> Vec<u8> {
    let file = fs::File::open(desc.blob_path(dir)).unwrap();
    let mut out = Vec::new();
    match desc.media_type.rsplit('.').next().unwrap() {
        "tar" => io::BufReader::new(file).read_to_end(&mut out),
        "tar+gzip" => flate2::read::GzDecoder::new(file).read_to_end(&mut out),
        "tar+zstd" => zstd::stream::read::Decoder::new(file)
            .unwrap()
            .read_to_end(&mut out),
        other => panic!("unexpected media type suffix {other}"),
    }
    .unwrap();
    out
}

#[test]
fn same_spec_gives_identical_layouts() {
    let (a, b) = (TestDir::new("repro-a"), TestDir::new("repro-b"));
    let image = varied_image(42);
    let wa = write_image(&a.0, "v1", &image).unwrap();
    let wb = write_image(&b.0, "v1", &image).unwrap();
    assert_eq!(wa, wb);
    assert_eq!(tree(&a.0), tree(&b.0));
    // Rewriting into the same layout changes nothing either.
    write_image(&a.0, "v1", &image).unwrap();
    assert_eq!(tree(&a.0), tree(&b.0));
}

#[test]
fn different_seeds_give_different_layers() {
    let dir = TestDir::new("seeds");
    let one = write_image(&dir.join("1"), "v1", &varied_image(1)).unwrap();
    let two = write_image(&dir.join("2"), "v1", &varied_image(2)).unwrap();
    for (l1, l2) in one.images[0].layers.iter().zip(&two.images[0].layers) {
        assert_ne!(l1.digest, l2.digest);
    }
    // Layers at different positions of one image differ too.
    let same = ImageSpec {
        layers: vec![
            layer(5_000, Compression::Gzip),
            layer(5_000, Compression::Gzip),
        ],
        ..ImageSpec::new("linux", "amd64", 1)
    };
    let w = write_image(&dir.join("3"), "v1", &same).unwrap();
    assert_ne!(w.images[0].layers[0].digest, w.images[0].layers[1].digest);
}

/// Pins the bytes of an uncompressed image: tar layout, config and manifest JSON must not drift
/// (compressed blobs are not pinned because they depend on the compressor's version).
#[test]
fn uncompressed_image_digests_are_pinned() {
    let dir = TestDir::new("golden");
    let mut image = ImageSpec::new("linux", "arm64", 7);
    image.variant = Some("v8".into());
    image.layers = vec![layer(10_000, Compression::None), {
        let mut l = layer(777, Compression::None);
        l.compressible = true;
        l.files = 2;
        l
    }];
    let w = write_image(&dir.0, "golden", &image).unwrap();
    let got = (
        w.images[0].layers[0].digest.as_str(),
        w.images[0].layers[1].digest.as_str(),
        w.images[0].config.digest.as_str(),
        w.tagged.digest.as_str(),
    );
    assert_eq!(
        got,
        (
            "sha256:f8e9c681c113c04220a89b68af41a5ee58a9c9b54eaf4508c76d43e4ef994a4d",
            "sha256:603b0da2c86dcc871f505859db0ebbbcd0450feb9c2f5f61713de98cb0dbabef",
            "sha256:5089e372e6c2df5edccea7123ae380fd11f275bcce447462cc70b8687ef83bdd",
            "sha256:dc8d6d1e5c32678138665f85343ecee20bbce8abf614b52f4ab46d47b50624dc",
        )
    );
}

#[test]
fn blobs_are_named_by_digest_and_diff_ids_match() {
    let dir = TestDir::new("digests");
    let image = varied_image(3);
    let w = write_image(&dir.0, "v1", &image).unwrap();
    for (name, bytes) in tree(&dir.join("blobs/sha256")) {
        assert_eq!(mkimage::sha256_digest(&bytes), format!("sha256:{name}"));
    }
    let img = &w.images[0];
    let config = read_json(&img.config.blob_path(&dir.0));
    let config_diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(config_diff_ids, img.diff_ids);
    for ((desc, diff_id), spec) in img.layers.iter().zip(&img.diff_ids).zip(&image.layers) {
        assert_eq!(desc.media_type, spec.compression.media_type());
        assert_eq!(
            desc.size,
            fs::metadata(desc.blob_path(&dir.0)).unwrap().len()
        );
        let tar_bytes = decompressed(desc, &dir.0);
        assert_eq!(&mkimage::sha256_digest(&tar_bytes), diff_id);

        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut content = 0;
        let mut files = 0;
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), MTIME);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            if header.entry_type().is_file() {
                assert_eq!(header.mode().unwrap(), 0o644);
                content += header.size().unwrap();
                files += 1;
            }
        }
        assert_eq!((content, files), (spec.size, spec.files));
    }
}

#[test]
fn compressible_content_compresses_and_random_content_does_not() {
    let dir = TestDir::new("compressible");
    let mut image = ImageSpec::new("linux", "amd64", 5);
    let mut text = layer(200_000, Compression::Gzip);
    text.compressible = true;
    image.layers = vec![text, layer(200_000, Compression::Gzip)];
    let w = write_image(&dir.0, "v1", &image).unwrap();
    let sizes: Vec<u64> = w.images[0].layers.iter().map(|l| l.size).collect();
    assert!(sizes[0] < 100_000, "text layer compressed to {}", sizes[0]);
    assert!(
        sizes[1] > 200_000,
        "random layer compressed to {}",
        sizes[1]
    );
}

#[test]
fn json_is_written_as_go_writes_it() {
    let dir = TestDir::new("json");
    let image = varied_image(9);
    let w = write_image(&dir.0, "v1", &image).unwrap();
    let img = &w.images[0];
    let l = &img.layers;
    let expected_manifest = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            r#""config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"#,
            r#""layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}},"#,
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}},"#,
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{}","size":{},"#,
            r#""annotations":{{"com.example.a":"first key when sorted","#,
            r#""org.opencontainers.image.title":"top \u003c\u0026\u003e layer"}}}}],"#,
            r#""annotations":{{"org.opencontainers.image.version":"1.0"}}}}"#
        ),
        img.config.digest,
        img.config.size,
        l[0].digest,
        l[0].size,
        l[1].digest,
        l[1].size,
        l[2].digest,
        l[2].size
    );
    let manifest = fs::read(img.manifest.blob_path(&dir.0)).unwrap();
    assert_eq!(String::from_utf8(manifest).unwrap(), expected_manifest);

    let config = String::from_utf8(fs::read(img.config.blob_path(&dir.0)).unwrap()).unwrap();
    assert!(
        config.starts_with(r#"{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":["#),
        "{config}"
    );
    assert!(
        config.contains(r#","rootfs":{"type":"layers","diff_ids":["sha256:"#),
        "{config}"
    );

    assert_eq!(
        fs::read_to_string(dir.join("index.json")).unwrap(),
        format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#,
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"#,
                r#""annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
            ),
            w.tagged.digest, w.tagged.size
        )
    );
    assert_eq!(
        fs::read_to_string(dir.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
}

#[test]
fn go_json_escapes_like_encoding_json() {
    let value = serde_json::json!({"k": "a<b>&c\"\\\n\r\t\u{1}\u{8}\u{2028}é"});
    assert_eq!(
        String::from_utf8(mkimage::go_json(&value)).unwrap(),
        r#"{"k":"a\u003cb\u003e\u0026c\"\\\n\r\t\u0001\u0008\u2028é"}"#
    );
}

fn multiarch_specs() -> Vec<ImageSpec> {
    let mut base = layer(6_000, Compression::Gzip);
    base.seed = Some(1000);
    let mut amd64 = ImageSpec::for_platform("linux/amd64", 1).unwrap();
    amd64.layers = vec![base.clone(), layer(4_000, Compression::Gzip)];
    let mut arm64 = ImageSpec::for_platform("linux/arm64/v8", 2).unwrap();
    arm64.layers = vec![base, layer(4_000, Compression::Zstd)];
    vec![amd64, arm64]
}

#[test]
fn multiarch_index_lists_platforms_and_shares_layers() {
    let dir = TestDir::new("multi");
    let w = write_multiarch(&dir.0, "multi", &multiarch_specs()).unwrap();
    assert_eq!(w.index_digest.as_deref(), Some(w.tagged.digest.as_str()));
    assert_eq!(w.tagged.media_type, mkimage::MEDIA_TYPE_INDEX);
    let layers = w.layer_digests();
    assert_eq!(
        layers[0][0], layers[1][0],
        "the seeded base layer is shared"
    );
    assert_ne!(layers[0][1], layers[1][1]);

    let m = w.manifest_digests();
    let sizes: Vec<u64> = w.images.iter().map(|i| i.manifest.size).collect();
    let expected = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#,
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"#,
            r#""platform":{{"architecture":"amd64","os":"linux"}}}},"#,
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"#,
            r#""platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#
        ),
        m[0], sizes[0], m[1], sizes[1]
    );
    assert_eq!(
        fs::read_to_string(w.tagged.blob_path(&dir.0)).unwrap(),
        expected
    );
    let config = read_json(&w.images[1].config.blob_path(&dir.0));
    assert_eq!(
        (config["architecture"].as_str(), config["variant"].as_str()),
        (Some("arm64"), Some("v8"))
    );
}

#[test]
fn adds_and_replaces_references_in_an_existing_layout() {
    let dir = TestDir::new("refs");
    let first = write_image(&dir.0, "v1", &varied_image(1)).unwrap();
    let second = write_multiarch(&dir.0, "multi", &multiarch_specs()).unwrap();
    let replaced = write_image(&dir.0, "v1", &varied_image(2)).unwrap();
    assert_ne!(first.tagged.digest, replaced.tagged.digest);
    let index = read_json(&dir.join("index.json"));
    let entries: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("v1", replaced.tagged.digest.as_str()),
            ("multi", second.tagged.digest.as_str())
        ]
    );
}

#[test]
fn refuses_bad_input_without_panicking() {
    let dir = TestDir::new("bad");
    fs::write(dir.join("stray-file"), b"x").unwrap();
    let err = write_image(&dir.0, "v1", &varied_image(1)).unwrap_err();
    assert!(err.to_string().contains("not an OCI layout"), "{err}");

    let fresh = dir.join("fresh");
    let mut no_files = ImageSpec::new("linux", "amd64", 1);
    let mut l = layer(10, Compression::Gzip);
    l.files = 0;
    no_files.layers = vec![l];
    let err = write_image(&fresh, "v1", &no_files).unwrap_err();
    assert!(err.to_string().contains("layer 0 of linux/amd64"), "{err}");
    assert!(write_multiarch(&fresh, "m", &[]).is_err());
    assert!(write_image(&fresh, "", &varied_image(1)).is_err());
    assert!(ImageSpec::for_platform("linux", 0).is_none());
    assert!(ImageSpec::for_platform("linux//v8", 0).is_none());
    // No temporary files are left behind by the failed layer.
    let leftovers: Vec<_> = fs::read_dir(fresh.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn empty_image_and_empty_layer_are_valid() {
    let dir = TestDir::new("empty");
    let mut image = ImageSpec::new("linux", "amd64", 1);
    write_image(&dir.0, "none", &image).unwrap();
    image.layers = vec![LayerSpec {
        files: 0,
        ..layer(0, Compression::None)
    }];
    let w = write_image(&dir.0, "empty-layer", &image).unwrap();
    // Two directory headers and the end-of-archive blocks.
    assert_eq!(w.images[0].layers[0].size, 2 * 512 + 1024);
}

/// Exact uncompressed size: one 512-byte header per entry, content padded to 512, 1024 at the end.
#[test]
fn uncompressed_layer_size_is_exact() {
    let dir = TestDir::new("size");
    let mut image = ImageSpec::new("linux", "amd64", 1);
    let mut l = layer(8 * 1024 * 1024 + 5, Compression::None);
    l.files = 3;
    image.layers = vec![l];
    let w = write_image(&dir.0, "v1", &image).unwrap();
    let per_file = [2_796_205u64, 2_796_204, 2_796_204];
    let padded: u64 = per_file.iter().map(|n| n.div_ceil(512) * 512).sum();
    assert_eq!(w.images[0].layers[0].size, 5 * 512 + padded + 1024);
    assert_eq!(w.images[0].diff_ids[0], w.images[0].layers[0].digest);
}

// ---------------------------------------------------------------------------------------------
// skopeo accepts what we write

/// skopeo is a test dependency (installed by `scripts/deps.sh --test`): its absence fails the
/// test instead of skipping it, so CI can never pass without checking against it.
fn skopeo_available() -> bool {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "skopeo not found on PATH; install it with scripts/deps.sh --test"
    );
    ok
}

/// Runs skopeo with a permissive policy file of its own; panics with its stderr on failure.
fn skopeo(dir: &TestDir, args: &[&str]) -> Vec<u8> {
    let policy = dir.join("policy.json");
    fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn skopeo_inspect_returns_our_manifest_and_config() {
    if !skopeo_available() {
        return;
    }
    let dir = TestDir::new("skopeo-inspect");
    let layout = dir.join("img");
    let w = write_image(&layout, "v1", &varied_image(4)).unwrap();
    let src = format!("oci:{}:v1", layout.display());
    let raw = skopeo(&dir, &["inspect", "--raw", &src]);
    assert_eq!(raw, fs::read(w.tagged.blob_path(&layout)).unwrap());
    let config = skopeo(&dir, &["inspect", "--config", "--raw", &src]);
    assert_eq!(
        config,
        fs::read(w.images[0].config.blob_path(&layout)).unwrap()
    );
}

#[test]
fn skopeo_copy_verifies_and_keeps_every_byte() {
    if !skopeo_available() {
        return;
    }
    let dir = TestDir::new("skopeo-copy");
    let layout = dir.join("img");
    let w = write_image(&layout, "v1", &varied_image(5)).unwrap();
    let dest = dir.join("copy");
    skopeo(
        &dir,
        &[
            "copy",
            "--quiet",
            // Without it skopeo gzips the uncompressed layer (see the next test).
            "--dest-oci-accept-uncompressed-layers",
            &format!("oci:{}:v1", layout.display()),
            &format!("oci:{}:v1", dest.display()),
        ],
    );
    // Blobs (including the manifest) are identical; skopeo writes index.json its own way.
    let blobs = |d: &Path| tree(&d.join("blobs/sha256"));
    assert_eq!(blobs(&layout), blobs(&dest));
    let index = read_json(&dest.join("index.json"));
    assert_eq!(
        index["manifests"][0]["digest"].as_str(),
        Some(w.tagged.digest.as_str())
    );
}

/// Documents skopeo 1.9.3 behaviour that interop tests must allow for: copying to `oci:`
/// compresses `…layer.v1.tar` layers with gzip (so the manifest changes) unless
/// `--dest-oci-accept-uncompressed-layers` is given; gzip and zstd layers are kept as they are.
#[test]
fn skopeo_copy_gzips_uncompressed_layers_by_default() {
    if !skopeo_available() {
        return;
    }
    let dir = TestDir::new("skopeo-gzips");
    let layout = dir.join("img");
    let w = write_image(&layout, "v1", &varied_image(6)).unwrap();
    let dest = dir.join("copy");
    let src = format!("oci:{}:v1", layout.display());
    skopeo(
        &dir,
        &[
            "copy",
            "--quiet",
            &src,
            &format!("oci:{}:v1", dest.display()),
        ],
    );
    let raw = skopeo(
        &dir,
        &["inspect", "--raw", &format!("oci:{}:v1", dest.display())],
    );
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let media_types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        media_types,
        [
            Compression::Gzip.media_type(),
            Compression::Gzip.media_type(),
            Compression::Zstd.media_type()
        ]
    );
    let digests: Vec<&str> = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let ours = w.layer_digests();
    assert_eq!(
        (digests[0], digests[2]),
        (ours[0][0].as_str(), ours[0][2].as_str())
    );
    assert_ne!(digests[1], ours[0][1]);
}

#[test]
fn skopeo_copy_all_keeps_a_multiarch_index() {
    if !skopeo_available() {
        return;
    }
    let dir = TestDir::new("skopeo-multi");
    let layout = dir.join("img");
    let w = write_multiarch(&layout, "multi", &multiarch_specs()).unwrap();
    let src = format!("oci:{}:multi", layout.display());
    let raw = skopeo(&dir, &["inspect", "--raw", &src]);
    assert_eq!(raw, fs::read(w.tagged.blob_path(&layout)).unwrap());
    let dest = dir.join("copy");
    skopeo(
        &dir,
        &[
            "copy",
            "--quiet",
            "--all",
            &src,
            &format!("oci:{}:multi", dest.display()),
        ],
    );
    let blobs = |d: &Path| tree(&d.join("blobs/sha256"));
    assert_eq!(blobs(&layout), blobs(&dest));
    let index = read_json(&dest.join("index.json"));
    assert_eq!(
        index["manifests"][0]["digest"].as_str(),
        w.index_digest.as_deref()
    );
}
