//! The PKCS#11 scheme against a real token: SoftHSM 2.6.1 (Debian `softhsm2`), filled with
//! `pkcs11-tool` (Debian `opensc`). One token is made per test run in a temporary directory
//! with its own `softhsm2.conf`; the binary runs with `SOFTHSM2_CONF` and `OCICRYPT_CONFIG`
//! in its environment, as a user would run it.
//!
//! SoftHSM 2.6.1 does RSA-OAEP only with SHA-1 (it answers CKR_ARGUMENTS_BAD to SHA-256), so
//! token operations use `OCICRYPT_OAEP_HASHALG=sha1`, and the SHA-256 cases check that the
//! refusal is reported plainly. These tests fail (never skip) when SoftHSM or pkcs11-tool is
//! missing; `scripts/deps.sh --test` installs them.
//!
//! No Go peer is tested: Debian's skopeo 1.9.3 has no PKCS#11 support (spec §15); the blob is
//! checked byte for byte against the specification by unit tests instead.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::softhsm::*;
use common::*;
use serde_json::Value;

/// Encrypt `plain:v1` for `recipients`, insisting on success.
fn encrypt(token: &Token, hash: Option<&str>, recipients: &[String], out: &Path) {
    let mut cmd = token.layercrypt(hash);
    cmd.arg("encrypt");
    for r in recipients {
        cmd.args(["-r", r]);
    }
    cmd.arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(out, "v1"))
        .assert()
        .success();
}

/// Decrypt with `keys` and check the result is the original image, byte for byte.
fn decrypts_to_original(token: &Token, enc: &Path, keys: &[&Path], out: &Path) {
    let mut cmd = token.layercrypt(None);
    cmd.arg("decrypt");
    for k in keys {
        cmd.arg("-k").arg(k);
    }
    cmd.arg(oci(enc, "v1"))
        .arg(oci(out, "v1"))
        .assert()
        .success();
    assert_eq!(
        Layout(out.to_path_buf()).entry("v1")["digest"],
        plain_digest("v1"),
        "decrypting {} did not restore the original manifest",
        enc.display()
    );
}

/// Run and insist on exit 2; returns stderr.
fn refused(mut cmd: assert_cmd::Command) -> String {
    let out = cmd.assert().code(2).get_output().clone();
    stderr_of(&out)
}

fn pkcs11_annotation(layer: &Value) -> Value {
    let b64 = layer["annotations"]["org.opencontainers.image.enc.keys.pkcs11"]
        .as_str()
        .expect("a pkcs11 annotation");
    let blob = layercrypt::format::decode_base64_go(b64).unwrap();
    serde_json::from_slice(&blob).unwrap()
}

#[test]
fn a_token_key_file_encrypts_and_decrypts_round_trip() {
    let _serial = serial();
    let token = token();
    let tmp = tempfile::tempdir().unwrap();
    let key = token.key(tmp.path(), "rsa2048");
    let enc = tmp.path().join("enc");
    encrypt(
        token,
        Some("sha1"),
        &[format!("pkcs11:{}", key.display())],
        &enc,
    );
    let layers = Layout(enc.clone()).layers("v1");
    assert_eq!(layers.len(), 3);
    for layer in &layers {
        assert!(layer["mediaType"].as_str().unwrap().ends_with("+encrypted"));
        let blob = pkcs11_annotation(layer);
        // The blob as Go writes it: versions, one recipient, RSA-2048 ciphertext, the hash.
        assert_eq!(blob["version"], 0);
        let r = blob["recipients"].as_array().unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["version"], 0);
        assert_eq!(r[0]["hash"], "sha1");
        let ciphertext =
            layercrypt::format::decode_base64_go(r[0]["blob"].as_str().unwrap()).unwrap();
        assert_eq!(ciphertext.len(), 256);
    }
    decrypts_to_original(token, &enc, &[&key], &tmp.path().join("dec"));

    // inspect names the scheme, algorithm and hash of each entry.
    let report = token
        .layercrypt(None)
        .args(["inspect", "--json"])
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&report).unwrap();
    for layer in report["images"][0]["manifests"][0]["layers"]
        .as_array()
        .unwrap()
    {
        assert_eq!(layer["schemes"], serde_json::json!(["pkcs11"]));
        assert_eq!(
            layer["recipients"],
            serde_json::json!([{"scheme": "pkcs11", "algorithm": "RSA-OAEP", "hash": "sha1"}])
        );
    }
    let table = token
        .layercrypt(None)
        .arg("inspect")
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("pkcs11[RSA-OAEP sha1]"), "{table}");
}

/// A plain RSA public key file as `pkcs11:` recipient is encrypted in software; the token's
/// private key opens it. Several recipients share one blob, and each key opens it alone.
#[test]
fn a_public_key_file_recipient_decrypts_on_the_token() {
    let _serial = serial();
    let token = token();
    let tmp = tempfile::tempdir().unwrap();
    let der = token.dir.join("rsa2048.pub.der");
    let pem = tmp.path().join("rsa2048.pub.pem");
    let pkey = openssl::pkey::PKey::public_key_from_der(&fs::read(&der).unwrap()).unwrap();
    fs::write(&pem, pkey.public_key_to_pem().unwrap()).unwrap();
    let key2048 = token.key(tmp.path(), "rsa2048");
    let key3072 = token.key(tmp.path(), "rsa3072");

    for (name, public) in [("der", &der), ("pem", &pem)] {
        let enc = tmp.path().join(format!("enc-{name}"));
        encrypt(
            token,
            Some("sha1"),
            &[format!("pkcs11:{}", public.display())],
            &enc,
        );
        decrypts_to_original(
            token,
            &enc,
            &[&key2048],
            &tmp.path().join(format!("dec-{name}")),
        );
    }

    // Two recipients (a file and a token key) in one blob; the first key that is not a
    // recipient is reported, the second opens it.
    let enc = tmp.path().join("enc-two");
    encrypt(
        token,
        Some("sha1"),
        &[
            format!("pkcs11:{}", pem.display()),
            format!("pkcs11:{}", key3072.display()),
        ],
        &enc,
    );
    let layer = &Layout(enc.clone()).layers("v1")[0];
    let blob = pkcs11_annotation(layer);
    let entries = blob["recipients"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let sizes: Vec<usize> = entries
        .iter()
        .map(|e| {
            layercrypt::format::decode_base64_go(e["blob"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [256, 384]);
    decrypts_to_original(token, &enc, &[&key3072], &tmp.path().join("dec-3072"));
    decrypts_to_original(token, &enc, &[&key2048], &tmp.path().join("dec-2048"));
}

/// SHA-256 (ocicrypt's default): too long for RSA-2048 (said before the token is asked),
/// refused by SoftHSM for RSA-3072, and an entry made in software with SHA-256 cannot be
/// opened by SoftHSM — each said plainly, exit 2, nothing written.
#[test]
fn sha256_failures_are_explained() {
    let _serial = serial();
    let token = token();
    let tmp = tempfile::tempdir().unwrap();
    let key2048 = token.key(tmp.path(), "rsa2048");
    let key3072 = token.key(tmp.path(), "rsa3072");
    let plain = oci(&testdata("images/plain"), "v1");

    let out = tmp.path().join("never");
    let err = refused({
        let mut c = token.layercrypt(None);
        c.args(["encrypt", "-r", &format!("pkcs11:{}", key2048.display())])
            .arg(&plain)
            .arg(oci(&out, "v1"));
        c
    });
    assert!(
        err.contains(&format!("recipient `pkcs11:{}`: the layer options (193 bytes) are too long for RSA-OAEP with SHA-256 under the RSA key with label \"rsa2048\" on token \"layercrypt-test\" (2048 bits), which carries at most 190 bytes; set OCICRYPT_OAEP_HASHALG=sha1, or use an RSA key of 3072 bits or more", key2048.display())),
        "{err}"
    );
    assert!(!out.exists());

    let err = refused({
        let mut c = token.layercrypt(Some("sha256"));
        c.args(["encrypt", "-r", &format!("pkcs11:{}", key3072.display())])
            .arg(&plain)
            .arg(oci(&out, "v1"));
        c
    });
    assert!(
        err.contains("token \"layercrypt-test\": the token does not support RSA-OAEP with SHA-256 (C_EncryptInit returned CKR_ARGUMENTS_BAD); SoftHSM 2.6 supports only SHA-1: set OCICRYPT_OAEP_HASHALG=sha1"),
        "{err}"
    );
    assert!(!out.exists());

    // In software SHA-256 works (RSA-3072), but SoftHSM cannot decrypt that entry.
    let pub3072 = token.dir.join("rsa3072.pub.der");
    let enc = tmp.path().join("enc");
    encrypt(
        token,
        None,
        &[format!("pkcs11:{}", pub3072.display())],
        &enc,
    );
    assert_eq!(
        pkcs11_annotation(&Layout(enc.clone()).layers("v1")[0])["recipients"][0]["hash"],
        "sha256"
    );
    let err = refused({
        let mut c = token.layercrypt(None);
        c.args(["decrypt", "-k"])
            .arg(&key3072)
            .arg(oci(&enc, "v1"))
            .arg(oci(&out, "v1"));
        c
    });
    assert!(
        err.contains("the token does not support RSA-OAEP with SHA-256 (C_DecryptInit returned CKR_ARGUMENTS_BAD)"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Every way a token key can fail to open a layer: exit 2, the key file and the reason named,
/// nothing written.
#[test]
fn unusable_token_keys_are_refused_with_the_reason() {
    let _serial = serial();
    let token = token();
    let tmp = tempfile::tempdir().unwrap();
    let key = token.key(tmp.path(), "rsa2048");
    let enc = tmp.path().join("enc");
    encrypt(
        token,
        Some("sha1"),
        &[format!("pkcs11:{}", key.display())],
        &enc,
    );
    let before = snapshot(&enc);
    let d = tmp.path();

    let cases: Vec<(PathBuf, &str)> = vec![
        (
            token.key_file(
                d,
                "wrong-pin.yaml",
                &format!("token={TOKEN};object=rsa2048"),
                "pin-value=0000&module-name=softhsm2",
            ),
            "token \"layercrypt-test\": the token refused the PIN (CKR_PIN_INCORRECT)",
        ),
        (
            token.key_file(
                d,
                "no-token.yaml",
                "token=no-such-token;object=rsa2048",
                &format!("pin-value={PIN}&module-name=softhsm2"),
            ),
            "no token labelled \"no-such-token\" is present (tokens present: \"layercrypt-test\")",
        ),
        (
            token.key_file(
                d,
                "no-object.yaml",
                &format!("token={TOKEN};object=no-such-key"),
                &format!("pin-value={PIN}&module-name=softhsm2"),
            ),
            "token \"layercrypt-test\": no private key (CKO_PRIVATE_KEY) with label \"no-such-key\"",
        ),
        (
            token.key_file(
                d,
                "no-pin.yaml",
                &format!("token={TOKEN};object=rsa2048"),
                "module-name=softhsm2",
            ),
            "the URI gives no PIN",
        ),
        (
            token.key_file(
                d,
                "wrong-id.yaml",
                &format!("token={TOKEN};object=rsa2048;id=%02"),
                &format!("pin-value={PIN}&module-name=softhsm2"),
            ),
            "no private key (CKO_PRIVATE_KEY) with label \"rsa2048\" and id %02",
        ),
        (
            token.key(d, "rsa3072"),
            "decryption failed (C_Decrypt returned CKR_",
        ),
        (
            token.key_file(
                d,
                "no-module.yaml",
                &format!("token={TOKEN};object=rsa2048"),
                &format!("pin-value={PIN}&module-name=softhsm"),
            ),
            "no PKCS#11 module named `softhsm` was found in /usr/lib/softhsm/",
        ),
    ];
    for (key_file, why) in &cases {
        let out = tmp.path().join("never");
        let err = refused({
            let mut c = token.layercrypt(None);
            c.args(["decrypt", "-k"])
                .arg(key_file)
                .arg(oci(&enc, "v1"))
                .arg(oci(&out, "v1"));
            c
        });
        assert!(err.contains(why), "{}: {err}", key_file.display());
        assert!(err.contains(&key_file.display().to_string()), "{err}");
        assert!(!err.contains(PIN), "the PIN is shown: {err}");
        assert!(!out.exists());
    }
    assert_eq!(snapshot(&enc), before);

    // All of them at once: each is reported, and a good key among them still opens it.
    let mut all = token.layercrypt(None);
    all.arg("decrypt");
    for (k, _) in &cases {
        all.arg("-k").arg(k);
    }
    let err = refused({
        let mut c = all;
        c.arg(oci(&enc, "v1"))
            .arg(oci(&tmp.path().join("never"), "v1"));
        c
    });
    for (_, why) in &cases {
        assert!(err.contains(why), "{why}: {err}");
    }
    let mut keys: Vec<&Path> = cases.iter().map(|(k, _)| k.as_path()).collect();
    keys.push(&key);
    decrypts_to_original(token, &enc, &keys, &tmp.path().join("dec"));
}

/// Recipients are checked before anything is read or written: the token, the object, its key
/// type, the policy and the environment.
#[test]
fn unusable_recipients_are_refused_before_encrypting() {
    let _serial = serial();
    let token = token();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let plain = oci(&testdata("images/plain"), "v1");
    let ok_query = format!("pin-value={PIN}&module-name=softhsm2");
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            token.key_file(
                d,
                "no-token.yaml",
                "token=no-such-token;object=rsa2048",
                &ok_query,
            ),
            "no token labelled \"no-such-token\" is present",
        ),
        (
            token.key_file(
                d,
                "no-object.yaml",
                &format!("token={TOKEN};object=nothing"),
                &ok_query,
            ),
            "token \"layercrypt-test\": no public key (CKO_PUBLIC_KEY) with label \"nothing\"",
        ),
        (
            token.key(d, "ec256"),
            "Unsupported key object type for pkcs11 public key: token \"layercrypt-test\": the key with label \"ec256\" is not an RSA key",
        ),
        // A public key can be found without logging in; a wrong PIN is still refused.
        (
            token.key_file(
                d,
                "wrong-pin.yaml",
                &format!("token={TOKEN};object=rsa2048"),
                "pin-value=0000&module-name=softhsm2",
            ),
            "the token refused the PIN (CKR_PIN_INCORRECT)",
        ),
    ];
    for (key_file, why) in &cases {
        let out = tmp.path().join("never");
        let err = refused({
            let mut c = token.layercrypt(Some("sha1"));
            c.args(["encrypt", "-r", &format!("pkcs11:{}", key_file.display())])
                .arg(&plain)
                .arg(oci(&out, "v1"));
            c
        });
        assert!(err.contains(why), "{}: {err}", key_file.display());
        assert!(
            err.contains(&format!("recipient `pkcs11:{}`", key_file.display())),
            "{err}"
        );
        assert!(!out.exists());
    }

    // Without a PIN the public key is found all the same.
    let no_pin = token.key_file(
        d,
        "public.yaml",
        &format!("token={TOKEN};object=rsa2048"),
        "module-name=softhsm2",
    );
    let enc = tmp.path().join("enc");
    encrypt(
        token,
        Some("sha1"),
        &[format!("pkcs11:{}", no_pin.display())],
        &enc,
    );
    decrypts_to_original(
        token,
        &enc,
        &[&token.key(d, "rsa2048")],
        &tmp.path().join("dec"),
    );
}

/// The module policy decides which module may be loaded; `module.env` must be in the
/// environment, since layercrypt does not change its own.
#[test]
fn policy_and_environment_are_enforced() {
    let _serial = serial();
    let token = token();
    let tmp = tempfile::tempdir().unwrap();
    let key = token.key(tmp.path(), "rsa2048");
    let enc = tmp.path().join("enc");
    encrypt(
        token,
        Some("sha1"),
        &[format!("pkcs11:{}", key.display())],
        &enc,
    );
    let out = tmp.path().join("never");

    // A policy that finds the module but does not allow it.
    let err = refused({
        let mut c = token.layercrypt(None);
        c.env(
            "OCICRYPT_CONFIG",
            testdata("pkcs11/deny-softhsm-policy.conf"),
        )
        .args(["decrypt", "-k"])
        .arg(&key)
        .arg(oci(&enc, "v1"))
        .arg(oci(&out, "v1"));
        c
    });
    assert!(
        err.contains(&format!(
            "the PKCS#11 module /usr/lib/softhsm/libsofthsm2.so is not allowed by the policy ({})",
            testdata("pkcs11/deny-softhsm-policy.conf").display()
        )),
        "{err}"
    );
    let err = refused({
        let mut c = token.layercrypt(Some("sha1"));
        c.env(
            "OCICRYPT_CONFIG",
            testdata("pkcs11/deny-softhsm-policy.conf"),
        )
        .args(["encrypt", "-r", &format!("pkcs11:{}", key.display())])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&out, "v1"));
        c
    });
    assert!(err.contains("is not allowed by the policy"), "{err}");

    // The built-in policy allows /usr/lib/softhsm/.
    let mut c = token.layercrypt(None);
    c.env("OCICRYPT_CONFIG", "internal");
    c.args(["decrypt", "-k"])
        .arg(&key)
        .arg(oci(&enc, "v1"))
        .arg(oci(&tmp.path().join("dec-internal"), "v1"));
    c.assert().success();

    // The key file asks for SOFTHSM2_CONF. Without it, or with another value, the CLI starts
    // itself again with the key file's module environment, and the run succeeds.
    for (i, value) in [None, Some("/elsewhere/softhsm2.conf")]
        .into_iter()
        .enumerate()
    {
        let mut c = token.layercrypt(None);
        match value {
            None => c.env_remove("SOFTHSM2_CONF"),
            Some(v) => c.env("SOFTHSM2_CONF", v),
        };
        let dec = tmp.path().join(format!("dec-module-env-{i}"));
        c.args(["decrypt", "-k"])
            .arg(&key)
            .arg(oci(&enc, "v1"))
            .arg(oci(&dec, "v1"))
            .assert()
            .success();
        assert_eq!(Layout(dec).entry("v1")["digest"], plain_digest("v1"));
    }
    let enc_env = tmp.path().join("enc-module-env");
    let mut c = token.layercrypt(Some("sha1"));
    c.env_remove("SOFTHSM2_CONF")
        .args(["encrypt", "-r", &format!("pkcs11:{}", key.display())])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&enc_env, "v1"))
        .assert()
        .success();

    // The library itself never changes the environment: a run that was already started again
    // (or an embedder) gets an error that says what to export.
    for value in [None, Some("/elsewhere/softhsm2.conf")] {
        let err = refused({
            let mut c = token.layercrypt(None);
            match value {
                None => c.env_remove("SOFTHSM2_CONF"),
                Some(v) => c.env("SOFTHSM2_CONF", v),
            };
            c.env("LAYERCRYPT_PKCS11_MODULE_ENV", "1")
                .args(["decrypt", "-k"])
                .arg(&key)
                .arg(oci(&enc, "v1"))
                .arg(oci(&out, "v1"));
            c
        });
        let conf = token.conf.display().to_string();
        let state = match value {
            None => "(it is not set)".to_string(),
            Some(v) => format!("(it is {v})"),
        };
        assert!(
            err.contains(&format!("asks (module.env) for SOFTHSM2_CONF={conf} {state} in the environment of the PKCS#11 module")),
            "{err}"
        );
        assert!(
            err.contains(&format!("export SOFTHSM2_CONF={conf}")),
            "{err}"
        );
        assert!(!out.exists());
    }

    // What the CLI will use to start itself with the right environment.
    let jwe_key = common::key("rsa2048.pem");
    let env =
        layercrypt::keywrap::pkcs11::module_environment(&[key.as_path(), Path::new(&jwe_key)])
            .unwrap();
    assert_eq!(
        env,
        [(
            "SOFTHSM2_CONF".to_string(),
            token.conf.display().to_string()
        )]
    );
}
