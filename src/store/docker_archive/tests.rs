//! Tests of the Docker archive store: hostile and legacy archives, the Docker 25 form, and
//! archives written here compared with what skopeo writes (`testdata/images/plain`).

use std::fs;
use std::io::Write;

use super::legacy::legacy_layers;
use super::*;
use crate::digest::VerifyError;
use crate::image::{Node, load_node};
use crate::store::StoreWriter;

/// What a test archive holds.
enum Item<'a> {
    File(&'a str, Vec<u8>),
    Link(&'a str, &'a str),
}
use Item::{File, Link};

fn write_tar(path: &Path, items: &[Item]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match item {
            File(name, data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, &data[..]).unwrap();
            }
            Link(name, target) => {
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    b.finish().unwrap();
}

/// A layer: a tar holding one file.
fn layer(content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "file", content.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn config(diff_ids: &[&Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

fn manifest_json(items: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&items).unwrap()
}

fn open(items: &[Item]) -> (tempfile::TempDir, Result<DockerArchive, StoreError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    write_tar(&path, items);
    let archive = DockerArchive::open(&path, false);
    (dir, archive)
}

fn reason(items: &[Item]) -> String {
    match open(items).1 {
        Err(StoreError::BadArchive { reason, .. }) => reason,
        other => panic!("accepted, or the wrong error: {other:?}"),
    }
}

/// The manifests of every index entry, loaded as the engine loads them, with every blob
/// read to its end (which verifies it).
fn load(archive: &DockerArchive) -> Vec<crate::image::ManifestNode> {
    let index = TopIndex::parse(&archive.read_index().unwrap()).unwrap();
    let mut out = Vec::new();
    for entry in index.entries {
        let Node::Manifest(m) = load_node(archive, entry, 0).unwrap() else {
            panic!("not a manifest");
        };
        for d in std::iter::once(&m.config).chain(&m.layers) {
            if is_foreign(&d.json) {
                continue;
            }
            let mut r = archive.open_blob(&d.digest, d.size).unwrap();
            io::copy(&mut r, &mut io::sink()).unwrap();
        }
        out.push(*m);
    }
    out
}

#[test]
fn legacy_archive_with_linked_layers_and_several_tags() {
    let (base, app) = (layer("base"), layer("app"));
    let (d_base, d_app) = (Digest::sha256(&base), Digest::sha256(&app));
    let (c1, c2) = (config(&[&d_base]), config(&[&d_base, &d_app]));
    let (h1, h2) = (Digest::sha256(&c1), Digest::sha256(&c2));
    let items = manifest_json(serde_json::json!([
        {"Config": format!("{}.json", h1.hex()), "RepoTags": ["alpine:3"], "Layers": ["aaa/layer.tar"]},
        {"Config": format!("{}.json", h2.hex()),
         "RepoTags": ["myapp:1", "registry.example.com:5000/team/myapp:1"],
         "Layers": ["bbb/layer.tar", "ccc/layer.tar"]},
    ]));
    let c1_name = format!("{}.json", h1.hex());
    let c2_name = format!("{}.json", h2.hex());
    let (_dir, archive) = open(&[
        File("aaa/layer.tar", base),
        Link("bbb/layer.tar", "../aaa/layer.tar"),
        File("ccc/layer.tar", app),
        File(&c1_name, c1),
        File(&c2_name, c2),
        File("manifest.json", items),
    ]);
    let archive = archive.unwrap();
    assert!(!archive.serves_oci_index());
    assert!(archive.name().starts_with("docker-archive:"));

    let manifests = load(&archive);
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[0].desc.ref_name().as_deref(), Some("alpine:3"));
    assert_eq!(manifests[1].desc.ref_name().as_deref(), Some("myapp:1"));
    assert_eq!(manifests[1].config.digest, h2);
    assert_eq!(manifests[1].config.media_type, DOCKER_CONFIG);
    let layers: Vec<_> = manifests[1].layers.iter().map(|l| &l.digest).collect();
    assert_eq!(layers, [&d_base, &d_app]);
    assert!(
        manifests[1]
            .layers
            .iter()
            .all(|l| l.media_type == DOCKER_LAYER)
    );
    assert_eq!(
        manifests[0].platform.as_ref().map(ToString::to_string),
        Some("linux/amd64".to_string())
    );
    // Docker's field order, compact.
    let bytes = archive
        .read_small_blob(
            "manifest",
            &manifests[0].desc.digest,
            manifests[0].desc.size,
            1 << 20,
        )
        .unwrap();
    let expect = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":{},"digest":"{h1}"}},"layers":[{{"mediaType":"{DOCKER_LAYER}","size":{},"digest":"{d_base}"}}]}}"#,
        manifests[0].config.size, manifests[0].layers[0].size
    );
    assert_eq!(String::from_utf8(bytes).unwrap(), expect);

    for (reference, expected) in [
        ("alpine:3", Some("alpine:3")),
        ("docker.io/library/alpine:3", Some("alpine:3")),
        ("index.docker.io/library/alpine:3", Some("alpine:3")),
        ("docker.io/library/myapp:1", Some("myapp:1")),
        ("registry.example.com:5000/team/myapp:1", Some("myapp:1")),
        ("alpine", None),
        ("myapp:2", None),
    ] {
        assert_eq!(
            archive.resolve(reference).unwrap().as_deref(),
            expected,
            "{reference}"
        );
    }
    assert!(archive.resolve("Not A Ref").is_err());
    assert!(archive.resolve("alpine@sha256:abc").is_err());
    assert_eq!(archive.images()[1].repo_tags.len(), 2);
}

#[test]
fn skopeo_form_and_untagged_images() {
    let l = layer("x");
    let d = Digest::sha256(&l);
    let c = config(&[&d]);
    let h = Digest::sha256(&c);
    let layer_name = format!("{}.tar", d.hex());
    let config_name = format!("{}.json", h.hex());
    let (_dir, archive) = open(&[
        File(&layer_name, l),
        File(&config_name, c),
        Link("0123/layer.tar", &format!("../{layer_name}")),
        File("0123/VERSION", b"1.0".to_vec()),
        File(
            "manifest.json",
            manifest_json(serde_json::json!([
                {"Config": config_name, "RepoTags": [], "Layers": [layer_name]},
                {"Config": format!("./{config_name}"), "RepoTags": null, "Layers": [format!("0123/layer.tar")]},
            ])),
        ),
        File("repositories", b"{}".to_vec()),
    ]);
    let archive = archive.unwrap();
    let manifests = load(&archive);
    assert_eq!(manifests.len(), 2);
    assert!(manifests.iter().all(|m| m.desc.ref_name().is_none()));
    assert_eq!(manifests[0].layers[0].digest, d);
    assert_eq!(manifests[0].desc.digest, manifests[1].desc.digest);
    assert_eq!(archive.resolve("anything:1").unwrap(), None);
}

#[test]
fn gzip_and_zstd_layers_are_hashed_and_checked_at_open() {
    let (a, b) = (layer("gz"), layer("zst"));
    let (da, db) = (Digest::sha256(&a), Digest::sha256(&b));
    let ga = gzip(&a);
    let zb = zstd::encode_all(&b[..], 3).unwrap();
    let c = config(&[&da, &db]);
    let cname = format!("{}.json", Digest::sha256(&c).hex());
    let manifest = manifest_json(serde_json::json!([
        {"Config": cname, "RepoTags": ["a:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}
    ]));
    let (_dir, archive) = open(&[
        File("a/layer.tar", ga.clone()),
        File("b/layer.tar", zb.clone()),
        File(&cname, c.clone()),
        File("manifest.json", manifest.clone()),
    ]);
    let archive = archive.unwrap();
    let m = load(&archive).remove(0);
    assert_eq!(m.layers[0].media_type, DOCKER_LAYER_GZIP);
    assert_eq!(m.layers[0].digest, Digest::sha256(&ga));
    assert_eq!(m.layers[0].size, ga.len() as u64);
    assert_eq!(m.layers[1].media_type, OCI_LAYER_ZSTD);
    assert_eq!(m.layers[1].digest, Digest::sha256(&zb));

    // A compressed layer whose content is not its diff id is refused at open, naming both.
    let wrong = gzip(&layer("other"));
    let r = reason(&[
        File("a/layer.tar", wrong),
        File("b/layer.tar", zb),
        File(&cname, c),
        File("manifest.json", manifest),
    ]);
    assert!(
        r.contains("a/layer.tar") && r.contains(&da.to_string()),
        "{r}"
    );
}

#[test]
fn foreign_layers_come_from_layer_sources() {
    let (base, top) = (layer("windows base"), layer("top"));
    let (d_base, d_top) = (Digest::sha256(&base), Digest::sha256(&top));
    let c = config(&[&d_base, &d_top]);
    let cname = format!("{}.json", Digest::sha256(&c).hex());
    let remote = Digest::sha256(b"remote compressed bytes");
    let foreign = serde_json::json!({
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "size": 1234,
        "digest": remote.to_string(),
        "urls": ["https://example.com/base"],
    });
    let (_dir, archive) = open(&[
        File("top.tar", top),
        File(&cname, c),
        File(
            "manifest.json",
            manifest_json(serde_json::json!([{
                "Config": cname, "RepoTags": ["win:1"],
                "Layers": ["base.tar", "top.tar"],
                "LayerSources": {d_base.to_string(): foreign},
            }])),
        ),
    ]);
    let archive = archive.unwrap();
    let m = load(&archive).remove(0);
    assert_eq!(m.layers[0].digest, remote);
    assert_eq!(
        m.layers[0].media_type,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    );
    assert!(m.layers[0].json.contains("urls"));
    assert!(!archive.has_blob(&remote));
    assert_eq!(m.layers[1].digest, d_top);
}

/// A Docker 25 archive: the same image as `manifest.json` lists it, plus an OCI layout.
fn docker25(manifest_layers: bool, second_ref: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let l = layer("d25");
    let d = Digest::sha256(&l);
    let c = config(&[&d]);
    let h = Digest::sha256(&c);
    let layers = if manifest_layers {
        serde_json::json!([{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": l.len()}])
    } else {
        serde_json::json!([])
    };
    let oci = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": h.to_string(), "size": c.len()},
        "layers": layers,
    }))
    .unwrap();
    let md = Digest::sha256(&oci);
    let entry = |name: &str, tag: &str| {
        serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": oci.len(),
            "annotations": {CONTAINERD_IMAGE_NAME: name, REF_NAME_ANNOTATION: tag},
        })
    };
    let mut entries = vec![entry("docker.io/library/myapp:1.0", "1.0")];
    let mut tags = vec!["myapp:1.0".to_string()];
    if let Some(r) = second_ref {
        entries.push(entry(&format!("docker.io/library/other:{r}"), r));
        tags.push(format!("other:{r}"));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
    }))
    .unwrap();
    vec![
        (blob_name(&d), l),
        (blob_name(&h), c),
        (blob_name(&md), oci),
        ("index.json".into(), index),
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (
            "manifest.json".into(),
            manifest_json(serde_json::json!([{
                "Config": blob_name(&h), "RepoTags": tags, "Layers": [blob_name(&d)],
            }])),
        ),
    ]
}

fn open_owned(files: &[(String, Vec<u8>)]) -> (tempfile::TempDir, DockerArchive) {
    let items: Vec<Item> = files.iter().map(|(n, d)| File(n, d.clone())).collect();
    let (dir, archive) = open(&items);
    (dir, archive.unwrap())
}

#[test]
fn docker25_form_serves_its_own_index() {
    let files = docker25(true, Some("2.0"));
    let (_dir, archive) = open_owned(&files);
    assert!(archive.serves_oci_index());
    assert_eq!(archive.read_index().unwrap(), files[3].1);
    assert_eq!(
        archive.resolve("myapp:1.0").unwrap().as_deref(),
        Some("1.0")
    );
    assert_eq!(
        archive.resolve("other:2.0").unwrap().as_deref(),
        Some("2.0")
    );
    assert_eq!(archive.images()[0].ref_name.as_deref(), Some("1.0"));
    let manifests = load(&archive);
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[0].desc.digest, Digest::sha256(&files[2].1));
}

#[test]
fn docker25_form_falls_back_when_its_index_does_not_line_up() {
    // Docker 25.0.0 wrote OCI manifests without their layers.
    let (_dir, archive) = open_owned(&docker25(false, None));
    assert!(!archive.serves_oci_index());
    assert_eq!(
        archive.resolve("myapp:1.0").unwrap().as_deref(),
        Some("myapp:1.0")
    );
    let m = load(&archive).remove(0);
    assert_eq!(m.layers.len(), 1);
    // Two tags on one manifest may share a ref name (`1.0`): still one manifest per name.
    let (_dir, archive) = open_owned(&docker25(true, Some("1.0")));
    assert!(archive.serves_oci_index());
    assert_eq!(
        archive.resolve("other:1.0").unwrap().as_deref(),
        Some("1.0")
    );

    // A ref name that stands for two different (valid) manifests would select both.
    let mut files = docker25(true, None);
    let mut twin: serde_json::Value = serde_json::from_slice(&files[2].1).unwrap();
    twin["annotations"] = serde_json::json!({"x": "y"});
    let twin = serde_json::to_vec(&twin).unwrap();
    let mut index: serde_json::Value = serde_json::from_slice(&files[3].1).unwrap();
    let mut other = index["manifests"][0].clone();
    other["digest"] = Digest::sha256(&twin).to_string().into();
    other["size"] = twin.len().into();
    other["annotations"][CONTAINERD_IMAGE_NAME] = "docker.io/library/else:1.0".into();
    index["manifests"].as_array_mut().unwrap().push(other);
    files[3].1 = serde_json::to_vec(&index).unwrap();
    files.push((blob_name(&Digest::sha256(&twin)), twin));
    let (_dir, archive) = open_owned(&files);
    assert!(!archive.serves_oci_index());
    assert_eq!(
        archive.resolve("myapp:1.0").unwrap().as_deref(),
        Some("myapp:1.0")
    );
}

#[test]
fn hostile_archives_are_refused_with_precise_reasons() {
    let l = layer("x");
    let d = Digest::sha256(&l);
    let c = config(&[&d]);
    let cname = format!("{}.json", Digest::sha256(&c).hex());
    let item = |layers: serde_json::Value| {
        manifest_json(serde_json::json!([{"Config": cname, "RepoTags": ["a:1"], "Layers": layers}]))
    };
    let empty_config = format!("{}.json", Digest::sha256(b"{}").hex());
    let cases: Vec<(Vec<Item>, &str)> = vec![
        (vec![File("x", vec![])], "no manifest.json"),
        (
            vec![File("manifest.json", b"{not json".to_vec())],
            "manifest.json is not valid",
        ),
        (
            vec![File("manifest.json", b"{}".to_vec())],
            "manifest.json is not valid",
        ),
        (
            vec![File("manifest.json", b"[]".to_vec())],
            "lists no images",
        ),
        (
            vec![File("manifest.json", item(serde_json::json!(["l.tar"])))],
            "config `",
        ),
        (
            vec![
                File("l.tar", l.clone()),
                File(&cname, c.clone()),
                File("manifest.json", item(serde_json::json!(["l.tar", "l.tar"]))),
            ],
            "lists 2 layers, but its config",
        ),
        (
            vec![
                File(&cname, c.clone()),
                File("manifest.json", item(serde_json::json!(["missing.tar"]))),
            ],
            "layer 0 `missing.tar` is not in the archive",
        ),
        (
            vec![
                File(&cname, c.clone()),
                File(
                    "manifest.json",
                    item(serde_json::json!(["../../etc/passwd"])),
                ),
            ],
            "`..`",
        ),
        (
            vec![
                File("l.tar", l.clone()),
                File(&cname, b"{\"rootfs\":".to_vec()),
                File("manifest.json", item(serde_json::json!(["l.tar"]))),
            ],
            "but its name says",
        ),
        (
            vec![
                File("l.tar", l.clone()),
                File(&empty_config, b"{}".to_vec()),
                File(
                    "manifest.json",
                    manifest_json(serde_json::json!([{
                        "Config": empty_config,
                        "Layers": ["l.tar"],
                    }])),
                ),
            ],
            "has no rootfs.diff_ids",
        ),
    ];
    for (items, expect) in cases {
        let r = reason(&items);
        assert!(r.contains(expect), "expected `{expect}` in: {r}");
    }
}

#[test]
fn a_plain_layer_that_is_not_its_diff_id_fails_when_read() {
    let l = layer("x");
    let claimed = Digest::sha256(b"something else");
    let c = config(&[&claimed]);
    let cname = format!("{}.json", Digest::sha256(&c).hex());
    let (_dir, archive) = open(&[
        File("l.tar", l.clone()),
        File(&cname, c),
        File(
            "manifest.json",
            manifest_json(serde_json::json!([{"Config": cname, "Layers": ["l.tar"]}])),
        ),
    ]);
    let archive = archive.unwrap();
    let mut r = archive.open_blob(&claimed, l.len() as u64).unwrap();
    let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
    assert!(matches!(
        VerifyError::from_io(&e),
        Some(VerifyError::DigestMismatch { .. })
    ));
}

fn testdata(path: &str) -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

const PLAIN: &str = "testdata/images/plain/blobs/sha256";
const PLAIN_MANIFEST: &str = "8eb108e66e7fd82fd27f3711f4bf0cee9d67129f8414fc10849cff355d68255b";
const PLAIN_CONFIG: &str = "6502993109d8291170b4d3916b6308d0997ed889cd72b9152cc9c7132c466c83";

/// Known answer: the legacy layer ids skopeo 1.9.3 wrote for `testdata/images/plain:v1`.
#[test]
fn legacy_layer_ids_match_skopeo() {
    let config = testdata(&format!("{PLAIN}/{PLAIN_CONFIG}"));
    let parsed: ImageConfig = serde_json::from_slice(&config).unwrap();
    let diff_ids: Vec<Digest> = parsed
        .rootfs
        .unwrap()
        .diff_ids
        .unwrap()
        .iter()
        .map(|d| d.parse().unwrap())
        .collect();
    let legacy = legacy_layers(&config, &diff_ids).unwrap();
    let ids: Vec<&str> = legacy.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "6e446dc2fd5c9fd04f98046244216927879e05125332da61a4b2235ea3fdc625",
            "b24eaaa207acec6a91690b81af49c4f9b1d3f883b37a07797931a0959a100d76",
            "dcf6161a49ca961eb3c8eda9eec925cf17a003c9d5409a1a6d6927911de1bbe5",
        ]
    );
    assert_eq!(
        String::from_utf8(legacy[1].1.clone()).unwrap(),
        r#"{"id":"b24eaaa207acec6a91690b81af49c4f9b1d3f883b37a07797931a0959a100d76","parent":"6e446dc2fd5c9fd04f98046244216927879e05125332da61a4b2235ea3fdc625"}"#
    );
    assert!(
        String::from_utf8(legacy[2].1.clone())
            .unwrap()
            .starts_with(r#"{"architecture":"amd64","config":{"Env":"#)
    );
}

/// Stage the `plain` test image (three gzip layers) into a writer, under `ref_name`.
fn stage_plain(w: &DockerArchiveWriter, ref_name: &str) -> Vec<u8> {
    for entry in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(PLAIN)).unwrap() {
        let data = fs::read(entry.unwrap().path()).unwrap();
        w.put_blob(&data).unwrap();
    }
    let size = testdata(&format!("{PLAIN}/{PLAIN_MANIFEST}")).len();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": format!("sha256:{PLAIN_MANIFEST}"), "size": size,
            "annotations": {REF_NAME_ANNOTATION: ref_name},
        }],
    }))
    .unwrap()
}

#[test]
fn written_archive_matches_skopeo_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tar");
    fs::write(&target, b"old archive").unwrap();
    let w = Box::new(DockerArchiveWriter::create(&target).unwrap());
    assert!(w.existing_index().unwrap().is_none());
    let index = stage_plain(&w, "layercrypt/plain:v1");
    assert_eq!(fs::read(&target).unwrap(), b"old archive");
    w.commit(&index, &[]).unwrap();
    // Only the archive is left: no staging directory, no temporary file.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    let tar = Tarball::open(&target, false).unwrap();
    // What skopeo 1.9.3 wrote for `docker-archive:…:layercrypt/plain:v1`.
    assert_eq!(
        String::from_utf8(tar.read_file("manifest.json", 1 << 20).unwrap().unwrap()).unwrap(),
        r#"[{"Config":"6502993109d8291170b4d3916b6308d0997ed889cd72b9152cc9c7132c466c83.json","RepoTags":["docker.io/layercrypt/plain:v1"],"Layers":["81408c13bdc3c4d4f226b98256e394f7334261a9160136d09686a131ccb17761.tar","bdf6a2570d5795aa6997a585b5d377e980eb642766908c3882d1abf3bd885e46.tar","edf3a9fd3bf16e24878adcd74107d1022955ee8e872f44df58237b1bddf9ad90.tar"]}]"#
    );
    assert_eq!(
        String::from_utf8(tar.read_file("repositories", 1 << 20).unwrap().unwrap()).unwrap(),
        r#"{"docker.io/layercrypt/plain":{"v1":"dcf6161a49ca961eb3c8eda9eec925cf17a003c9d5409a1a6d6927911de1bbe5"}}"#
    );
    let names: Vec<&str> = tar.index().names().collect();
    assert_eq!(names.len(), 3 + 1 + 3 * 3 + 2, "{names:?}");
    let top = "dcf6161a49ca961eb3c8eda9eec925cf17a003c9d5409a1a6d6927911de1bbe5";
    assert_eq!(
        tar.index().get(&format!("{top}/layer.tar")),
        tar.index()
            .get("edf3a9fd3bf16e24878adcd74107d1022955ee8e872f44df58237b1bddf9ad90.tar")
    );
    assert_eq!(
        tar.read_file(&format!("{top}/VERSION"), 10)
            .unwrap()
            .unwrap(),
        b"1.0"
    );
    drop(tar);

    // Read back: every layer is its diff id and decompresses to what was staged.
    let archive = DockerArchive::open(&target, false).unwrap();
    assert_eq!(
        archive
            .resolve("docker.io/layercrypt/plain:v1")
            .unwrap()
            .as_deref(),
        Some("docker.io/layercrypt/plain:v1")
    );
    let m = load(&archive).remove(0);
    let staged: serde_json::Value =
        serde_json::from_slice(&testdata(&format!("{PLAIN}/{PLAIN_MANIFEST}"))).unwrap();
    for (i, layer) in m.layers.iter().enumerate() {
        assert_eq!(layer.media_type, DOCKER_LAYER);
        let gz = testdata(&format!(
            "{PLAIN}/{}",
            staged["layers"][i]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        ));
        let mut original = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut original)
            .unwrap();
        assert_eq!(layer.digest, Digest::sha256(&original));
        let mut back = Vec::new();
        archive
            .open_blob(&layer.digest, layer.size)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, original);
    }
}

#[test]
fn untagged_and_extra_tags() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tar");
    let mut w = DockerArchiveWriter::create(&target).unwrap();
    w.add_repo_tags("v1", &["example.com:5000/x/y:2".to_string()]);
    let w = Box::new(w);
    // A bare tag (as `oci:DIR:v1` names images) is no Docker reference: untagged...
    let index = stage_plain(&w, "v1");
    w.commit(&index, &[]).unwrap();
    let tar = Tarball::open(&target, false).unwrap();
    let manifest =
        String::from_utf8(tar.read_file("manifest.json", 1 << 20).unwrap().unwrap()).unwrap();
    // ...but the tags added for its ref name are written.
    assert!(
        manifest.contains(r#""RepoTags":["example.com:5000/x/y:2"]"#),
        "{manifest}"
    );

    let target = dir.path().join("untagged.tar");
    let w = Box::new(DockerArchiveWriter::create(&target).unwrap());
    let index = stage_plain(&w, "v1");
    w.commit(&index, &[]).unwrap();
    let tar = Tarball::open(&target, false).unwrap();
    let manifest =
        String::from_utf8(tar.read_file("manifest.json", 1 << 20).unwrap().unwrap()).unwrap();
    assert!(manifest.contains(r#""RepoTags":[]"#), "{manifest}");
    assert_eq!(tar.read_file("repositories", 10).unwrap().unwrap(), b"{}");
}

#[test]
fn writer_refuses_what_a_docker_archive_cannot_hold_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tar");
    let manifest = testdata(&format!("{PLAIN}/{PLAIN_MANIFEST}"));
    let config = testdata(&format!("{PLAIN}/{PLAIN_CONFIG}"));
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        f(&mut m);
        serde_json::to_vec(&m).unwrap()
    };
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            mutate(&|m| {
                m["layers"][1]["mediaType"] =
                    "application/vnd.oci.image.layer.v1.tar+gzip+encrypted".into()
            }),
            OCI_MANIFEST,
            "is encrypted",
        ),
        (
            mutate(&|m| m["layers"][0]["urls"] = serde_json::json!(["https://example.com/l"])),
            OCI_MANIFEST,
            "foreign layer",
        ),
        (
            mutate(&|m| m["layers"][2]["mediaType"] = "application/vnd.in-toto+json".into()),
            OCI_MANIFEST,
            "not a filesystem layer",
        ),
        (mutate(&|_| {}), OCI_INDEX, "not a single image manifest"),
        (
            // The config promises other content than the layers hold.
            {
                let mut c: serde_json::Value = serde_json::from_slice(&config).unwrap();
                c["rootfs"]["diff_ids"][2] = Digest::sha256(b"x").to_string().into();
                let c = serde_json::to_vec(&c).unwrap();
                let d = Digest::sha256(&c);
                let m = mutate(&|m| {
                    m["config"]["digest"] = d.to_string().into();
                    m["config"]["size"] = c.len().into();
                });
                let mut out = c.clone();
                out.push(b'\n');
                out.extend_from_slice(&m);
                out
            },
            OCI_MANIFEST,
            "decompresses to",
        ),
    ];
    for (blob, media_type, expect) in cases {
        let w = Box::new(DockerArchiveWriter::create(&target).unwrap());
        stage_plain(&w, "a:1");
        // The diff-id case carries its own config before the manifest.
        let manifest = match blob.iter().position(|&b| b == b'\n') {
            Some(at) => {
                w.put_blob(&blob[..at]).unwrap();
                blob[at + 1..].to_vec()
            }
            None => blob,
        };
        let (digest, size) = w.put_blob(&manifest).unwrap();
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": media_type, "digest": digest.to_string(), "size": size}],
        }))
        .unwrap();
        let e = w.commit(&index, &[]).unwrap_err();
        assert!(matches!(e, StoreError::CannotStore { .. }), "{e}");
        assert!(
            e.to_string().contains(expect),
            "expected `{expect}` in: {e}"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a failed commit left files behind ({expect})"
        );
    }

    // A writer dropped without commit leaves nothing either.
    {
        let w = DockerArchiveWriter::create(&target).unwrap();
        stage_plain(&w, "a:1");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
