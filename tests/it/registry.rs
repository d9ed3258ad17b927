//! Round trips through a real registry (Debian's Distribution 2.8 on loopback, see
//! `common::registry`), the way layercrypt is used around `skopeo copy`: encrypt, push, pull,
//! decrypt. What they show:
//!
//! - skopeo pushes and pulls encrypted layers as they are when it is given no keys, and the
//!   registry serves the manifest (or index) layercrypt wrote byte for byte, so every digest
//!   survives: manifest, config and each encrypted layer, with its wrapped keys;
//! - decrypting what was pulled (with layercrypt or `skopeo copy --decryption-key`) gives the
//!   original image back, byte for byte (the original manifest or index digest);
//! - on a multi-arch image with one platform encrypted, the other platform's manifest keeps
//!   its digest throughout;
//! - the README's quick start (encrypt, push, pull, decrypt, re-key, verify, push again) works
//!   as written.
//!
//! These tests fail (never skip) when skopeo or the registry is missing; `scripts/deps.sh
//! --test` installs both.

use crate::common;

use std::path::Path;

use serde_json::Value;

use common::registry::{Registry, raw_manifest, skopeo_copy};
use common::*;

const PUBLIC: &str = "rsa2048.pub.pem";
const PRIVATE: &str = "rsa2048.pem";

/// `layercrypt encrypt -r jwe:rsa2048.pub.pem [extra…] SRC [DST]`.
fn encrypt(extra: &[&str], src: &str, dst: Option<&str>) {
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key(PUBLIC))])
        .args(extra)
        .arg(src)
        .args(dst)
        .assert()
        .success();
}

/// `layercrypt decrypt -k rsa2048.pem SRC DST`.
fn decrypt(src: &str, dst: &str) {
    layercrypt()
        .args(["decrypt", "-k", &key(PRIVATE), src, dst])
        .assert()
        .success();
}

fn is_encrypted(layer: &Value) -> bool {
    layer["mediaType"].as_str().unwrap().ends_with("+encrypted")
}

fn digests(layers: &[Value]) -> Vec<String> {
    layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The manifest digest and manifest of `platform` in the multi-arch image `reference`.
fn platform_manifest(layout: &Layout, reference: &str, platform: &str) -> (String, Value) {
    layout
        .manifests(reference)
        .into_iter()
        .find(|(p, _, _)| p == platform)
        .map(|(_, digest, manifest)| (digest, manifest))
        .unwrap_or_else(|| panic!("no {platform} in {}:{reference}", layout.0.display()))
}

/// The bytes of the manifest (or index) `reference` points at.
fn top_blob(layout: &Layout, reference: &str) -> Vec<u8> {
    layout.blob(layout.entry(reference)["digest"].as_str().unwrap())
}

/// Encrypt with layercrypt, push, pull: everything arrives as it was encrypted, and both
/// layercrypt and skopeo decrypt what was pulled to the original image.
#[test]
fn layercrypt_encrypted_image_survives_push_and_pull() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let enc = Layout(tmp.path().join("enc"));
    encrypt(
        &[],
        &oci(&testdata("images/plain"), "v1"),
        Some(&oci(&enc.0, "v1")),
    );
    let encrypted = enc.layers("v1");
    assert!(encrypted.iter().all(is_encrypted));

    // Push: skopeo without keys keeps the layers encrypted, and the registry serves exactly
    // the manifest layercrypt wrote.
    skopeo_copy(&[], &oci(&enc.0, "v1"), &registry.image("app:enc"));
    assert_eq!(
        raw_manifest(&registry.image("app:enc")),
        top_blob(&enc, "v1"),
        "the registry does not serve the pushed manifest"
    );

    // Pull: the same manifest, so the same encrypted layers (digests, media types, wrapped keys).
    let pulled = Layout(tmp.path().join("pulled"));
    skopeo_copy(&[], &registry.image("app:enc"), &oci(&pulled.0, "enc"));
    assert_eq!(pulled.entry("enc")["digest"], enc.entry("v1")["digest"]);
    let layers = pulled.layers("enc");
    assert!(layers.iter().all(is_encrypted), "{layers:#?}");
    assert_eq!(digests(&layers), digests(&encrypted));
    assert_eq!(layers, encrypted);

    // layercrypt decrypts the pulled layout to the original, byte for byte.
    let out = Layout(tmp.path().join("out"));
    decrypt(&oci(&pulled.0, "enc"), &oci(&out.0, "v1"));
    assert_eq!(out.entry("v1")["digest"], plain_digest("v1"));

    // So does skopeo, straight from the registry.
    let out2 = Layout(tmp.path().join("out2"));
    skopeo_copy(
        &["--decryption-key", &key(PRIVATE)],
        &registry.image("app:enc"),
        &oci(&out2.0, "v1"),
    );
    assert_eq!(out2.entry("v1")["digest"], plain_digest("v1"));
}

/// The recipe from the README: pull a plain image from a registry, encrypt it in place, push
/// it; whoever pulls it with the key gets the original layers back.
#[test]
fn pulled_image_encrypted_in_place_pushes_and_decrypts_to_the_original() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let plain = Layout(testdata("images/plain"));
    let original = plain.layers("v1");
    let (_, original_manifest) = platform_manifest(&plain, "v1", "-");

    skopeo_copy(&[], &oci(&plain.0, "v1"), &registry.image("app:plain"));
    let work = Layout(tmp.path().join("work"));
    skopeo_copy(&[], &registry.image("app:plain"), &oci(&work.0, "v1"));
    // A plain push and pull changes nothing either.
    assert_eq!(work.entry("v1")["digest"], plain_digest("v1"));

    encrypt(&[], &oci(&work.0, "v1"), None);
    let encrypted = work.layers("v1");
    assert!(encrypted.iter().all(is_encrypted), "{encrypted:#?}");
    skopeo_copy(&[], &oci(&work.0, "v1"), &registry.image("app:v1-enc"));

    // Pulled without keys, the layers are still encrypted, and inspect says for whom.
    let pulled = Layout(tmp.path().join("pulled"));
    skopeo_copy(&[], &registry.image("app:v1-enc"), &oci(&pulled.0, "v1"));
    assert_eq!(pulled.entry("v1")["digest"], work.entry("v1")["digest"]);
    let report = layercrypt()
        .args(["inspect", "--json", &oci(&pulled.0, "v1")])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&report).unwrap();
    let manifests = report["images"][0]["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{report:#}");
    let layers = manifests[0]["layers"].as_array().unwrap();
    assert_eq!(
        layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        digests(&encrypted)
    );
    for layer in layers {
        assert_eq!(layer["encrypted"], true, "{layer:#}");
        assert_eq!(layer["schemes"], serde_json::json!(["jwe"]), "{layer:#}");
        assert_eq!(layer["recipients"][0]["algorithm"], "RSA-OAEP", "{layer:#}");
    }

    // skopeo decrypts it from the registry: the original layer blobs and media types, the
    // same config (so the same diff_ids), and in fact the original manifest, byte for byte.
    let back = Layout(tmp.path().join("back"));
    skopeo_copy(
        &["--decryption-key", &key(PRIVATE)],
        &registry.image("app:v1-enc"),
        &oci(&back.0, "v1"),
    );
    let restored = back.layers("v1");
    assert_eq!(digests(&restored), digests(&original));
    assert_eq!(restored, original);
    let (_, restored_manifest) = platform_manifest(&back, "v1", "-");
    assert_eq!(restored_manifest["config"], original_manifest["config"]);
    assert_eq!(back.entry("v1")["digest"], plain_digest("v1"));
}

/// A multi-arch index with only linux/arm64 encrypted goes through `skopeo copy --all` both
/// ways unchanged; linux/amd64 keeps its digest throughout.
#[test]
fn multi_arch_image_with_one_platform_encrypted_survives_push_and_pull_all() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let plain = Layout(testdata("images/plain"));
    let (amd64, _) = platform_manifest(&plain, "multi", "linux/amd64");
    let (arm64, _) = platform_manifest(&plain, "multi", "linux/arm64/v8");

    let enc = Layout(tmp.path().join("enc"));
    encrypt(
        &["--platform", "linux/arm64"],
        &oci(&plain.0, "multi"),
        Some(&oci(&enc.0, "multi")),
    );
    let check_platforms = |layout: &Layout| {
        let (amd64_now, amd64_manifest) = platform_manifest(layout, "multi", "linux/amd64");
        assert_eq!(
            amd64_now,
            amd64,
            "linux/amd64 changed in {}",
            layout.0.display()
        );
        assert!(
            !amd64_manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .any(is_encrypted)
        );
        let (arm64_now, arm64_manifest) = platform_manifest(layout, "multi", "linux/arm64/v8");
        assert_ne!(arm64_now, arm64);
        assert!(
            arm64_manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .all(is_encrypted)
        );
    };
    check_platforms(&enc);

    skopeo_copy(
        &["--all"],
        &oci(&enc.0, "multi"),
        &registry.image("multi:enc"),
    );
    assert_eq!(
        raw_manifest(&registry.image("multi:enc")),
        top_blob(&enc, "multi"),
        "the registry does not serve the pushed index"
    );
    let pulled = Layout(tmp.path().join("pulled"));
    skopeo_copy(
        &["--all"],
        &registry.image("multi:enc"),
        &oci(&pulled.0, "multi"),
    );
    assert_eq!(
        pulled.entry("multi")["digest"],
        enc.entry("multi")["digest"]
    );
    assert_eq!(pulled.manifests("multi"), enc.manifests("multi"));
    check_platforms(&pulled);

    // Decrypted by layercrypt: the original index, byte for byte.
    let out = Layout(tmp.path().join("out"));
    decrypt(&oci(&pulled.0, "multi"), &oci(&out.0, "multi"));
    assert_eq!(out.entry("multi")["digest"], plain_digest("multi"));
    assert_eq!(platform_manifest(&out, "multi", "linux/amd64").0, amd64);
    assert_eq!(platform_manifest(&out, "multi", "linux/arm64/v8").0, arm64);

    // And by skopeo, straight from the registry.
    let out2 = Layout(tmp.path().join("out2"));
    skopeo_copy(
        &["--all", "--decryption-key", &key(PRIVATE)],
        &registry.image("multi:enc"),
        &oci(&out2.0, "multi"),
    );
    assert_eq!(out2.entry("multi")["digest"], plain_digest("multi"));
}

/// The guard stops its registry: after the drop its process is gone (killed and reaped).
#[test]
fn dropping_the_registry_stops_it() {
    let registry = Registry::start();
    let proc_dir = Path::new("/proc").join(registry.pid().to_string());
    assert!(proc_dir.exists());
    drop(registry);
    assert!(
        !proc_dir.exists(),
        "the registry process {} is still there",
        proc_dir.display()
    );
}

/// The README's quick start, step by step (with the sample image for alpine, and test keys for
/// alice's EC P-384 and bob's RSA-4096 key pairs): encrypt for alice, push, pull, decrypt;
/// re-key for bob in place, verify with bob's key, push again; bob (with skopeo) gets the
/// original image.
#[test]
fn the_readme_quick_start_runs_as_written() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| oci(&tmp.path().join(name), "3.20");
    let (alice, alice_pub) = (key("ec384.pem"), format!("jwe:{}", key("ec384.pub.pem")));
    let (bob, bob_pub) = (
        key("rsa4096.pem"),
        format!("jwe:{}", key("rsa4096.pub.pem")),
    );
    let run = |args: &[&str]| layercrypt().args(args).assert().success();

    skopeo_copy(&[], &oci(&testdata("images/plain"), "v1"), &at("alpine"));
    run(&[
        "encrypt",
        "-r",
        &alice_pub,
        &at("alpine"),
        &at("alpine-enc"),
    ]);
    run(&["inspect", &at("alpine-enc")]).stdout(predicates::str::contains("P-384"));
    skopeo_copy(&[], &at("alpine-enc"), &registry.image("alpine:3.20-enc"));

    skopeo_copy(&[], &registry.image("alpine:3.20-enc"), &at("pulled"));
    run(&["decrypt", "-k", &alice, &at("pulled"), &at("alpine-plain")]);
    let plain = Layout(tmp.path().join("alpine-plain"));
    assert_eq!(plain.entry("3.20")["digest"], plain_digest("v1"));

    run(&["rekey", "-k", &alice, "--add", &bob_pub, &at("pulled")]);
    run(&["verify", "-k", &bob, &at("pulled")])
        .stdout(predicates::str::contains("verified: 3 ok, 0 failed"));
    skopeo_copy(&[], &at("pulled"), &registry.image("alpine:3.20-enc"));

    skopeo_copy(
        &["--decryption-key", &bob],
        &registry.image("alpine:3.20-enc"),
        &at("bob"),
    );
    let bobs = Layout(tmp.path().join("bob"));
    assert_eq!(bobs.entry("3.20")["digest"], plain_digest("v1"));
}
