//! `layercrypt rekey` end to end, with skopeo (Go ocicrypt) as the judge of every result:
//! recipients added to layercrypt- and skopeo-made images open them in skopeo; removed ones
//! no longer do while the others still do; `--set` replaces them; `--rotate` re-encrypts under
//! a fresh layer key. Without `--rotate` layer blobs stay byte-identical and are never read.
//! Refusals (nothing matched, nobody left, unattributable entries, wrong keys) exit 2 and
//! change nothing; a batch re-keys what it can and names what failed.
//!
//! skopeo and gpg are test dependencies: when missing these tests fail (never skip);
//! `scripts/deps.sh --test` installs them.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[cfg(feature = "pgp")]
use common::gpg::GpgHome;
use common::*;
use serde_json::Value;

const JWE: &str = "org.opencontainers.image.enc.keys.jwe";

fn jwe(name: &str) -> String {
    format!("jwe:{}", key(name))
}

/// plain:v1 encrypted by layercrypt for `recipients` into `dir/name`.
fn encrypted(dir: &Path, name: &str, recipients: &[String]) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = layercrypt();
    cmd.arg("encrypt");
    for r in recipients {
        cmd.args(["-r", r]);
    }
    cmd.arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .success();
    out
}

/// Per layer blob: digest → (bytes, inode, mtime): equal maps mean the files were not
/// rewritten, replaced or touched.
fn layer_files(layout: &Path) -> BTreeMap<String, (Vec<u8>, u64, i64)> {
    let l = Layout(layout.to_path_buf());
    l.layers("v1")
        .iter()
        .map(|d| {
            let digest = d["digest"].as_str().unwrap().to_string();
            let path = l.blob_path(&digest);
            let meta = fs::metadata(&path).unwrap();
            (
                digest,
                (
                    fs::read(&path).unwrap(),
                    meta.ino(),
                    meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
                ),
            )
        })
        .collect()
}

fn layer_digests(layout: &Path) -> Vec<String> {
    Layout(layout.to_path_buf())
        .layers("v1")
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Whether skopeo decrypts `src` with the given `--decryption-key` files to the original.
fn skopeo_opens(src: &Path, keys: &[String], out: &Path) -> bool {
    let mut args = vec!["copy".to_string()];
    for k in keys {
        args.extend(["--decryption-key".to_string(), k.clone()]);
    }
    args.extend([oci(src, "v1"), oci(out, "v1")]);
    let run = skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    if !run.status.success() {
        return false;
    }
    assert_eq!(
        Layout(out.to_path_buf()).entry("v1")["digest"],
        plain_digest("v1"),
        "skopeo's decryption of {} is not the original",
        src.display()
    );
    true
}

/// Whether layercrypt decrypts `src` with `key_args` to the original.
fn layercrypt_opens(src: &Path, key_args: &[String], out: &Path) -> bool {
    let run = layercrypt()
        .arg("decrypt")
        .args(key_args)
        .arg(oci(src, "v1"))
        .arg(oci(out, "v1"))
        .output()
        .unwrap();
    if !run.status.success() {
        return false;
    }
    assert_eq!(
        Layout(out.to_path_buf()).entry("v1")["digest"],
        plain_digest("v1")
    );
    true
}

fn rekey(args: &[&str]) -> assert_cmd::assert::Assert {
    layercrypt().arg("rekey").args(args).assert()
}

fn jwe_entries(layout: &Path) -> Vec<usize> {
    Layout(layout.to_path_buf())
        .layers("v1")
        .iter()
        .map(|l| l["annotations"][JWE].as_str().unwrap().split(',').count())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// --add

/// Adding a recipient appends one JWE per layer and changes nothing else: the layer blobs
/// are the same files, untouched; skopeo opens the result with the new key and the old one.
#[test]
fn add_wraps_for_a_new_recipient_and_leaves_layer_blobs_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let before = layer_files(&enc);
    let old_manifest = Layout(enc.clone()).entry("v1")["digest"].clone();
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .success()
    .get_output()
    .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("re-keyed layers 0, 1, 2"), "{stdout}");
    assert_eq!(layer_files(&enc), before, "layer blobs were touched");
    assert_ne!(Layout(enc.clone()).entry("v1")["digest"], old_manifest);
    assert_eq!(jwe_entries(&enc), [2, 2, 2]);
    assert!(skopeo_opens(
        &enc,
        &[key("ec256.pem")],
        &tmp.path().join("ec")
    ));
    assert!(skopeo_opens(
        &enc,
        &[key("rsa2048.pem")],
        &tmp.path().join("rsa")
    ));

    // Adding it again: skipped with a warning, nothing changes.
    let snap = snapshot(&enc);
    let again = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .success()
    .get_output()
    .clone();
    assert!(
        stderr_of(&again).contains("is already a recipient; not adding it again"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(snapshot(&enc), snap);
}

/// Recipients added to what skopeo wrote (Go's kid-less JWE) and to a PKCS#7 recipient open
/// it in skopeo.
#[test]
fn add_to_a_skopeo_image_for_jwe_and_pkcs7() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = fixture_copy("skopeo-rsa2048", tmp.path());
    let before = layer_files(&enc);
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec384.pub.pem"),
        "--add",
        &format!("pkcs7:{}", key("x509.crt")),
        &oci(&enc, "v1"),
    ])
    .success();
    assert_eq!(layer_files(&enc), before);
    assert!(skopeo_opens(
        &enc,
        &[key("ec384.pem")],
        &tmp.path().join("ec")
    ));
    assert!(skopeo_opens(
        &enc,
        &[key("x509.key"), key("x509.crt")],
        &tmp.path().join("p7")
    ));
    assert!(skopeo_opens(
        &enc,
        &[key("rsa2048.pem")],
        &tmp.path().join("rsa")
    ));
}

/// Without --rotate no layer blob is read: with every layer blob file gone, an in-place
/// re-key still succeeds and the blobs are not needed.
#[test]
fn without_rotate_no_layer_data_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let l = Layout(enc.clone());
    let saved: Vec<(PathBuf, Vec<u8>)> = layer_digests(&enc)
        .iter()
        .map(|d| (l.blob_path(d), l.blob(d)))
        .collect();
    for (path, _) in &saved {
        fs::remove_file(path).unwrap();
    }
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .success();
    for (path, bytes) in &saved {
        assert!(!path.exists());
        fs::write(path, bytes).unwrap();
    }
    assert!(skopeo_opens(
        &enc,
        &[key("ec256.pem")],
        &tmp.path().join("ec")
    ));
}

// ---------------------------------------------------------------------------------------------
// --remove

/// Removing one of two JWE recipients: it opens the image neither in layercrypt nor in
/// skopeo; the other still does in both; blobs are untouched.
#[test]
fn remove_drops_a_jwe_recipient_by_key_and_by_kid() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(
        tmp.path(),
        "enc",
        &[jwe("rsa2048.pub.pem"), jwe("ec256.pub.pem")],
    );
    let by_kid = tmp.path().join("by-kid");
    copy_tree(&enc, &by_kid);
    let before = layer_files(&enc);
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--remove",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .success();
    assert_eq!(layer_files(&enc), before);
    assert!(!layercrypt_opens(
        &enc,
        &["-k".into(), key("ec256.pem")],
        &tmp.path().join("lc-ec")
    ));
    assert!(!skopeo_opens(
        &enc,
        &[key("ec256.pem")],
        &tmp.path().join("sk-ec")
    ));
    assert!(skopeo_opens(
        &enc,
        &[key("rsa2048.pem")],
        &tmp.path().join("sk-rsa")
    ));

    // The same by the kid `inspect` shows.
    let inspect = layercrypt()
        .args(["inspect", "--json"])
        .arg(oci(&by_kid, "v1"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let recipients = &report["images"][0]["manifests"][0]["layers"][0]["recipients"];
    let kid = recipients
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["algorithm"] == "ECDH-ES+A256KW")
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    rekey(&[
        "-k",
        &key("ec256.pem"),
        "--remove",
        &kid,
        &oci(&by_kid, "v1"),
    ])
    .success();
    assert!(!skopeo_opens(
        &by_kid,
        &[key("ec256.pem")],
        &tmp.path().join("k-ec")
    ));
    assert!(skopeo_opens(
        &by_kid,
        &[key("rsa2048.pem")],
        &tmp.path().join("k-rsa")
    ));
}

/// Typos and removals that would lock everybody out are refused, changing nothing; so is a
/// removal from a Go-written JWE whose entries carry no key id.
#[test]
fn refused_removals_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let snap = snapshot(&enc);
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--remove",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .code(2)
    .get_output()
    .clone();
    assert!(
        stderr_of(&out).contains("matches no recipient of any selected layer"),
        "{}",
        stderr_of(&out)
    );
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--remove",
        &jwe("rsa2048.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .code(2)
    .get_output()
    .clone();
    assert!(
        stderr_of(&out).contains("would leave it with no recipient at all"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(snapshot(&enc), snap);

    let multi = fixture_copy("skopeo-multi", tmp.path());
    let snap = snapshot(&multi);
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--remove",
        &jwe("ec256.pub.pem"),
        &oci(&multi, "v1"),
    ])
    .code(2)
    .get_output()
    .clone();
    let err = stderr_of(&out);
    assert!(err.contains("has no key id (kid"), "{err}");
    assert!(
        err.contains("hint: replace every recipient instead: --set"),
        "{err}"
    );
    assert_eq!(snapshot(&multi), snap);
}

/// OpenPGP recipients are removed by key id, by fingerprint (through the GnuPG home) and by
/// name; the JWE recipient of the same layers is untouched.
// OpenPGP is a cargo feature (on by default).
#[cfg(feature = "pgp")]
#[test]
fn remove_drops_pgp_recipients_by_key_id_and_name() {
    let home = GpgHome::with(&["alice.sec.gpg", "bob.pub.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let alice_ring = home.export_secret("alice@example.test", "", false, &tmp.path().join("a"));
    let alice = home.ids("alice@example.test");
    let enc = tmp.path().join("enc");
    home.layercrypt()
        .args(["encrypt", "--gpg-homedir"])
        .arg(home.path())
        .args(["-r", "pgp:alice@example.test", "-r", "pgp:bob@example.test"])
        .args(["-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    for (i, who) in [
        format!("0x{}", alice.sub_id),
        format!("pgp:{}", alice.primary_fpr),
        "pgp:alice@example.test".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let copy = tmp.path().join(format!("copy{i}"));
        copy_tree(&enc, &copy);
        let before = layer_files(&copy);
        home.layercrypt()
            .args(["rekey", "--gpg-homedir"])
            .arg(home.path())
            .args(["-k", &key("rsa2048.pem"), "--remove", who])
            .arg(oci(&copy, "v1"))
            .assert()
            .success();
        assert_eq!(layer_files(&copy), before);
        assert!(
            !layercrypt_opens(
                &copy,
                &["-k".into(), alice_ring.clone()],
                &tmp.path().join(format!("alice{i}"))
            ),
            "{who}: Alice still opens it"
        );
        assert!(skopeo_opens(
            &copy,
            &[key("rsa2048.pem")],
            &tmp.path().join(format!("rsa{i}"))
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// --set and --rotate

#[test]
fn set_replaces_every_recipient() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(
        tmp.path(),
        "enc",
        &[jwe("rsa2048.pub.pem"), jwe("ec384.pub.pem")],
    );
    let before = layer_files(&enc);
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--set",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .success();
    assert_eq!(layer_files(&enc), before);
    assert_eq!(jwe_entries(&enc), [1, 1, 1]);
    assert!(skopeo_opens(
        &enc,
        &[key("ec256.pem")],
        &tmp.path().join("ec")
    ));
    assert!(!skopeo_opens(
        &enc,
        &[key("rsa2048.pem")],
        &tmp.path().join("rsa")
    ));
    assert!(!skopeo_opens(
        &enc,
        &[key("ec384.pem")],
        &tmp.path().join("ec384")
    ));
}

/// A fresh layer key: every layer blob is new, the new recipient opens it (and the result
/// is the original image), the old key does not, and the old blobs are gone.
#[test]
fn rotate_reencrypts_under_a_fresh_key() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let old = layer_digests(&enc);
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--rotate",
        "--set",
        &jwe("ec256.pub.pem"),
        "--json",
        &oci(&enc, "v1"),
    ])
    .success()
    .get_output()
    .clone();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = layer_digests(&enc);
    for (o, n) in old.iter().zip(&new) {
        assert_ne!(o, n);
        assert!(!Layout(enc.clone()).has(o), "old blob {o} left behind");
    }
    let layers = &report["images"][0]["manifests"][0]["layers"];
    for (i, l) in layers.as_array().unwrap().iter().enumerate() {
        assert_eq!(l["action"], "rotate");
        assert_eq!(l["old"]["digest"], old[i].as_str());
        assert_eq!(l["new"]["digest"], new[i].as_str());
    }
    assert!(skopeo_opens(
        &enc,
        &[key("ec256.pem")],
        &tmp.path().join("ec")
    ));
    assert!(!skopeo_opens(
        &enc,
        &[key("rsa2048.pem")],
        &tmp.path().join("rsa")
    ));

    let out = rekey(&["-k", &key("ec256.pem"), "--rotate", &oci(&enc, "v1")])
        .code(2)
        .get_output()
        .clone();
    assert!(stderr_of(&out).contains("hint:"), "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// Reports and batches

#[test]
fn dry_run_changes_nothing_and_json_has_old_and_new_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let snap = snapshot(&enc);
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        "--dry-run",
        &oci(&enc, "v1"),
    ])
    .success()
    .get_output()
    .clone();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("rewrap (add jwe:"), "{plan}");
    assert_eq!(snapshot(&enc), snap);

    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        "--json",
        &oci(&enc, "v1"),
    ])
    .success()
    .get_output()
    .clone();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["operation"], "rekey");
    let image = &report["images"][0];
    assert_ne!(image["old_digest"], image["new_digest"]);
    assert_eq!(
        image["new_digest"],
        Layout(enc.clone()).entry("v1")["digest"]
    );
    let m = &image["manifests"][0];
    assert_ne!(m["old"]["digest"], m["new"]["digest"]);
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(l["action"], "rewrap");
        assert_eq!(l["old"]["digest"], l["new"]["digest"]);
    }
}

/// Two layouts in one run, one that the key cannot open: the other is re-keyed, the failing
/// one is named and left as it was, and the exit status is 2. The same from a list file.
#[test]
fn batch_rekeys_what_it_can_and_names_what_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let good = encrypted(tmp.path(), "good", &[jwe("rsa2048.pub.pem")]);
    let bad = encrypted(tmp.path(), "bad", &[jwe("ec384.pub.pem")]);
    let bad_snap = snapshot(&bad);
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        "--in-place",
        &oci(&good, "v1"),
        &oci(&bad, "v1"),
    ])
    .code(2)
    .get_output()
    .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "1 of 2 images failed and were left as they were: {}",
            oci(&bad, "v1")
        )),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("rekey: 2 images: 1 changed, 0 unchanged, 1 failed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(snapshot(&bad), bad_snap);
    assert!(skopeo_opens(
        &good,
        &[key("ec256.pem")],
        &tmp.path().join("g")
    ));

    let list = tmp.path().join("list");
    fs::write(
        &list,
        format!(
            "# images to re-key\n{}\n\n{}  # this one fails\n",
            oci(&good, "v1"),
            oci(&bad, "v1")
        ),
    )
    .unwrap();
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec521.pub.pem"),
        "--from-file",
        list.to_str().unwrap(),
    ])
    .code(2);
    assert_eq!(snapshot(&bad), bad_snap);
    assert!(skopeo_opens(
        &good,
        &[key("ec521.pem")],
        &tmp.path().join("g2")
    ));
}

/// Wrapped keys of a scheme this run cannot handle are kept by --add, and --set refuses to
/// drop them, naming the layer and the scheme.
#[test]
fn unknown_schemes_are_kept_or_refused_never_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let provider = "org.opencontainers.image.enc.keys.provider.elsewhere";
    Layout(enc.clone()).edit_manifest("v1", |m| {
        for l in m["layers"].as_array_mut().unwrap() {
            l["annotations"][provider] = Value::from("b3BhcXVl");
        }
    });
    let snap = snapshot(&enc);
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--set",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .code(2)
    .get_output()
    .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("layer 0") && err.contains("provider.elsewhere"),
        "{err}"
    );
    assert_eq!(snapshot(&enc), snap);
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .success();
    for l in Layout(enc.clone()).layers("v1") {
        assert_eq!(l["annotations"][provider], "b3BhcXVl");
    }
    // And `provider:NAME` removes them.
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--remove",
        "provider:elsewhere",
        &oci(&enc, "v1"),
    ])
    .success();
    for l in Layout(enc.clone()).layers("v1") {
        assert!(l["annotations"].get(provider).is_none());
    }
    assert!(skopeo_opens(
        &enc,
        &[key("ec256.pem")],
        &tmp.path().join("ec")
    ));
}

/// An OpenPGP recipient added to a JWE image opens it in skopeo (GnuPG home as skopeo's
/// keyring); a PKCS#7 recipient added and removed again no longer does.
// OpenPGP is a cargo feature (on by default).
#[cfg(feature = "pgp")]
#[test]
fn add_pgp_and_remove_pkcs7_in_skopeo() {
    let home = GpgHome::with(&["alice.sec.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let alice_ring = home.export_secret("alice@example.test", "", false, &tmp.path().join("a"));
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let before = layer_files(&enc);
    let cert = format!("pkcs7:{}", key("x509.crt"));
    home.layercrypt()
        .args(["rekey", "--gpg-homedir"])
        .arg(home.path())
        .args(["-k", &key("rsa2048.pem"), "--add", "pgp:alice@example.test"])
        .args(["--add", &cert])
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    let out = tmp.path().join("alice");
    home.skopeo_ok(&[
        "copy",
        "--decryption-key",
        &alice_ring,
        &oci(&enc, "v1"),
        &oci(&out, "v1"),
    ]);
    assert_eq!(Layout(out).entry("v1")["digest"], plain_digest("v1"));
    let p7 = [key("x509.key"), key("x509.crt")];
    assert!(skopeo_opens(&enc, &p7, &tmp.path().join("p7")));
    rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--remove",
        &cert,
        &oci(&enc, "v1"),
    ])
    .success();
    assert!(!skopeo_opens(&enc, &p7, &tmp.path().join("p7-gone")));
    assert!(skopeo_opens(
        &enc,
        &[key("rsa2048.pem")],
        &tmp.path().join("rsa")
    ));
    assert_eq!(layer_files(&enc), before);
}

/// Rotation publishes nothing when the old HMAC does not verify: the run fails and the
/// layout is as it was.
#[test]
fn rotate_refuses_a_tampered_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypted(tmp.path(), "enc", &[jwe("rsa2048.pub.pem")]);
    let l = Layout(enc.clone());
    let digest = layer_digests(&enc)[1].clone();
    let mut bytes = l.blob(&digest);
    bytes[100] ^= 1;
    l.replace_layer("v1", 1, &bytes);
    let snap = snapshot(&enc);
    let out = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--rotate",
        "--set",
        &jwe("ec256.pub.pem"),
        &oci(&enc, "v1"),
    ])
    .code(2)
    .get_output()
    .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("layer 1") && err.contains("HMAC does not match"),
        "{err}"
    );
    assert_eq!(snapshot(&enc), snap);
}

/// Issue 14, point 1: a layer that is the empty blob and yet encrypted (as layercrypt wrote it
/// before, or a hand-made image) is what skopeo and containerd leave encrypted when they
/// decrypt. Re-wrapping it warns; rotating stores it plain, as `encrypt` now leaves it, so the
/// rotated image round-trips through skopeo to the original manifest.
#[test]
fn rotate_stores_an_encrypted_empty_layer_plain_and_rewrapping_it_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let layout = empty_layer_image(&dir, "v1");
    let original = layout.entry("v1")["digest"].clone();
    layercrypt()
        .args(["encrypt", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&dir, "v1"))
        .assert()
        .success();
    encrypt_layer_recording(&layout, "v1", 0, EMPTY_BLOB);
    layout.edit_manifest("v1", |m| {
        m["layers"][0]["mediaType"] =
            Value::from("application/vnd.oci.image.layer.v1.tar+encrypted");
    });
    assert_eq!(layout.layers("v1")[0]["digest"], EMPTY_BLOB);

    let added = rekey(&[
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
        &oci(&dir, "v1"),
    ])
    .success();
    let err = stderr_of(added.get_output());
    assert!(
        err.contains("layer 0 (sha256:e3b0c44298fc): this encrypted layer is empty (0 bytes)"),
        "{err}"
    );
    assert!(
        layout.layers("v1")[0]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("+encrypted")
    );

    let (k, set, image) = (key("ec256.pem"), jwe("ec384.pub.pem"), oci(&dir, "v1"));
    let rotate = ["-k", &k, "--rotate", "--set", &set, &image];
    let plan = rekey(&[&["--dry-run"], &rotate[..]].concat()).success();
    let plan = String::from_utf8_lossy(&plan.get_output().stdout).into_owned();
    assert!(
        plan.contains("decrypt (empty layer, stored plain: nothing to protect)"),
        "{plan}"
    );
    rekey(&rotate).success();
    let layers = layout.layers("v1");
    assert_eq!(layers[0]["digest"], EMPTY_BLOB);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert!(layers[0]["annotations"].is_null(), "{:#}", layers[0]);
    assert!(
        layers[1]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("+encrypted")
    );
    layercrypt()
        .args([
            "verify",
            "--full",
            "--require-encrypted",
            "-k",
            &key("ec384.pem"),
        ])
        .arg(oci(&dir, "v1"))
        .assert()
        .code(0);
    let out = tmp.path().join("dec");
    skopeo_decrypt(&key("ec384.pem"), &oci(&dir, "v1"), &oci(&out, "v1"));
    assert_eq!(Layout(out).entry("v1")["digest"], original);
}
