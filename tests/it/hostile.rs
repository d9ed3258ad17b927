//! Hostile inputs: layouts whose index, manifests, blobs or encryption annotations were made
//! by someone who wants layercrypt to panic, run out of memory, loop, or write something.
//!
//! Every case is built from a fixture (`testdata/images/plain`, `skopeo-rsa2048`) or from the
//! small files in `testdata/hostile/` (see its README for the list), and every command that
//! reads the broken part must: exit 2, print `error: ` first and name the problem, never
//! panic, leave the source byte for byte as it was, and create nothing (no destination, no
//! temporary file beside it). Layer-level problems that `inspect` can show without failing
//! are checked to be shown. Cases that `tests/it/cli.rs` already runs for `decrypt` in place
//! (flipped layer byte, truncated layer, a lying manifest size, `sha256:../…`, a negative
//! index size, short nonce and key, no HMAC) are not repeated here.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use base64::Engine as _;
use common::{
    Layout, dir_entries, fixture_copy, key, layercrypt, mkimage, oci, stderr_of, testdata,
};
use serde_json::{Value, json};

const JWE_KEYS: &str = "org.opencontainers.image.enc.keys.jwe";
const PGP_KEYS: &str = "org.opencontainers.image.enc.keys.pgp";
const PKCS7_KEYS: &str = "org.opencontainers.image.enc.keys.pkcs7";
const PUBOPTS: &str = "org.opencontainers.image.enc.pubopts";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Deterministic junk (the unit tests' xorshift generator), so a failure can be reproduced.
fn junk(len: usize, seed: u64) -> Vec<u8> {
    common::testutil::XorShift::new(seed | 1).bytes(len)
}

/// A file of the hostile corpus.
fn corpus(name: &str) -> Vec<u8> {
    fs::read(testdata("hostile").join(name)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Running a case

/// The commands a case is run with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmd {
    /// `encrypt -r jwe:ec256.pub.pem`, in place and to a new layout.
    Encrypt,
    /// `decrypt` with the fixture's keys, in place and to a new layout.
    Decrypt,
    /// `inspect`.
    Inspect,
}

const ALL: &[Cmd] = &[Cmd::Encrypt, Cmd::Decrypt, Cmd::Inspect];

fn command_line(cmd: Cmd, src: &Path, dst: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = match cmd {
        Cmd::Encrypt => vec![
            "encrypt".into(),
            "-r".into(),
            format!("jwe:{}", key("ec256.pub.pem")),
        ],
        Cmd::Decrypt => vec![
            "decrypt".into(),
            "-k".into(),
            key("rsa2048.pem"),
            "-k".into(),
            key("x509.key"),
            "--dec-recipient".into(),
            format!("pkcs7:{}", key("x509.crt")),
        ],
        Cmd::Inspect => vec!["inspect".into()],
    };
    args.push(format!("oci:{}", src.display()));
    args.extend(dst.map(|d| format!("oci:{}", d.display())));
    args
}

/// Every entry under `dir`: a regular file's content, a symlink's target, or the kind of a
/// special file (which must not be opened: a FIFO would block, `/dev/zero` never ends).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    use std::os::unix::fs::FileTypeExt;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if kind.is_dir() {
                walk(root, &path, out);
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, format!("-> {}", target.display()).into_bytes());
            } else if kind.is_fifo() {
                out.insert(rel, b"fifo".to_vec());
            } else {
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Run `layercrypt args` and check a refusal: exit 2, `error: ` first, `expect` named, no
/// panic.
fn assert_refused(case: &str, args: &[String], expect: &str) -> String {
    let out = layercrypt()
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    check_refusal(case, args, &out, expect)
}

fn check_refusal(case: &str, args: &[String], out: &Output, expect: &str) -> String {
    let err = stderr_of(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{case}: `{}` exited {:?}; stderr: {err}",
        args.join(" "),
        out.status
    );
    assert!(err.starts_with("error: "), "{case}: {err}");
    assert!(
        err.contains(expect),
        "{case}: expected {expect:?} in: {err}"
    );
    assert!(!err.contains("panicked"), "{case}: {err}");
    err
}

/// Make a copy of `fixture`, break it with `make`, and run every command of `cmds` on it, in
/// place and (encrypt, decrypt) to a new layout: each is refused naming `expect`, and the
/// copy stays as it was, with nothing beside it.
fn refused(case: &str, fixture: &str, cmds: &[Cmd], expect: &str, make: impl FnOnce(&Layout)) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy(fixture, tmp.path());
    make(&Layout(dir.clone()));
    let before = snapshot(&dir);
    let out = tmp.path().join("out");
    for &cmd in cmds {
        let dsts: &[Option<&Path>] = if cmd == Cmd::Inspect {
            &[None]
        } else {
            &[None, Some(&out)]
        };
        for dst in dsts {
            let args = command_line(cmd, &dir, *dst);
            let case = format!(
                "{case} ({cmd:?}{})",
                if dst.is_some() { " to DST" } else { "" }
            );
            assert_refused(&case, &args, expect);
            assert!(snapshot(&dir) == before, "{case}: the source changed");
            assert_eq!(
                dir_entries(tmp.path()),
                vec![fixture.to_string()],
                "{case}: something was written beside the source"
            );
        }
    }
}

/// `inspect` lists a layer-level problem instead of failing: exit 0, the problem in its
/// output, no panic.
fn inspect_reports(case: &str, dir: &Path, expect: &str) {
    let out = layercrypt()
        .args(["inspect", "--json"])
        .arg(format!("oci:{}", dir.display()))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{case}: inspect failed: {err}");
    assert!(!err.contains("panicked"), "{case}: {err}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(expect),
        "{case}: expected {expect:?} in: {report}"
    );
}

// ---------------------------------------------------------------------------------------------
// Editing layouts

/// Store `data` as a blob; returns its digest and size.
fn put_blob(layout: &Layout, data: &[u8]) -> (String, usize) {
    let digest = mkimage::sha256_digest(data);
    fs::write(layout.blob_path(&digest), data).unwrap();
    (digest, data.len())
}

/// Rewrite `index.json` with `edit` applied to its parsed form.
fn edit_index(layout: &Layout, edit: impl FnOnce(&mut Value)) {
    let mut index = layout.index();
    edit(&mut index);
    fs::write(layout.0.join("index.json"), mkimage::go_json(&index)).unwrap();
}

/// Replace the JSON text of a member that `edit_*` set to the marker number 987654321 with
/// `raw`, for values `serde_json::Value` cannot hold (`1e30`, 2^64).
const MARKER: u64 = 987_654_321;

fn replace_marker(path: &Path, raw: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(&MARKER.to_string()));
    fs::write(path, text.replace(&MARKER.to_string(), raw)).unwrap();
}

/// Edit the manifest of `v1` like `Layout::edit_manifest`, then replace the marker in it with
/// `raw` and fix the digest chain again.
fn edit_manifest_raw(layout: &Layout, raw: &str, edit: impl FnOnce(&mut Value)) {
    layout.edit_manifest("v1", edit);
    let entry = layout.entry("v1");
    let old = entry["digest"].as_str().unwrap().to_string();
    let text = String::from_utf8(layout.blob(&old))
        .unwrap()
        .replace(&MARKER.to_string(), raw);
    let (digest, size) = put_blob(layout, text.as_bytes());
    fs::remove_file(layout.blob_path(&old)).unwrap();
    edit_index(layout, |idx| {
        for e in idx["manifests"].as_array_mut().unwrap() {
            if e["digest"] == old.as_str() {
                e["digest"] = Value::from(digest.clone());
                e["size"] = Value::from(size);
            }
        }
    });
}

/// The digest of the `v1` manifest's layer `n`.
fn layer_digest(layout: &Layout, n: usize) -> String {
    layout.layers("v1")[n]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The `v1` manifest's config digest.
fn config_digest(layout: &Layout) -> String {
    let entry = layout.entry("v1");
    layout.json(entry["digest"].as_str().unwrap())["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Set one annotation of layer `n` of the encrypted `v1`, or remove it (`None`).
fn set_layer_annotation(layout: &Layout, n: usize, name: &str, value: Option<String>) {
    layout.edit_manifest("v1", |m| {
        let annotations = m["layers"][n]["annotations"].as_object_mut().unwrap();
        match value {
            Some(v) => annotations.insert(name.to_string(), Value::from(v)),
            None => annotations.remove(name),
        };
    });
}

// ---------------------------------------------------------------------------------------------
// index.json

#[test]
fn malformed_index_json_is_refused() {
    let cases: &[(&str, &str)] = &[
        ("index-not-json.json", "index.json: invalid JSON"),
        ("index-not-utf8.json", "index.json: invalid JSON"),
        ("index-array.json", "index.json: invalid JSON"),
        ("index-no-manifests.json", "holds no images"),
        ("index-manifests-null.json", "holds no images"),
        ("index-manifests-object.json", "field `manifests`"),
        ("index-entry-number.json", "manifests[0]"),
        ("index-digest-number.json", "field `digest`"),
        ("index-no-digest.json", "it has no digest"),
        ("index-no-size.json", "it has no size"),
        ("index-size-string.json", "is not a number"),
        ("index-deep-json.json", "manifests[0]"),
    ];
    for (file, expect) in cases {
        refused(file, "plain", ALL, expect, |l| {
            fs::write(l.0.join("index.json"), corpus(file)).unwrap()
        });
    }
}

#[test]
fn an_index_json_over_16_mib_is_refused_before_it_is_parsed() {
    refused(
        "index.json of 17 MiB",
        "plain",
        ALL,
        "is larger than",
        |l| {
            let mut index = l.index_bytes();
            // Valid JSON all the way: only its size is wrong.
            index.splice(1..1, vec![b' '; 17 << 20]);
            fs::write(l.0.join("index.json"), index).unwrap();
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Manifests, configs and blobs

#[test]
fn malformed_manifests_are_refused() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let whole: &[(&str, &[u8], &str)] = &[
        ("manifest is not JSON", b"not json at all", "invalid JSON"),
        ("manifest is an array", b"[1,2,3]", "invalid JSON"),
        ("manifest is empty", b"", "invalid JSON"),
    ];
    for (case, bytes, expect) in whole {
        refused(case, "plain", ALL, expect, |l| {
            let (digest, size) = put_blob(l, bytes);
            edit_index(l, |idx| {
                idx["manifests"][0]["digest"] = Value::from(digest);
                idx["manifests"][0]["size"] = Value::from(size);
            });
        });
    }
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "no config",
            Box::new(|m| {
                m.as_object_mut().unwrap().remove("config");
            }),
            "it has no config",
        ),
        (
            "config is a string",
            Box::new(|m| m["config"] = Value::from("sha256:abc")),
            "field `config`",
        ),
        (
            "a layer is not an object",
            Box::new(|m| m["layers"][1] = Value::from(7)),
            "layers[1]",
        ),
        (
            "a layer has no digest",
            Box::new(|m| {
                m["layers"][2].as_object_mut().unwrap().remove("digest");
            }),
            "it has no digest",
        ),
        (
            "annotations are not strings",
            Box::new(|m| m["layers"][0]["annotations"] = json!({"a": 1})),
            "field `annotations`",
        ),
    ];
    for (case, edit, expect) in edits {
        refused(case, "plain", ALL, expect, |l| l.edit_manifest("v1", edit));
    }
}

#[test]
fn missing_blobs_are_refused() {
    refused("missing manifest", "plain", ALL, "is missing", |l| {
        fs::remove_file(l.blob_path(l.entry("v1")["digest"].as_str().unwrap())).unwrap()
    });
    // The config is read for the platform when the index does not give one.
    refused("missing config", "plain", ALL, "is missing", |l| {
        fs::remove_file(l.blob_path(&config_digest(l))).unwrap()
    });
    refused(
        "missing plain layer",
        "plain",
        &[Cmd::Encrypt],
        "is missing",
        |l| fs::remove_file(l.blob_path(&layer_digest(l, 2))).unwrap(),
    );
    refused(
        "missing encrypted layer",
        "skopeo-rsa2048",
        &[Cmd::Decrypt],
        "is missing",
        |l| fs::remove_file(l.blob_path(&layer_digest(l, 2))).unwrap(),
    );
}

#[test]
fn blobs_that_do_not_match_their_digest_or_size_are_refused() {
    fn flip(l: &Layout, digest: &str, at: usize) {
        let mut b = l.blob(digest);
        b[at] ^= 0x20;
        fs::write(l.blob_path(digest), b).unwrap();
    }
    refused(
        "manifest content",
        "plain",
        ALL,
        "does not match its digest",
        |l| flip(l, l.entry("v1")["digest"].as_str().unwrap(), 5),
    );
    refused(
        "config content",
        "plain",
        ALL,
        "does not match its digest",
        |l| flip(l, &config_digest(l), 5),
    );
    // The first layers are encrypted and published before the last one fails: they must
    // be removed again.
    refused(
        "top layer content",
        "plain",
        &[Cmd::Encrypt],
        "does not match its digest",
        |l| flip(l, &layer_digest(l, 2), 100),
    );
    refused(
        "layer one byte longer",
        "plain",
        &[Cmd::Encrypt],
        "longer than",
        |l| {
            let d = layer_digest(l, 0);
            let mut b = l.blob(&d);
            b.push(0);
            fs::write(l.blob_path(&d), b).unwrap();
        },
    );
    refused(
        "layer size too small",
        "plain",
        &[Cmd::Encrypt],
        "longer than",
        |l| l.edit_manifest("v1", |m| m["layers"][0]["size"] = Value::from(100)),
    );
    refused(
        "layer size too big",
        "plain",
        &[Cmd::Encrypt],
        "truncated",
        |l| l.edit_manifest("v1", |m| m["layers"][1]["size"] = Value::from(1u64 << 40)),
    );
    refused("config size lies", "plain", ALL, "longer than", |l| {
        l.edit_manifest("v1", |m| m["config"]["size"] = Value::from(3))
    });
    refused(
        "encrypted layer size lies",
        "skopeo-rsa2048",
        &[Cmd::Decrypt],
        "truncated",
        |l| l.edit_manifest("v1", |m| m["layers"][1]["size"] = Value::from(1_000_000)),
    );
}

#[test]
fn invalid_digest_strings_are_refused() {
    let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let cases = [
        ("sha256:xyz".to_string(), "invalid encoded part"),
        (format!("md5:{}", &hex[..32]), "unsupported algorithm"),
        (
            format!("sha256:{}", hex.to_uppercase()),
            "invalid encoded part",
        ),
        (format!("sha256:{}", &hex[..63]), "invalid encoded part"),
        (format!("sha256:{hex}0"), "invalid encoded part"),
        (format!("sha512:{hex}"), "invalid encoded part"),
        (hex.to_string(), "is not a digest"),
        (format!("SHA256:{hex}"), "is not a digest"),
        (format!("sha256:{hex}\n"), "invalid encoded part"),
        ("sha256:".to_string(), "invalid encoded part"),
    ];
    for (digest, expect) in &cases {
        let d = digest.clone();
        refused(
            &format!("index entry {digest:?}"),
            "plain",
            ALL,
            expect,
            |l| edit_index(l, |idx| idx["manifests"][0]["digest"] = Value::from(d)),
        );
        let d = digest.clone();
        refused(&format!("layer {digest:?}"), "plain", ALL, expect, |l| {
            l.edit_manifest("v1", |m| m["layers"][1]["digest"] = Value::from(d))
        });
    }
}

/// A digest is echoed in the error: escape sequences in it must not reach the terminal, and a
/// megabyte of it must not be printed whole.
#[test]
fn hostile_digests_are_not_echoed_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    for (digest, expect) in [
        (
            "sha256:\u{1b}]0;owned\u{7}\u{1b}[2J".to_string(),
            "invalid encoded part",
        ),
        (
            format!("sha256:{}", "a".repeat(1 << 20)),
            "invalid encoded part",
        ),
    ] {
        edit_index(&layout, |idx| {
            idx["manifests"][0]["digest"] = Value::from(digest)
        });
        let args = command_line(Cmd::Inspect, &dir, None);
        let err = assert_refused("hostile digest", &args, expect);
        assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
        assert!(err.len() < 4096, "{} bytes of error", err.len());
    }
}

#[test]
fn negative_fractional_and_absurd_sizes_are_refused() {
    for raw in ["-1", "1e30", "18446744073709551616", "1.5", "-0.0", "1E2"] {
        refused(
            &format!("index entry size {raw}"),
            "plain",
            ALL,
            "size",
            |l| {
                edit_index(l, |idx| idx["manifests"][0]["size"] = Value::from(MARKER));
                replace_marker(&l.0.join("index.json"), raw);
            },
        );
        refused(&format!("layer size {raw}"), "plain", ALL, "size", |l| {
            edit_manifest_raw(l, raw, |m| m["layers"][0]["size"] = Value::from(MARKER))
        });
    }
    // The largest size that is an integer: refused by the manifest limit, and as a layer,
    // by the end of the data.
    refused(
        "manifest size 2^64-1",
        "plain",
        ALL,
        "more than the 4194304 allowed",
        |l| edit_index(l, |idx| idx["manifests"][0]["size"] = Value::from(u64::MAX)),
    );
    refused(
        "layer size 2^64-1",
        "plain",
        &[Cmd::Encrypt],
        "truncated",
        |l| l.edit_manifest("v1", |m| m["layers"][0]["size"] = Value::from(u64::MAX)),
    );
}

/// An OCI archive output reserves room for each layer by its declared size: sizes that no
/// archive can hold are refused with an error (they overflowed the reservation arithmetic, a
/// panic in debug builds), and nothing is left beside the target.
#[test]
fn layer_sizes_no_archive_can_hold_are_refused() {
    for size in [u64::MAX, u64::MAX - 4096, 1 << 62] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture_copy("plain", tmp.path());
        Layout(dir.clone()).edit_manifest("v1", |m| m["layers"][0]["size"] = Value::from(size));
        let out = tmp.path().join("out.tar");
        let mut args = command_line(Cmd::Encrypt, &dir, None);
        args.push(format!("oci-archive:{}", out.display()));
        let case = format!("layer size {size} into an oci-archive");
        let err = assert_refused(&case, &args, "layer 0");
        assert!(
            err.contains("too large") || err.contains("truncated"),
            "{case}: {err}"
        );
        assert_eq!(dir_entries(tmp.path()), vec!["plain".to_string()], "{case}");
    }
}

#[test]
fn manifests_over_4_mib_are_refused_before_they_are_read() {
    refused(
        "declared size 4 MiB + 1",
        "plain",
        ALL,
        "more than the 4194304 allowed",
        |l| {
            edit_index(l, |idx| {
                idx["manifests"][0]["size"] = Value::from((4 << 20) + 1)
            })
        },
    );
    // A real one, with a 5 MiB annotation: its size is honest, and still too large.
    refused(
        "a 5 MiB manifest",
        "plain",
        ALL,
        "more than the 4194304 allowed",
        |l| {
            l.edit_manifest("v1", |m| {
                m["annotations"] = json!({"padding": "x".repeat(5 << 20)})
            })
        },
    );
    refused(
        "a 5 MiB config",
        "plain",
        ALL,
        "more than the 4194304 allowed",
        |l| {
            let mut config: Value = l.json(&config_digest(l));
            config["padding"] = Value::from("x".repeat(5 << 20));
            let (digest, size) = put_blob(l, &mkimage::go_json(&config));
            l.edit_manifest("v1", |m| {
                m["config"]["digest"] = Value::from(digest);
                m["config"]["size"] = Value::from(size);
            });
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Index graphs

/// An index blob listing `children` (descriptor values).
fn index_blob(layout: &Layout, children: Vec<Value>) -> Value {
    let doc = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
    let (digest, size) = put_blob(layout, &mkimage::go_json(&doc));
    json!({"mediaType": OCI_INDEX, "digest": digest, "size": size})
}

/// Point the `v1` entry of `index.json` at `desc`, keeping its name.
fn point_v1_at(layout: &Layout, desc: Value) {
    edit_index(layout, |idx| {
        let entry = &mut idx["manifests"][0];
        entry["mediaType"] = desc["mediaType"].clone();
        entry["digest"] = desc["digest"].clone();
        entry["size"] = desc["size"].clone();
    });
}

/// Indexes nested deeper than `MAX_NESTING` (16). A cycle cannot be built: an index would
/// have to contain its own digest (or that of an index containing its digest), a SHA-256
/// fixed point; so depth is what bounds the walk.
#[test]
fn indexes_nested_too_deep_are_refused() {
    refused(
        "17 nested indexes",
        "plain",
        ALL,
        "nests more than 16 levels deep",
        |l| {
            let v1 = l.entry("v1");
            let mut desc =
                json!({"mediaType": v1["mediaType"], "digest": v1["digest"], "size": v1["size"]});
            for _ in 0..17 {
                desc = index_blob(l, vec![desc]);
            }
            point_v1_at(l, desc);
        },
    );
    // 16 levels are fine.
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let l = Layout(dir.clone());
    let v1 = l.entry("v1");
    let mut desc =
        json!({"mediaType": v1["mediaType"], "digest": v1["digest"], "size": v1["size"]});
    for _ in 0..15 {
        desc = index_blob(&l, vec![desc]);
    }
    point_v1_at(&l, desc);
    layercrypt()
        .arg("inspect")
        .arg(oci(&dir, "v1"))
        .assert()
        .success();
}

/// Content addressing forbids cycles but not sharing: a few small indexes that each list
/// the next one a thousand times reach a billion manifests. Run under a 2 GiB address-space
/// limit, loading must stop at the graph limits with a clear error instead of allocating
/// (or looping) without end.
#[test]
fn an_index_graph_that_fans_out_is_refused() {
    refused(
        "fan-out 1000 x 1000 x 1000",
        "plain",
        ALL,
        "more than",
        |l| {
            let v1 = l.entry("v1");
            let mut desc =
                json!({"mediaType": v1["mediaType"], "digest": v1["digest"], "size": v1["size"]});
            for _ in 0..3 {
                desc = index_blob(l, vec![desc; 1000]);
            }
            point_v1_at(l, desc);
        },
    );
    // The same with a limit on memory: the refusal must come from the limit, not from an
    // allocation failure.
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let l = Layout(dir.clone());
    let v1 = l.entry("v1");
    let mut desc =
        json!({"mediaType": v1["mediaType"], "digest": v1["digest"], "size": v1["size"]});
    for _ in 0..3 {
        desc = index_blob(&l, vec![desc; 1000]);
    }
    point_v1_at(&l, desc);
    let args = command_line(Cmd::Inspect, &dir, None);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152 && exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("layercrypt"))
        .args(&args)
        .output()
        .unwrap();
    check_refusal("fan-out under ulimit -v 2 GiB", &args, &out, "more than");
}

// ---------------------------------------------------------------------------------------------
// Encryption annotations

#[test]
fn broken_public_options_are_refused() {
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        (
            "pubopts missing",
            None,
            "no org.opencontainers.image.enc.pubopts",
        ),
        (
            "pubopts not base64",
            Some("not base64!".into()),
            "not valid base64",
        ),
        (
            "pubopts unpadded",
            Some("eyJjaXBoZXIiOiJ4In0".into()),
            "not valid base64",
        ),
        (
            "pubopts not JSON",
            Some(b64(b"\x00\x01garbage")),
            "not a JSON object",
        ),
        (
            "pubopts hmac not base64",
            Some(b64(br#"{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"%%%"}"#)),
            "field `hmac`",
        ),
        (
            "unknown cipher",
            Some(b64(
                br#"{"cipher":"ROT13","hmac":"AAAA","cipheroptions":{}}"#,
            )),
            "unsupported layer cipher `ROT13`",
        ),
        (
            "no cipher",
            Some(b64(br#"{"hmac":"AAAA"}"#)),
            "name no cipher",
        ),
        (
            "pubopts over 64 KiB",
            Some(b64(&[b' '; 65 * 1024])),
            "more than the 65536 allowed",
        ),
    ];
    for (case, value, expect) in cases {
        refused(case, "skopeo-rsa2048", &[Cmd::Decrypt], expect, |l| {
            set_layer_annotation(l, 1, PUBOPTS, value)
        });
    }
}

#[test]
fn wrapped_keys_that_are_not_base64_or_not_an_envelope_are_refused() {
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "jwe not base64",
            JWE_KEYS,
            "@@@@".into(),
            "not valid base64",
        ),
        (
            "jwe second entry not base64",
            JWE_KEYS,
            "AAAA,@@@@".into(),
            "entry 1 of the annotation is not valid base64",
        ),
        (
            "jwe empty",
            JWE_KEYS,
            String::new(),
            "holds no wrapped keys",
        ),
        (
            "jwe only commas",
            JWE_KEYS,
            ",,,".into(),
            "holds no wrapped keys",
        ),
    ];
    for (case, name, value, expect) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture_copy("skopeo-rsa2048", tmp.path());
        set_layer_annotation(&Layout(dir.clone()), 0, name, Some(value.clone()));
        inspect_reports(case, &dir, expect);
        refused(case, "skopeo-rsa2048", &[Cmd::Decrypt], expect, |l| {
            set_layer_annotation(l, 0, name, Some(value))
        });
    }
}

/// Random bytes (base64-encoded, so the envelope is fine) where a JWE, an OpenPGP message or
/// a PKCS#7 envelope belongs: each scheme's parser refuses it, `inspect` shows why.
#[test]
fn garbage_wrapped_keys_are_refused() {
    let mut cases: Vec<(&str, &str, Vec<u8>, &str, &str)> = vec![
        ("random jwe", JWE_KEYS, junk(300, 1), "malformed", "jwe:"),
        (
            "json jwe",
            JWE_KEYS,
            br#"{"protected":1}"#.to_vec(),
            "malformed",
            "jwe:",
        ),
        (
            "random pkcs7",
            PKCS7_KEYS,
            junk(300, 3),
            "malformed",
            "pkcs7:",
        ),
        (
            "der-ish pkcs7",
            PKCS7_KEYS,
            [&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..], &junk(64, 4)].concat(),
            "malformed",
            "pkcs7:",
        ),
    ];
    if cfg!(feature = "pgp") {
        // No OpenPGP key is given, so decrypt has nothing to try it with; inspect parses it.
        cases.push((
            "random pgp",
            PGP_KEYS,
            junk(300, 2),
            "none of the given keys can be used",
            "pgp:",
        ));
    }
    for (case, name, blob, expect, inspect_expect) in cases {
        let value = b64(&blob);
        let make = |l: &Layout| {
            for n in 0..3 {
                set_layer_annotation(l, n, JWE_KEYS, None);
                set_layer_annotation(l, n, name, Some(value.clone()));
            }
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture_copy("skopeo-rsa2048", tmp.path());
        make(&Layout(dir.clone()));
        inspect_reports(case, &dir, inspect_expect);
        refused(case, "skopeo-rsa2048", &[Cmd::Decrypt], expect, make);
    }
}

/// Private options a peer could wrap for us that Go would use anyway (no nonce: garbage out;
/// a wrong-length nonce or key: a panic). `tests/it/cli.rs` has 3-byte nonces and keys; these are
/// the other shapes.
#[test]
fn broken_private_options_are_refused() {
    let key32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let nonce16 = "8PHy8/T19vf4+fr7/P3//w==";
    let cases = [
        (
            // Go's map[string][]byte keeps a null entry: a nonce of 0 bytes.
            format!(r#"{{"symkey":"{key32}","cipheroptions":{{"nonce":null}}}}"#),
            "invalid nonce length of 0 bytes",
        ),
        (
            format!(r#"{{"symkey":"{key32}","cipheroptions":null}}"#),
            "no nonce",
        ),
        (
            format!(r#"{{"symkey":"{key32}","cipheroptions":{{"nonce":""}}}}"#),
            "invalid nonce length of 0 bytes",
        ),
        (
            format!(
                r#"{{"symkey":"{key32}","cipheroptions":{{"nonce":"{}"}}}}"#,
                b64(&[7; 17])
            ),
            "invalid nonce length of 17 bytes",
        ),
        (
            format!(
                r#"{{"symkey":"{key32}","cipheroptions":{{"nonce":"{}"}}}}"#,
                b64(&[7; 4096])
            ),
            "invalid nonce length of 4096 bytes",
        ),
        (
            format!(r#"{{"cipheroptions":{{"nonce":"{nonce16}"}}}}"#),
            "invalid layer key length of 0 bytes",
        ),
        (
            format!(
                r#"{{"symkey":"{}","cipheroptions":{{"nonce":"{nonce16}"}}}}"#,
                b64(&[1; 64])
            ),
            "invalid layer key length of 64 bytes",
        ),
        (
            format!(r#"{{"symkey":[1,2,300],"cipheroptions":{{"nonce":"{nonce16}"}}}}"#),
            "field `symkey`",
        ),
        ("[]".to_string(), "not a JSON object"),
        ("not json".to_string(), "not a JSON object"),
        (
            format!(
                r#"{{"symkey":"{key32}","pad":"{}"}}"#,
                "x".repeat(70 * 1024)
            ),
            "more than the 65536 allowed",
        ),
    ];
    let pubkey =
        layercrypt::keys::PublicKey::from_bytes(&fs::read(key("rsa2048.pub.pem")).unwrap())
            .unwrap();
    for (private, expect) in cases {
        let jwe = layercrypt::keywrap::jwe::wrap(std::slice::from_ref(&pubkey), private.as_bytes())
            .unwrap();
        refused(expect, "skopeo-rsa2048", &[Cmd::Decrypt], expect, |l| {
            set_layer_annotation(l, 1, JWE_KEYS, Some(b64(&jwe)))
        });
    }
}

/// A wrapped-keys annotation of several MiB (the manifest stays under 4 MiB): refused as
/// malformed, in bounded time and memory.
#[test]
fn an_annotation_of_several_mib_is_refused() {
    // 2.5 MiB of bytes: 3.3 MiB of base64, and the manifest stays under 4 MiB.
    let big = b64(&junk(5 << 19, 5));
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    set_layer_annotation(&Layout(dir.clone()), 1, JWE_KEYS, Some(big.clone()));
    inspect_reports("3 MiB jwe annotation", &dir, "jwe:");
    refused(
        "3 MiB jwe annotation",
        "skopeo-rsa2048",
        &[Cmd::Decrypt],
        "malformed",
        |l| set_layer_annotation(l, 1, JWE_KEYS, Some(big)),
    );
}

/// One JWE with thousands of recipients: refused by the recipient limit before a single key
/// is tried, whatever the key (each try is an RSA private-key operation).
#[test]
fn thousands_of_recipients_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    let layout = Layout(dir.clone());
    let jwe_b64 = layout.layers("v1")[1]["annotations"][JWE_KEYS]
        .as_str()
        .unwrap()
        .to_string();
    let jwe: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&jwe_b64)
            .unwrap(),
    )
    .unwrap();
    // Flattened form (one recipient) → general form with 5000 copies of it.
    let recipient = json!({"header": jwe.get("header").cloned().unwrap_or(json!({})), "encrypted_key": jwe["encrypted_key"]});
    let mut general = jwe.clone();
    let obj = general.as_object_mut().unwrap();
    obj.remove("encrypted_key");
    obj.remove("header");
    obj.insert("recipients".into(), Value::from(vec![recipient; 5000]));
    let value = b64(&serde_json::to_vec(&general).unwrap());
    drop(tmp);
    refused(
        "5000 JWE recipients",
        "skopeo-rsa2048",
        &[Cmd::Decrypt],
        "more than 1000 recipients",
        |l| set_layer_annotation(l, 1, JWE_KEYS, Some(value.clone())),
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    set_layer_annotation(&Layout(dir.clone()), 1, JWE_KEYS, Some(value.clone()));
    inspect_reports("5000 JWE recipients", &dir, "more than 1000 recipients");
    // Many envelope entries, each a valid blob.
    let entries = vec![jwe_b64; 100].join(",");
    refused(
        "100 envelope entries",
        "skopeo-rsa2048",
        &[Cmd::Decrypt],
        "more than the 64 allowed",
        |l| set_layer_annotation(l, 1, JWE_KEYS, Some(entries)),
    );
}

/// A layout whose files are not regular files: reading a FIFO would block for ever, and a
/// device could deliver endless data.
#[test]
fn layout_files_that_are_not_regular_files_are_refused() {
    fn fifo(path: &Path) {
        let _ = fs::remove_file(path);
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    refused("oci-layout is /dev/zero", "plain", ALL, "oci-layout", |l| {
        let p = l.0.join("oci-layout");
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
    });
    refused("oci-layout is a FIFO", "plain", ALL, "oci-layout", |l| {
        fifo(&l.0.join("oci-layout"))
    });
    refused("index.json is a FIFO", "plain", ALL, "index.json", |l| {
        fifo(&l.0.join("index.json"))
    });
    refused(
        "manifest is a FIFO",
        "plain",
        ALL,
        "not a regular file",
        |l| fifo(&l.blob_path(l.entry("v1")["digest"].as_str().unwrap())),
    );
    refused(
        "layer is a FIFO",
        "plain",
        &[Cmd::Encrypt],
        "not a regular file",
        |l| fifo(&l.blob_path(&layer_digest(l, 1))),
    );
}

/// Names that come from the input are shown with control characters escaped, so a hostile
/// reference or file cannot drive the terminal through an error message.
#[test]
fn control_characters_in_errors_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let name = tmp.path().join("evil\u{1b}[31mred");
    let out = common::layercrypt()
        .arg("inspect")
        .arg(format!("oci:{}", name.display()))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains('\u{1b}'), "raw escape in: {err:?}");
    assert!(err.contains("\\u{1b}[31mred"), "{err:?}");
}
