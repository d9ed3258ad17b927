//! Image forms and layer types: OCI archives in, out and in place (checked against skopeo),
//! bare paths detected by content, hostile archives refused, nested indexes, and the layer
//! types that are encrypted (WASM), passed through (in-toto, unknown, foreign with `urls`) or
//! stripped of revealing annotations (zstd:chunked).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

const PLAIN_V1: &str = "sha256:8eb108e66e7fd82fd27f3711f4bf0cee9d67129f8414fc10849cff355d68255b";

fn jwe(name: &str) -> String {
    format!("jwe:{}", key(name))
}

/// `oci-archive:PATH[:REF]`.
fn oci_archive(path: &Path, reference: Option<&str>) -> String {
    match reference {
        Some(r) => format!("oci-archive:{}:{r}", path.display()),
        None => format!("oci-archive:{}", path.display()),
    }
}

/// An OCI archive of the plain fixture's `v1`, written by skopeo.
fn skopeo_archive(dir: &Path) -> PathBuf {
    let path = dir.join("plain.tar");
    skopeo_ok(&[
        "copy",
        &oci(&testdata("images/plain"), "v1"),
        &oci_archive(&path, Some("v1")),
    ]);
    path
}

/// The index entry digest of `reference` in an OCI archive, read by extracting it with tar.
fn archive_layout(archive: &Path, into: &Path) -> Layout {
    fs::create_dir_all(into).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar -x: {}", stderr_of(&out));
    Layout(into.to_path_buf())
}

#[test]
fn oci_archive_in_and_out_round_trips_through_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = skopeo_archive(tmp.path());
    let enc = tmp.path().join("enc.tar");
    layercrypt()
        .args(["encrypt", "-q", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci_archive(&plain, None))
        .arg(oci_archive(&enc, None))
        .assert()
        .success();
    let layout = archive_layout(&enc, &tmp.path().join("x"));
    assert!(
        layout
            .layers("v1")
            .iter()
            .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
    );
    // skopeo reads our archive and decrypts it to the original manifest.
    let dec = tmp.path().join("dec");
    skopeo_ok(&[
        "copy",
        "--decryption-key",
        &key("rsa2048.pem"),
        &oci_archive(&enc, Some("v1")),
        &oci(&dec, "v1"),
    ]);
    assert_eq!(Layout(dec).entry("v1")["digest"], PLAIN_V1);
    // And layercrypt decrypts it to an OCI archive skopeo reads back as the original.
    let back = tmp.path().join("back.tar");
    layercrypt()
        .args(["decrypt", "-q", "-k", &key("rsa2048.pem")])
        .arg(oci_archive(&enc, Some("v1")))
        .arg(oci_archive(&back, Some("v1")))
        .assert()
        .success();
    let again = tmp.path().join("again");
    skopeo_ok(&["copy", &oci_archive(&back, Some("v1")), &oci(&again, "v1")]);
    assert_eq!(Layout(again).entry("v1")["digest"], PLAIN_V1);
}

#[test]
fn oci_archive_in_place_is_replaced_whole_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let archive = skopeo_archive(tmp.path());
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o640)).unwrap();
    let original = fs::read(&archive).unwrap();
    // A bare path is detected as an OCI archive by its content.
    layercrypt()
        .args(["encrypt", "-q", "-r", &jwe("ec256.pub.pem")])
        .arg(&archive)
        .assert()
        .success();
    assert_eq!(
        dir_entries(tmp.path()),
        vec!["plain.tar"],
        "temporary files left"
    );
    let mode = fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let layout = archive_layout(&archive, &tmp.path().join("x"));
    let layers = layout.layers("v1");
    assert!(
        layers
            .iter()
            .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
    );
    // No plaintext layer is left in the archive.
    for l in Layout(testdata("images/plain")).layers("v1") {
        assert!(!layout.has(l["digest"].as_str().unwrap()));
    }
    layercrypt()
        .args(["decrypt", "-q", "-k", &key("ec256.pem")])
        .arg(oci_archive(&archive, None))
        .assert()
        .success();
    let back = archive_layout(&archive, &tmp.path().join("y"));
    assert_eq!(back.entry("v1")["digest"], PLAIN_V1);
    assert_ne!(
        fs::read(&archive).unwrap(),
        original,
        "rewritten by layercrypt"
    );
}

#[test]
fn an_existing_oci_archive_destination_gains_the_image_under_its_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = skopeo_archive(tmp.path());
    layercrypt()
        .args(["encrypt", "-q", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&testdata("images/plain"), "multi"))
        .arg(oci_archive(&archive, Some("multi-enc")))
        .assert()
        .success();
    let layout = archive_layout(&archive, &tmp.path().join("x"));
    assert_eq!(layout.entry("v1")["digest"], PLAIN_V1, "v1 kept");
    let multi = layout.manifests("multi-enc");
    assert_eq!(multi.len(), 2);
    // The archive can be read as a source again, by reference.
    let out = tmp.path().join("out");
    layercrypt()
        .args(["decrypt", "-q", "-k", &key("rsa2048.pem")])
        .arg(oci_archive(&archive, Some("multi-enc")))
        .arg(oci(&out, "multi"))
        .assert()
        .success();
    assert_eq!(Layout(out).entry("multi")["digest"], plain_digest("multi"));
}

#[test]
fn bare_paths_are_detected_and_ambiguous_ones_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = skopeo_archive(tmp.path());
    let out = layercrypt()
        .args(["inspect", "--json"])
        .arg(&archive)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert!(
        report["source"]
            .as_str()
            .unwrap()
            .starts_with("oci-archive:"),
        "{report}"
    );
    // A new bare path that looks like an archive must say which format it wants.
    let err = layercrypt()
        .args(["encrypt", "-r", &jwe("rsa2048.pub.pem")])
        .arg(&archive)
        .arg(tmp.path().join("new.tar"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&err).contains("oci-archive:"),
        "{}",
        stderr_of(&err)
    );
    assert!(!tmp.path().join("new.tar").exists());
    // A file that is not a tar at all is named as such.
    let junk = tmp.path().join("junk");
    fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = layercrypt()
        .arg("inspect")
        .arg(&junk)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr_of(&err).contains("not a"), "{}", stderr_of(&err));
}

/// One raw tar entry: name, type, link target, data.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// A raw tar from (name, type, link target, data), written without the checks a tar
/// builder makes, so hostile names can be expressed.
fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    use tar::EntryType::{Regular, Symlink};
    let layout_file: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let index: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;
    let cases: Vec<(&str, Vec<RawEntry>, &str)> = vec![
        (
            "dotdot",
            vec![
                ("oci-layout", Regular, "", layout_file),
                ("index.json", Regular, "", index),
                ("../escape", Regular, "", b"x"),
            ],
            "`..`",
        ),
        (
            "absolute",
            vec![
                ("oci-layout", Regular, "", layout_file),
                ("index.json", Regular, "", index),
                ("/etc/evil", Regular, "", b"x"),
            ],
            "absolute",
        ),
        (
            "link-out",
            vec![
                ("oci-layout", Regular, "", layout_file),
                ("index.json", Symlink, "/etc/passwd", b""),
            ],
            "absolute path",
        ),
        (
            "duplicate",
            vec![
                ("oci-layout", Regular, "", layout_file),
                ("index.json", Regular, "", index),
                ("./index.json", Regular, "", index),
            ],
            "twice",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, entries, expect) in cases {
        let archive = tmp.path().join(format!("{name}.tar"));
        fs::write(&archive, raw_tar(&entries)).unwrap();
        let out_dir = tmp.path().join(format!("{name}-out"));
        let err = layercrypt()
            .args(["encrypt", "-r", &jwe("rsa2048.pub.pem")])
            .arg(oci_archive(&archive, None))
            .arg(oci(&out_dir, "x"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr_of(&err);
        assert!(
            err.starts_with("error: ") && err.contains(expect),
            "{name}: {err}"
        );
        assert!(!out_dir.exists(), "{name}: output written");
    }
    assert!(!tmp.path().join("escape").exists() && !Path::new("/etc/evil").exists());
    // A header that claims more bytes than the archive holds.
    let mut lying = raw_tar(&[("oci-layout", Regular, "", layout_file)]);
    let mut h = tar::Header::from_byte_slice(&lying[..512]).clone();
    h.set_size(1 << 30);
    h.set_cksum();
    lying[..512].copy_from_slice(h.as_bytes());
    let archive = tmp.path().join("lying.tar");
    fs::write(&archive, &lying).unwrap();
    let err = layercrypt()
        .arg("inspect")
        .arg(oci_archive(&archive, None))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&err).contains("more than the archive holds"),
        "{}",
        stderr_of(&err)
    );
}

// ---------------------------------------------------------------------------------------------
// Layer types

/// Append a layer (blob `content`, descriptor `desc` completed with digest and size) to the
/// single-manifest image `reference`, optionally leaving the blob out of the layout.
fn append_layer(layout: &Layout, reference: &str, content: &[u8], mut desc: Value, store: bool) {
    let digest = digest_of(content);
    if store {
        fs::write(layout.blob_path(&digest), content).unwrap();
    }
    desc["digest"] = Value::from(digest);
    desc["size"] = Value::from(content.len());
    layout.edit_manifest(reference, move |m| {
        m["layers"].as_array_mut().unwrap().push(desc);
    });
}

#[test]
fn layer_types_are_encrypted_passed_through_or_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    append_layer(
        &layout,
        "v1",
        b"\0asm\x01\0\0\0",
        json!({"mediaType": "application/vnd.wasm.content.layer.v1+wasm"}),
        true,
    );
    append_layer(
        &layout,
        "v1",
        br#"{"_type":"https://in-toto.io/Statement/v1"}"#,
        json!({"mediaType": "application/vnd.in-toto+json"}),
        true,
    );
    append_layer(
        &layout,
        "v1",
        b"something else",
        json!({"mediaType": "application/x-unknown"}),
        true,
    );
    append_layer(
        &layout,
        "v1",
        b"the foreign layer, not stored here",
        json!({
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "urls": ["https://example.com/layer.tar.gz"]
        }),
        false,
    );
    let before = layout.layers("v1");
    let out = tmp.path().join("enc");
    let report = layercrypt()
        .args(["encrypt", "--json", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&dir, "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&report).unwrap();
    let actions: Vec<(String, String)> = report["images"][0]["manifests"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap().to_string(),
                l["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions[3..],
        [
            ("encrypt".into(), "".into()),
            ("keep".into(), "not-a-layer".into()),
            ("keep".into(), "not-a-layer".into()),
            ("keep".into(), "foreign".into()),
        ],
        "{report}"
    );
    let enc = Layout(out.clone());
    let after = enc.layers("v1");
    assert_eq!(
        after[3]["mediaType"],
        "application/vnd.wasm.content.layer.v1+wasm+encrypted"
    );
    for i in 4..7 {
        assert_eq!(after[i], before[i], "layer {i} changed");
    }
    assert!(
        enc.has(before[4]["digest"].as_str().unwrap()),
        "in-toto blob copied"
    );
    assert!(!enc.has(before[6]["digest"].as_str().unwrap()));
    // Decrypting restores the exact manifest.
    let back = tmp.path().join("back");
    layercrypt()
        .args(["decrypt", "-q", "-k", &key("rsa2048.pem")])
        .arg(oci(&out, "v1"))
        .arg(oci(&back, "v1"))
        .assert()
        .success();
    assert_eq!(
        Layout(back).entry("v1")["digest"],
        layout.entry("v1")["digest"]
    );
}

#[test]
fn zstd_chunked_annotations_are_dropped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    layout.edit_manifest("v1", |m| {
        m["layers"][0]["annotations"] = json!({
            "io.github.containers.zstd-chunked.manifest-checksum": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "io.github.containers.zstd-chunked.manifest-position": "100:200:300:1",
            "org.example.keep": "yes"
        });
    });
    let out = layercrypt()
        .args(["encrypt", "--json", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&dir, "v1"))
        .assert()
        .success()
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("warning: ") && err.contains("zstd-chunked.manifest-position"),
        "{err}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"].as_array().unwrap().len(), 1, "{report}");
    let annotations = layout.layers("v1")[0]["annotations"].clone();
    let keys: Vec<&String> = annotations.as_object().unwrap().keys().collect();
    assert!(keys.iter().all(|k| !k.contains("zstd-chunked")), "{keys:?}");
    assert_eq!(annotations["org.example.keep"], "yes");
    // skopeo decrypts the result.
    skopeo_ok(&[
        "copy",
        "--decryption-key",
        &key("rsa2048.pem"),
        &oci(&dir, "v1"),
        &oci(&tmp.path().join("dec"), "v1"),
    ]);
}

#[test]
fn nested_indexes_are_walked_and_only_the_chosen_platform_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    // Wrap the multi-arch index in another index, as `multi-nested`.
    let inner = layout.entry("multi");
    let outer = mkimage::go_json(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [inner]
    }));
    let outer_digest = digest_of(&outer);
    fs::write(layout.blob_path(&outer_digest), &outer).unwrap();
    let mut index = layout.index();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": outer_digest,
        "size": outer.len(),
        "annotations": {"org.opencontainers.image.ref.name": "nested"}
    }));
    fs::write(dir.join("index.json"), mkimage::go_json(&index)).unwrap();
    let before = layout.manifests("nested");
    layercrypt()
        .args([
            "encrypt",
            "-q",
            "-r",
            &jwe("ec256.pub.pem"),
            "--platform",
            "linux/arm64",
        ])
        .arg(oci(&dir, "nested"))
        .assert()
        .success();
    let after = layout.manifests("nested");
    assert_eq!(after[0].1, before[0].1, "amd64 changed");
    assert_ne!(after[1].1, before[1].1, "arm64 unchanged");
    let arm_layers = after[1].2["layers"].as_array().unwrap();
    assert_eq!(
        arm_layers[1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd+encrypted"
    );
    assert_ne!(layout.entry("nested")["digest"], outer_digest.as_str());
    // Decrypting restores the original nested index byte for byte. (skopeo 1.9 cannot
    // check this: it refuses an index inside an index.)
    layercrypt()
        .args(["decrypt", "-q", "-k", &key("ec256.pem")])
        .arg(oci(&dir, "nested"))
        .assert()
        .success();
    assert_eq!(layout.entry("nested")["digest"], outer_digest.as_str());
}

/// A layer shared by two platforms is encrypted once: both manifests point at the same
/// encrypted blob, with the same wrapped key. A Docker manifest list becomes an OCI index,
/// since only OCI manifests can carry encrypted layers.
#[test]
fn shared_layers_are_encrypted_once_and_docker_lists_become_oci_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    // Turn `multi` into a Docker manifest list of Docker schema 2 manifests.
    let list_digest = layout.entry("multi")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut list = layout.json(&list_digest);
    list["mediaType"] = Value::from("application/vnd.docker.distribution.manifest.list.v2+json");
    for child in list["manifests"].as_array_mut().unwrap() {
        let mut m = layout.json(child["digest"].as_str().unwrap());
        to_docker_schema2(&mut m);
        let bytes = mkimage::go_json(&m);
        fs::write(layout.blob_path(&digest_of(&bytes)), &bytes).unwrap();
        child["mediaType"] = Value::from(DOCKER_MANIFEST);
        child["digest"] = Value::from(digest_of(&bytes));
        child["size"] = Value::from(bytes.len());
    }
    let bytes = mkimage::go_json(&list);
    fs::write(layout.blob_path(&digest_of(&bytes)), &bytes).unwrap();
    let mut index = layout.index();
    for e in index["manifests"].as_array_mut().unwrap() {
        if e["digest"] == list_digest.as_str() {
            e["mediaType"] =
                Value::from("application/vnd.docker.distribution.manifest.list.v2+json");
            e["digest"] = Value::from(digest_of(&bytes));
            e["size"] = Value::from(bytes.len());
        }
    }
    fs::write(dir.join("index.json"), mkimage::go_json(&index)).unwrap();

    let out = tmp.path().join("enc");
    layercrypt()
        .args(["encrypt", "-q", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&dir, "multi"))
        .arg(oci(&out, "multi"))
        .assert()
        .success();
    let enc = Layout(out.clone());
    let entry = enc.entry("multi");
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        enc.json(entry["digest"].as_str().unwrap())["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = enc.manifests("multi");
    let (amd, arm) = (&manifests[0].2, &manifests[1].2);
    assert_eq!(
        amd["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        amd["layers"][0], arm["layers"][0],
        "the shared layer was encrypted twice"
    );
    assert_eq!(
        amd["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
    );
    // skopeo decrypts every platform.
    skopeo_ok(&[
        "copy",
        "--all",
        "--decryption-key",
        &key("rsa2048.pem"),
        &oci(&out, "multi"),
        &oci(&tmp.path().join("dec"), "multi"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// docker-archive

/// The `docker save` archives in testdata, made by skopeo 1.9.3, Docker 20.10 and Docker 26
/// (see testdata/README.md), with the reference of an image in each.
const DOCKER_FIXTURES: &[(&str, &str)] = &[
    ("docker-archive-skopeo.tar", "layercrypt/plain:v1"),
    ("docker-save-legacy.tar", "layercrypt/plain:v1"),
    ("docker-save-two.tar", "layercrypt/second:v1"),
    ("docker26-save.tar", "layercrypt/plain:v1"),
    ("docker26-save-two.tar", "docker.io/layercrypt/second:v1"),
    ("docker26-c8d-save.tar", "layercrypt/plain:v1"),
    ("docker26-c8d-save-gzip.tar", "layercrypt/ocigz:v1"),
];

/// `inspect --json` of one image: the layer digests of its only manifest.
fn inspected(reference: &str) -> Vec<String> {
    let out = layercrypt()
        .args(["inspect", "--json", reference])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{reference}: {report}");
    let manifests = images[0]["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{reference}: {report}");
    manifests[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The config's `rootfs.diff_ids` of the single-manifest image `reference` in a layout.
fn diff_ids(layout: &Layout, reference: &str) -> (String, Vec<Value>) {
    let manifests = layout.manifests(reference);
    let config = manifests[0].2["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let ids = layout.json(&config)["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .clone();
    (config, ids)
}

/// Every docker-archive form becomes an encrypted OCI image that skopeo decrypts to the
/// original layers (whose digests are the config's diff_ids for uncompressed archives), and
/// layercrypt writes the decrypted image back as a docker-archive that skopeo reads.
#[test]
fn docker_archives_encrypt_to_oci_and_decrypt_back_to_docker_archives() {
    let tmp = tempfile::tempdir().unwrap();
    for (n, (fixture, reference)) in DOCKER_FIXTURES.iter().enumerate() {
        let archive = testdata("images").join(fixture);
        let source = format!("docker-archive:{}:{reference}", archive.display());
        let original_layers = inspected(&source);
        let enc = tmp.path().join(format!("enc{n}"));
        layercrypt()
            .args(["encrypt", "-q", "-r", &jwe("rsa2048.pub.pem")])
            .arg(&source)
            .arg(oci(&enc, "img"))
            .assert()
            .success();
        let layout = Layout(enc.clone());
        let manifest = &layout.manifests("img")[0].2;
        assert_eq!(
            manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
            "{fixture}"
        );
        assert!(
            layout
                .layers("img")
                .iter()
                .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted")),
            "{fixture}"
        );
        // skopeo (Go ocicrypt) decrypts it to the original layer blobs and config.
        let dec = tmp.path().join(format!("dec{n}"));
        skopeo_ok(&[
            "copy",
            "--decryption-key",
            &key("rsa2048.pem"),
            &oci(&enc, "img"),
            &oci(&dec, "img"),
        ]);
        let decrypted = Layout(dec.clone());
        let layers: Vec<String> = decrypted
            .layers("img")
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(layers, original_layers, "{fixture}");
        let (_, ids) = diff_ids(&decrypted, "img");
        if !fixture.contains("gzip") {
            let ids: Vec<&str> = ids.iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(layers, ids, "{fixture}: layers are not the diff_ids");
        }
        // layercrypt decrypts to a docker-archive, and skopeo reads that back: same config,
        // layers that are the diff_ids.
        let out = tmp.path().join(format!("out{n}.tar"));
        layercrypt()
            .args(["decrypt", "-q", "-k", &key("rsa2048.pem")])
            .arg(oci(&enc, "img"))
            .arg(format!("docker-archive:{}:app/img:{n}", out.display()))
            .assert()
            .success();
        let back = tmp.path().join(format!("back{n}"));
        skopeo_ok(&[
            "copy",
            &format!("docker-archive:{}:app/img:{n}", out.display()),
            &oci(&back, "img"),
        ]);
        // skopeo converts a Docker config when it writes an OCI layout, so compare with its
        // reading of the original archive, which goes through the same conversion.
        let orig = tmp.path().join(format!("orig{n}"));
        skopeo_ok(&["copy", &source, &oci(&orig, "img")]);
        assert_eq!(
            diff_ids(&Layout(back), "img"),
            diff_ids(&Layout(orig), "img"),
            "{fixture}"
        );
        assert_eq!(diff_ids(&decrypted, "img").1, ids, "{fixture}");
        // And layercrypt reads its own docker-archive by tag, layers == diff_ids.
        let ours = inspected(&format!("docker-archive:{}:app/img:{n}", out.display()));
        let ids: Vec<&str> = ids.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(ours, ids, "{fixture}");
    }
}

/// Encrypted output to a docker-archive is refused before any blob is read: exit 2, a hint,
/// and no file.
#[test]
fn encrypting_into_a_docker_archive_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for dst in ["docker-archive:out.tar", "docker-archive:out.tar:app:1"] {
        let out = layercrypt()
            .current_dir(tmp.path())
            .args(["encrypt", "-r", &jwe("rsa2048.pub.pem")])
            .arg(oci(&testdata("images/plain"), "v1"))
            .arg(dst)
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr_of(&out);
        assert!(
            err.starts_with("error: ") && err.contains("hint: "),
            "{err}"
        );
        assert!(err.contains("oci-archive:"), "{err}");
        assert!(dir_entries(tmp.path()).is_empty(), "{dst}: wrote something");
    }
    // In place, a docker-archive source cannot become encrypted either.
    let archive = tmp.path().join("in.tar");
    fs::copy(testdata("images/docker-save-legacy.tar"), &archive).unwrap();
    let before = fs::read(&archive).unwrap();
    layercrypt()
        .args(["encrypt", "-r", &jwe("rsa2048.pub.pem")])
        .arg(&archive)
        .assert()
        .code(2);
    assert_eq!(fs::read(&archive).unwrap(), before);
    assert_eq!(dir_entries(tmp.path()), vec!["in.tar"]);
}

/// A multi-arch image goes to a docker-archive one platform at a time; without `--platform`
/// the run is refused before anything is written.
#[test]
fn a_multi_arch_image_needs_one_platform_for_a_docker_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let source = oci(&testdata("images/skopeo-multiarch"), "multi");
    let out = tmp.path().join("arm.tar");
    let err = layercrypt()
        .args(["decrypt", "-k", &key("rsa2048.pem")])
        .arg(&source)
        .arg(format!("docker-archive:{}", out.display()))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&err).contains("--platform"),
        "{}",
        stderr_of(&err)
    );
    assert!(dir_entries(tmp.path()).is_empty());
    layercrypt()
        .args([
            "decrypt",
            "-q",
            "-k",
            &key("rsa2048.pem"),
            "--platform",
            "linux/arm64",
        ])
        .arg(&source)
        .arg(format!("docker-archive:{}:app:arm", out.display()))
        .assert()
        .success();
    // The zstd layer was decompressed: every layer file is its diff_id.
    let back = tmp.path().join("back");
    skopeo_ok(&[
        "copy",
        &format!("docker-archive:{}:app:arm", out.display()),
        &oci(&back, "arm"),
    ]);
    let (_, ids) = diff_ids(&Layout(back.clone()), "arm");
    let ours = inspected(&format!("docker-archive:{}", out.display()));
    let ids: Vec<&str> = ids.iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(ours, ids);
    assert_eq!(ids.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Every media type of ocicrypt's spec

/// Issue 14, point 5: the layer media types of containers/ocicrypt's `spec/spec.go` (main,
/// August 2026): the OCI layer types, plain, gzip and zstd, distributable or not, and WASM,
/// which ocicrypt main gained. Each is encrypted to its `+encrypted` counterpart, inspected,
/// verified in full under `--require-encrypted`, and decrypted back to the original manifest
/// by layercrypt and by skopeo.
fn media_type_round_trip(media_type: &str, table_type: &str) {
    use common::mkimage::{Compression, ImageSpec, LayerSpec};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let compression = if media_type.ends_with("+gzip") {
        Compression::Gzip
    } else if media_type.ends_with("+zstd") {
        Compression::Zstd
    } else {
        Compression::None
    };
    let mut spec = ImageSpec::new("linux", "amd64", 5);
    spec.layers = vec![LayerSpec::new(16 * 1024, compression)];
    common::mkimage::write_image(&dir, "v1", &spec).unwrap();
    let layout = Layout(dir.clone());
    if media_type.contains("wasm") {
        // A module, not a tar: its diff_id is the digest of the blob itself.
        let module = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x03\x02\x01\0\x0a\x04\x01\x02\0\x0b";
        let digest = layout.replace_layer("v1", 0, module);
        layout.edit_config("v1", |c| c["rootfs"]["diff_ids"][0] = Value::from(digest));
    }
    layout.edit_manifest("v1", |m| {
        m["layers"][0]["mediaType"] = Value::from(media_type);
    });
    let original = layout.entry("v1")["digest"].clone();
    let encrypted_type = format!("{media_type}+encrypted");

    let enc = tmp.path().join("enc");
    layercrypt()
        .args(["encrypt", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&dir, "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    let layer = &Layout(enc.clone()).layers("v1")[0];
    assert_eq!(layer["mediaType"], encrypted_type.as_str(), "{layer:#}");

    let inspect = layercrypt()
        .args(["inspect", "--json"])
        .arg(oci(&enc, "v1"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", stderr_of(&inspect));
    let report: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let inspected = &report["images"][0]["manifests"][0]["layers"][0];
    assert_eq!(inspected["media_type"], encrypted_type.as_str());
    assert_eq!(inspected["encrypted"], true);
    assert_eq!(inspected["schemes"], json!(["jwe"]));
    let table = layercrypt()
        .arg("inspect")
        .arg(oci(&enc, "v1"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let row = table.lines().nth(2).unwrap_or_default();
    assert!(
        row.contains(&format!("  {table_type}  jwe  ")),
        "{table_type}: {table}"
    );

    let verify = layercrypt()
        .args(["verify", "--json", "--full", "--require-encrypted"])
        .args(["-k", &key("rsa2048.pem")])
        .arg(oci(&enc, "v1"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verify.status.code(), Some(0), "{report:#}");
    assert_eq!(
        report["images"][0]["manifests"][0]["layers"][0]["checks"],
        json!(["unwrap", "blob", "hmac", "diff_id", "digest"]),
        "{report:#}"
    );

    let back = tmp.path().join("back");
    layercrypt()
        .args(["decrypt", "-k", &key("rsa2048.pem")])
        .arg(oci(&enc, "v1"))
        .arg(oci(&back, "v1"))
        .assert()
        .success();
    assert_eq!(Layout(back).entry("v1")["digest"], original);
    let by_skopeo = tmp.path().join("skopeo");
    skopeo_decrypt(
        &key("rsa2048.pem"),
        &oci(&enc, "v1"),
        &oci(&by_skopeo, "v1"),
    );
    assert_eq!(Layout(by_skopeo).entry("v1")["digest"], original);
}

macro_rules! media_type_tests {
    ($($name:ident => $media_type:literal, $table_type:literal;)*) => {
        $(
            #[test]
            fn $name() {
                media_type_round_trip($media_type, $table_type);
            }
        )*
    };
}

// Each type, and the TYPE column `inspect` shows for it encrypted.
media_type_tests! {
    media_type_layer_tar => "application/vnd.oci.image.layer.v1.tar", "tar+encrypted";
    media_type_layer_tar_gzip =>
        "application/vnd.oci.image.layer.v1.tar+gzip", "tar+gzip+encrypted";
    media_type_layer_tar_zstd =>
        "application/vnd.oci.image.layer.v1.tar+zstd", "tar+zstd+encrypted";
    media_type_nondistributable_tar =>
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "nondistributable.v1.tar+encrypted";
    media_type_nondistributable_tar_gzip =>
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "nondistributable.v1.tar+gzip+encrypted";
    media_type_nondistributable_tar_zstd =>
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "nondistributable.v1.tar+zstd+encrypted";
    media_type_wasm => "application/vnd.wasm.content.layer.v1+wasm", "wasm+encrypted";
}
