//! The OpenPGP scheme through the real binary, with a throwaway GnuPG home per test, and
//! interop with Go ocicrypt through skopeo 1.9.3 (golang.org/x/crypto/openpgp) both ways:
//! skopeo encrypts to a gpg recipient and layercrypt decrypts with the exported secret keyring
//! (binary, armored, with and without passphrase) or through gpg itself; layercrypt encrypts
//! (by e-mail, key id, fingerprint, several recipients) and skopeo decrypts. The test keys are
//! RSA where skopeo takes part: x/crypto/openpgp cannot use ed25519/cv25519.
//!
//! gpg and skopeo are test dependencies: when one is missing these tests fail (never skip);
//! `scripts/deps.sh --test` installs them. They need the cargo feature `pgp` (on by default).
#![cfg(feature = "pgp")]

use crate::common;

use std::path::{Path, PathBuf};

use common::gpg::*;
use common::*;

fn plain() -> PathBuf {
    testdata("images/plain")
}

fn assert_original(out: &Path, reference: &str) {
    assert_eq!(
        Layout(out.to_path_buf()).entry(reference)["digest"],
        plain_digest(reference),
        "{} is not the original image",
        out.display()
    );
}

/// The pgp annotations of every layer of a single-manifest image.
fn pgp_annotations(layout: &Path, reference: &str) -> Vec<String> {
    Layout(layout.to_path_buf())
        .layers(reference)
        .iter()
        .map(|l| {
            l["annotations"]["org.opencontainers.image.enc.keys.pgp"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

// --- skopeo encrypts, layercrypt decrypts ---------------------------------------------------

#[test]
fn skopeo_encrypts_to_gpg_recipients_and_exported_keyrings_decrypt() {
    let home = GpgHome::with(&["alice.sec.gpg", "bob.sec.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    home.skopeo_ok(&[
        "copy",
        "--encryption-key",
        "pgp:alice@example.test",
        "--encryption-key",
        "pgp:Bob Example",
        &oci(&plain(), "v1"),
        &oci(&enc, "v1"),
    ]);
    assert!(pgp_annotations(&enc, "v1").iter().all(|a| !a.is_empty()));

    let alice_bin = home.export_secret("alice@example.test", "", false, &tmp.path().join("a.gpg"));
    let alice_asc = home.export_secret("alice@example.test", "", true, &tmp.path().join("a.asc"));
    // gpg exports a protected key still protected by its passphrase.
    let bob_bin = home.export_secret(
        "bob@example.test",
        "bob-pw",
        false,
        &tmp.path().join("b.gpg"),
    );
    let bob_asc = home.export_secret(
        "bob@example.test",
        "bob-pw",
        true,
        &tmp.path().join("b.asc"),
    );
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "bob-pw\n").unwrap();
    let keys = [
        alice_bin.clone(),
        alice_asc,
        format!("{bob_bin}:pass=bob-pw"),
        format!("{bob_asc}:file={}", pw.display()),
    ];
    for (i, k) in keys.iter().enumerate() {
        let out = tmp.path().join(format!("dec{i}"));
        layercrypt()
            .args(["decrypt", "-k", k])
            .arg(oci(&enc, "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        assert_original(&out, "v1");
    }

    // Bob's keyring without a passphrase, or with a wrong one, says so, for that key.
    let bob = home.ids("bob@example.test");
    for (k, why) in [
        (
            bob_bin.clone(),
            "it is passphrase-protected and no passphrase was given",
        ),
        (format!("{bob_bin}:pass=nope"), "wrong passphrase"),
    ] {
        let out = layercrypt()
            .args(["decrypt", "-k", &k])
            .arg(oci(&enc, "v1"))
            .arg(oci(&tmp.path().join("fail"), "v1"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr_of(&out);
        assert!(
            err.contains(&format!(
                "pgp with {bob_bin}: secret key {}: {why}",
                go_id(&bob.sub_id)
            )),
            "{err}"
        );
    }
}

#[test]
fn skopeo_multi_arch_images_decrypt_with_an_exported_keyring() {
    let home = GpgHome::with(&["alice.sec.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    home.skopeo_ok(&[
        "copy",
        "--all",
        "--encryption-key",
        "pgp:alice@example.test",
        &oci(&plain(), "multi"),
        &oci(&enc, "multi"),
    ]);
    let out = tmp.path().join("dec");
    layercrypt()
        .args(["decrypt", "-k"])
        .arg(pgp_fixture("alice.sec.asc"))
        .arg(oci(&enc, "multi"))
        .arg(oci(&out, "multi"))
        .assert()
        .success();
    assert_original(&out, "multi");
}

// --- layercrypt encrypts, skopeo decrypts ---------------------------------------------------

#[test]
fn layercrypt_encrypts_by_email_key_id_and_fingerprint_and_skopeo_decrypts() {
    let home = GpgHome::with(&["alice.sec.gpg", "bob.pub.gpg", "carol.pub.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let secring = home.export_secret("alice@example.test", "", false, &tmp.path().join("a.gpg"));
    let alice = home.ids("alice@example.test");
    let recipients = [
        "alice@example.test".to_string(),
        "Alice Example".to_string(),
        alice.primary_id.clone(),
        format!("0x{}", alice.sub_id.to_lowercase()),
        alice.primary_fpr.clone(),
        alice.sub_fpr.to_lowercase(),
    ];
    for (i, r) in recipients.iter().enumerate() {
        let enc = tmp.path().join(format!("enc{i}"));
        home.layercrypt()
            .args(["encrypt", "-r", &format!("pgp:{r}"), "--gpg-homedir"])
            .arg(home.path())
            .arg(oci(&plain(), "v1"))
            .arg(oci(&enc, "v1"))
            .assert()
            .success();
        let out = tmp.path().join(format!("dec{i}"));
        home.skopeo_ok(&[
            "copy",
            "--decryption-key",
            &secring,
            &oci(&enc, "v1"),
            &oci(&out, "v1"),
        ]);
        assert_original(&out, "v1");
    }
}

#[test]
fn several_recipients_each_open_the_image_in_skopeo_and_layercrypt() {
    let home = GpgHome::with(&["alice.sec.gpg", "bob.sec.gpg", "carol.sec.gpg"]);
    // A second unprotected RSA key made here, so skopeo (which takes no passphrase) can open
    // the image with a key other than Alice's.
    home.gpg_ok(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Erin <erin@example.test>",
        "rsa2048",
        "sign,encr",
        "never",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    home.layercrypt()
        .args(["encrypt", "--gpg-homedir"])
        .arg(home.path())
        .args([
            "-r",
            "pgp:alice@example.test",
            "-r",
            "pgp:Bob Example",
            "-r",
            "pgp:erin@example.test",
            "-r",
            // Named twice: still one PKESK.
            "pgp:Erin",
        ])
        .arg(oci(&plain(), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    for who in ["alice@example.test", "erin@example.test"] {
        let secring = home.export_secret(who, "", false, &tmp.path().join(format!("{who}.gpg")));
        let out = tmp.path().join(format!("skopeo-{who}"));
        home.skopeo_ok(&[
            "copy",
            "--decryption-key",
            &secring,
            &oci(&enc, "v1"),
            &oci(&out, "v1"),
        ]);
        assert_original(&out, "v1");
    }
    let bob = home.export_secret(
        "bob@example.test",
        "bob-pw",
        true,
        &tmp.path().join("bob.asc"),
    );
    let out = tmp.path().join("bob");
    layercrypt()
        .args(["decrypt", "-k", &format!("{bob}:env=BOB_PW")])
        .env("BOB_PW", "bob-pw")
        .arg(oci(&enc, "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .success();
    assert_original(&out, "v1");
    // Carol was not a recipient: her keyring is tried and named in the error.
    let carol = home.export_secret(
        "carol@example.test",
        "",
        false,
        &tmp.path().join("carol.gpg"),
    );
    let out = layercrypt()
        .args(["decrypt", "-k", &carol])
        .arg(oci(&enc, "v1"))
        .arg(oci(&tmp.path().join("carol"), "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&out).contains(&format!("pgp with {carol}: no secret key for 0x")),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_user_id_that_is_not_an_address_breaks_go_but_not_layercrypt() {
    let home = GpgHome::with(&["alice.sec.gpg", "bare-name.pub.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    // Go parses every user id as an RFC 5322 address and gives up on "Just A Name".
    let go = home.skopeo(&[
        "copy",
        "--encryption-key",
        "pgp:alice@example.test",
        &oci(&plain(), "v1"),
        &oci(&tmp.path().join("go"), "v1"),
    ]);
    assert!(!go.status.success());
    assert!(String::from_utf8_lossy(&go.stderr).contains("mail: "));
    let enc = tmp.path().join("enc");
    home.layercrypt()
        .args([
            "encrypt",
            "-r",
            "pgp:alice@example.test",
            "-r",
            "pgp:Just A Name",
        ])
        .arg(oci(&plain(), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    let out = tmp.path().join("dec");
    home.skopeo_ok(&[
        "copy",
        "--decryption-key",
        pgp_fixture("alice.sec.gpg").to_str().unwrap(),
        &oci(&enc, "v1"),
        &oci(&out, "v1"),
    ]);
    assert_original(&out, "v1");
}

// --- The GnuPG home as the key store (no -k) -------------------------------------------------

#[test]
fn without_keys_gpg_decrypts_go_and_layercrypt_images() {
    let home = GpgHome::with(&["alice.sec.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let by_go = tmp.path().join("go");
    home.skopeo_ok(&[
        "copy",
        "--encryption-key",
        "pgp:alice@example.test",
        &oci(&plain(), "v1"),
        &oci(&by_go, "v1"),
    ]);
    let by_us = tmp.path().join("us");
    home.layercrypt()
        .args(["encrypt", "-r", "pgp:alice@example.test"])
        .arg(oci(&plain(), "v1"))
        .arg(oci(&by_us, "v1"))
        .assert()
        .success();
    for (i, enc) in [&by_go, &by_us].into_iter().enumerate() {
        // --gpg-homedir, and $GNUPGHOME alone.
        let out = tmp.path().join(format!("dec{i}"));
        layercrypt()
            .env_remove("GNUPGHOME")
            .args(["decrypt", "--gpg-homedir"])
            .arg(home.path())
            .arg(oci(enc, "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success()
            .stdout(predicates::str::contains("decrypted layers 0, 1, 2"));
        assert_original(&out, "v1");
        let out = tmp.path().join(format!("env{i}"));
        home.layercrypt()
            .arg("decrypt")
            .arg(oci(enc, "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        assert_original(&out, "v1");
    }
    // A home without the secret key says gpg has none for the recipient.
    let other = GpgHome::with(&["carol.sec.gpg"]);
    let alice = home.ids("alice@example.test");
    let out = other
        .layercrypt()
        .arg("decrypt")
        .arg(oci(&by_go, "v1"))
        .arg(oci(&tmp.path().join("none"), "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "gpg has no secret key for {}",
            go_id(&alice.sub_id)
        )),
        "{err}"
    );
}

#[test]
fn gpg_asks_for_a_passphrase_only_when_it_needs_one() {
    let home = GpgHome::with(&["bob.sec.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    home.layercrypt()
        .args(["encrypt", "-r", "pgp:bob@example.test"])
        .arg(oci(&plain(), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    let decrypt = |passphrase: Option<&str>, name: &str| {
        let mut cmd = home.layercrypt();
        cmd.arg("decrypt");
        if let Some(p) = passphrase {
            let file = tmp.path().join(format!("{name}.pw"));
            std::fs::write(&file, format!("{p}\n")).unwrap();
            cmd.arg("--passphrase-file").arg(file);
        }
        cmd.arg(oci(&enc, "v1"))
            .arg(oci(&tmp.path().join(name), "v1"));
        cmd.assert()
    };
    let err = stderr_of(decrypt(None, "none").code(2).get_output());
    assert!(
        err.contains("passphrase-protected and no passphrase was given"),
        "{err}"
    );
    let err = stderr_of(decrypt(Some("nope"), "wrong").code(2).get_output());
    assert!(err.contains("wrong passphrase"), "{err}");
    decrypt(Some("bob-pw"), "right").success();
    assert_original(&tmp.path().join("right"), "v1");
}

// --- inspect ------------------------------------------------------------------------------------

#[test]
fn inspect_shows_key_ids_and_the_user_ids_gpg_knows() {
    let home = GpgHome::with(&["alice.pub.gpg", "carol.pub.gpg"]);
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    home.layercrypt()
        .args([
            "encrypt",
            "-r",
            "pgp:alice@example.test",
            "-r",
            "pgp:carol@example.test",
        ])
        .args(["--layer", "0"])
        .arg(oci(&plain(), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    let alice = go_id(&home.ids("alice@example.test").sub_id);
    let carol = go_id(&home.ids("carol@example.test").sub_id);
    let out = home
        .layercrypt()
        .args(["inspect", "--gpg-homedir"])
        .arg(home.path())
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!(
            "pgp[RSA {alice} \"Alice Example <alice@example.test>\"], pgp[ECDH Curve25519 {carol} \"Carol <carol@example.test>\"]"
        )),
        "{text}"
    );
    // JSON, and a home that does not know the keys: key ids only.
    let empty = GpgHome::with(&[]);
    let out = empty
        .layercrypt()
        .args(["inspect", "--json"])
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let recipients = &report["images"][0]["manifests"][0]["layers"][0]["recipients"];
    assert_eq!(recipients[0]["key_id"], alice.as_str());
    assert_eq!(recipients[0]["algorithm"], "RSA");
    assert!(recipients[0].get("user_ids").is_none(), "{recipients}");
    // The Go-made sample: the key id skopeo wrote, as Go's `layerinfo` prints it.
    let out = empty
        .layercrypt()
        .arg("inspect")
        .arg(oci(&testdata("samples/small-multi/image"), "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("pgp[RSA 0x4926e8817d4addea]"));
}

// --- gpg's modern default keys (ed25519/cv25519) and NIST curves ----------------------------

#[test]
fn curve25519_and_nist_keys_work_both_ways_in_layercrypt() {
    let home = GpgHome::with(&["dave.sec.gpg"]);
    // gpg 2.2's "future-default" is what gpg 2.4 makes by default: ed25519 + cv25519.
    home.gpg_ok(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Gina <gina@example.test>",
        "future-default",
        "default",
        "never",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    for who in ["gina@example.test", "dave@example.test"] {
        let enc = tmp.path().join(format!("enc-{who}"));
        home.layercrypt()
            .args(["encrypt", "-r", &format!("pgp:{who}")])
            .arg(oci(&plain(), "v1"))
            .arg(oci(&enc, "v1"))
            .assert()
            .success();
        let secring = home.export_secret(who, "", false, &tmp.path().join(format!("{who}.gpg")));
        let out = tmp.path().join(format!("k-{who}"));
        layercrypt()
            .args(["decrypt", "-k", &secring])
            .arg(oci(&enc, "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        assert_original(&out, "v1");
        let out = tmp.path().join(format!("gpg-{who}"));
        home.layercrypt()
            .arg("decrypt")
            .arg(oci(&enc, "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        assert_original(&out, "v1");
    }
}

// --- Certificate files and refusals ------------------------------------------------------------

#[test]
fn certificate_files_are_recipients_without_any_gpg_home() {
    let empty = GpgHome::with(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    empty
        .layercrypt()
        .arg("encrypt")
        .arg("-r")
        .arg(format!("pgp:{}", pgp_fixture("alice.pub.asc").display()))
        .arg("-r")
        .arg(format!("pgp:{}", pgp_fixture("carol.pub.gpg").display()))
        .arg("-r")
        .arg(format!("jwe:{}", key("rsa2048.pub.pem")))
        .arg(oci(&plain(), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();
    for k in [
        pgp_fixture("alice.sec.gpg").display().to_string(),
        pgp_fixture("carol.sec.gpg").display().to_string(),
        key("rsa2048.pem"),
    ] {
        let out = tmp.path().join(Path::new(&k).file_name().unwrap());
        layercrypt()
            .args(["decrypt", "-k", &k])
            .arg(oci(&enc, "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        assert_original(&out, "v1");
    }
}

#[test]
fn unknown_expired_revoked_and_sign_only_recipients_are_refused_by_name() {
    let home = GpgHome::with(&[
        "alice.pub.gpg",
        "expired.pub.gpg",
        "revoked.pub.gpg",
        "signer.pub.gpg",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    for (recipient, why) in [
        ("pgp:nobody@example.test", "no OpenPGP key in gpg"),
        ("pgp:ALICE@example.test", "no OpenPGP key in gpg"),
        ("pgp:expired@example.test", "has expired"),
        ("pgp:revoked@example.test", "is revoked"),
        ("pgp:signer@example.test", "signing-only"),
        ("pgp:", "an OpenPGP recipient is pgp:EMAIL"),
        (
            &format!("pgp:{}", key("rsa2048.pub.pem")),
            "is a public key, not an OpenPGP certificate",
        ),
    ] {
        let before = snapshot(&plain());
        let out = home
            .layercrypt()
            .args(["encrypt", "-r", "pgp:alice@example.test", "-r", recipient])
            .arg(oci(&plain(), "v1"))
            .arg(oci(&tmp.path().join("out"), "v1"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr_of(&out);
        assert!(
            err.starts_with(&format!("error: recipient `{recipient}`: ")) && err.contains(why),
            "{recipient}: {err}"
        );
        assert!(!tmp.path().join("out").exists());
        assert_eq!(snapshot(&plain()), before);
    }
}

#[test]
fn public_keyrings_are_not_decryption_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let out = layercrypt()
        .args(["decrypt", "-k"])
        .arg(pgp_fixture("alice.pub.gpg"))
        .arg(oci(&testdata("samples/small-multi/image"), "v1"))
        .arg(oci(&tmp.path().join("out"), "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("alice.pub.gpg") && err.contains("OpenPGP public key"),
        "{err}"
    );
}
