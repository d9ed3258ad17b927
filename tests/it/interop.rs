//! Interoperability with Go ocicrypt, through the real skopeo (1.9.3 on Debian bookworm):
//! what layercrypt encrypts, `skopeo copy --decryption-key` decrypts, and what
//! `skopeo copy --encryption-key` encrypts now, layercrypt decrypts — RSA and EC keys, several
//! recipients, partial encryption and multi-arch images. These tests fail (never skip) when
//! skopeo is missing; `scripts/deps.sh --test` installs it.

use crate::common;

use std::path::Path;

use common::*;

/// Encrypt `reference` of the plain fixture with layercrypt for `recipients`.
fn layercrypt_encrypt(
    dir: &Path,
    name: &str,
    reference: &str,
    recipients: &[&str],
    extra: &[&str],
) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut cmd = layercrypt();
    cmd.arg("encrypt");
    for r in recipients {
        cmd.args(["-r", &format!("jwe:{}", key(r))]);
    }
    cmd.args(extra)
        .arg(oci(&testdata("images/plain"), reference))
        .arg(oci(&out, reference))
        .assert()
        .success();
    out
}

/// Decrypt with skopeo and check the result is the original image.
fn skopeo_decrypts_to_original(src: &Path, reference: &str, key_file: &str, all: bool, out: &Path) {
    let mut args = vec!["copy".to_string()];
    if all {
        args.push("--all".into());
    }
    args.extend([
        "--decryption-key".into(),
        key(key_file),
        oci(src, reference),
        oci(out, reference),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    skopeo_ok(&args);
    assert_eq!(
        Layout(out.to_path_buf()).entry(reference)["digest"],
        plain_digest(reference),
        "skopeo's decryption of {} with {key_file} is not the original",
        src.display()
    );
}

#[test]
fn skopeo_decrypts_what_layercrypt_encrypts_for_rsa_and_ec_keys() {
    let tmp = tempfile::tempdir().unwrap();
    for k in ["rsa2048", "rsa4096", "ec256", "ec384", "ec521"] {
        let enc = layercrypt_encrypt(
            tmp.path(),
            &format!("enc-{k}"),
            "v1",
            &[&format!("{k}.pub.pem")],
            &[],
        );
        skopeo_decrypts_to_original(
            &enc,
            "v1",
            &format!("{k}.pem"),
            false,
            &tmp.path().join(format!("dec-{k}")),
        );
        // A key that is not a recipient does not open it for skopeo either.
        let wrong = if k == "ec256" {
            "rsa2048.pem"
        } else {
            "ec256.pem"
        };
        let out = skopeo(&[
            "copy",
            "--decryption-key",
            &key(wrong),
            &oci(&enc, "v1"),
            &oci(&tmp.path().join(format!("never-{k}")), "v1"),
        ]);
        assert!(
            !out.status.success(),
            "skopeo opened {k}'s image with {wrong}"
        );
    }
}

/// One run for several recipients of mixed key types (general JWE serialization): each
/// recipient's key opens it alone, including the last one.
#[test]
fn skopeo_decrypts_with_any_of_several_recipients() {
    let tmp = tempfile::tempdir().unwrap();
    let recipients = [
        "rsa2048.pub.pem",
        "ec256.pub.pem",
        "ec384.pub.pem",
        "rsa4096.pub.pem",
    ];
    let enc = layercrypt_encrypt(tmp.path(), "enc", "v1", &recipients, &[]);
    for k in ["rsa4096.pem", "ec384.pem", "ec256.pem", "rsa2048.pem"] {
        skopeo_decrypts_to_original(&enc, "v1", k, false, &tmp.path().join(format!("dec-{k}")));
    }
}

/// JWK recipients whose `alg` asks for RSA-OAEP-256 or ECDH-ES+A128KW (skopeo itself cannot
/// write these, but its go-jose reads them).
#[test]
fn skopeo_decrypts_jwk_alg_recipients() {
    let tmp = tempfile::tempdir().unwrap();
    for (jwk, private) in [
        ("rsa2048.pub.oaep256.jwk", "rsa2048.pem"),
        ("ec256.pub.a128kw.jwk", "ec256.pem"),
    ] {
        let enc = layercrypt_encrypt(tmp.path(), &format!("enc-{jwk}"), "v1", &[jwk], &[]);
        let report = layercrypt()
            .args(["inspect", "--json"])
            .arg(oci(&enc, "v1"))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
        let alg =
            report["images"][0]["manifests"][0]["layers"][0]["recipients"][0]["algorithm"].clone();
        assert_eq!(
            alg,
            if jwk.contains("oaep") {
                "RSA-OAEP-256"
            } else {
                "ECDH-ES+A128KW"
            }
        );
        skopeo_decrypts_to_original(
            &enc,
            "v1",
            private,
            false,
            &tmp.path().join(format!("dec-{jwk}")),
        );
    }
}

#[test]
fn skopeo_decrypts_partially_encrypted_images() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, layer) in ["-1", "0", "1"].iter().enumerate() {
        let enc = layercrypt_encrypt(
            tmp.path(),
            &format!("enc{i}"),
            "v1",
            &["ec256.pub.pem"],
            &["--layer", layer],
        );
        let layers = Layout(enc.clone()).layers("v1");
        assert_eq!(
            layers
                .iter()
                .filter(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
                .count(),
            1
        );
        skopeo_decrypts_to_original(
            &enc,
            "v1",
            "ec256.pem",
            false,
            &tmp.path().join(format!("dec{i}")),
        );
    }
}

#[test]
fn skopeo_decrypts_multi_arch_images() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = layercrypt_encrypt(
        tmp.path(),
        "enc",
        "multi",
        &["rsa2048.pub.pem", "ec384.pub.pem"],
        &[],
    );
    for (_, _, m) in Layout(enc.clone()).manifests("multi") {
        assert!(
            m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
        );
    }
    skopeo_decrypts_to_original(&enc, "multi", "ec384.pem", true, &tmp.path().join("dec"));
    // Only one platform encrypted: skopeo still reads and decrypts the whole index.
    let arm = layercrypt_encrypt(
        tmp.path(),
        "arm",
        "multi",
        &["rsa2048.pub.pem"],
        &["--platform", "linux/arm64/v8"],
    );
    skopeo_decrypts_to_original(
        &arm,
        "multi",
        "rsa2048.pem",
        true,
        &tmp.path().join("dec-arm"),
    );
}

/// skopeo copies (and so verifies the digests of) a layout layercrypt encrypted in place.
#[test]
fn skopeo_reads_layouts_encrypted_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .arg(&dir)
        .assert()
        .success();
    skopeo_ok(&[
        "copy",
        "--all",
        &oci(&dir, "multi"),
        &oci(&tmp.path().join("copy"), "multi"),
    ]);
    skopeo_ok(&[
        "copy",
        &oci(&dir, "v1"),
        &oci(&tmp.path().join("copy"), "v1"),
    ]);
    skopeo_decrypts_to_original(&dir, "v1", "rsa2048.pem", false, &tmp.path().join("dec"));
}

/// The other direction, with images skopeo encrypts now (not only the committed fixtures).
#[test]
fn layercrypt_decrypts_what_skopeo_encrypts() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = testdata("images/plain");
    // (reference, skopeo recipients, extra skopeo args, keys that must open it)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        ("v1", &["rsa2048.pub.pem"], &[], &["rsa2048.pem"]),
        ("v1", &["rsa4096.pub.pem"], &[], &["rsa4096.pem"]),
        (
            "v1",
            &["ec256.pub.pem"],
            &[],
            &["ec256.pem", "ec256.sec1.pem"],
        ),
        ("v1", &["ec384.pub.pem"], &[], &["ec384.pem"]),
        ("v1", &["ec521.pub.pem"], &[], &["ec521.pem"]),
        (
            "v1",
            &["rsa2048.pub.pem", "ec256.pub.pem", "ec384.pub.pem"],
            &[],
            &["ec384.pem", "ec256.pem", "rsa2048.pem"],
        ),
        (
            "v1",
            &["ec256.pub.pem"],
            &["--encrypt-layer", "-1"],
            &["ec256.pem"],
        ),
        (
            "multi",
            &["rsa2048.pub.pem", "ec256.pub.pem"],
            &["--all"],
            &["ec256.pem", "rsa2048.pem"],
        ),
    ];
    for (i, (reference, recipients, extra, keys)) in cases.iter().enumerate() {
        let enc = tmp.path().join(format!("skopeo{i}"));
        let mut args: Vec<String> = vec!["copy".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        for r in *recipients {
            args.push("--encryption-key".into());
            args.push(format!("jwe:{}", key(r)));
        }
        args.push(oci(&plain, reference));
        args.push(oci(&enc, reference));
        skopeo_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        for k in *keys {
            let dec = tmp.path().join(format!("dec{i}-{k}"));
            layercrypt()
                .args(["decrypt", "-k", &key(k)])
                .arg(oci(&enc, reference))
                .arg(oci(&dec, reference))
                .assert()
                .success();
            assert_eq!(
                Layout(dec).entry(reference)["digest"],
                plain_digest(reference),
                "case {i} ({recipients:?} {extra:?}) with {k}"
            );
        }
        // And in place: the layout becomes the original, byte for byte, for what skopeo wrote.
        layercrypt()
            .args(["decrypt", "-k", &key(keys[0])])
            .arg(&enc)
            .assert()
            .success();
        assert_eq!(
            Layout(enc).entry(reference)["digest"],
            plain_digest(reference)
        );
    }
}

/// Issue 14, point 1: an empty layer (0 bytes) would encrypt to 0 bytes under the same digest,
/// which skopeo 1.9 and 1.22 copy without decrypting, leaving `+encrypted` in the image they
/// call decrypted. layercrypt leaves it plain (nothing to protect), so that skopeo restores the
/// original manifest byte for byte and `verify --require-encrypted` accepts the image.
#[test]
fn an_empty_layer_stays_plain_and_the_image_round_trips_through_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    // The image of the report, whose only layer is the empty blob, and one with a layer that
    // does get encrypted on top of it.
    let only = empty_layer_image(&tmp.path().join("only"), "v1");
    only.edit_manifest("v1", |m| {
        m["layers"].as_array_mut().unwrap().truncate(1);
    });
    only.edit_config("v1", |c| {
        c["rootfs"]["diff_ids"].as_array_mut().unwrap().truncate(1);
    });
    let two = empty_layer_image(&tmp.path().join("two"), "v1");
    for (name, original, encrypted_layers) in [("only", &only, 0), ("two", &two, 1)] {
        let enc = tmp.path().join(format!("{name}-enc"));
        layercrypt()
            .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
            .arg(oci(&original.0, "v1"))
            .arg(oci(&enc, "v1"))
            .assert()
            .success();
        let layers = Layout(enc.clone()).layers("v1");
        assert_eq!(layers[0]["digest"], EMPTY_BLOB, "{name}");
        assert_eq!(
            layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar",
            "{name}: the empty layer must stay plain"
        );
        assert!(
            layers[0]["annotations"].is_null(),
            "{name}: {:#}",
            layers[0]
        );
        assert_eq!(
            layers
                .iter()
                .filter(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
                .count(),
            encrypted_layers,
            "{name}"
        );
        layercrypt()
            .args(["verify", "--require-encrypted", "-k", &key("rsa2048.pem")])
            .arg(oci(&enc, "v1"))
            .assert()
            .code(0);

        let dec = tmp.path().join(format!("{name}-dec"));
        skopeo_decrypt(&key("rsa2048.pem"), &oci(&enc, "v1"), &oci(&dec, "v1"));
        let manifest = |l: &Layout| l.blob(l.entry("v1")["digest"].as_str().unwrap());
        assert_eq!(
            String::from_utf8(manifest(&Layout(dec))).unwrap(),
            String::from_utf8(manifest(original)).unwrap(),
            "{name}: skopeo's decryption is not the original manifest"
        );
    }
}
