//! PKCS#7 recipients end to end, and against Go: the skopeo 1.9-made sample, images skopeo
//! 1.9.3 encrypts now for certificates, images layercrypt encrypts that skopeo must decrypt
//! (one and two certificates, mixed with JWE), which envelope encodings skopeo reads, envelopes
//! the OpenSSL CLI makes, `inspect`, and the messages for certificates and keys that do not
//! fit. Tests that run skopeo or openssl fail (never skip) when they are missing:
//! `scripts/deps.sh --test` installs them.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use layercrypt::keys::{Certificate, PrivateKey};
use layercrypt::keywrap::pkcs7;
use layercrypt::keywrap::{NamedCertificate, NamedKey};
use serde_json::Value;

/// The manifest of `testdata/images/plain:v1`.
const PLAIN_V1: &str = "sha256:8eb108e66e7fd82fd27f3711f4bf0cee9d67129f8414fc10849cff355d68255b";
/// The manifest of the plain image behind `testdata/samples/small-multi`.
const SAMPLE_V1: &str = "sha256:6ff94ca744fc42c4cbbd31a030d668f875b29bfc6ca5c2a887503afb24cd8aea";
const ANNOTATION: &str = "org.opencontainers.image.enc.keys.pkcs7";

/// A fixture under `testdata/pkcs7/`, as a string for command lines.
fn p7(name: &str) -> String {
    testdata("pkcs7").join(name).display().to_string()
}

fn plain_v1() -> String {
    oci(&testdata("images/plain"), "v1")
}

/// `layercrypt encrypt` of plain:v1 for `recipients` into `dir/name`.
fn encrypt(dir: &Path, name: &str, recipients: &[String]) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = layercrypt();
    cmd.arg("encrypt");
    for r in recipients {
        cmd.args(["-r", r]);
    }
    cmd.arg(plain_v1()).arg(oci(&out, "v1")).assert().success();
    out
}

/// `layercrypt decrypt` with `args` (keys), expecting success; returns the result's manifest
/// digest and stderr.
fn layercrypt_decrypts(src: &Path, out: &Path, args: &[String]) -> (String, String) {
    let output = layercrypt()
        .args(["decrypt", "-v"])
        .args(args)
        .arg(oci(src, "v1"))
        .arg(oci(out, "v1"))
        .assert()
        .success()
        .get_output()
        .clone();
    let digest = Layout(out.to_path_buf()).entry("v1")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (digest, stderr_of(&output))
}

/// skopeo decrypts `src` with the given `--decryption-key` files; the result's manifest digest.
fn skopeo_decrypts(src: &Path, out: &Path, keys: &[String]) -> String {
    let mut args = vec!["copy".to_string()];
    for k in keys {
        args.extend(["--decryption-key".to_string(), k.clone()]);
    }
    args.extend([oci(src, "v1"), oci(out, "v1")]);
    skopeo_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    Layout(out.to_path_buf()).entry("v1")["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn k(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// What Go wrote

/// The skopeo 1.9 sample's PKCS#7 entry (constructed content, Go's GCM parameters) opens with
/// its key and certificate, the certificate given either way, and — beyond Go — with the key
/// alone, since GCM content proves the key right.
#[test]
fn skopeo_19_sample_decrypts_with_its_key_and_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = testdata("samples/small-multi");
    let keys = sample.join("keys");
    let key = keys.join("x509.key").display().to_string();
    let crt = keys.join("x509.crt").display().to_string();
    for (i, args) in [
        k(&["-k", &key, "-k", &crt]),
        k(&["-k", &key, "--dec-recipient", &format!("pkcs7:{crt}")]),
        k(&["-k", &key]),
    ]
    .iter()
    .enumerate()
    {
        let (digest, stderr) =
            layercrypt_decrypts(&sample.join("image"), &tmp.path().join(i.to_string()), args);
        assert_eq!(digest, SAMPLE_V1, "{args:?}");
        assert!(
            stderr.contains(&format!("opened with pkcs7 key {key}")),
            "{args:?}: {stderr}"
        );
    }
}

/// Images skopeo 1.9.3 encrypts now for one and for two certificates decrypt to the original.
#[test]
fn layercrypt_decrypts_what_skopeo_encrypts_for_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    skopeo_ok(&[
        "copy",
        "--encryption-key",
        &format!("pkcs7:{}", key("x509.crt")),
        &plain_v1(),
        &oci(&one, "v1"),
    ]);
    for (i, args) in [
        k(&["-k", &key("x509.key"), "-k", &key("x509.crt")]),
        k(&[
            "-k",
            &key("x509.key"),
            "--dec-recipient",
            &format!("pkcs7:{}", p7("x509.crt.der")),
        ]),
        k(&["-k", &key("x509.key")]),
    ]
    .iter()
    .enumerate()
    {
        let (digest, _) = layercrypt_decrypts(&one, &tmp.path().join(format!("one{i}")), args);
        assert_eq!(digest, PLAIN_V1, "{args:?}");
    }

    let two = tmp.path().join("two");
    skopeo_ok(&[
        "copy",
        "--encryption-key",
        &format!("pkcs7:{}", key("x509.crt")),
        "--encryption-key",
        &format!("pkcs7:{}", p7("second.crt")),
        &plain_v1(),
        &oci(&two, "v1"),
    ]);
    for (name, key_file, cert) in [
        ("a", key("x509.key"), key("x509.crt")),
        ("b", p7("second.key"), p7("second.crt")),
    ] {
        let (digest, _) = layercrypt_decrypts(
            &two,
            &tmp.path().join(format!("two-{name}")),
            &k(&["-k", &key_file, "-k", &cert]),
        );
        assert_eq!(digest, PLAIN_V1);
    }
}

// ---------------------------------------------------------------------------------------------
// What Go must read

/// skopeo 1.9.3 decrypts what layercrypt encrypts for certificates (PEM or DER), alone, two at
/// once, and next to a JWE recipient. Like Go ocicrypt, it needs the certificate besides the key.
#[test]
fn skopeo_decrypts_what_layercrypt_encrypts_for_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let one = encrypt(tmp.path(), "one", &[format!("pkcs7:{}", key("x509.crt"))]);
    let digest = skopeo_decrypts(
        &one,
        &tmp.path().join("one-dec"),
        &[key("x509.key"), key("x509.crt")],
    );
    assert_eq!(digest, PLAIN_V1);
    // Without the certificate skopeo cannot locate the entry.
    let out = skopeo(&[
        "copy",
        "--decryption-key",
        &key("x509.key"),
        &oci(&one, "v1"),
        &oci(&tmp.path().join("one-nocert"), "v1"),
    ]);
    assert!(
        !out.status.success(),
        "skopeo opened it without the certificate"
    );

    let two = encrypt(
        tmp.path(),
        "two",
        &[
            format!("pkcs7:{}", p7("x509.crt.der")),
            format!("pkcs7:{}", p7("second.crt")),
        ],
    );
    for (name, keys) in [
        ("a", [key("x509.key"), key("x509.crt")]),
        ("b", [p7("second.key"), p7("second.crt")]),
    ] {
        let digest = skopeo_decrypts(&two, &tmp.path().join(format!("two-{name}")), &keys);
        assert_eq!(digest, PLAIN_V1, "two recipients, key {name}");
    }

    let mixed = encrypt(
        tmp.path(),
        "mixed",
        &[
            format!("jwe:{}", key("rsa2048.pub.pem")),
            format!("pkcs7:{}", p7("second.crt")),
        ],
    );
    let layers = Layout(mixed.clone()).layers("v1");
    assert!(layers.iter().all(|l| {
        let a = l["annotations"].as_object().unwrap();
        a.contains_key(ANNOTATION) && a.contains_key("org.opencontainers.image.enc.keys.jwe")
    }));
    for (name, keys) in [
        ("jwe", vec![key("rsa2048.pem")]),
        ("pkcs7", vec![p7("second.key"), p7("second.crt")]),
    ] {
        let digest = skopeo_decrypts(&mixed, &tmp.path().join(format!("mixed-{name}")), &keys);
        assert_eq!(digest, PLAIN_V1, "mixed, {name}");
    }
}

// Minimal DER surgery, for envelope variants layercrypt does not write by default.

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    [vec![0x80 | bytes.len() as u8], bytes].concat()
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    [vec![tag], der_len(content.len()), content.to_vec()].concat()
}

/// The elements of DER `data` (definite lengths only: the envelopes here are DER).
fn elements(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tag, first) = (data[0], data[1]);
        let (start, len) = if first < 0x80 {
            (2, first as usize)
        } else {
            let n = (first & 0x7f) as usize;
            (
                2 + n,
                data[2..2 + n]
                    .iter()
                    .fold(0usize, |a, &b| (a << 8) | b as usize),
            )
        };
        out.push((tag, data[start..start + len].to_vec()));
        data = &data[start + len..];
    }
    out
}

fn join(elements: &[(u8, Vec<u8>)]) -> Vec<u8> {
    elements.iter().flat_map(|(t, c)| tlv(*t, c)).collect()
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    /// Content as constructed `[0]` around an OCTET STRING (what skopeo 1.9 writes).
    ConstructedContent,
    /// Go's inner GCM parameter SEQUENCE under a proper `0x30` instead of `0x10`.
    SequenceParameters,
    /// RFC 5084 GCM parameters: `30 { 04 nonce, 02 16 }`.
    Rfc5084Parameters,
}

/// Rewrite a Go-form envelope (as layercrypt writes it) into `variant`.
fn rewrite(blob: &[u8], variant: Variant) -> Vec<u8> {
    let ci = elements(&elements(blob)[0].1);
    let explicit = elements(&ci[1].1);
    let mut ed = elements(&explicit[0].1);
    let mut eci = elements(&ed[2].1);
    let mut alg = elements(&eci[1].1);
    match variant {
        Variant::ConstructedContent => {
            assert_eq!(eci[2].0, 0x80);
            eci[2] = (0xa0, tlv(0x04, &eci[2].1));
        }
        Variant::SequenceParameters => {
            assert_eq!(alg[1].0, 0x10);
            alg[1].0 = 0x30;
        }
        Variant::Rfc5084Parameters => {
            let inner = elements(&elements(&alg[1].1)[0].1);
            assert_eq!(inner[0].0, 0x84);
            alg[1] = (0x30, join(&[(0x04, inner[0].1.clone()), inner[1].clone()]));
        }
    }
    eci[1].1 = join(&alg);
    ed[2].1 = join(&eci);
    let explicit = join(&[(0x30, join(&ed))]);
    join(&[(0x30, join(&[ci[0].clone(), (0xa0, explicit)]))])
}

/// Apply `edit` to every PKCS#7 envelope of the layout's `v1` image.
fn edit_envelopes(layout: &Path, edit: impl Fn(&[u8]) -> Vec<u8>) {
    Layout(layout.to_path_buf()).edit_manifest("v1", |m| {
        for layer in m["layers"].as_array_mut().unwrap() {
            let value = layer["annotations"][ANNOTATION]
                .as_str()
                .unwrap()
                .to_string();
            let blob = STANDARD.decode(value).unwrap();
            layer["annotations"][ANNOTATION] = Value::from(STANDARD.encode(edit(&blob)));
        }
    });
}

/// Which encodings skopeo 1.9.3 (fullsailor/pkcs7) decrypts: the primitive content layercrypt
/// writes (above), the constructed content it writes itself, and Go's inner parameter
/// SEQUENCE under `0x30`; not the RFC 5084 parameters. layercrypt reads all of them.
#[test]
fn envelope_encodings_skopeo_19_reads_and_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let base = encrypt(tmp.path(), "base", &[format!("pkcs7:{}", key("x509.crt"))]);
    let keys = [key("x509.key"), key("x509.crt")];
    for (variant, skopeo_reads) in [
        (Variant::ConstructedContent, true),
        (Variant::SequenceParameters, true),
        (Variant::Rfc5084Parameters, false),
    ] {
        let dir = tmp.path().join(format!("{variant:?}"));
        copy_tree(&base, &dir);
        edit_envelopes(&dir, |blob| rewrite(blob, variant));
        let out = tmp.path().join(format!("{variant:?}-skopeo"));
        let mut args = vec!["copy".to_string()];
        for k in &keys {
            args.extend(["--decryption-key".to_string(), k.clone()]);
        }
        args.extend([oci(&dir, "v1"), oci(&out, "v1")]);
        let result = skopeo(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            result.status.success(),
            skopeo_reads,
            "{variant:?}: {}",
            stderr_of(&result)
        );
        if skopeo_reads {
            assert_eq!(Layout(out).entry("v1")["digest"], PLAIN_V1);
        }
        let (digest, _) = layercrypt_decrypts(
            &dir,
            &tmp.path().join(format!("{variant:?}-layercrypt")),
            &k(&["-k", &keys[0], "-k", &keys[1]]),
        );
        assert_eq!(digest, PLAIN_V1, "{variant:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// OpenSSL

/// `openssl cms -encrypt … -outform DER` of `input` for `cert`.
fn openssl_cms(dir: &Path, input: &Path, cert: &str, options: &[&str]) -> Vec<u8> {
    let out = dir.join("envelope.der");
    let status = Command::new("openssl")
        .args(["cms", "-encrypt", "-binary", "-outform", "DER", "-in"])
        .arg(input)
        .arg("-out")
        .arg(&out)
        .args(&options[..1])
        .args(["-recip", cert])
        .args(&options[1..])
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}); install it with scripts/deps.sh --test")
        });
    assert!(status.success(), "openssl cms {options:?} failed");
    fs::read(out).unwrap()
}

fn named_key(path: &str) -> NamedKey {
    NamedKey {
        source: path.to_string(),
        key: PrivateKey::from_bytes(&fs::read(path).unwrap(), None).unwrap(),
    }
}

fn named_cert(path: &str) -> NamedCertificate {
    NamedCertificate {
        source: path.to_string(),
        certificate: Certificate::from_bytes(&fs::read(path).unwrap()).unwrap(),
    }
}

/// Envelopes the OpenSSL CLI makes now (CBC and DES-EDE3 content, PKCS#1 v1.5 and OAEP with
/// SHA-1 and SHA-512) unwrap with the scheme.
#[test]
fn envelopes_made_by_openssl_cms_unwrap() {
    let tmp = tempfile::tempdir().unwrap();
    let input = testdata("pkcs7/options.json");
    let plaintext = fs::read(&input).unwrap();
    for options in [
        &["-aes128"][..],
        &["-aes256", "-keyopt", "rsa_padding_mode:oaep"],
        &[
            "-aes192",
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha512",
        ],
        &["-des3"],
    ] {
        let blob = openssl_cms(tmp.path(), &input, &key("x509.crt"), options);
        let opened = pkcs7::unwrap(
            &blob,
            &[named_key(&key("x509.key"))],
            &[named_cert(&key("x509.crt"))],
        )
        .unwrap_or_else(|e| panic!("{options:?}: {e:?}"));
        assert_eq!(&opened.options[..], &plaintext[..], "{options:?}");
    }
}

/// An image whose PKCS#7 entries hold CBC content (as OpenSSL writes them): the key opens it
/// with its certificate; without the certificate layercrypt refuses to guess and says what to
/// pass.
#[test]
fn cbc_envelopes_need_the_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = encrypt(tmp.path(), "cbc", &[format!("pkcs7:{}", key("x509.crt"))]);
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    edit_envelopes(&dir, |blob| {
        let opened = pkcs7::unwrap(
            blob,
            &[named_key(&key("x509.key"))],
            &[named_cert(&key("x509.crt"))],
        )
        .unwrap();
        let input = work.join("options.json");
        fs::write(&input, &opened.options[..]).unwrap();
        openssl_cms(&work, &input, &key("x509.crt"), &["-aes256"])
    });
    let (digest, _) = layercrypt_decrypts(
        &dir,
        &tmp.path().join("dec"),
        &k(&["-k", &key("x509.key"), "-k", &key("x509.crt")]),
    );
    assert_eq!(digest, PLAIN_V1);
    let before = snapshot(&dir);
    let out = layercrypt()
        .args(["decrypt", "-k", &key("x509.key")])
        .arg(&dir)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&format!("pkcs7 with {}: no certificate for this key was given, and AES-256-CBC content cannot tell a wrong key from the right one: pass the recipient's certificate (-k CERT or --dec-recipient pkcs7:CERT)", key("x509.key"))),
        "{stderr}"
    );
    assert_eq!(
        snapshot(&dir),
        before,
        "a failed decrypt changed the layout"
    );
}

// ---------------------------------------------------------------------------------------------
// inspect and messages

#[test]
fn inspect_shows_issuer_serial_and_subject() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypt(
        tmp.path(),
        "enc",
        &[
            format!("pkcs7:{}", key("x509.crt")),
            format!("pkcs7:{}", p7("second.crt")),
        ],
    );
    let inspect = |extra: &[String]| -> Vec<Value> {
        let out = layercrypt()
            .args(["inspect", "--json"])
            .args(extra)
            .arg(oci(&enc, "v1"))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let report: Value = serde_json::from_slice(&out).unwrap();
        let layer = &report["images"][0]["manifests"][0]["layers"][0];
        assert_eq!(layer["schemes"], serde_json::json!(["pkcs7"]));
        let mut recipients = layer["recipients"].as_array().unwrap().clone();
        recipients.sort_by_key(|r| r["serial"].as_str().unwrap().to_string());
        recipients
    };
    let first = serde_json::json!({
        "scheme": "pkcs7",
        "algorithm": "RSA",
        "issuer": "CN=layercrypt test recipient",
        "serial": "548593a2a9d4dec3496b9c901fbdca37285ad1e1",
    });
    let second = serde_json::json!({
        "scheme": "pkcs7",
        "algorithm": "RSA",
        "issuer": "CN=layercrypt second recipient,O=layercrypt tests",
        "serial": "67e085ae43c1089d0774c1157074f901ffd35856",
    });
    assert_eq!(inspect(&[]), [first.clone(), second.clone()]);
    let mut named = first.clone();
    named["subject"] = Value::from("CN=layercrypt test recipient");
    assert_eq!(
        inspect(&k(&[
            "--dec-recipient",
            &format!("pkcs7:{}", key("x509.crt"))
        ])),
        [named, second]
    );
}

#[test]
fn certificates_that_cannot_be_recipients_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (recipient, message, hint) in [
        (
            p7("ec.crt"),
            "PKCS#7 supports only RSA certificates of 1024 to 16384 bits; certificate CN=layercrypt EC certificate holds an EC key",
            None,
        ),
        (
            key("rsa2048.pub.pem"),
            "this file is a public key; expected an X.509 certificate (PEM or DER)",
            Some("a bare public key is a JWE recipient: use jwe:FILE"),
        ),
        (
            key("x509.key"),
            "this file is a private key; expected an X.509 certificate (PEM or DER)",
            Some("give the recipient's certificate, not a private key"),
        ),
        (p7("missing.crt"), "cannot read", None),
    ] {
        let out = tmp.path().join("out");
        let output = layercrypt()
            .args(["encrypt", "-r", &format!("pkcs7:{recipient}")])
            .arg(plain_v1())
            .arg(oci(&out, "v1"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let stderr = stderr_of(&output);
        assert!(
            stderr.starts_with(&format!("error: recipient `pkcs7:{recipient}`: ")),
            "{stderr}"
        );
        assert!(stderr.contains(message), "{stderr}");
        if let Some(hint) = hint {
            assert!(
                stderr
                    .lines()
                    .any(|l| l.starts_with("hint: ") && l.contains(hint)),
                "{stderr}"
            );
        }
        assert!(!out.exists(), "{recipient}: output written");
    }
}

#[test]
fn failed_decryption_names_each_key_and_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let enc = encrypt(tmp.path(), "enc", &[format!("pkcs7:{}", key("x509.crt"))]);
    let out = layercrypt()
        .args(["decrypt", "-k", &p7("second.key"), "-k", &p7("second.crt")])
        .args(["-k", &key("x509.crt")])
        .arg(oci(&enc, "v1"))
        .arg(oci(&tmp.path().join("never"), "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = stderr_of(&out);
    for expected in [
        format!(
            "pkcs7 with {}: its certificate CN=layercrypt second recipient,O=layercrypt tests serial 67e085ae43c1089d0774c1157074f901ffd35856 ({}) is not a recipient; it does not open the envelope's only entry: content does not authenticate",
            p7("second.key"),
            p7("second.crt")
        ),
        format!(
            "pkcs7 with {0}: no private key for certificate CN=layercrypt test recipient serial 548593a2a9d4dec3496b9c901fbdca37285ad1e1 ({0}) was given (it is a recipient)",
            key("x509.crt")
        ),
    ] {
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
    }
    // A certificate alone is no key at all.
    let out = layercrypt()
        .args(["decrypt", "-k", &key("x509.crt")])
        .arg(oci(&enc, "v1"))
        .arg(oci(&tmp.path().join("never2"), "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&out).contains("encrypted for pkcs7, and none of the given keys can be used"),
        "{}",
        stderr_of(&out)
    );
}
