//! `layercrypt verify`, end to end: the keys that open skopeo's fixtures pass and others fail
//! naming the layer; `--require-encrypted` with and without `--layer`; tampering that only
//! `--full` can see (a re-pointed ciphertext with a bad HMAC, a blob that does not match its
//! descriptor, a config whose diff_ids lie); the JSON report; archives; and that verify never
//! writes anything.
//!
//! Exit status: 0 every check passed, 1 a check failed, 2 verify could not run.

use crate::common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

/// Run `layercrypt verify ARGS… SRC`; returns (exit code, stdout, stderr).
fn verify(args: &[&str], source: &str) -> (i32, String, String) {
    let out = layercrypt()
        .arg("verify")
        .args(args)
        .arg(source)
        .output()
        .unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr_of(&out),
    )
}

/// `verify --json`: exit code and the parsed report.
fn verify_json(args: &[&str], source: &str) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = verify(&all, source);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, report)
}

/// Every layer of a report: (platform, index, status, reason, checks).
fn layer_rows(report: &Value) -> Vec<(String, u64, String, String, Vec<String>)> {
    let mut rows = Vec::new();
    for image in report["images"].as_array().unwrap() {
        for m in image["manifests"].as_array().unwrap() {
            for l in m["layers"].as_array().unwrap() {
                rows.push((
                    m["platform"].as_str().unwrap().to_string(),
                    l["index"].as_u64().unwrap(),
                    l["status"].as_str().unwrap().to_string(),
                    l["reason"].as_str().unwrap_or_default().to_string(),
                    l["checks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect(),
                ));
            }
        }
    }
    rows
}

fn fixture(name: &str, reference: &str) -> String {
    oci(&testdata("images").join(name), reference)
}

/// The short digest (`sha256:` and 12 hex digits) verify prints for a layer.
fn short(digest: &Value) -> String {
    digest.as_str().unwrap()[..19].to_string()
}

// ---------------------------------------------------------------------------------------------
// Keys

/// Each skopeo fixture verifies with the key that opens it, unwrap-only and `--full`; every
/// layer is listed as ok, and `--full` ran every check on every layer.
#[test]
fn skopeo_fixtures_verify_with_their_keys() {
    let cases = [
        ("skopeo-rsa2048", "v1", "rsa2048.pem"),
        ("skopeo-ec256", "v1", "ec256.sec1.der"),
        ("skopeo-ec384", "v1", "ec384.pem"),
        ("skopeo-multi", "v1", "ec256.pem"),
        ("skopeo-jwk-oaep256", "v1", "rsa2048.jwk"),
        ("skopeo-multiarch", "multi", "rsa2048.pem"),
    ];
    for (name, reference, k) in cases {
        let src = fixture(name, reference);
        let (code, stdout, stderr) = verify(&["-k", &key(k)], &src);
        assert_eq!(code, 0, "{name} with {k}: {stdout}{stderr}");
        assert!(stdout.contains("verified: "), "{stdout}");
        assert!(!stdout.contains("FAILED"), "{stdout}");

        let (code, report) = verify_json(&["-k", &key(k), "--full"], &src);
        assert_eq!(code, 0, "{name} --full: {report:#}");
        assert_eq!(report["ok"], true);
        assert_eq!(report["mode"], "full");
        let rows = layer_rows(&report);
        assert!(!rows.is_empty());
        for (platform, index, status, _, checks) in rows {
            assert_eq!(status, "ok", "{name} {platform} layer {index}");
            assert_eq!(
                checks,
                ["unwrap", "blob", "hmac", "diff_id", "digest"],
                "{name} {platform} layer {index}"
            );
        }
    }
}

/// A key that is not a recipient fails with exit 1, on a line naming the layer (index and
/// digest) and the key that was tried; the summary says how many failed.
#[test]
fn a_key_that_opens_nothing_fails_naming_each_layer() {
    let src = fixture("skopeo-rsa2048", "v1");
    let layers = Layout(testdata("images/skopeo-rsa2048")).layers("v1");
    for full in [false, true] {
        let mut args = vec!["-k".to_string(), key("ec256.pem")];
        if full {
            args.push("--full".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, _) = verify(&args, &src);
        assert_eq!(code, 1, "{stdout}");
        for (i, layer) in layers.iter().enumerate() {
            let line = stdout
                .lines()
                .find(|l| l.contains(&format!("layer {i}  ")))
                .unwrap_or_else(|| panic!("no line for layer {i}: {stdout}"));
            assert!(line.contains(&short(&layer["digest"])), "{line}");
            assert!(line.contains("linux/amd64"), "{line}");
            assert!(
                line.contains("FAILED: ")
                    && line.contains("none of the given keys can open it")
                    && line.contains("ec256.pem"),
                "{line}"
            );
        }
        assert!(
            stdout.contains("FAILED: 0 ok, 3 failed, 0 skipped"),
            "{stdout}"
        );
    }
    // -q prints the failures and nothing else.
    let (code, stdout, _) = verify(&["-q", "-k", &key("ec256.pem")], &src);
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.lines().all(|l| l.contains("FAILED: ")), "{stdout}");
    // And with the right key, -q prints nothing at all.
    let (code, stdout, _) = verify(&["-q", "-k", &key("rsa2048.pem")], &src);
    assert_eq!((code, stdout.as_str()), (0, ""));
}

/// Without keys only the structure is checked (options and wrapped keys parse): skopeo's
/// fixtures pass; a layer whose public options are gone fails; `--full` needs a key (usage
/// error, exit 2).
#[test]
fn without_keys_only_the_structure_is_checked() {
    let (code, report) = verify_json(&[], &fixture("skopeo-multi", "v1"));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["mode"], "structure");
    for (_, _, status, _, checks) in layer_rows(&report) {
        assert_eq!(
            (status.as_str(), checks),
            ("ok", vec!["structure".to_string()])
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    Layout(dir.clone()).edit_manifest("v1", |m| {
        let annotations = m["layers"][1]["annotations"].as_object_mut().unwrap();
        annotations.remove("org.opencontainers.image.enc.pubopts");
    });
    let (code, stdout, _) = verify(&[], &oci(&dir, "v1"));
    assert_eq!(code, 1, "{stdout}");
    let line = stdout.lines().find(|l| l.contains("layer 1  ")).unwrap();
    assert!(
        line.contains("FAILED: ") && line.contains("pubopts"),
        "{line}"
    );

    let (code, _, stderr) = verify(&["--full"], &fixture("skopeo-rsa2048", "v1"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--key"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// --require-encrypted

/// Plain layers fail under `--require-encrypted`; `--layer` decides which layers must be
/// encrypted, so a public base layer can be exempted.
#[test]
fn require_encrypted_fails_on_plain_layers_of_the_selection() {
    let (code, stdout, _) = verify(&["--require-encrypted"], &fixture("plain", "v1"));
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        stdout.matches("FAILED: not encrypted").count(),
        3,
        "{stdout}"
    );

    // Without it, a plain image has nothing to check: every layer is skipped, which passes.
    let (code, stdout, _) = verify(&[], &fixture("plain", "v1"));
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout.matches("skipped: not encrypted").count(),
        3,
        "{stdout}"
    );

    // skopeo-partial: only the top layer is encrypted.
    let partial = fixture("skopeo-partial", "v1");
    let (code, report) = verify_json(
        &["--require-encrypted", "-k", &key("rsa2048.pem")],
        &partial,
    );
    assert_eq!(code, 1);
    assert_eq!(report["ok"], false);
    let statuses: Vec<String> = layer_rows(&report).into_iter().map(|r| r.2).collect();
    assert_eq!(statuses, ["failed", "failed", "ok"]);
    for selector in ["-1", "2"] {
        let (code, stdout, _) = verify(
            &[
                "--require-encrypted",
                "--layer",
                selector,
                "-k",
                &key("rsa2048.pem"),
            ],
            &partial,
        );
        assert_eq!(code, 0, "--layer {selector}: {stdout}");
        assert_eq!(
            stdout.lines().count(),
            2,
            "one layer and the summary: {stdout}"
        );
    }
    // Structure only works too, and selection errors are errors (exit 2), not findings.
    let (code, _, _) = verify(&["--require-encrypted", "--layer", "-1"], &partial);
    assert_eq!(code, 0);
    let (code, _, stderr) = verify(&["--require-encrypted", "--layer", "7"], &partial);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("out of range"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// What only --full sees

/// A modified ciphertext with every digest fixed up (what someone with write access to a
/// registry could do) still unwraps, so the quick check passes; `--full` reads it and fails
/// the HMAC.
#[test]
fn a_tampered_ciphertext_passes_unwrap_but_fails_full_on_the_hmac() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    let layout = Layout(dir.clone());
    let layer = layout.layers("v1")[1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut data = layout.blob(&layer);
    data[100] ^= 0x01;
    let new = layout.replace_layer("v1", 1, &data);
    let src = oci(&dir, "v1");

    let (code, stdout, _) = verify(&["-k", &key("rsa2048.pem")], &src);
    assert_eq!(code, 0, "{stdout}");

    let (code, stdout, _) = verify(&["-k", &key("rsa2048.pem"), "--full"], &src);
    assert_eq!(code, 1, "{stdout}");
    let line = stdout.lines().find(|l| l.contains("layer 1  ")).unwrap();
    assert!(line.contains(&new[..19]), "{line}");
    assert!(line.contains("FAILED: ") && line.contains("HMAC"), "{line}");
    for other in ["layer 0  ", "layer 2  "] {
        let line = stdout.lines().find(|l| l.contains(other)).unwrap();
        assert!(line.ends_with("  ok"), "{line}");
    }
}

/// A blob whose bytes no longer match the digest its descriptor names is a finding (exit 1),
/// in an encrypted and in a plain layer; so is a layer blob that is missing, which `--full`
/// names (the quicker checks read no layer blob; see
/// `a_layout_of_manifests_alone_verifies_without_full`).
#[test]
fn blobs_that_do_not_match_their_descriptors_fail_full() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-partial", tmp.path());
    let layout = Layout(dir.clone());
    let layers = layout.layers("v1");
    for i in [0, 2] {
        let path = layout.blob_path(layers[i]["digest"].as_str().unwrap());
        let mut data = fs::read(&path).unwrap();
        data[50] ^= 0x80;
        fs::write(&path, data).unwrap();
    }
    let (code, report) = verify_json(&["-k", &key("rsa2048.pem"), "--full"], &oci(&dir, "v1"));
    assert_eq!(code, 1, "{report:#}");
    let rows = layer_rows(&report);
    assert_eq!(rows[1].2, "ok", "{report:#}");
    for i in [0, 2] {
        assert_eq!(rows[i].2, "failed");
        assert!(
            rows[i].3.contains("corrupt") && rows[i].3.contains("does not match its digest"),
            "{}",
            rows[i].3
        );
    }

    let missing = layers[2]["digest"].as_str().unwrap();
    fs::remove_file(layout.blob_path(missing)).unwrap();
    let (code, stdout, _) = verify(&["-k", &key("rsa2048.pem"), "--full"], &oci(&dir, "v1"));
    assert_eq!(code, 1, "{stdout}");
    let line = stdout.lines().find(|l| l.contains("layer 2  ")).unwrap();
    assert!(
        line.contains("FAILED: ") && line.contains(&format!("blob {missing} is missing")),
        "{line}"
    );
}

/// Issue 14, point 4: a layout that holds only `index.json`, manifests and configs (what a
/// registry-side tool fetches) is verified without `--full`, with and without keys, since
/// neither reads a layer blob; `--full` needs them and names each one missing. `rekey` and
/// `inspect` work on it too.
#[test]
fn a_layout_of_manifests_alone_verifies_without_full() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-partial", tmp.path());
    let layout = Layout(dir.clone());
    let layers: Vec<String> = layout
        .layers("v1")
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    for digest in &layers {
        fs::remove_file(layout.blob_path(digest)).unwrap();
    }
    let k = key("rsa2048.pem");
    for args in [vec![], vec!["-k", k.as_str()]] {
        let (code, report) = verify_json(&args, &oci(&dir, "v1"));
        assert_eq!(code, 0, "{args:?}: {report:#}");
        let rows = layer_rows(&report);
        assert_eq!(rows.len(), 3);
        for (i, row) in rows.iter().enumerate() {
            // Only the top layer of this fixture is encrypted.
            let want = if i == 2 { "ok" } else { "skipped" };
            assert_eq!(row.2, want, "{args:?}, layer {i}: {report:#}");
        }
    }
    let (code, report) = verify_json(&["-k", &k, "--full"], &oci(&dir, "v1"));
    assert_eq!(code, 1, "{report:#}");
    for (row, digest) in layer_rows(&report).iter().zip(&layers) {
        assert_eq!(row.2, "failed", "{report:#}");
        assert!(
            row.3.contains(&format!("blob {digest} is missing")),
            "{}",
            row.3
        );
    }

    layercrypt()
        .args(["inspect", "--json"])
        .arg(oci(&dir, "v1"))
        .assert()
        .success();
    layercrypt()
        .args(["rekey", "-k", &k, "--add"])
        .arg(format!("jwe:{}", key("ec256.pub.pem")))
        .arg(oci(&dir, "v1"))
        .assert()
        .success();
    let (code, report) = verify_json(&["-k", &key("ec256.pem")], &oci(&dir, "v1"));
    assert_eq!(code, 0, "{report:#}");
}

/// A config whose `rootfs.diff_ids` does not describe the layers (stored as a new blob, with
/// the manifest re-pointed at it, so every digest is consistent) fails `--full`, for the
/// encrypted layer and for the plain ones; the quick check does not read configs.
#[test]
fn a_diff_id_mismatch_fails_full() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-partial", tmp.path());
    let layout = Layout(dir.clone());
    let wrong = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    layout.edit_config("v1", |config| {
        config["rootfs"]["diff_ids"][0] = Value::from(wrong);
        config["rootfs"]["diff_ids"][2] = Value::from(wrong);
    });
    let src = oci(&dir, "v1");
    let (code, _, _) = verify(&["-k", &key("rsa2048.pem")], &src);
    assert_eq!(code, 0);
    let (code, report) = verify_json(&["-k", &key("rsa2048.pem"), "--full"], &src);
    assert_eq!(code, 1, "{report:#}");
    let rows = layer_rows(&report);
    assert_eq!(rows[1].2, "ok");
    for i in [0, 2] {
        assert_eq!(rows[i].2, "failed");
        assert!(
            rows[i]
                .3
                .contains(&format!("the config's diff_id is {wrong}")),
            "{}",
            rows[i].3
        );
    }
    assert_eq!(report["images"][0]["manifests"][0]["status"], "failed");
    assert_eq!(report["images"][0]["status"], "failed");
}

/// A plain image gets the integrity checks too with `--full` (blob digest and diff_id, no
/// HMAC); a multi-platform selection reaches the arm64 zstd layer.
#[test]
fn full_checks_plain_layers_too() {
    let (code, report) = verify_json(
        &["-k", &key("rsa2048.pem"), "--full"],
        &fixture("plain", "multi"),
    );
    assert_eq!(code, 0, "{report:#}");
    let rows = layer_rows(&report);
    assert_eq!(rows.len(), 4);
    for (platform, index, status, _, checks) in &rows {
        assert_eq!(status, "ok", "{platform} {index}");
        assert_eq!(checks, &["blob", "diff_id"], "{platform} {index}");
    }
    let (code, report) = verify_json(
        &[
            "-k",
            &key("rsa2048.pem"),
            "--full",
            "--platform",
            "linux/arm64",
        ],
        &fixture("skopeo-multiarch", "multi"),
    );
    assert_eq!(code, 0, "{report:#}");
    let platforms: Vec<String> = layer_rows(&report).into_iter().map(|r| r.0).collect();
    assert_eq!(platforms, ["linux/arm64/v8", "linux/arm64/v8"]);
}

/// The digest recorded in the private options is the one the encrypting tool read (skopeo
/// records it even when it recompressed): when it differs from the decrypted blob but the
/// content matches the config's diff_id, that is a warning, not a failure.
#[test]
fn a_recorded_digest_that_differs_is_a_warning_when_the_diff_id_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    let recorded = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    encrypt_layer_recording(&layout, "v1", 2, recorded);
    let src = oci(&dir, "v1");
    let (code, stdout, stderr) = verify(&["-k", &key("rsa2048.pem"), "--full"], &src);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("warning: ") && stderr.contains(recorded) && stderr.contains("layer 2"),
        "{stderr}"
    );
    let (_, report) = verify_json(&["-k", &key("rsa2048.pem"), "--full"], &src);
    let layer = &report["images"][0]["manifests"][0]["layers"][2];
    assert_eq!(layer["status"], "ok");
    assert_eq!(
        layer["checks"],
        serde_json::json!(["unwrap", "blob", "hmac", "diff_id"])
    );
    assert!(
        layer["warnings"][0].as_str().unwrap().contains(recorded),
        "{layer:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reports, archives, read-only

/// The JSON report carries the documented members: schema version, mode, ok, counts, and
/// per image, manifest and layer a status (and a reason when not ok).
#[test]
fn json_report_has_a_status_for_every_layer() {
    let (code, report) = verify_json(&["-k", &key("ec256.pem")], &fixture("skopeo-rsa2048", "v1"));
    assert_eq!(code, 1);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["mode"], "unwrap");
    assert_eq!(report["ok"], false);
    assert_eq!(report["require_encrypted"], false);
    assert_eq!(
        report["counts"],
        serde_json::json!({"ok": 0, "failed": 3, "skipped": 0})
    );
    let image = &report["images"][0];
    assert_eq!(image["reference"], "v1");
    assert_eq!(image["status"], "failed");
    assert_eq!(
        image["digest"],
        Layout(testdata("images/skopeo-rsa2048")).entry("v1")["digest"]
    );
    let manifest = &image["manifests"][0];
    assert_eq!(manifest["platform"], "linux/amd64");
    assert_eq!(manifest["status"], "failed");
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(layer["index"], i);
        assert_eq!(layer["encrypted"], true);
        assert_eq!(layer["status"], "failed");
        assert!(layer["reason"].as_str().unwrap().contains("cannot unwrap"));
        assert!(layer["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(layer["size"].as_u64().unwrap() > 0);
        assert!(layer.get("opened_with").is_none());
    }

    let (code, report) = verify_json(
        &["-k", &key("rsa2048.pem")],
        &fixture("skopeo-partial", "v1"),
    );
    assert_eq!(code, 0);
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["counts"],
        serde_json::json!({"ok": 1, "failed": 0, "skipped": 2})
    );
    let layers = &report["images"][0]["manifests"][0]["layers"];
    assert_eq!(layers[0]["status"], "skipped");
    assert_eq!(layers[0]["reason"], "not encrypted");
    assert_eq!(layers[2]["status"], "ok");
    assert!(layers[2].get("reason").is_none());
    assert!(
        layers[2]["opened_with"]
            .as_str()
            .unwrap()
            .contains("rsa2048.pem")
    );
}

/// Every mode, passing or failing, leaves the layout exactly as it was.
#[test]
fn verify_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-multiarch", tmp.path());
    let layout = Layout(dir.clone());
    let digest = layout.manifests("multi")[0].2["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = layout.blob_path(&digest);
    let mut data = fs::read(&path).unwrap();
    data[0] ^= 1;
    fs::write(&path, data).unwrap();
    let before = snapshot(&dir);
    let src = oci(&dir, "multi");
    let k = key("rsa2048.pem");
    let runs: [(&[&str], i32); 5] = [
        (&[], 0),
        (&["-k", &k], 0),
        (&["-k", &k, "--full"], 1),
        (&["-k", &k, "--full", "--json", "--require-encrypted"], 1),
        (&["-k", &key("ec384.pem")], 1),
    ];
    for (args, want) in runs {
        let (code, stdout, stderr) = verify(args, &src);
        assert_eq!(code, want, "{args:?}: {stdout}{stderr}");
        assert_eq!(snapshot(&dir), before, "{args:?} changed the layout");
    }
    assert_eq!(dir_entries(tmp.path()), ["skopeo-multiarch"]);
}

/// An OCI archive (made by layercrypt encrypt) and skopeo's docker-archive verify like
/// layouts; for the docker-archive, `--full` checks each uncompressed layer against its diff_id.
#[test]
fn archives_verify_like_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("enc.tar");
    layercrypt()
        .args([
            "encrypt",
            "-q",
            "-r",
            &format!("jwe:{}", key("ec384.pub.pem")),
        ])
        .arg(fixture("plain", "v1"))
        .arg(format!("oci-archive:{}:v1", archive.display()))
        .assert()
        .success();
    let before = fs::read(&archive).unwrap();
    let src = format!("oci-archive:{}:v1", archive.display());
    let (code, report) = verify_json(
        &["-k", &key("ec384.pem"), "--full", "--require-encrypted"],
        &src,
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["counts"]["ok"], 3);
    let (code, _, _) = verify(&["-k", &key("rsa2048.pem")], &src);
    assert_eq!(code, 1);
    assert_eq!(fs::read(&archive).unwrap(), before);

    let docker = testdata("images/docker-archive-skopeo.tar");
    let src = format!("docker-archive:{}", docker.display());
    let (code, report) = verify_json(&["-k", &key("rsa2048.pem"), "--full"], &src);
    assert_eq!(code, 0, "{report:#}");
    let rows = layer_rows(&report);
    assert_eq!(rows.len(), 3);
    for (_, index, status, _, checks) in rows {
        assert_eq!(
            (status.as_str(), checks.as_slice()),
            ("ok", &["blob".to_string(), "diff_id".to_string()][..]),
            "layer {index}"
        );
    }
    let (code, stdout, _) = verify(&["--require-encrypted"], &src);
    assert_eq!(code, 1, "{stdout}");
}

/// An index or manifest that cannot be read is an error (exit 2), not a finding.
#[test]
fn unreadable_manifests_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    let layout = Layout(dir.clone());
    let manifest = layout.entry("v1")["digest"].as_str().unwrap().to_string();
    fs::remove_file(layout.blob_path(&manifest)).unwrap();
    let (code, _, stderr) = verify(&["-k", &key("rsa2048.pem")], &oci(&dir, "v1"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("missing"),
        "{stderr}"
    );
    let (code, _, stderr) = verify(&[], &oci(Path::new("/nonexistent/layout"), "v1"));
    assert_eq!(code, 2, "{stderr}");
}

/// Layers larger than the pipeline's serial limit (the read, decrypt and decompress stages then
/// run on threads of their own), gzip, zstd and uncompressed: `--full` passes, and still sees a
/// flipped bit deep inside a layer, in an encrypted one (HMAC) and in a plain one (digest), and
/// a diff_id that lies about a large layer.
#[test]
fn full_checks_large_layers_through_the_pipeline() {
    use common::mkimage::{self, Compression, ImageSpec, LayerSpec};
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let mut image = ImageSpec::new("linux", "amd64", 11);
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        image.layers.push(LayerSpec::new(5 << 20, compression));
    }
    mkimage::write_image(&plain, "v1", &image).unwrap();
    let encrypted = tmp.path().join("enc");
    layercrypt()
        .args([
            "encrypt",
            "-q",
            "-r",
            &format!("jwe:{}", key("rsa2048.pub.pem")),
        ])
        .args(["--layer", "0", "--layer", "1"])
        .arg(oci(&plain, "v1"))
        .arg(oci(&encrypted, "v1"))
        .assert()
        .success();
    let k = key("rsa2048.pem");
    for dir in [&plain, &encrypted] {
        let (code, report) = verify_json(&["-k", &k, "--full"], &oci(dir, "v1"));
        assert_eq!(code, 0, "{report:#}");
        let rows = layer_rows(&report);
        assert!(rows.iter().all(|r| r.2 == "ok"), "{report:#}");
        assert!(
            rows.iter().all(|r| r.4.contains(&"diff_id".to_string())),
            "{report:#}"
        );
    }

    // A bit flipped 4 MiB into the encrypted gzip layer, re-pointed so its digest is right:
    // only the HMAC can tell.
    let layout = Layout(encrypted.clone());
    let layer = layout.layers("v1")[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut data = layout.blob(&layer);
    data[4 << 20] ^= 0x10;
    layout.replace_layer("v1", 0, &data);
    // A bit flipped inside the plain layer's blob, in place: its digest no longer matches.
    let plain_layer = layout.layers("v1")[2]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = layout.blob_path(&plain_layer);
    let mut bytes = fs::read(&path).unwrap();
    bytes[3 << 20] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let (code, report) = verify_json(&["-k", &k, "--full"], &oci(&encrypted, "v1"));
    assert_eq!(code, 1, "{report:#}");
    let rows = layer_rows(&report);
    assert_eq!(rows[0].2, "failed", "{report:#}");
    assert!(rows[0].3.contains("HMAC"), "{}", rows[0].3);
    assert_eq!(rows[1].2, "ok", "{report:#}");
    assert_eq!(rows[2].2, "failed", "{report:#}");
    assert!(
        rows[2].3.contains("does not match its digest"),
        "{}",
        rows[2].3
    );

    // The plain image's zstd layer against a config that names another diff_id.
    let layout = Layout(plain.clone());
    let wrong = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    layout.edit_config("v1", |config| {
        config["rootfs"]["diff_ids"][1] = Value::from(wrong)
    });
    let (code, report) = verify_json(&["-k", &k, "--full"], &oci(&plain, "v1"));
    assert_eq!(code, 1, "{report:#}");
    let rows = layer_rows(&report);
    assert_eq!(
        (rows[0].2.as_str(), rows[2].2.as_str()),
        ("ok", "ok"),
        "{report:#}"
    );
    assert!(
        rows[1]
            .3
            .contains(&format!("the config's diff_id is {wrong}")),
        "{}",
        rows[1].3
    );
}

/// Issue 14, point 1: the empty blob is never encrypted, so `--require-encrypted` does not fail
/// an image because of it, at every depth; an encrypted empty layer is verified and warned
/// about, since skopeo and containerd leave it encrypted when they decrypt.
#[test]
fn an_empty_layer_passes_require_encrypted_and_an_encrypted_one_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let layout = empty_layer_image(&dir, "v1");
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .arg(oci(&dir, "v1"))
        .assert()
        .success();
    let k = key("rsa2048.pem");
    for (args, empty_status, empty_reason) in [
        (vec![], "skipped", "empty layer, nothing to encrypt"),
        (vec!["-k", &k], "skipped", "empty layer, nothing to encrypt"),
        (vec!["-k", &k, "--full"], "ok", ""),
    ] {
        let mut all = vec!["--require-encrypted"];
        all.extend(&args);
        let (code, report) = verify_json(&all, &oci(&dir, "v1"));
        assert_eq!(code, 0, "{args:?}: {report:#}");
        let rows = layer_rows(&report);
        assert_eq!(
            (rows[0].2.as_str(), rows[0].3.as_str()),
            (empty_status, empty_reason),
            "{args:?}: {report:#}"
        );
        assert_eq!(rows[1].2, "ok", "{args:?}: {report:#}");
        assert_eq!(report["warnings"], Value::Array(vec![]), "{args:?}");
    }

    encrypt_layer_recording(&layout, "v1", 0, EMPTY_BLOB);
    let (code, report) = verify_json(&["-k", &k, "--full"], &oci(&dir, "v1"));
    assert_eq!(code, 0, "{report:#}");
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report:#}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("layer 0 (sha256:e3b0c44298fc): this encrypted layer is empty (0 bytes)"),
        "{report:#}"
    );
}
