//! `docker load` of docker-archives, in a private Docker 20.10 daemon (see `common::dockerd`;
//! a fresh daemon per test, so that no layer is already in the store and Docker reads and
//! checks every layer file against the config's diff IDs). What they show:
//!
//! - the harness works: Docker loads the skopeo-made `docker-archive-skopeo.tar` as
//!   `layercrypt/plain:v1`, with plain:v1's config digest as image ID and its diff IDs as
//!   layers;
//! - (part b) what `layercrypt decrypt … docker-archive:OUT.tar:NAME:TAG` writes loads the same
//!   way: the image ID is the plain config's digest (the config is kept byte for byte), the
//!   layers are the plain diff IDs (every layer decrypted and stored uncompressed), and the
//!   image is tagged NAME:TAG. Also for one platform of a multi-arch image, including arm64,
//!   whose top layer is zstd in the OCI image (Docker 20.10 cannot load zstd, so layercrypt
//!   must write it uncompressed).
//!
//! These tests fail (never skip) when Docker is missing; `scripts/deps.sh --test` installs it.

use crate::common;

use std::path::Path;

use serde_json::Value;

use common::dockerd::Dockerd;
use common::*;

/// What a loaded image must look like: the plain image's config digest, diff IDs and platform.
struct Expected {
    config_digest: String,
    diff_ids: Vec<Value>,
    os: Value,
    architecture: Value,
    variant: Value,
}

/// What the plain fixture layout holds under `reference` (for an index: its image for
/// `platform`, `os/arch[/variant]`), read from its config: index.json entry → manifest →
/// config → `rootfs.diff_ids`.
fn plain_image(reference: &str, platform: Option<&str>) -> Expected {
    let plain = Layout(testdata("images/plain"));
    let manifest = match platform {
        None => {
            let mut manifests = plain.manifests(reference);
            assert_eq!(manifests.len(), 1, "plain:{reference} is an index");
            manifests.remove(0).2
        }
        Some(platform) => {
            plain
                .manifests(reference)
                .into_iter()
                .find(|(p, _, _)| p == platform)
                .unwrap_or_else(|| panic!("no {platform} in plain:{reference}"))
                .2
        }
    };
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let config = plain.json(&config_digest);
    Expected {
        diff_ids: config["rootfs"]["diff_ids"].as_array().unwrap().clone(),
        os: config["os"].clone(),
        architecture: config["architecture"].clone(),
        variant: config["variant"].clone(),
        config_digest,
    }
}

/// Load `archive` into `docker`, which must report `Loaded image: NAME`, and check that the
/// image under `name` is `expected`: same ID (config digest), layers and platform.
fn assert_loads_as(docker: &Dockerd, archive: &Path, name: &str, expected: &Expected) {
    let stdout = docker.load(archive);
    assert_eq!(
        stdout,
        format!("Loaded image: {name}\n"),
        "docker load stdout"
    );
    let image = docker.image_inspect(name);
    assert_eq!(image["Id"], expected.config_digest.as_str(), "image ID");
    assert_eq!(image["RepoTags"], serde_json::json!([name]), "tags");
    assert_eq!(image["RootFS"]["Type"], "layers");
    assert_eq!(
        image["RootFS"]["Layers"].as_array().unwrap(),
        &expected.diff_ids,
        "layers (diff IDs)"
    );
    assert_eq!(image["Os"], expected.os, "os");
    assert_eq!(image["Architecture"], expected.architecture, "architecture");
    // Docker leaves `Variant` out when the config has none: null on both sides then.
    assert_eq!(image["Variant"], expected.variant, "variant");
}

/// Harness check: Docker loads the archive skopeo made of plain:v1 (its `RepoTags` say
/// `docker.io/layercrypt/plain:v1`; Docker shows the short name) as plain:v1's config and
/// layers.
#[test]
fn docker_loads_skopeo_made_archive_of_plain_v1() {
    let docker = Dockerd::start();
    assert_loads_as(
        &docker,
        &testdata("images/docker-archive-skopeo.tar"),
        "layercrypt/plain:v1",
        &plain_image("v1", None),
    );
    // The fully qualified name skopeo wrote finds the same image.
    let qualified = docker.image_inspect("docker.io/layercrypt/plain:v1");
    assert_eq!(qualified["Id"], plain_image("v1", None).config_digest);
}

// Part (b): archives written by `layercrypt decrypt … docker-archive:PATH:NAME:TAG`.

/// `layercrypt decrypt -q -k rsa2048.pem [extra…] SRC docker-archive:ARCHIVE:NAME`.
fn decrypt_to_docker_archive(extra: &[&str], src: &str, archive: &Path, name: &str) {
    layercrypt()
        .args(["decrypt", "-q", "-k", &key("rsa2048.pem")])
        .args(extra)
        .arg(src)
        .arg(format!("docker-archive:{}:{name}", archive.display()))
        .assert()
        .success();
}

/// (b) skopeo-rsa2048:v1 decrypted into a docker-archive loads as plain:v1 under the new tag.
#[test]
fn decrypted_into_docker_archive_loads_as_the_plain_image() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("decrypted.tar");
    decrypt_to_docker_archive(
        &[],
        &oci(&testdata("images/skopeo-rsa2048"), "v1"),
        &archive,
        "layercrypt/decrypted:v1",
    );
    let docker = Dockerd::start();
    assert_loads_as(
        &docker,
        &archive,
        "layercrypt/decrypted:v1",
        &plain_image("v1", None),
    );
}

/// (b) The linux/amd64 image of the encrypted multi-arch index, decrypted into a
/// docker-archive, loads as plain:multi's amd64 image.
#[test]
fn decrypted_multiarch_amd64_into_docker_archive_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("amd64.tar");
    decrypt_to_docker_archive(
        &["--platform", "linux/amd64"],
        &oci(&testdata("images/skopeo-multiarch"), "multi"),
        &archive,
        "layercrypt/decrypted:amd64",
    );
    let docker = Dockerd::start();
    assert_loads_as(
        &docker,
        &archive,
        "layercrypt/decrypted:amd64",
        &plain_image("multi", Some("linux/amd64")),
    );
}

/// (b) The linux/arm64 image, whose top layer is zstd in the OCI image: Docker 20.10 cannot
/// load zstd, so this loads only because layercrypt writes layers uncompressed. Docker loads
/// an image of another architecture without complaint.
#[test]
fn decrypted_multiarch_arm64_with_zstd_layer_loads_uncompressed() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("arm64.tar");
    decrypt_to_docker_archive(
        &["--platform", "linux/arm64"],
        &oci(&testdata("images/skopeo-multiarch"), "multi"),
        &archive,
        "layercrypt/decrypted:arm64",
    );
    let docker = Dockerd::start();
    assert_loads_as(
        &docker,
        &archive,
        "layercrypt/decrypted:arm64",
        &plain_image("multi", Some("linux/arm64/v8")),
    );
}
