//! Keeping a public base image public (issue 17): `encrypt --base REF` leaves the layers an
//! image shares with its base plain (same position and digest, or same diff_id), follows the
//! `org.opencontainers.image.base.digest` annotation, refuses an image not built on the base,
//! and `verify --require-encrypted --base REF` accepts exactly those layers plain. skopeo
//! decrypts the result to the original image.

use crate::common;

use std::path::Path;

use serde_json::Value;

use common::mkimage::{self, Compression, ImageSpec, LayerSpec};
use common::*;

const SEED: u64 = 7;
const ANNOTATION: &str = "org.opencontainers.image.base.digest";

fn jwe(name: &str) -> String {
    format!("jwe:{}", key(name))
}

/// An image of `layers` layers from `SEED` (so images with the same bottom layer specs share
/// those layers), each compressed as `compression[i]`.
fn spec(compression: &[Compression]) -> ImageSpec {
    let mut image = ImageSpec::new("linux", "amd64", SEED);
    for &c in compression {
        image.layers.push(LayerSpec::new(2048, c));
    }
    image
}

/// Layer media types of the single-manifest image `reference` in `dir`, and digests.
fn layers(dir: &Path, reference: &str) -> Vec<(String, String)> {
    Layout(dir.to_path_buf())
        .layers(reference)
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn encrypted(layers: &[(String, String)]) -> Vec<bool> {
    layers
        .iter()
        .map(|(m, _)| m.ends_with("+encrypted"))
        .collect()
}

/// Encrypt `image` with `--base base`; the command's output.
fn encrypt(base: &str, image: &str) -> std::process::Output {
    layercrypt()
        .args([
            "encrypt",
            "-q",
            "-r",
            &jwe("rsa2048.pub.pem"),
            "--base",
            base,
            image,
        ])
        .output()
        .unwrap()
}

const GZ: Compression = Compression::Gzip;

#[test]
fn layers_shared_with_the_base_stay_plain_and_verify_accepts_only_those() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let app = tmp.path().join("app");
    mkimage::write_image(&base, "v1", &spec(&[GZ, GZ])).unwrap();
    let written = mkimage::write_image(&app, "v1", &spec(&[GZ, GZ, GZ, GZ])).unwrap();
    let before = layers(&app, "v1");
    assert_eq!(
        before[..2],
        layers(&base, "v1")[..],
        "the fixture shares 2 layers"
    );

    // The plan says why the bottom two stay.
    let out = layercrypt()
        .args([
            "encrypt",
            "--dry-run",
            "-r",
            &jwe("rsa2048.pub.pem"),
            "--base",
        ])
        .arg(oci(&base, "v1"))
        .arg(oci(&app, "v1"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        plan.matches("shared with the base image").count(),
        2,
        "{plan}"
    );

    let out = encrypt(&oci(&base, "v1"), &oci(&app, "v1"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let after = layers(&app, "v1");
    assert_eq!(encrypted(&after), [false, false, true, true]);
    assert_eq!(
        after[..2],
        before[..2],
        "the base layers are the same blobs"
    );

    // verify --require-encrypted: the base layers fail without --base, pass with it.
    let out = layercrypt()
        .args(["verify", "--require-encrypted"])
        .arg(oci(&app, "v1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let out = layercrypt()
        .args(["verify", "--json", "--require-encrypted", "--base"])
        .arg(oci(&base, "v1"))
        .arg(oci(&app, "v1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdicts = &report["images"][0]["manifests"][0]["layers"];
    for i in 0..2 {
        assert_eq!(verdicts[i]["status"], "skipped", "{report:#}");
        assert_eq!(verdicts[i]["reason"], "shared with the base image");
    }
    // --full checks the diff_ids read for the base comparison against the decrypted layers.
    let out = layercrypt()
        .args([
            "verify",
            "-q",
            "--full",
            "--require-encrypted",
            "-k",
            &key("rsa2048.pem"),
        ])
        .arg("--base")
        .arg(oci(&base, "v1"))
        .arg(oci(&app, "v1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // Running it again changes nothing.
    let digest = Layout(app.clone()).entry("v1")["digest"].clone();
    let out = encrypt(&oci(&base, "v1"), &oci(&app, "v1"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(Layout(app.clone()).entry("v1")["digest"], digest);

    // skopeo decrypts it to the original image.
    let decrypted = tmp.path().join("decrypted");
    skopeo_decrypt(
        &key("rsa2048.pem"),
        &oci(&app, "v1"),
        &oci(&decrypted, "v1"),
    );
    assert_eq!(
        Layout(decrypted).entry("v1")["digest"],
        Value::from(written.tagged.digest)
    );
}

#[test]
fn a_layer_compressed_another_way_is_recognised_by_its_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let app = tmp.path().join("app");
    let base_written = mkimage::write_image(&base, "v1", &spec(&[GZ, GZ])).unwrap();
    // The same content, stored uncompressed (as `docker save` writes layers).
    let app_written = mkimage::write_image(
        &app,
        "v1",
        &spec(&[Compression::None, Compression::None, GZ]),
    )
    .unwrap();
    assert_ne!(
        base_written.images[0].layers[0].digest,
        app_written.images[0].layers[0].digest
    );
    assert_eq!(
        base_written.images[0].diff_ids[..2],
        app_written.images[0].diff_ids[..2]
    );
    let out = encrypt(&oci(&base, "v1"), &oci(&app, "v1"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(encrypted(&layers(&app, "v1")), [false, false, true]);
}

#[test]
fn an_image_not_built_on_the_base_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let app = tmp.path().join("app");
    let mut other = spec(&[GZ, GZ]);
    other.seed = SEED + 1;
    mkimage::write_image(&base, "v1", &other).unwrap();
    mkimage::write_image(&app, "v1", &spec(&[GZ, GZ, GZ])).unwrap();
    let before = snapshot(&app);
    let out = encrypt(&oci(&base, "v1"), &oci(&app, "v1"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "error: {} (linux/amd64) is not built on {}",
            oci(&app, "v1"),
            oci(&base, "v1")
        )) && err.contains("layer 0 is"),
        "{err}"
    );
    assert!(
        err.contains("hint: name the image it was built FROM"),
        "{err}"
    );
    assert_eq!(snapshot(&app), before, "the image was changed");

    // verify names it as a failure of the manifest.
    let out = layercrypt()
        .args(["verify", "--require-encrypted", "--base"])
        .arg(oci(&base, "v1"))
        .arg(oci(&app, "v1"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is not built on"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A base that cannot be opened is refused before the image is read.
    let out = encrypt(&oci(&tmp.path().join("missing"), "v1"), &oci(&app, "v1"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert_eq!(snapshot(&app), before);
}

#[test]
fn the_recorded_base_digest_chooses_among_the_base_images() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let v1 = mkimage::write_image(&base, "v1", &spec(&[GZ, GZ])).unwrap();
    mkimage::write_image(&base, "v2", &spec(&[GZ, GZ, GZ])).unwrap();
    let base_any = format!("oci:{}", base.display());

    // An image of `layers` layers in its own layout, recording `recorded` as its base.
    let image = |name: &str, layers: usize, recorded: Option<String>| {
        let dir = tmp.path().join(name);
        let mut image = spec(&vec![GZ; layers]);
        image.manifest_annotations = recorded
            .map(|d| (ANNOTATION.into(), d))
            .into_iter()
            .collect();
        mkimage::write_image(&dir, "v1", &image).unwrap();
        dir
    };
    // Encrypt it on the base; which layers are encrypted.
    let encrypt_on_base = |dir: &Path| {
        let out = encrypt(&base_any, &oci(dir, "v1"));
        assert!(out.status.success(), "{}", stderr_of(&out));
        encrypted(&layers(dir, "v1"))
    };

    // No annotation: the base image of the platform that matches most layers (v2).
    let plain = image("plain", 4, None);
    assert_eq!(encrypt_on_base(&plain), [false, false, false, true]);

    // Built on v1, as its annotation says: only v1's two layers stay plain.
    let annotated = image("annotated", 4, Some(v1.tagged.digest.clone()));
    assert_eq!(encrypt_on_base(&annotated), [false, false, true, true]);

    // A recorded base the store does not hold is an error that names the annotation.
    let unknown = image("unknown", 3, Some(format!("sha256:{}", "0".repeat(64))));
    let out = encrypt(&base_any, &oci(&unknown, "v1"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(ANNOTATION), "{err}");
}

/// A config without usable diff_ids (an attestation's, a damaged one) does not stop the
/// comparison: layers then match by digest alone, and a difference says so.
#[test]
fn a_config_without_diff_ids_compares_by_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let app = tmp.path().join("app");
    mkimage::write_image(&base, "v1", &spec(&[GZ, GZ])).unwrap();
    mkimage::write_image(&app, "v1", &spec(&[GZ, GZ, GZ])).unwrap();
    Layout(app.clone()).edit_config("v1", |c| {
        c.as_object_mut().unwrap().remove("rootfs");
    });
    let out = encrypt(&oci(&base, "v1"), &oci(&app, "v1"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(encrypted(&layers(&app, "v1")), [false, false, true]);

    // Stored otherwise than the base's, with nothing to recognise the content by.
    let other = tmp.path().join("other");
    mkimage::write_image(&other, "v1", &spec(&[Compression::None, GZ, GZ])).unwrap();
    Layout(other.clone()).edit_config("v1", |c| {
        c.as_object_mut().unwrap().remove("rootfs");
    });
    let out = encrypt(&oci(&base, "v1"), &oci(&other, "v1"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("layer 0 is") && err.contains("no diff_ids to compare"),
        "{err}"
    );
}
