//! Secrets never reach the output: whatever layercrypt prints (human, `-v`, `--json`, errors
//! for a wrong passphrase or a wrong key), it never contains a private key, a passphrase or
//! a layer key.
//!
//! Every run's stdout and stderr are collected, then searched for: each line of the PEM body
//! of the private keys used (the base64 of their DER), the passphrases, and the layer keys and
//! nonces of the encrypted image (unwrapped here with the library), in base64 and hex.

use crate::common;

use std::fs;
use std::path::Path;

use base64::Engine as _;
use common::{Layout, fixture_copy, key, layercrypt, oci};
use layercrypt::format::PrivateOptions;
use layercrypt::keys::PrivateKey;

const PASSWORD: &str = "test-password";
const WRONG_PASSWORD: &str = "not-the-test-password";

/// Run layercrypt; returns stdout + stderr (the exit status is checked by the caller's
/// expectation `ok`).
fn run(args: &[String], env: &[(&str, &str)], ok: bool) -> String {
    let out = layercrypt()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.success(), ok, "{args:?}: {text}");
    text
}

/// The base64 lines of a PEM file's body (its DER in base64, 64 characters a line).
fn pem_body_lines(path: &str) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && l.len() >= 16)
        .map(str::to_string)
        .collect()
}

/// The private options of every layer of `v1` in `dir`, unwrapped with `key_file`.
fn layer_options(dir: &Path, key_file: &str) -> Vec<PrivateOptions> {
    let key = PrivateKey::from_bytes(&fs::read(key_file).unwrap(), None).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    Layout(dir.to_path_buf())
        .layers("v1")
        .iter()
        .map(|layer| {
            let annotation = layer["annotations"]["org.opencontainers.image.enc.keys.jwe"]
                .as_str()
                .unwrap();
            let blob = b64.decode(annotation).unwrap();
            let json = layercrypt::keywrap::jwe::unwrap(&blob, std::slice::from_ref(&key)).unwrap();
            PrivateOptions::from_json(&json).unwrap()
        })
        .collect()
}

#[test]
fn no_output_ever_contains_a_key_a_passphrase_or_a_layer_key() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = fixture_copy("plain", tmp.path());
    let enc = tmp.path().join("enc");
    let pass_file = tmp.path().join("pass");
    fs::write(&pass_file, format!("{PASSWORD}\n")).unwrap();
    let wrong_file = tmp.path().join("wrong");
    fs::write(&wrong_file, WRONG_PASSWORD).unwrap();
    let s = |x: &str| x.to_string();
    let mut outputs = Vec::new();

    // Encrypt, verbose and as JSON.
    for flag in ["-v", "--json"] {
        let _ = fs::remove_dir_all(&enc);
        outputs.push(run(
            &[
                s("encrypt"),
                s(flag),
                s("-r"),
                format!("jwe:{}", key("rsa2048.pub.pem")),
                oci(&plain, "v1"),
                oci(&enc, "v1"),
            ],
            &[],
            true,
        ));
    }
    // Decrypt with the plain key and with the passphrase-protected ones, every way a
    // passphrase can come, verbose and as JSON.
    let enc_pkcs8 = key("rsa2048.enc-pkcs8.pem");
    let enc_legacy = key("rsa2048.enc-legacy.pem");
    let good_keys = [
        vec![s("-k"), key("rsa2048.pem")],
        vec![s("-k"), format!("{enc_pkcs8}:pass={PASSWORD}")],
        vec![s("-k"), format!("{enc_legacy}:env=LAYERCRYPT_TEST_PASS")],
        vec![s("-k"), format!("{enc_pkcs8}:file={}", pass_file.display())],
        vec![
            s("--passphrase-file"),
            pass_file.display().to_string(),
            s("-k"),
            enc_legacy.clone(),
        ],
    ];
    let env = [("LAYERCRYPT_TEST_PASS", PASSWORD)];
    for (i, keys) in good_keys.iter().enumerate() {
        for flag in ["-v", "--json"] {
            let out = tmp.path().join(format!("dec-{i}{flag}"));
            let mut args = vec![s("decrypt"), s(flag)];
            args.extend(keys.iter().cloned());
            args.extend([oci(&enc, "v1"), oci(&out, "v1")]);
            outputs.push(run(&args, &env, true));
        }
    }
    // Wrong passphrases and a wrong key: refused, and the errors name the key but not the
    // secret.
    let wrong_env = [("LAYERCRYPT_TEST_PASS", WRONG_PASSWORD)];
    let bad_keys = [
        vec![s("-k"), format!("{enc_pkcs8}:pass={WRONG_PASSWORD}")],
        vec![s("-k"), format!("{enc_legacy}:pass={WRONG_PASSWORD}")],
        vec![s("-k"), format!("{enc_pkcs8}:env=LAYERCRYPT_TEST_PASS")],
        vec![
            s("-k"),
            format!("{enc_pkcs8}:file={}", wrong_file.display()),
        ],
        vec![s("-k"), key("ec256.pem")],
        vec![s("-k"), key("rsa4096.pem")],
    ];
    for keys in &bad_keys {
        for flag in ["-v", "--json"] {
            let mut args = vec![s("decrypt"), s(flag)];
            args.extend(keys.iter().cloned());
            args.extend([oci(&enc, "v1"), oci(&tmp.path().join("never"), "v1")]);
            outputs.push(run(&args, &wrong_env, false));
        }
    }
    // Inspect, both ways, and a dry run.
    outputs.push(run(&[s("inspect"), oci(&enc, "v1")], &[], true));
    outputs.push(run(
        &[s("inspect"), s("--json"), oci(&enc, "v1")],
        &[],
        true,
    ));
    outputs.push(run(
        &[
            s("decrypt"),
            s("--dry-run"),
            s("-v"),
            s("-k"),
            key("rsa2048.pem"),
            oci(&enc, "v1"),
        ],
        &[],
        true,
    ));

    // What must never appear.
    let mut secrets: Vec<(String, String)> = Vec::new();
    for file in ["rsa2048.pem", "rsa4096.pem", "ec256.pem"] {
        for line in pem_body_lines(&key(file)) {
            secrets.push((format!("a line of {file}"), line));
        }
    }
    let der = fs::read(key("rsa2048.der")).unwrap();
    let der_b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    for chunk in der_b64.as_bytes().chunks(32) {
        secrets.push((
            "the DER of rsa2048".into(),
            String::from_utf8_lossy(chunk).into(),
        ));
    }
    secrets.push(("the passphrase".into(), PASSWORD.into()));
    secrets.push(("the wrong passphrase".into(), WRONG_PASSWORD.into()));
    let options = layer_options(&enc, &key("rsa2048.pem"));
    assert_eq!(options.len(), 3);
    for (i, o) in options.iter().enumerate() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let nonce = &o.cipher_options["nonce"];
        for (what, text) in [
            ("key (base64)", b64.encode(&o.symkey[..])),
            ("key (hex)", hex::encode(&o.symkey[..])),
            ("key (HEX)", hex::encode_upper(&o.symkey[..])),
            ("nonce (base64)", b64.encode(nonce)),
            ("nonce (hex)", hex::encode(nonce)),
        ] {
            secrets.push((format!("layer {i} {what}"), text));
        }
    }
    // The decimal rendering `Debug` would give a byte array.
    for o in &options {
        let decimal: Vec<String> = o.symkey[..6].iter().map(u8::to_string).collect();
        secrets.push(("a layer key as decimal bytes".into(), decimal.join(", ")));
    }

    assert!(outputs.len() > 25);
    for output in &outputs {
        for (what, secret) in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "{what} appears in the output:\n{output}"
            );
        }
    }
}
