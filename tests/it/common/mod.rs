//! Helpers shared by the integration tests (`use crate::common;`; the binaries of their own
//! beside `tests/it` include it with `#[path]`): fixtures, running the binary and skopeo,
//! snapshots of layout trees, and small edits of layouts for hostile-input tests.
#![allow(dead_code)]

pub mod dockerd;
pub mod fake_registry;
pub mod gpg;
pub mod keyprovider;
pub mod mkimage;
pub mod registry;
pub mod softhsm;
pub mod terminal;
/// The unit tests' deterministic generator (`src/testutil.rs`), shared rather than copied.
#[path = "../../../src/testutil.rs"]
#[allow(dead_code)]
pub mod testutil;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A file or directory under `testdata/`.
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// A test key under `testdata/keys/`, as a string for command lines.
pub fn key(name: &str) -> String {
    testdata("keys").join(name).display().to_string()
}

/// The layercrypt binary under test.
pub fn layercrypt() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("layercrypt").expect("the layercrypt binary is built")
}

/// Copy a directory tree, making the copy writable (fixtures may be read-only).
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
            let mut perms = fs::metadata(&to).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            fs::set_permissions(&to, perms).unwrap();
        }
    }
}

/// A fresh writable copy of a fixture layout (`testdata/images/NAME`) in `dir`.
pub fn fixture_copy(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    copy_tree(&testdata("images").join(name), &to);
    to
}

/// Every file under `dir` (relative path → content), hidden files included: equal snapshots
/// mean nothing was added, removed or changed.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The names of the entries of a directory (to check that nothing was left beside a layout).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Run skopeo with the test policy. skopeo is a test dependency (`scripts/deps.sh --test`):
/// when it is missing the test fails, it never skips.
pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .arg("--policy")
        .arg(testdata("policy.json"))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run skopeo ({e}); install it with scripts/deps.sh --test")
        })
}

/// Run skopeo and insist that it succeeds.
pub fn skopeo_ok(args: &[&str]) -> Output {
    let out = skopeo(args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Decrypt `src` into `dst` (both `oci:PATH:REF`) with skopeo and `key_file`, keeping
/// uncompressed layers uncompressed: without `--dest-oci-accept-uncompressed-layers` skopeo
/// gzips every uncompressed layer it writes to a layout, and so changes the manifest whatever
/// the decryption did.
pub fn skopeo_decrypt(key_file: &str, src: &str, dst: &str) -> Output {
    skopeo_ok(&[
        "copy",
        "--dest-oci-accept-uncompressed-layers",
        "--decryption-key",
        key_file,
        src,
        dst,
    ])
}

/// SHA-256 digest string of `data`.
pub fn digest_of(data: &[u8]) -> String {
    mkimage::sha256_digest(data)
}

/// A view of an OCI layout for assertions.
pub struct Layout(pub PathBuf);

impl Layout {
    /// The parsed `index.json`.
    pub fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.0.join("index.json")).unwrap()).unwrap()
    }

    /// The raw bytes of `index.json`.
    pub fn index_bytes(&self) -> Vec<u8> {
        fs::read(self.0.join("index.json")).unwrap()
    }

    /// The `index.json` entry named `reference`.
    pub fn entry(&self, reference: &str) -> Value {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == reference)
            .unwrap_or_else(|| panic!("no entry {reference} in {}", self.0.display()))
            .clone()
    }

    /// Path of a blob.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').unwrap();
        self.0.join("blobs").join(alg).join(hex)
    }

    /// A blob's bytes.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        fs::read(self.blob_path(digest)).unwrap()
    }

    /// A JSON blob.
    pub fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).unwrap()
    }

    /// Whether a blob exists.
    pub fn has(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The image manifests under `reference`, with their platform (`os/arch[/variant]`, or
    /// `-` when the index does not say), depth first.
    pub fn manifests(&self, reference: &str) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        self.collect(&self.entry(reference), &mut out);
        out
    }

    fn collect(&self, desc: &Value, out: &mut Vec<(String, String, Value)>) {
        let digest = desc["digest"].as_str().unwrap();
        let media_type = desc["mediaType"].as_str().unwrap_or_default();
        if media_type.contains("index") || media_type.contains("manifest.list") {
            for child in self.json(digest)["manifests"].as_array().unwrap() {
                self.collect(child, out);
            }
        } else {
            let p = &desc["platform"];
            let platform = if p.is_null() {
                "-".to_string()
            } else {
                let mut s = format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                );
                if let Some(v) = p["variant"].as_str() {
                    s = format!("{s}/{v}");
                }
                s
            };
            out.push((platform, digest.to_string(), self.json(digest)));
        }
    }

    /// Layer descriptors of the single-manifest image `reference`.
    pub fn layers(&self, reference: &str) -> Vec<Value> {
        let manifests = self.manifests(reference);
        assert_eq!(
            manifests.len(),
            1,
            "{reference} is not a single-manifest image"
        );
        manifests[0].2["layers"].as_array().unwrap().clone()
    }

    /// Rewrite the manifest of the single-manifest image `reference` with `edit`, store it as
    /// a new blob, and point `index.json` at it (Go-style compact JSON), so that every digest
    /// in the chain is consistent and only the edited content is wrong.
    pub fn edit_manifest(&self, reference: &str, edit: impl FnOnce(&mut Value)) {
        let entry = self.entry(reference);
        let old = entry["digest"].as_str().unwrap().to_string();
        let mut manifest = self.json(&old);
        edit(&mut manifest);
        let bytes = mkimage::go_json(&manifest);
        let new = digest_of(&bytes);
        fs::write(self.blob_path(&new), &bytes).unwrap();
        let mut index = self.index();
        for e in index["manifests"].as_array_mut().unwrap() {
            if e["digest"] == old.as_str() {
                e["digest"] = Value::from(new.clone());
                e["size"] = Value::from(bytes.len());
            }
        }
        fs::write(self.0.join("index.json"), mkimage::go_json(&index)).unwrap();
    }

    /// Edit the config of `reference`'s (first) manifest, stored as a new blob with the
    /// manifest re-pointed at it, so that every digest stays consistent.
    pub fn edit_config(&self, reference: &str, edit: impl FnOnce(&mut Value)) {
        let manifest = &self.manifests(reference)[0].2;
        let mut config = self.json(manifest["config"]["digest"].as_str().unwrap());
        edit(&mut config);
        let bytes = serde_json::to_vec(&config).unwrap();
        let digest = digest_of(&bytes);
        fs::write(self.blob_path(&digest), &bytes).unwrap();
        self.edit_manifest(reference, |m| {
            m["config"]["digest"] = Value::from(digest.clone());
            m["config"]["size"] = Value::from(bytes.len());
        });
    }

    /// Replace a blob's content under a new digest and point the manifest of `reference` at
    /// it (digest and size), keeping every digest in the chain consistent.
    pub fn replace_layer(&self, reference: &str, index: usize, content: &[u8]) -> String {
        let new = digest_of(content);
        fs::write(self.blob_path(&new), content).unwrap();
        let len = content.len();
        let digest = new.clone();
        self.edit_manifest(reference, move |m| {
            m["layers"][index]["digest"] = Value::from(digest);
            m["layers"][index]["size"] = Value::from(len);
        });
        new
    }
}

/// `stderr` of a finished command, as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An `oci:PATH:REF` reference.
pub fn oci(path: &Path, reference: &str) -> String {
    format!("oci:{}:{reference}", path.display())
}

/// The manifest (or index) digest of `reference` in the plain fixture layout.
pub fn plain_digest(reference: &str) -> Value {
    Layout(testdata("images/plain")).entry(reference)["digest"].clone()
}

/// Encrypt layer `index` of the single-manifest image `reference` by hand, for the rsa2048
/// test key, recording `recorded` as the plaintext digest in its private options (as skopeo
/// does when it recompressed, so the record differs from the decrypted blob). Returns the
/// digest of the plaintext layer.
pub fn encrypt_layer_recording(
    layout: &Layout,
    reference: &str,
    index: usize,
    recorded: &str,
) -> String {
    use base64::Engine as _;
    use layercrypt::cipher::{Encryptor, LayerSecrets, public_options};
    let b64 = base64::engine::general_purpose::STANDARD;
    let plain_layer = layout.layers(reference)[index]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut data = layout.blob(&plain_layer);
    let secrets = LayerSecrets::generate().unwrap();
    let mut e = Encryptor::new(&secrets);
    e.apply(&mut data);
    let hmac = e.finish();
    let private = secrets.private_options(recorded).to_json();
    let pubkey =
        layercrypt::keys::PublicKey::from_bytes(&fs::read(key("rsa2048.pub.pem")).unwrap())
            .unwrap();
    let jwe = b64
        .encode(layercrypt::keywrap::jwe::wrap(std::slice::from_ref(&pubkey), &private).unwrap());
    let pubopts = b64.encode(public_options(hmac).to_json());
    layout.replace_layer(reference, index, &data);
    layout.edit_manifest(reference, |m| {
        let l = &mut m["layers"][index];
        l["mediaType"] = Value::from("application/vnd.oci.image.layer.v1.tar+gzip+encrypted");
        l["annotations"]["org.opencontainers.image.enc.keys.jwe"] = Value::from(jwe);
        l["annotations"]["org.opencontainers.image.enc.pubopts"] = Value::from(pubopts);
    });
    plain_layer
}

/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Rewrite an OCI image manifest as Docker schema 2: its media type, the config's, and every
/// gzip layer's (zstd layers have no Docker type and stay OCI, as Docker itself writes them).
pub fn to_docker_schema2(manifest: &mut Value) {
    manifest["mediaType"] = Value::from(DOCKER_MANIFEST);
    manifest["config"]["mediaType"] = Value::from("application/vnd.docker.container.image.v1+json");
    for l in manifest["layers"].as_array_mut().unwrap() {
        if l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" {
            l["mediaType"] = Value::from("application/vnd.docker.image.rootfs.diff.tar.gzip");
        }
    }
}

/// The digest of zero bytes: the empty blob.
pub const EMPTY_BLOB: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A new layout at `dir` holding `reference`: a single-manifest image whose layers are, bottom
/// first, an uncompressed layer that is the empty blob (0 bytes, its diff_id the digest of
/// nothing, as image builders write it for a step that changed no file) and a gzip layer of
/// 64 KiB. Written as Go writes it, so skopeo reproduces its manifest byte for byte.
pub fn empty_layer_image(dir: &Path, reference: &str) -> Layout {
    use mkimage::{Compression, ImageSpec, LayerSpec};
    let mut spec = ImageSpec::new("linux", "amd64", 14);
    spec.layers = vec![
        LayerSpec::new(1024, Compression::None),
        LayerSpec::new(64 * 1024, Compression::Gzip),
    ];
    mkimage::write_image(dir, reference, &spec).unwrap();
    let layout = Layout(dir.to_path_buf());
    assert_eq!(layout.replace_layer(reference, 0, b""), EMPTY_BLOB);
    layout.edit_config(reference, |config| {
        config["rootfs"]["diff_ids"][0] = Value::from(EMPTY_BLOB);
    });
    layout
}
