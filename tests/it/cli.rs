//! The `layercrypt` binary, end to end: round trips that must be byte-exact, selection,
//! output modes, and every kind of bad input refused with exit 2 and nothing changed.

use crate::common;

use std::fs;

use common::*;
use serde_json::Value;

const PLAIN_V1: &str = "sha256:8eb108e66e7fd82fd27f3711f4bf0cee9d67129f8414fc10849cff355d68255b";

fn plain() -> Layout {
    Layout(testdata("images/plain"))
}

/// Encrypted layers of a single-manifest image, by position.
fn encrypted_positions(layout: &Layout, reference: &str) -> Vec<usize> {
    layout
        .layers(reference)
        .iter()
        .enumerate()
        .filter(|(_, l)| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
        .map(|(i, _)| i)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Decrypting what skopeo (Go ocicrypt) wrote

/// Every skopeo fixture decrypts with each key that opens it, in every key format we accept,
/// and the result is the original image: the same manifest (or index) bytes, the same layers.
#[test]
fn decrypting_skopeo_fixtures_restores_the_original_byte_for_byte() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "skopeo-rsa2048",
            "v1",
            &[
                "rsa2048.pem",
                "rsa2048.pkcs1.pem",
                "rsa2048.der",
                "rsa2048.jwk",
            ],
        ),
        ("skopeo-rsa4096", "v1", &["rsa4096.pem"]),
        (
            "skopeo-ec256",
            "v1",
            &["ec256.pem", "ec256.sec1.pem", "ec256.sec1.der", "ec256.jwk"],
        ),
        ("skopeo-ec384", "v1", &["ec384.pem"]),
        (
            "skopeo-multi",
            "v1",
            &["rsa2048.pem", "ec256.pem", "ec384.pem"],
        ),
        ("skopeo-partial", "v1", &["rsa2048.pem"]),
        ("skopeo-jwk-oaep256", "v1", &["rsa2048.pem"]),
        ("skopeo-multiarch", "multi", &["rsa2048.pem"]),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (fixture, reference, keys) in cases {
        for k in *keys {
            let out = tmp.path().join(format!("{fixture}-{k}"));
            layercrypt()
                .args(["decrypt", "-k", &key(k)])
                .arg(oci(&testdata("images").join(fixture), reference))
                .arg(oci(&out, reference))
                .assert()
                .success();
            let decrypted = Layout(out);
            let want = plain().entry(reference)["digest"].clone();
            assert_eq!(
                decrypted.entry(reference)["digest"],
                want,
                "{fixture} with {k}: decrypted image differs from the original"
            );
            // Every blob of the original is there, byte for byte.
            for (_, _, manifest) in plain().manifests(reference) {
                for layer in manifest["layers"].as_array().unwrap() {
                    let d = layer["digest"].as_str().unwrap();
                    assert_eq!(decrypted.blob(d), plain().blob(d), "{fixture}: layer {d}");
                }
            }
        }
    }
}

/// On a terminal, a passphrase no other source gives is asked for (without echo). `script`
/// (util-linux) gives the command a real pseudo-terminal.
#[test]
fn passphrases_are_asked_for_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let bin = assert_cmd::cargo::cargo_bin("layercrypt");
    let command = format!(
        "{} decrypt -k {} {} {}",
        bin.display(),
        key("rsa2048.enc-legacy.pem"),
        oci(&testdata("images/skopeo-rsa2048"), "v1"),
        oci(&out, "v1")
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"test-password\n")
        .unwrap();
    let done = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{text}");
    assert!(text.contains("Passphrase for"), "{text}");
    assert_eq!(Layout(out).entry("v1")["digest"], PLAIN_V1);
}

/// A key directory (as containerd's ctd-decoder reads one) is searched recursively; what is
/// not a key (notes, public keys) is skipped, and keys of every kind are routed to their scheme.
#[test]
fn key_directories_are_searched_and_their_files_routed_by_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    fs::create_dir_all(keys.join("nested/deeper")).unwrap();
    fs::copy(key("rsa2048.pub.pem"), keys.join("rsa2048.pub.pem")).unwrap();
    fs::copy(key("x509.crt"), keys.join("x509.crt")).unwrap();
    fs::write(keys.join("README"), "these are the production keys\n").unwrap();
    fs::write(keys.join("empty"), "").unwrap();
    fs::copy(key("ec256.pem"), keys.join("nested/ec256.pem")).unwrap();
    fs::copy(key("rsa2048.pem"), keys.join("nested/deeper/rsa2048.pem")).unwrap();
    let out = tmp.path().join("out");
    let run = layercrypt()
        .args(["decrypt", "-v", "--key-dir"])
        .arg(&keys)
        .arg(oci(&testdata("images/skopeo-multi"), "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(Layout(out).entry("v1")["digest"], PLAIN_V1);
    let err = stderr_of(&run);
    for skipped in [
        "README: skipped",
        "empty: skipped",
        "rsa2048.pub.pem: skipped (a public key)",
    ] {
        assert!(err.contains(skipped), "{skipped}: {err}");
    }
    // Which key opened the layers is part of -v.
    assert!(err.contains("opened with jwe key"), "{err}");
    // An explicitly named file that is no key is an error, not skipped.
    assert_refused(
        &[
            "decrypt".into(),
            "-k".into(),
            keys.join("README").display().to_string(),
            oci(&testdata("images/skopeo-multi"), "v1"),
            oci(&tmp.path().join("x"), "v1"),
        ],
        &["README", "not a key format layercrypt recognises"],
    );
}

/// Issue 14, point 3: a key directory is walked following symbolic links, with loops detected:
/// a link back to a directory above is skipped with a warning (it used to fail the whole key
/// load, "too many levels of symbolic links"), a key reached through a link to a sibling
/// directory, or named with `-k` too, is loaded once, and files that cannot be used (a
/// dangling link, a file whose reading fails, a FIFO) are warned about by name and skipped;
/// only when they leave no key at all is that an error.
#[test]
fn key_directories_follow_links_without_loops_or_doubles_and_skip_unusable_files() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    fs::create_dir_all(keys.join("a")).unwrap();
    fs::copy(key("rsa2048.pem"), keys.join("a/rsa2048.pem")).unwrap();
    symlink("a", keys.join("b")).unwrap();
    symlink("..", keys.join("a/up")).unwrap();
    symlink("nowhere", keys.join("dangling")).unwrap();
    // Reading it fails (EIO), even for root, for whom no file mode makes a file unreadable.
    symlink("/proc/self/mem", keys.join("mem")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(keys.join("fifo"))
        .status()
        .unwrap();
    assert!(status.success());

    let out = tmp.path().join("out");
    let run = layercrypt()
        .args(["decrypt", "--key-dir"])
        .arg(&keys)
        .arg(oci(&testdata("images/skopeo-rsa2048"), "v1"))
        .arg(oci(&out, "v1"))
        .output()
        .unwrap();
    let err = stderr_of(&run);
    assert!(run.status.success(), "{err}");
    assert_eq!(Layout(out).entry("v1")["digest"], PLAIN_V1);
    let k = keys.display();
    for warning in [
        format!("warning: {k}/a/up: a symbolic link back to {k} (a loop); skipped"),
        format!("warning: {k}/dangling: a symbolic link to nothing; skipped"),
        format!("warning: {k}/fifo: not a regular file; skipped"),
        format!("warning: cannot read key file {k}/mem: Input/output error (os error 5); skipped"),
    ] {
        assert!(err.lines().any(|l| l == warning), "{warning}\n{err}");
    }
    // -q: no warnings.
    layercrypt()
        .args(["decrypt", "-q", "--dry-run", "--key-dir"])
        .arg(&keys)
        .arg(oci(&testdata("images/skopeo-rsa2048"), "v1"))
        .assert()
        .success()
        .stderr("");

    // A key that opens nothing is tried once, whether reached by two paths or named twice.
    let wrong = tmp.path().join("wrong");
    fs::create_dir_all(wrong.join("a")).unwrap();
    fs::copy(key("ec256.pem"), wrong.join("a/ec256.pem")).unwrap();
    symlink("a", wrong.join("b")).unwrap();
    let refused = assert_refused(
        &[
            "decrypt".into(),
            "-k".into(),
            wrong.join("a/ec256.pem").display().to_string(),
            "--key-dir".into(),
            wrong.display().to_string(),
            oci(&testdata("images/skopeo-rsa2048"), "v1"),
            oci(&tmp.path().join("never"), "v1"),
        ],
        &["none of the given keys can open it"],
    );
    assert_eq!(refused.matches("ec256.pem").count(), 1, "{refused}");

    // Nothing usable at all: an error naming each file and why.
    let broken = tmp.path().join("broken");
    fs::create_dir_all(&broken).unwrap();
    symlink("nowhere", broken.join("dangling")).unwrap();
    symlink("/proc/self/mem", broken.join("mem")).unwrap();
    assert_refused(
        &[
            "decrypt".into(),
            "--key-dir".into(),
            broken.display().to_string(),
            oci(&testdata("images/skopeo-rsa2048"), "v1"),
            oci(&tmp.path().join("never"), "v1"),
        ],
        &[
            &format!(
                "error: no usable key in key directory {}: ",
                broken.display()
            ),
            "dangling: a symbolic link to nothing; ",
            "mem: Input/output error",
            "hint: each file was skipped for the reason given",
        ],
    );
}

/// The five-recipient skopeo sample also carries OpenPGP and PKCS#7 entries beside its JWE one;
/// each of its JWE keys opens it, and so does its (Go-made, golang.org/x/crypto) OpenPGP entry
/// with the exported secret keyring, to the original manifest bytes.
#[test]
fn images_with_other_schemes_beside_jwe_decrypt_with_a_jwe_key() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = testdata("samples/small-multi");
    let mut keys = vec!["rsa2048.pem", "ec256.pem", "ec384.pem"];
    if cfg!(feature = "pgp") {
        keys.push("gpg-secring.gpg");
    }
    for k in keys {
        let out = tmp.path().join(k);
        layercrypt()
            .args(["decrypt", "-k"])
            .arg(sample.join("keys").join(k))
            .arg(oci(&sample.join("image"), "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        assert_eq!(
            Layout(out).entry("v1")["digest"],
            "sha256:6ff94ca744fc42c4cbbd31a030d668f875b29bfc6ca5c2a887503afb24cd8aea",
            "{k}"
        );
    }
    if !cfg!(feature = "pgp") {
        // Without the pgp feature the keyring is recognised and refused, saying why.
        let out = layercrypt()
            .args(["decrypt", "-k"])
            .arg(sample.join("keys/gpg-secring.gpg"))
            .arg(oci(&sample.join("image"), "v1"))
            .arg(oci(&tmp.path().join("pgp"), "v1"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert!(stderr_of(&out).contains("OpenPGP"), "{}", stderr_of(&out));
    }
}

/// Passphrase-protected keys, with the passphrase from a file, the environment or inline.
#[test]
fn passphrase_protected_keys_open_skopeo_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    fs::write(&pw, "test-password\n").unwrap();
    let specs = [
        format!("{}:file={}", key("rsa2048.enc-pkcs8.pem"), pw.display()),
        format!("{}:env=LC_TEST_PW", key("rsa2048.enc-legacy.pem")),
        format!("{}:pass=test-password", key("rsa2048.enc-pkcs8.pem")),
    ];
    for (i, spec) in specs.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        layercrypt()
            .env("LC_TEST_PW", "test-password")
            .args(["decrypt", "-k", spec])
            .arg(oci(&testdata("images/skopeo-rsa2048"), "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        assert_eq!(Layout(out).entry("v1")["digest"], PLAIN_V1);
    }
    // fd=: a descriptor the caller opened (here by the shell).
    let out = tmp.path().join("out-fd");
    let bin = assert_cmd::cargo::cargo_bin("layercrypt");
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} decrypt -k {}:fd=3 {} {} 3<{}",
            bin.display(),
            key("rsa2048.enc-pkcs8.pem"),
            oci(&testdata("images/skopeo-rsa2048"), "v1"),
            oci(&out, "v1"),
            pw.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(Layout(out).entry("v1")["digest"], PLAIN_V1);
    // --passphrase-file applies to keys that name no source of their own.
    let out = tmp.path().join("out-pf");
    layercrypt()
        .args([
            "decrypt",
            "-k",
            &key("rsa2048.enc-legacy.pem"),
            "--passphrase-file",
        ])
        .arg(&pw)
        .arg(oci(&testdata("images/skopeo-rsa2048"), "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .success();
}

// ---------------------------------------------------------------------------------------------
// Round trips

/// Encrypting a layout in place and decrypting it again gives back every file, byte for byte:
/// index.json, manifests, indexes, layers, and no leftovers (the plaintext blobs are removed
/// after the encryption commits, the ciphertext ones after the decryption commits).
#[test]
fn in_place_round_trip_restores_the_layout_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let before = snapshot(&dir);
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("ec384.pub.pem"))])
        .arg(&dir)
        .assert()
        .success();
    let layout = Layout(dir.clone());
    assert_eq!(encrypted_positions(&layout, "v1"), vec![0, 1, 2]);
    for (_, _, m) in layout.manifests("multi") {
        assert!(
            m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
        );
    }
    // No plaintext layer blob remains in the layout.
    for reference in ["v1", "multi"] {
        for (_, _, m) in plain().manifests(reference) {
            for l in m["layers"].as_array().unwrap() {
                assert!(
                    !layout.has(l["digest"].as_str().unwrap()),
                    "plaintext {} left behind",
                    l["digest"]
                );
            }
        }
    }
    // Annotations that are not about encryption survive.
    assert_eq!(
        layout.layers("v1")[2]["annotations"]["org.opencontainers.image.title"],
        "top-layer"
    );

    layercrypt()
        .args(["decrypt", "-k", &key("ec384.pem")])
        .arg(format!("oci:{}", dir.display()))
        .assert()
        .success();
    assert_eq!(snapshot(&dir), before);
}

/// The same round trip through a new layout: the source is never touched, and the new layout
/// holds only the selected image.
#[test]
fn round_trip_through_new_layouts_leaves_the_source_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture_copy("plain", tmp.path());
    let before = snapshot(&src);
    let enc = tmp.path().join("enc");
    let dec = tmp.path().join("dec");
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .args(["-r", &format!("jwe:{}", key("ec256.pub.pem"))])
        .arg(oci(&src, "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    assert_eq!(snapshot(&src), before);
    let enc_layout = Layout(enc.clone());
    assert_eq!(enc_layout.index()["manifests"].as_array().unwrap().len(), 1);
    // No staging directory or temporary file is left beside or inside the new layout.
    assert_eq!(dir_entries(tmp.path()), vec!["enc", "plain"]);
    assert!(
        snapshot(&enc)
            .keys()
            .all(|k| !k.contains(".layercrypt-tmp-"))
    );

    // Either recipient's key opens it.
    for (k, out) in [
        ("rsa2048.pem", &dec),
        ("ec256.pem", &tmp.path().join("dec2")),
    ] {
        layercrypt()
            .args(["decrypt", "-k", &key(k)])
            .arg(oci(&enc, "v1"))
            .arg(oci(out, "v1"))
            .assert()
            .success();
        assert_eq!(Layout(out.clone()).entry("v1")["digest"], PLAIN_V1);
    }
    // The decrypted layout's index.json is what Go would write for it.
    let idx = Layout(dec).index_bytes();
    let text = String::from_utf8(idx).unwrap();
    assert!(
        !text.contains(' ') && !text.contains('\n'),
        "not compact: {text}"
    );
}

/// Output into an existing layout adds the reference, or replaces an entry with the same
/// reference, and keeps every other entry (skopeo's behaviour).
#[test]
fn writing_into_an_existing_layout_adds_or_replaces_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = fixture_copy("plain", tmp.path());
    let recipient = format!("jwe:{}", key("rsa2048.pub.pem"));
    let src = testdata("images/plain");
    for _ in 0..2 {
        layercrypt()
            .args(["encrypt", "-r", &recipient])
            .arg(oci(&src, "v1"))
            .arg(oci(&dst, "v1-enc"))
            .assert()
            .success();
        let layout = Layout(dst.clone());
        let names: Vec<String> = layout.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, vec!["v1", "multi", "v1-enc"]);
        assert_eq!(layout.entry("v1")["digest"], PLAIN_V1);
        assert_eq!(encrypted_positions(&layout, "v1-enc"), vec![0, 1, 2]);
    }
    // The first run's encrypted blobs were replaced and removed; v1's plaintext stays.
    let layout = Layout(dst);
    for l in plain().layers("v1") {
        assert!(layout.has(l["digest"].as_str().unwrap()));
    }
    let blobs = fs::read_dir(layout.0.join("blobs/sha256")).unwrap().count();
    let plain_blobs = fs::read_dir(testdata("images/plain/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(
        blobs,
        plain_blobs + 4,
        "3 encrypted layers and 1 manifest added"
    );
}

/// Writing a new reference into the source layout itself keeps the original image.
#[test]
fn writing_a_new_reference_into_the_source_layout_keeps_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .arg(oci(&dir, "v1"))
        .arg(oci(&dir, "secret"))
        .assert()
        .success();
    let layout = Layout(dir);
    assert_eq!(layout.entry("v1")["digest"], PLAIN_V1);
    assert_eq!(encrypted_positions(&layout, "secret"), vec![0, 1, 2]);
}

// ---------------------------------------------------------------------------------------------
// Selection

#[test]
fn layer_selection_by_index_and_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let recipient = format!("jwe:{}", key("ec256.pub.pem"));
    let top = plain().layers("v1")[2]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: &[(&[&str], Vec<usize>)] = &[
        (&["--layer", "-1"], vec![2]),
        (&["--layer", "0"], vec![0]),
        (&["--layer", "0", "--layer", "-2"], vec![0, 1]),
        (&["--layer", &top], vec![2]),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        layercrypt()
            .args(["encrypt", "-r", &recipient])
            .args(*args)
            .arg(oci(&testdata("images/plain"), "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        let layout = Layout(out.clone());
        assert_eq!(&encrypted_positions(&layout, "v1"), want, "{args:?}");
        // Decrypting only what is encrypted gives back the original.
        let dec = tmp.path().join(format!("dec{i}"));
        layercrypt()
            .args(["decrypt", "-k", &key("ec256.pem")])
            .arg(oci(&out, "v1"))
            .arg(oci(&dec, "v1"))
            .assert()
            .success();
        assert_eq!(Layout(dec).entry("v1")["digest"], PLAIN_V1);
    }
}

#[test]
fn out_of_range_layers_and_unknown_platforms_are_errors_that_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let before = snapshot(&dir);
    let recipient = format!("jwe:{}", key("ec256.pub.pem"));
    for (args, message) in [
        (vec!["--layer", "3"], "layer index 3 is out of range"),
        (vec!["--layer", "-4"], "layer index -4 is out of range"),
        (
            vec!["--platform", "linux/s390x"],
            "no image has platform linux/s390x",
        ),
        (vec!["--platform", "linux"], "is not a platform"),
        (
            vec![
                "--layer",
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ],
            "no selected manifest has a layer",
        ),
        (vec!["--layer", "top"], "is not a layer"),
    ] {
        let out = layercrypt()
            .args(["encrypt", "-r", &recipient])
            .args(&args)
            .arg(oci(&dir, "v1"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr_of(&out);
        assert!(
            err.starts_with("error: ") && err.contains(message),
            "{args:?}: {err}"
        );
    }
    assert_eq!(snapshot(&dir), before);
}

/// `--platform` rewrites only that platform's manifest (and the index above it); a layer the
/// other platform shares stays available in plaintext for it.
#[test]
fn platform_selection_touches_only_the_selected_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let before = snapshot(&dir);
    layercrypt()
        .args([
            "encrypt",
            "-r",
            &format!("jwe:{}", key("ec256.pub.pem")),
            "--platform",
            "linux/arm64",
        ])
        .arg(oci(&dir, "multi"))
        .assert()
        .success();
    let layout = Layout(dir.clone());
    let before_m = plain().manifests("multi");
    let after_m = layout.manifests("multi");
    assert_eq!(after_m[0].0, "linux/amd64");
    assert_eq!(after_m[0].1, before_m[0].1, "amd64 manifest changed");
    assert_ne!(after_m[1].1, before_m[1].1, "arm64 manifest unchanged");
    assert!(
        after_m[1].2["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
    );
    let shared = before_m[0].2["layers"][0]["digest"].as_str().unwrap();
    assert!(layout.has(shared), "the layer amd64 still uses was removed");
    // v1 is untouched, and decrypting restores everything.
    assert_eq!(layout.entry("v1")["digest"], PLAIN_V1);
    layercrypt()
        .args(["decrypt", "-k", &key("ec256.pem")])
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(snapshot(&dir), before);
}

// ---------------------------------------------------------------------------------------------
// Refusals: exit 2, an error that names the problem, nothing changed

fn assert_refused(args: &[String], expect: &[&str]) -> String {
    let out = layercrypt()
        .args(args)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.starts_with("error: "), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_key_that_is_not_a_recipient_is_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    let before = snapshot(&dir);
    let err = assert_refused(
        &[
            "decrypt".into(),
            "-k".into(),
            key("ec256.pem"),
            "-k".into(),
            key("rsa4096.pem"),
            format!("oci:{}", dir.display()),
        ],
        &[
            "layer 0",
            "none of the given keys can open it (encrypted for jwe)",
            // Each key tried, with why it failed.
            &format!(
                "jwe with {}: EC P-256 key is not any of the 1 recipient",
                key("ec256.pem")
            ),
            &format!(
                "jwe with {}: RSA-4096 key is not any of the 1 recipient",
                key("rsa4096.pem")
            ),
        ],
    );
    assert!(err.contains("hint: "), "{err}");
    assert_eq!(snapshot(&dir), before);
    // To a new layout: nothing is created.
    let out = tmp.path().join("out");
    assert_refused(
        &[
            "decrypt".into(),
            "-k".into(),
            key("ec256.pem"),
            oci(&dir, "v1"),
            oci(&out, "v1"),
        ],
        &["none of the given keys"],
    );
    assert_eq!(dir_entries(tmp.path()), vec!["skopeo-rsa2048"]);
}

/// A modified ciphertext whose digests were fixed up everywhere (as an attacker with write
/// access to the registry could do) is caught by the HMAC alone, and no plaintext of it is
/// published anywhere.
#[test]
fn tampered_ciphertext_is_caught_by_the_hmac() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    let layout = Layout(dir.clone());
    let layer = layout.layers("v1")[1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut data = layout.blob(&layer);
    data[100] ^= 0x01;
    layout.replace_layer("v1", 1, &data);
    let before = snapshot(&dir);
    for dst in [None, Some(tmp.path().join("out"))] {
        let mut args = vec![
            "decrypt".to_string(),
            "-k".into(),
            key("rsa2048.pem"),
            oci(&dir, "v1"),
        ];
        args.extend(dst.as_ref().map(|d| oci(d, "v1")));
        let err = assert_refused(&args, &["layer 1", "HMAC does not match"]);
        assert!(err.contains("hint: "), "{err}");
        assert_eq!(snapshot(&dir), before);
    }
    assert_eq!(dir_entries(tmp.path()), vec!["skopeo-rsa2048"]);
}

#[test]
fn corrupted_layouts_are_refused_and_left_as_they_are() {
    type Break = fn(&Layout);
    let cases: Vec<(&str, Break, &[&str])> = vec![
        (
            "index.json is not JSON",
            |l| fs::write(l.0.join("index.json"), b"{\"manifests\": [").unwrap(),
            &["index.json", "invalid JSON"],
        ),
        (
            "no oci-layout",
            |l| fs::remove_file(l.0.join("oci-layout")).unwrap(),
            &["not an OCI image layout"],
        ),
        (
            "missing manifest",
            |l| fs::remove_file(l.blob_path(l.entry("v1")["digest"].as_str().unwrap())).unwrap(),
            &["is missing"],
        ),
        (
            "flipped byte in a layer",
            |l| {
                let d = l.layers("v1")[0]["digest"].as_str().unwrap().to_string();
                let mut b = l.blob(&d);
                b[10] ^= 0xff;
                fs::write(l.blob_path(&d), b).unwrap();
            },
            &["does not match its digest"],
        ),
        (
            "truncated layer",
            |l| {
                let d = l.layers("v1")[1]["digest"].as_str().unwrap().to_string();
                let b = l.blob(&d);
                fs::write(l.blob_path(&d), &b[..b.len() / 2]).unwrap();
            },
            &["truncated"],
        ),
        (
            "manifest size lies",
            |l| {
                let mut idx = l.index();
                idx["manifests"][0]["size"] = Value::from(10);
                fs::write(l.0.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
            },
            &["longer than the 10 bytes"],
        ),
        (
            "hostile digest",
            |l| {
                let mut idx = l.index();
                idx["manifests"][0]["digest"] = Value::from("sha256:../../../../etc/passwd");
                fs::write(l.0.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
            },
            &["invalid encoded part"],
        ),
        (
            "negative size",
            |l| {
                let mut idx = l.index();
                idx["manifests"][0]["size"] = Value::from(-5);
                fs::write(l.0.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
            },
            &["not a non-negative integer"],
        ),
        (
            "layers is not an array",
            |l| l.edit_manifest("v1", |m| m["layers"] = Value::from("x")),
            &["layers"],
        ),
    ];
    for (what, corrupt, expect) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture_copy("skopeo-rsa2048", tmp.path());
        corrupt(&Layout(dir.clone()));
        let before = snapshot(&dir);
        let out = layercrypt()
            .args(["decrypt", "-k", &key("rsa2048.pem")])
            .arg(format!("oci:{}", dir.display()))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr_of(&out);
        for e in expect {
            assert!(
                err.starts_with("error: ") && err.contains(e),
                "{what}: expected {e:?} in {err}"
            );
        }
        assert_eq!(snapshot(&dir), before, "{what}: layout changed");
    }
}

/// Options Go would accept by mistake are refused before any data is read: no nonce (Go
/// decrypts to garbage), a short nonce (Go panics), a short key, no HMAC.
#[test]
fn broken_layer_options_are_refused() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let pubkey =
        layercrypt::keys::PublicKey::from_bytes(&fs::read(key("rsa2048.pub.pem")).unwrap())
            .unwrap();
    let good_pub = r#"{"cipher":"AES_256_CTR_HMAC_SHA256","hmac":"roiOaa2TQJDFdK//oZ7O8QP3RTVtaYCkiL2WxiN2JaQ=","cipheroptions":{}}"#;
    let key32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let cases = [
        (
            format!(r#"{{"symkey":"{key32}","digest":"","cipheroptions":{{}}}}"#),
            good_pub.to_string(),
            "no nonce",
        ),
        (
            format!(r#"{{"symkey":"{key32}","digest":"","cipheroptions":{{"nonce":"AAEC"}}}}"#),
            good_pub.to_string(),
            "invalid nonce length of 3 bytes",
        ),
        (
            r#"{"symkey":"AAEC","digest":"","cipheroptions":{"nonce":"8PHy8/T19vf4+fr7/P3//w=="}}"#
                .to_string(),
            good_pub.to_string(),
            "invalid layer key length of 3 bytes",
        ),
        (
            format!(
                r#"{{"symkey":"{key32}","digest":"","cipheroptions":{{"nonce":"8PHy8/T19vf4+fr7/P3//w=="}}}}"#
            ),
            r#"{"cipher":"AES_256_CTR_HMAC_SHA256","cipheroptions":{}}"#.to_string(),
            "no HMAC",
        ),
        (
            format!(
                r#"{{"symkey":"{key32}","digest":"","cipheroptions":{{"nonce":"8PHy8/T19vf4+fr7/P3//w=="}}}}"#
            ),
            r#"{"cipher":"AES_128_GCM","hmac":"AAAA"}"#.to_string(),
            "unsupported layer cipher `AES_128_GCM`",
        ),
    ];
    for (private, public, message) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture_copy("skopeo-rsa2048", tmp.path());
        let layout = Layout(dir.clone());
        let jwe = layercrypt::keywrap::jwe::wrap(std::slice::from_ref(&pubkey), private.as_bytes())
            .unwrap();
        let (jwe_b64, pub_b64) = (b64.encode(jwe), b64.encode(public.as_bytes()));
        layout.edit_manifest("v1", |m| {
            m["layers"][0]["annotations"]["org.opencontainers.image.enc.keys.jwe"] =
                Value::from(jwe_b64);
            m["layers"][0]["annotations"]["org.opencontainers.image.enc.pubopts"] =
                Value::from(pub_b64);
        });
        let before = snapshot(&dir);
        assert_refused(
            &[
                "decrypt".into(),
                "-k".into(),
                key("rsa2048.pem"),
                format!("oci:{}", dir.display()),
            ],
            &["layer 0", message],
        );
        assert_eq!(snapshot(&dir), before, "{message}");
    }
}

#[test]
fn keys_of_the_wrong_kind_are_named_with_a_hint() {
    let plain_v1 = oci(&testdata("images/plain"), "v1");
    let enc = oci(&testdata("images/skopeo-rsa2048"), "v1");
    let tmp = tempfile::tempdir().unwrap();
    let out = oci(&tmp.path().join("out"), "v1");
    let encrypt = |r: &str| {
        vec![
            "encrypt".to_string(),
            "-r".into(),
            format!("jwe:{}", key(r)),
            plain_v1.clone(),
            out.clone(),
        ]
    };
    let decrypt = |k: String| {
        vec![
            "decrypt".to_string(),
            "-k".into(),
            k,
            enc.clone(),
            out.clone(),
        ]
    };
    let err = assert_refused(
        &encrypt("rsa2048.pem"),
        &[
            "is a private key; expected a public key",
            "hint: a recipient is a public key",
        ],
    );
    assert!(err.contains("rsa2048.pem"), "{err}");
    assert_refused(&encrypt("x509.crt"), &["X.509 certificate", "hint: "]);
    assert_refused(
        &encrypt("openssh-rsa2048"),
        &["OpenSSH private key", "hint: SSH and age keys"],
    );
    assert_refused(&encrypt("ed25519.pem"), &["is a private key"]);
    assert_refused(
        &decrypt(key("ed25519.pem")),
        &["unsupported key", "Ed25519"],
    );
    assert_refused(
        &decrypt(key("rsa2048.pub.pem")),
        &["public key", "hint: decryption needs the private key"],
    );
    assert_refused(
        &decrypt(key("rsa2048.enc-pkcs8.pem")),
        &["password is required", "hint: give the passphrase with"],
    );
    assert_refused(
        &decrypt(format!("{}:pass=nope", key("rsa2048.enc-pkcs8.pem"))),
        &["wrong password"],
    );
    assert_refused(
        &decrypt("/no/such/key.pem".into()),
        &["cannot read key file /no/such/key.pem"],
    );
    assert_refused(
        &[
            "encrypt".into(),
            "-r".into(),
            "rsa:x.pem".into(),
            plain_v1.clone(),
        ],
        &["unknown scheme `rsa`"],
    );
    assert_eq!(dir_entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn encrypting_to_a_docker_archive_is_refused_before_anything_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("out.tar");
    assert_refused(
        &[
            "encrypt".into(),
            "-r".into(),
            format!("jwe:{}", key("rsa2048.pub.pem")),
            "oci:/nonexistent/layout:v1".into(),
            format!("docker-archive:{}", archive.display()),
        ],
        &[
            "docker-archive cannot carry encryption metadata",
            "hint: write the encrypted image to oci:",
        ],
    );
    assert!(!archive.exists());
}

#[test]
fn a_layout_being_rewritten_by_another_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let lock = fs::File::open(&dir).unwrap();
    lock.lock().unwrap();
    let before = snapshot(&dir);
    // Exit 3: transient, the other run will finish; retrying may succeed.
    let out = layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .arg(format!("oci:{}", dir.display()))
        .assert()
        .code(3)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("is being rewritten by another layercrypt process"),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
    lock.unlock().unwrap();
}

#[test]
fn references_that_name_nothing_are_refused() {
    assert_refused(
        &["inspect".into(), oci(&testdata("images/plain"), "v9")],
        &["no image named `v9` (available: multi, v1)"],
    );
    assert_refused(
        &["inspect".into(), "containers-storage:alpine".into()],
        &["needs a daemon or storage"],
    );
    // The whole layout into one reference is ambiguous.
    let tmp = tempfile::tempdir().unwrap();
    assert_refused(
        &[
            "encrypt".into(),
            "-r".into(),
            format!("jwe:{}", key("rsa2048.pub.pem")),
            format!("oci:{}", testdata("images/plain").display()),
            oci(&tmp.path().join("x"), "one"),
        ],
        &["names one reference (one) but the source holds 2 images"],
    );
}

#[test]
fn usage_errors_exit_2() {
    layercrypt().arg("encrypt").assert().code(2);
    layercrypt().args(["decrypt", "-k"]).assert().code(2);
    layercrypt().arg("frobnicate").assert().code(2);
    layercrypt()
        .args(["encrypt", "-r", "jwe:x", "-j", "0", "oci:a"])
        .assert()
        .code(2);
}

// ---------------------------------------------------------------------------------------------
// Reports

#[test]
fn inspect_names_schemes_and_recipients() {
    let out = layercrypt()
        .args(["inspect", "--json"])
        .arg(oci(&testdata("images/skopeo-multi"), "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["schema_version"], 1);
    let layers = report["images"][0]["manifests"][0]["layers"]
        .as_array()
        .unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        assert_eq!(l["encrypted"], true);
        assert_eq!(l["schemes"], serde_json::json!(["jwe"]));
        let r = l["recipients"].as_array().unwrap();
        let algs: Vec<&str> = r.iter().map(|r| r["algorithm"].as_str().unwrap()).collect();
        assert_eq!(algs, ["RSA-OAEP", "ECDH-ES+A256KW", "ECDH-ES+A256KW"]);
        assert_eq!(r[1]["curve"], "P-256");
        assert_eq!(r[2]["curve"], "P-384");
    }

    // Images we encrypt name their recipients by key id (the RFC 7638 thumbprint).
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    layercrypt()
        .args([
            "encrypt",
            "--layer",
            "-1",
            "-r",
            &format!("jwe:{}", key("ec384.pub.pem")),
        ])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    let thumbprint =
        layercrypt::keys::PublicKey::from_bytes(&fs::read(key("ec384.pub.pem")).unwrap())
            .unwrap()
            .thumbprint();
    let table = layercrypt()
        .arg("inspect")
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[1].split_whitespace().collect::<Vec<_>>()
            == [
                "PLATFORM",
                "#",
                "DIGEST",
                "SIZE",
                "TYPE",
                "ENCRYPTION",
                "RECIPIENTS"
            ],
        "{table}"
    );
    assert!(lines[2].ends_with(" -"), "layer 0 is plain: {table}");
    assert!(lines[2].contains(" tar+gzip "), "{table}");
    assert!(lines[4].contains(" tar+gzip+encrypted "), "{table}");
    assert!(
        lines[4].contains(&format!("jwe[ECDH-ES+A256KW P-384 kid={thumbprint}]")),
        "{table}"
    );
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-partial", tmp.path());
    let before = snapshot(&dir);
    let out = layercrypt()
        .args([
            "encrypt",
            "--dry-run",
            "-r",
            &format!("jwe:{}", key("ec256.pub.pem")),
        ])
        .arg(format!("oci:{}", dir.display()))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("dry run"), "{text}");
    assert_eq!(text.matches("  encrypt").count(), 2, "{text}");
    assert!(text.contains("keep (already encrypted)"), "{text}");
    assert_eq!(snapshot(&dir), before);
    // Decryption plans check the keys too.
    let out = tmp.path().join("never");
    assert_refused(
        &[
            "decrypt".into(),
            "--dry-run".into(),
            "-k".into(),
            key("ec256.pem"),
            format!("oci:{}", dir.display()),
            oci(&out, "v1"),
        ],
        &["none of the given keys"],
    );
    assert!(!out.exists());
}

#[test]
fn json_report_has_old_and_new_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    let out = layercrypt()
        .args([
            "encrypt",
            "--json",
            "--layer",
            "0",
            "-r",
            &format!("jwe:{}", key("rsa2048.pub.pem")),
        ])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    let image = &report["images"][0];
    assert_eq!(image["old_digest"], PLAIN_V1);
    assert_eq!(
        image["new_digest"],
        Layout(enc.clone()).entry("v1")["digest"]
    );
    let layers = image["manifests"][0]["layers"].as_array().unwrap();
    assert_eq!(layers[0]["action"], "encrypt");
    assert_eq!(
        layers[0]["old"]["digest"],
        plain().layers("v1")[0]["digest"]
    );
    assert_eq!(
        layers[0]["new"]["digest"],
        Layout(enc).layers("v1")[0]["digest"]
    );
    assert_eq!(layers[1]["action"], "keep");
    assert_eq!(layers[1]["reason"], "layer-not-selected");
}

/// Issue 14, point 1: an empty layer is kept plain, and the plan, the `--json` report and `-v`
/// say why, even when `--layer` names it.
#[test]
fn empty_layers_are_kept_plain_and_the_plan_and_report_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    empty_layer_image(&dir, "v1");
    let recipient = format!("jwe:{}", key("rsa2048.pub.pem"));
    let plan = layercrypt()
        .args(["encrypt", "--dry-run", "-r", &recipient])
        .arg(oci(&dir, "v1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[2].starts_with("  layer   0  sha256:e3b0c44298fc             0  ")
            && lines[2].ends_with("  keep (empty layer, nothing to encrypt)"),
        "{text}"
    );
    assert!(lines[3].ends_with("  encrypt"), "{text}");

    let run = layercrypt()
        .args(["encrypt", "--json", "--layer", "0", "-r", &recipient])
        .arg(oci(&dir, "v1"))
        .arg(oci(&tmp.path().join("out"), "v1"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let layer = &report["images"][0]["manifests"][0]["layers"][0];
    assert_eq!(layer["action"], "keep", "{report:#}");
    assert_eq!(layer["reason"], "empty", "{report:#}");
    assert!(layer["new"].is_null(), "{report:#}");
}

// ---------------------------------------------------------------------------------------------
// Less common image shapes

/// index.json → index → index → manifests: encryption rewrites every level, decryption
/// restores every level byte for byte, and `--platform` reaches through the nesting.
#[test]
fn nested_indexes_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    // Wrap the `multi` index in one more index.
    let inner = layout.entry("multi");
    let outer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": inner["mediaType"], "digest": inner["digest"], "size": inner["size"]}],
    });
    let bytes = mkimage::go_json(&outer);
    let digest = digest_of(&bytes);
    fs::write(layout.blob_path(&digest), &bytes).unwrap();
    let mut index = layout.index();
    index["manifests"][1]["digest"] = Value::from(digest.clone());
    index["manifests"][1]["size"] = Value::from(bytes.len());
    fs::write(dir.join("index.json"), mkimage::go_json(&index)).unwrap();
    let before = snapshot(&dir);

    layercrypt()
        .args([
            "encrypt",
            "-r",
            &format!("jwe:{}", key("ec256.pub.pem")),
            "--platform",
            "linux/amd64",
        ])
        .arg(oci(&dir, "multi"))
        .assert()
        .success();
    let after = Layout(dir.clone());
    let manifests = after.manifests("multi");
    assert_eq!(manifests.len(), 2);
    assert!(
        manifests[0].2["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
    );
    assert!(
        manifests[1].2["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| !l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
    );
    assert_ne!(after.entry("multi")["digest"], digest.as_str());

    layercrypt()
        .args(["decrypt", "-k", &key("ec256.pem")])
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(snapshot(&dir), before);
}

/// Only an OCI manifest can carry encrypted layers: a Docker schema 2 manifest becomes an OCI
/// one (config and layer media types too), as containers/image does, and skopeo reads it.
#[test]
fn docker_schema2_manifests_become_oci_when_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    layout.edit_manifest("v1", to_docker_schema2);
    let mut index = layout.index();
    index["manifests"][0]["mediaType"] = Value::from(DOCKER_MANIFEST);
    fs::write(dir.join("index.json"), mkimage::go_json(&index)).unwrap();

    let enc = tmp.path().join("enc");
    layercrypt()
        .args([
            "encrypt",
            "--layer",
            "0",
            "-r",
            &format!("jwe:{}", key("rsa2048.pub.pem")),
        ])
        .arg(oci(&dir, "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    let out = Layout(enc.clone());
    let entry = out.entry("v1");
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let manifest = out.json(entry["digest"].as_str().unwrap());
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ]
    );
    skopeo_ok(&[
        "copy",
        "--decryption-key",
        &key("rsa2048.pem"),
        &oci(&enc, "v1"),
        &oci(&tmp.path().join("dec"), "v1"),
    ]);
}

/// The digest recorded in the private options is only informational (skopeo records the
/// source digest even when it recompressed); a mismatch is reported, not fatal.
#[test]
fn a_recorded_digest_that_differs_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let layout = Layout(dir.clone());
    let recorded = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let plain_layer = encrypt_layer_recording(&layout, "v1", 2, recorded);
    let out = layercrypt()
        .args(["decrypt", "-k", &key("rsa2048.pem")])
        .arg(oci(&dir, "v1"))
        .arg(oci(&tmp.path().join("dec"), "v1"))
        .assert()
        .success()
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("warning: ") && err.contains(recorded) && err.contains(&plain_layer),
        "{err}"
    );
    assert_eq!(
        Layout(tmp.path().join("dec")).entry("v1")["digest"],
        PLAIN_V1
    );
}

#[test]
fn a_file_that_is_no_key_says_what_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes.txt");
    fs::write(&notes, "hello\n").unwrap();
    let empty = tmp.path().join("empty.pem");
    fs::write(&empty, "").unwrap();
    for (file, what) in [
        (&notes, "not a key format layercrypt recognises"),
        (&empty, "this file is empty"),
    ] {
        assert_refused(
            &[
                "encrypt".into(),
                "-r".into(),
                format!("jwe:{}", file.display()),
                oci(&testdata("images/plain"), "v1"),
                oci(&tmp.path().join("o"), "v1"),
            ],
            &[what, "expected a public key"],
        );
    }
}

/// A layout another process is rewriting (its directory locked) is refused with a clear
/// message, and nothing changes; readers (`inspect`) are refused too rather than seeing a
/// half-made image. The lock is held here the way a running layercrypt holds it.
#[test]
fn a_layout_being_rewritten_elsewhere_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let before = snapshot(&dir);
    let lock = fs::File::open(&dir).unwrap();
    lock.try_lock().unwrap();
    for args in [
        vec![
            "encrypt".to_string(),
            "-r".into(),
            format!("jwe:{}", key("rsa2048.pub.pem")),
        ],
        vec!["inspect".to_string()],
    ] {
        let out = layercrypt()
            .args(&args)
            .arg(oci(&dir, "v1"))
            .assert()
            .code(3)
            .get_output()
            .clone();
        let err = stderr_of(&out);
        assert!(err.contains("another layercrypt process"), "{err}");
        assert!(err.contains("hint: "), "{err}");
    }
    drop(lock);
    assert_eq!(snapshot(&dir), before);
    // Once the lock is released the same run succeeds.
    layercrypt()
        .args([
            "encrypt",
            "-q",
            "-r",
            &format!("jwe:{}", key("rsa2048.pub.pem")),
        ])
        .arg(oci(&dir, "v1"))
        .assert()
        .success();
}

/// Without the `registry` feature, a `docker://` reference is refused with what to do instead,
/// and nothing is attempted.
#[cfg(not(feature = "registry"))]
#[test]
fn registry_references_need_the_registry_feature() {
    let out = layercrypt()
        .args(["inspect", "docker://127.0.0.1:1/app:v1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("built without registry support"), "{err}");
    assert!(
        err.contains("hint: build layercrypt with its default features"),
        "{err}"
    );
}
