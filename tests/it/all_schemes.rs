//! One image encrypted for recipients of every scheme at once — JWE (RSA and EC), OpenPGP,
//! PKCS#7, PKCS#11 (a SoftHSM token) and a key provider — opens with each key alone in
//! layercrypt, and with skopeo 1.9.3 for the schemes skopeo knows (JWE, OpenPGP, PKCS#7), which
//! ignores the annotations of the others.
//!
//! skopeo, gpg, SoftHSM and pkcs11-tool are test dependencies (`scripts/deps.sh --test`); when
//! one is missing this test fails, it never skips. It needs the cargo feature `pgp`.
#![cfg(feature = "pgp")]

use crate::common;

use std::path::Path;

use common::gpg::*;
use common::keyprovider::*;
use common::softhsm;
use common::*;
use serde_json::json;

/// layercrypt with the environment every scheme of this test needs: the token's SoftHSM
/// configuration and module policy (SHA-1 OAEP, all SoftHSM does), the GnuPG home, and,
/// when `providers` is given, the key-provider configuration.
fn layercrypt_with(
    token: &softhsm::Token,
    gnupg: &Path,
    providers: Option<&Path>,
) -> assert_cmd::Command {
    let mut cmd = token.layercrypt(Some("sha1"));
    cmd.env("GNUPGHOME", gnupg);
    match providers {
        Some(p) => cmd.env("OCICRYPT_KEYPROVIDER_CONFIG", p),
        None => cmd.env_remove("OCICRYPT_KEYPROVIDER_CONFIG"),
    };
    cmd
}

#[test]
fn one_image_for_every_scheme_opens_with_each_key_alone() {
    let _token_lock = softhsm::serial();
    let token = softhsm::token();
    let tmp = tempfile::tempdir().unwrap();
    let home = GpgHome::with(&["alice.pub.gpg"]);
    let hsm_key = token.key(tmp.path(), "rsa2048");
    // The provider unwraps only with the ARGS of its recipient; without parameters it has no
    // secret of its own, so it cannot open the layers for the other keys' runs.
    let providers = config(
        tmp.path(),
        "providers.json",
        json!({ "kp": cmd_provider(&["--name", "kp"]) }),
    );

    let enc = tmp.path().join("enc");
    let recipients = [
        format!("jwe:{}", key("rsa2048.pub.pem")),
        format!("jwe:{}", key("ec384.pub.pem")),
        "pgp:alice@example.test".to_string(),
        format!("pkcs7:{}", key("x509.crt")),
        format!("pkcs11:{}", hsm_key.display()),
        "provider:kp:the-provider-secret".to_string(),
    ];
    let mut cmd = layercrypt_with(token, home.path(), Some(&providers));
    cmd.arg("encrypt");
    for r in &recipients {
        cmd.args(["-r", r]);
    }
    cmd.arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&enc, "v1"))
        .assert()
        .success();

    // Every layer carries every scheme, each wrapping the same layer key.
    let report = layercrypt_with(token, home.path(), Some(&providers))
        .args(["inspect", "--json"])
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    for layer in report["images"][0]["manifests"][0]["layers"]
        .as_array()
        .unwrap()
    {
        assert_eq!(
            layer["schemes"],
            json!(["jwe", "pgp", "pkcs11", "pkcs7", "provider.kp"]),
            "{layer}"
        );
        let schemes: Vec<&str> = layer["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["scheme"].as_str().unwrap())
            .collect();
        assert_eq!(
            schemes,
            ["jwe", "jwe", "pgp", "pkcs7", "pkcs11", "provider.kp"]
        );
    }

    // Each key alone, in layercrypt. The key providers are configured only for the provider
    // run, so no other run can have been opened by the provider; `-v` says which scheme did.
    let secring = tmp.path().join("alice.sec.gpg");
    std::fs::copy(testdata("pgp/alice.sec.gpg"), &secring).unwrap();
    let empty_home = GpgHome::with(&[]);
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        ("jwe", vec![key("rsa2048.pem")], false),
        ("jwe", vec![key("ec384.pem")], false),
        ("pgp", vec![secring.display().to_string()], false),
        ("pkcs7", vec![key("x509.key"), key("x509.crt")], false),
        ("pkcs11", vec![hsm_key.display().to_string()], false),
        (
            "provider.kp",
            vec!["provider:kp:the-provider-secret".to_string()],
            true,
        ),
    ];
    for (i, (scheme, keys, with_providers)) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("dec{i}"));
        let mut cmd = layercrypt_with(
            token,
            empty_home.path(),
            with_providers.then_some(providers.as_path()),
        );
        cmd.args(["decrypt", "-v"]);
        for k in &keys {
            cmd.args(["-k", k]);
        }
        let run = cmd
            .arg(oci(&enc, "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success()
            .get_output()
            .clone();
        let err = stderr_of(&run);
        assert!(
            err.contains(&format!("opened with {scheme} key")),
            "{keys:?}: {err}"
        );
        assert_eq!(
            Layout(out).entry("v1")["digest"],
            plain_digest("v1"),
            "{keys:?}"
        );
    }
    // The provider refuses a wrong secret, and nothing else can open the image then.
    let out = tmp.path().join("never");
    let mut cmd = layercrypt_with(token, empty_home.path(), Some(&providers));
    let run = cmd
        .args(["decrypt", "-k", "provider:kp:wrong"])
        .arg(oci(&enc, "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&run);
    assert!(
        err.contains("encrypted for jwe, pgp, pkcs7, pkcs11, provider.kp"),
        "{err}"
    );
    assert!(!out.exists());

    // skopeo opens it with the keys of the schemes it knows, ignoring the others.
    for (i, keys) in [
        vec![key("rsa2048.pem")],
        vec![key("ec384.pem")],
        vec![secring.display().to_string()],
        vec![key("x509.key"), key("x509.crt")],
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("skopeo{i}"));
        let mut args: Vec<String> = vec!["copy".into()];
        for k in &keys {
            args.push("--decryption-key".into());
            args.push(k.clone());
        }
        args.push(oci(&enc, "v1"));
        args.push(oci(&out, "v1"));
        home.skopeo_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            Layout(out).entry("v1")["digest"],
            plain_digest("v1"),
            "skopeo with {keys:?}"
        );
    }
}
