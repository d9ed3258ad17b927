//! Unit tests of key parsing: every accepted form of every key type, the
//! errors that name what a file is, and hostile inputs that must not panic.
//! They must never need more than the fixtures under `testdata/jwe/` and
//! OpenSSL (no network, no gpg, no HSM).

use super::der::pbkdf2_iterations;
use super::jwk::ec_coordinates;
use super::pem::first_pem_block;
use super::*;
use crate::asn1::tag;
use crate::testutil::XorShift;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::bn::BigNumContext;
use openssl::dsa::Dsa;
use openssl::ec::{EcGroup, EcKey};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/jwe/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rsa2048() -> &'static Rsa<Private> {
    static KEY: OnceLock<Rsa<Private>> = OnceLock::new();
    KEY.get_or_init(|| Rsa::generate(2048).unwrap())
}

fn ec(curve: EcCurve) -> EcKey<Private> {
    let group = EcGroup::from_curve_name(curve.nid()).unwrap();
    EcKey::generate(&group).unwrap()
}

fn b64(b: &[u8]) -> String {
    B64URL_LENIENT.encode(b)
}

fn rsa_jwk(rsa: &Rsa<Private>, private: bool, extra: &str) -> String {
    let mut s = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}""#,
        b64(&rsa.n().to_vec()),
        b64(&rsa.e().to_vec())
    );
    if private {
        s += &format!(
            r#","d":"{}","p":"{}","q":"{}","dp":"{}","dq":"{}","qi":"{}""#,
            b64(&rsa.d().to_vec()),
            b64(&rsa.p().unwrap().to_vec()),
            b64(&rsa.q().unwrap().to_vec()),
            b64(&rsa.dmp1().unwrap().to_vec()),
            b64(&rsa.dmq1().unwrap().to_vec()),
            b64(&rsa.iqmp().unwrap().to_vec()),
        );
    }
    s + extra + "}"
}

fn ec_jwk(key: &EcKey<Private>, curve: EcCurve, private: bool, extra: &str) -> String {
    let (x, y) = ec_coordinates(key, curve).unwrap();
    let mut s = format!(
        r#"{{"kty":"EC","crv":"{}","x":"{}","y":"{}""#,
        curve.jwk_name(),
        b64(&x),
        b64(&y)
    );
    if private {
        let d = key
            .private_key()
            .to_vec_padded(curve.field_bytes() as i32)
            .unwrap();
        s += &format!(r#","d":"{}""#, b64(&d));
    }
    s + extra + "}"
}

fn assert_wrong_kind<T: fmt::Debug>(result: Result<T, KeyError>, expected: FileKind) {
    match result {
        Err(KeyError::WrongKind { found, .. }) => assert_eq!(found, expected),
        other => panic!("expected WrongKind({expected:?}), got {other:?}"),
    }
}

#[test]
fn thumbprint_matches_rfc7638_section_3_1_example() {
    let jwk = r#"{"kty":"RSA",
      "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
      "e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
    let key = PublicKey::from_bytes(jwk.as_bytes()).unwrap();
    assert_eq!(
        key.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    assert_eq!(key.jwk_alg(), Some("RS256"));
    assert_eq!(key.jwk_kid(), Some("2011-04-29"));
    assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 });
}

#[test]
fn rsa_every_form_parses_to_the_same_key() {
    let rsa = rsa2048();
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    let private_forms: Vec<(&str, Vec<u8>)> = vec![
        ("PKCS#8 PEM", pkey.private_key_to_pem_pkcs8().unwrap()),
        ("PKCS#8 DER", pkey.private_key_to_pkcs8().unwrap()),
        ("PKCS#1 PEM", rsa.private_key_to_pem().unwrap()),
        ("PKCS#1 DER", rsa.private_key_to_der().unwrap()),
        ("JWK", rsa_jwk(rsa, true, "").into_bytes()),
    ];
    let public_forms: Vec<(&str, Vec<u8>)> = vec![
        ("SPKI PEM", pkey.public_key_to_pem().unwrap()),
        ("SPKI DER", pkey.public_key_to_der().unwrap()),
        ("PKCS#1 public PEM", rsa.public_key_to_pem_pkcs1().unwrap()),
        ("PKCS#1 public DER", rsa.public_key_to_der_pkcs1().unwrap()),
        ("JWK", rsa_jwk(rsa, false, "").into_bytes()),
    ];
    let expected = PrivateKey::from_bytes(&private_forms[0].1, None)
        .unwrap()
        .thumbprint();
    for (name, data) in &private_forms {
        let key = PrivateKey::from_bytes(data, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 }, "{name}");
        assert_eq!(key.thumbprint(), expected, "{name}");
        assert!(key.pkey().rsa().unwrap().check_key().unwrap(), "{name}");
    }
    for (name, data) in &public_forms {
        let key = PublicKey::from_bytes(data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(key.kind().to_string(), "RSA-2048", "{name}");
        assert_eq!(key.thumbprint(), expected, "{name}");
    }
}

#[test]
fn rsa_jwk_without_crt_members_is_completed() {
    let rsa = rsa2048();
    let jwk = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}","d":"{}","p":"{}","q":"{}"}}"#,
        b64(&rsa.n().to_vec()),
        b64(&rsa.e().to_vec()),
        b64(&rsa.d().to_vec()),
        b64(&rsa.p().unwrap().to_vec()),
        b64(&rsa.q().unwrap().to_vec()),
    );
    let key = PrivateKey::from_bytes(jwk.as_bytes(), None).unwrap();
    let got = key.pkey().rsa().unwrap();
    assert_eq!(got.dmp1().unwrap(), rsa.dmp1().unwrap());
    assert_eq!(got.dmq1().unwrap(), rsa.dmq1().unwrap());
    assert_eq!(got.iqmp().unwrap(), rsa.iqmp().unwrap());
}

#[test]
fn ec_every_form_on_every_curve() {
    for curve in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
        let key = ec(curve);
        let pkey = PKey::from_ec_key(key.clone()).unwrap();
        let private_forms: Vec<(&str, Vec<u8>)> = vec![
            ("PKCS#8 PEM", pkey.private_key_to_pem_pkcs8().unwrap()),
            ("PKCS#8 DER", pkey.private_key_to_pkcs8().unwrap()),
            ("SEC1 PEM", key.private_key_to_pem().unwrap()),
            ("SEC1 DER", key.private_key_to_der().unwrap()),
            ("JWK", ec_jwk(&key, curve, true, "").into_bytes()),
        ];
        let public_forms: Vec<(&str, Vec<u8>)> = vec![
            ("SPKI PEM", pkey.public_key_to_pem().unwrap()),
            ("SPKI DER", pkey.public_key_to_der().unwrap()),
            ("JWK", ec_jwk(&key, curve, false, "").into_bytes()),
        ];
        let expected = PublicKey::from_bytes(&public_forms[0].1)
            .unwrap()
            .thumbprint();
        for (name, data) in &private_forms {
            let parsed = PrivateKey::from_bytes(data, None)
                .unwrap_or_else(|e| panic!("{curve} {name}: {e}"));
            assert_eq!(parsed.kind(), KeyKind::Ec { curve }, "{curve} {name}");
            assert_eq!(parsed.thumbprint(), expected, "{curve} {name}");
        }
        for (name, data) in &public_forms {
            let parsed =
                PublicKey::from_bytes(data).unwrap_or_else(|e| panic!("{curve} {name}: {e}"));
            assert_eq!(parsed.kind().to_string(), format!("EC {curve}"));
            assert_eq!(parsed.thumbprint(), expected, "{curve} {name}");
        }
    }
}

#[test]
fn ec_thumbprint_uses_rfc7638_member_order() {
    let key = ec(EcCurve::P256);
    let (x, y) = ec_coordinates(&key, EcCurve::P256).unwrap();
    let json = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        b64(&x),
        b64(&y)
    );
    let expected = b64(&Sha256::digest(json.as_bytes()));
    let parsed = PublicKey::from_bytes(ec_jwk(&key, EcCurve::P256, false, "").as_bytes());
    assert_eq!(parsed.unwrap().thumbprint(), expected);
}

#[test]
fn jwk_alg_and_kid_survive_into_the_public_key() {
    let key = ec(EcCurve::P384);
    let jwk = ec_jwk(
        &key,
        EcCurve::P384,
        true,
        r#","alg":"ECDH-ES+A192KW","kid":"k1""#,
    );
    let private = PrivateKey::from_bytes(jwk.as_bytes(), None).unwrap();
    let public = private.public_key();
    assert_eq!(public.jwk_alg(), Some("ECDH-ES+A192KW"));
    assert_eq!(public.jwk_kid(), Some("k1"));
    let pem = PrivateKey::from_bytes(&key.private_key_to_pem().unwrap(), None).unwrap();
    assert_eq!(pem.public_key().jwk_kid(), None);
}

#[test]
fn openssl_cli_keys_parse() {
    let ec256 = PublicKey::from_bytes(&fixture("openssl-ec256.pub.pem")).unwrap();
    let rsa = PublicKey::from_bytes(&fixture("openssl-rsa2048.pub.pem")).unwrap();
    let cases = [
        ("openssl-ec256-pkcs8-encrypted.key.pem", &ec256),
        ("openssl-ec256-sec1-legacy-encrypted.key.pem", &ec256),
        ("openssl-rsa2048-legacy-encrypted.key.pem", &rsa),
    ];
    for (name, public) in cases {
        let data = fixture(name);
        assert_eq!(sniff(&data), FileKind::EncryptedPrivateKey, "{name}");
        let key = PrivateKey::from_bytes(&data, Some(b"secret")).unwrap();
        assert_eq!(key.thumbprint(), public.thumbprint(), "{name}");
        assert!(
            matches!(
                PrivateKey::from_bytes(&data, None),
                Err(KeyError::PasswordRequired)
            ),
            "{name}"
        );
        assert!(
            matches!(
                PrivateKey::from_bytes(&data, Some(b"wrong")),
                Err(KeyError::WrongPassword)
            ),
            "{name}"
        );
        assert!(
            matches!(
                PrivateKey::from_bytes(&data, Some(b"")),
                Err(KeyError::WrongPassword)
            ),
            "{name}"
        );
    }
    // `openssl ecparam -genkey` writes an EC PARAMETERS block first.
    let key = PrivateKey::from_bytes(&fixture("openssl-ecparam-genkey.key.pem"), None).unwrap();
    assert_eq!(
        key.kind(),
        KeyKind::Ec {
            curve: EcCurve::P256
        }
    );
}

/// Regression: DER whose last byte is a whitespace value (common for
/// encrypted PKCS#8, whose tail is ciphertext) was trimmed and misread.
#[test]
fn der_ending_in_whitespace_bytes_is_read_whole() {
    let pkey = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut found = 0;
    for _ in 0..5000 {
        let der = pkey
            .private_key_to_pkcs8_passphrase(Cipher::aes_128_cbc(), b"pw")
            .unwrap();
        if !der.last().unwrap().is_ascii_whitespace() {
            continue;
        }
        assert_eq!(sniff(&der), FileKind::EncryptedPrivateKey);
        PrivateKey::from_bytes(&der, Some(b"pw")).unwrap();
        found += 1;
        if found == 3 {
            return;
        }
    }
    panic!("no DER ending in a whitespace byte generated");
}

#[test]
fn encrypted_keys_right_wrong_and_missing_password() {
    let rsa = rsa2048();
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    let eckey = ec(EcCurve::P256);
    let pass = b"correct horse";
    let forms: Vec<(&str, Vec<u8>)> = vec![
        (
            "PKCS#8 PEM aes-256-cbc",
            pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), pass)
                .unwrap(),
        ),
        (
            "PKCS#8 DER aes-128-cbc",
            pkey.private_key_to_pkcs8_passphrase(Cipher::aes_128_cbc(), pass)
                .unwrap(),
        ),
        (
            "legacy RSA PEM aes-128-cbc",
            rsa.private_key_to_pem_passphrase(Cipher::aes_128_cbc(), pass)
                .unwrap(),
        ),
        (
            "legacy RSA PEM des-ede3-cbc",
            rsa.private_key_to_pem_passphrase(Cipher::des_ede3_cbc(), pass)
                .unwrap(),
        ),
        (
            "legacy EC PEM aes-192-cbc",
            eckey
                .private_key_to_pem_passphrase(Cipher::aes_192_cbc(), pass)
                .unwrap(),
        ),
    ];
    for (name, data) in &forms {
        assert_eq!(sniff(data), FileKind::EncryptedPrivateKey, "{name}");
        let key =
            PrivateKey::from_bytes(data, Some(pass)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(matches!(
            key.kind(),
            KeyKind::Rsa { .. } | KeyKind::Ec { .. }
        ));
        for wrong in [&b"wrong"[..], b"", b"correct horse "] {
            let err = PrivateKey::from_bytes(data, Some(wrong)).unwrap_err();
            assert!(matches!(err, KeyError::WrongPassword), "{name}: {err}");
        }
        let err = PrivateKey::from_bytes(data, None).unwrap_err();
        assert!(matches!(err, KeyError::PasswordRequired), "{name}: {err}");
        assert_eq!(
            err.to_string(),
            "this private key is encrypted; a password is required to use it"
        );
        // An encrypted private key is still a private key, not a public one.
        assert_wrong_kind(PublicKey::from_bytes(data), FileKind::EncryptedPrivateKey);
    }
}

#[test]
fn password_for_an_unencrypted_key_is_ignored() {
    let pem = rsa2048().private_key_to_pem().unwrap();
    assert!(PrivateKey::from_bytes(&pem, Some(b"unused")).is_ok());
}

#[test]
fn private_key_where_public_expected_is_wrong_kind() {
    let rsa = rsa2048();
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    assert_wrong_kind(
        PublicKey::from_bytes(&pkey.private_key_to_pem_pkcs8().unwrap()),
        FileKind::PrivateKey,
    );
    assert_wrong_kind(
        PublicKey::from_bytes(&pkey.private_key_to_pkcs8().unwrap()),
        FileKind::PrivateKey,
    );
    assert_wrong_kind(
        PublicKey::from_bytes(&rsa.private_key_to_der().unwrap()),
        FileKind::PrivateKey,
    );
    assert_wrong_kind(
        PublicKey::from_bytes(rsa_jwk(rsa, true, "").as_bytes()),
        FileKind::PrivateJwk,
    );
    let eckey = ec(EcCurve::P256);
    assert_wrong_kind(
        PublicKey::from_bytes(&eckey.private_key_to_der().unwrap()),
        FileKind::PrivateKey,
    );
    assert_wrong_kind(
        PublicKey::from_bytes(&eckey.private_key_to_pem().unwrap()),
        FileKind::PrivateKey,
    );
    let err = PublicKey::from_bytes(&fixture("skopeo193-small-jwe.key.pem")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("this file is a private key; expected a public key"),
        "{err}"
    );
}

#[test]
fn public_key_where_private_expected_is_wrong_kind() {
    let rsa = rsa2048();
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    assert_wrong_kind(
        PrivateKey::from_bytes(&pkey.public_key_to_pem().unwrap(), None),
        FileKind::PublicKey,
    );
    assert_wrong_kind(
        PrivateKey::from_bytes(&pkey.public_key_to_der().unwrap(), None),
        FileKind::PublicKey,
    );
    assert_wrong_kind(
        PrivateKey::from_bytes(&rsa.public_key_to_pem_pkcs1().unwrap(), None),
        FileKind::PublicKey,
    );
    assert_wrong_kind(
        PrivateKey::from_bytes(rsa_jwk(rsa, false, "").as_bytes(), None),
        FileKind::PublicJwk,
    );
}

#[test]
fn certificates_ssh_pgp_age_and_pkcs11_are_wrong_kind() {
    let cert = fixture("certificate.crt.pem");
    assert_wrong_kind(PublicKey::from_bytes(&cert), FileKind::Certificate);
    assert_wrong_kind(PrivateKey::from_bytes(&cert, None), FileKind::Certificate);
    let cert_der = openssl::x509::X509::from_pem(&cert)
        .unwrap()
        .to_der()
        .unwrap();
    assert_wrong_kind(PublicKey::from_bytes(&cert_der), FileKind::Certificate);
    assert_eq!(sniff(&cert_der), FileKind::Certificate);

    let ssh = fixture("openssh-ed25519.key");
    assert_wrong_kind(PublicKey::from_bytes(&ssh), FileKind::OpenSshPrivateKey);
    assert_wrong_kind(
        PrivateKey::from_bytes(&ssh, None),
        FileKind::OpenSshPrivateKey,
    );
    let err = PrivateKey::from_bytes(&ssh, None).unwrap_err().to_string();
    assert!(
        err.starts_with("this file is an OpenSSH private key; expected a private key"),
        "{err}"
    );
    assert_wrong_kind(
        PublicKey::from_bytes(&fixture("openssh-ed25519.pub")),
        FileKind::SshPublicKey,
    );

    let pgp = fixture("pgp-public.asc");
    assert_wrong_kind(PublicKey::from_bytes(&pgp), FileKind::PgpPublicKey);
    assert_eq!(sniff(&[0x99, 0x01, 0x0d, 0x04]), FileKind::PgpPublicKey);
    assert_eq!(sniff(&[0x95, 0x03, 0xc6, 0x04]), FileKind::PgpSecretKey);
    assert_eq!(sniff(&[0xc5, 0x03, 0xc6, 0x04]), FileKind::PgpSecretKey);
    assert_wrong_kind(
        PrivateKey::from_bytes(&[0x95, 0x03, 0xc6, 0x04], None),
        FileKind::PgpSecretKey,
    );

    let age = b"# created: 2024-01-01T00:00:00Z\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQQ\n";
    assert_wrong_kind(PrivateKey::from_bytes(age, None), FileKind::AgeKey);
    let yaml =
        b"pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=softhsm2\nmodule:\n  env: {}\n";
    assert_wrong_kind(PrivateKey::from_bytes(yaml, None), FileKind::Pkcs11Yaml);
    assert_wrong_kind(PublicKey::from_bytes(yaml), FileKind::Pkcs11Yaml);
}

#[test]
fn empty_and_garbage_are_wrong_kind() {
    for empty in [&b""[..], b"  \n\t", b"\xEF\xBB\xBF\n"] {
        assert_wrong_kind(PublicKey::from_bytes(empty), FileKind::Empty);
        assert_wrong_kind(PrivateKey::from_bytes(empty, None), FileKind::Empty);
    }
    assert_wrong_kind(PublicKey::from_bytes(b"hello world"), FileKind::Unknown);
    assert_wrong_kind(
        PrivateKey::from_bytes(b"\x00\x01\x02garbage", None),
        FileKind::Unknown,
    );
    let err = PublicKey::from_bytes(b"").unwrap_err().to_string();
    assert!(
        err.starts_with("this file is empty; expected a public key"),
        "{err}"
    );
}

#[test]
fn unsupported_algorithms_are_named() {
    let ed = PKey::generate_ed25519().unwrap();
    let x = PKey::generate_x25519().unwrap();
    let k1 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP256K1).unwrap()).unwrap();
    let dsa = PKey::from_dsa(Dsa::generate(1024).unwrap()).unwrap();
    let small = PKey::from_rsa(Rsa::generate(512).unwrap()).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (ed.private_key_to_pem_pkcs8().unwrap(), "Ed25519"),
        (x.private_key_to_pem_pkcs8().unwrap(), "X25519"),
        (k1.private_key_to_pem().unwrap(), "secp256k1"),
        (dsa.private_key_to_pem_pkcs8().unwrap(), "DSA"),
        (small.private_key_to_pem_pkcs8().unwrap(), "RSA-512"),
    ];
    for (pem, name) in &cases {
        match PrivateKey::from_bytes(pem, None) {
            Err(KeyError::UnsupportedAlgorithm(what)) => assert!(what.contains(name), "{what}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let public_cases: Vec<(Vec<u8>, &str)> = vec![
        (ed.public_key_to_pem().unwrap(), "Ed25519"),
        (
            PKey::from_ec_key(k1).unwrap().public_key_to_der().unwrap(),
            "secp256k1",
        ),
        (
            br#"{"kty":"OKP","crv":"X25519","x":"AAAA"}"#.to_vec(),
            "X25519",
        ),
        (br#"{"kty":"oct","k":"AAAA"}"#.to_vec(), "symmetric"),
        (
            br#"{"kty":"EC","crv":"P-256K","x":"AA","y":"AA"}"#.to_vec(),
            "P-256K",
        ),
    ];
    for (data, name) in &public_cases {
        match PublicKey::from_bytes(data) {
            Err(KeyError::UnsupportedAlgorithm(what)) => assert!(what.contains(name), "{what}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let err = PrivateKey::from_bytes(&cases[0].0, None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unsupported key: Ed25519 (layercrypt uses RSA and EC P-256/P-384/P-521 keys)"
    );
}

#[test]
fn go_style_any_pem_label_with_spki_is_a_public_key() {
    let der = PKey::from_rsa(rsa2048().clone())
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let pem = format!(
        "-----BEGIN RSA KEY-----\n{}\n-----END RSA KEY-----\n",
        STANDARD.encode(&der)
    );
    assert_eq!(sniff(pem.as_bytes()), FileKind::PublicKey);
    assert!(PublicKey::from_bytes(pem.as_bytes()).is_ok());
}

#[test]
fn malformed_inputs_say_why() {
    let pem = PKey::from_rsa(rsa2048().clone())
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    // Truncated in the middle of the body: no END line.
    let cut = &pem[..pem.len() / 2];
    assert!(matches!(
        PrivateKey::from_bytes(cut, None),
        Err(KeyError::Malformed(_))
    ));
    // Bad base64.
    let bad = b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
    let err = PublicKey::from_bytes(bad).unwrap_err().to_string();
    assert!(err.contains("not valid base64"), "{err}");
    // JWK problems.
    let cases: &[(&str, &str)] = &[
        (r#"{"kty":"RSA","n":"AQAB"}"#, "without \"e\""),
        (r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#, "too short"),
        (r#"{"kty":"RSA","n":"AQAB","e":"AAAA"}"#, "exponent"),
        (
            r#"{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}"#,
            "not on P-256",
        ),
        (r#"{"kty":"EC","x":"AQAB","y":"AQAB"}"#, "without \"crv\""),
        (r#"{"kty":"RSA","n":"@@@","e":"AQAB"}"#, "not base64url"),
        (r#"{"kty":"RSA","n":5,"e":"AQAB"}"#, "invalid type"),
        (r#"{"keys":[]}"#, "JWK set"),
        (r#"{"n":"AQAB"}"#, "without \"kty\""),
        (r#"{"kty":"RSA","#, "invalid JSON Web Key"),
    ];
    for (jwk, why) in cases {
        let err = PublicKey::from_bytes(jwk.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{jwk}: {err}");
    }
    // Huge numbers are refused before any arithmetic.
    let huge = format!(
        r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#,
        "A".repeat(1 << 20)
    );
    let err = PublicKey::from_bytes(huge.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("too large"), "{err}");
    let big = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, b64(&[0xff; 2100]));
    let err = PublicKey::from_bytes(big.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn private_jwk_with_mismatched_parts_is_refused() {
    let rsa = rsa2048();
    let other = Rsa::generate(2048).unwrap();
    let jwk = rsa_jwk(rsa, true, "").replace(
        &b64(&rsa.p().unwrap().to_vec()),
        &b64(&other.p().unwrap().to_vec()),
    );
    let err = PrivateKey::from_bytes(jwk.as_bytes(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("p·q is not the modulus"), "{err}");
    let jwk = rsa_jwk(rsa, true, "").replace(&b64(&rsa.d().to_vec()), &b64(&other.d().to_vec()));
    assert!(matches!(
        PrivateKey::from_bytes(jwk.as_bytes(), None),
        Err(KeyError::Malformed(_))
    ));

    let a = ec(EcCurve::P256);
    let b = ec(EcCurve::P256);
    let d_a = a.private_key().to_vec_padded(32).unwrap();
    let d_b = b.private_key().to_vec_padded(32).unwrap();
    let jwk = ec_jwk(&a, EcCurve::P256, true, "").replace(&b64(&d_a), &b64(&d_b));
    let err = PrivateKey::from_bytes(jwk.as_bytes(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("d does not match"), "{err}");
}

#[test]
fn truncated_der_and_pem_never_panic() {
    let rsa = rsa2048();
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    let eckey = ec(EcCurve::P521);
    let inputs = [
        pkey.private_key_to_pkcs8().unwrap(),
        pkey.public_key_to_der().unwrap(),
        rsa.private_key_to_der().unwrap(),
        eckey.private_key_to_der().unwrap(),
        pkey.private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), b"pw")
            .unwrap(),
        pkey.private_key_to_pem_pkcs8().unwrap(),
        rsa.private_key_to_pem_passphrase(Cipher::aes_256_cbc(), b"pw")
            .unwrap(),
    ];
    for input in &inputs {
        for len in 0..input.len() {
            let cut = &input[..len];
            let _ = sniff(cut);
            let _ = PublicKey::from_bytes(cut);
            let private = PrivateKey::from_bytes(cut, Some(b"pw"));
            // A shorter DER must never silently parse as a key.
            if input[0] == tag::SEQUENCE {
                assert!(private.is_err(), "prefix of length {len} parsed");
            }
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
    let seeds: Vec<Vec<u8>> = vec![
        PKey::from_rsa(rsa2048().clone())
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap(),
        fixture("openssl-ec256-sec1-legacy-encrypted.key.pem"),
        fixture("skopeo193-jwk-rsa-kid.key.jwk"),
        fixture("certificate.crt.pem"),
    ];
    for _ in 0..1500 {
        let mut data = rng.pick(&seeds).clone();
        rng.mutate(&mut data, 8, None);
        let _ = sniff(&data);
        let _ = PublicKey::from_bytes(&data);
        let _ = PrivateKey::from_bytes(&data, Some(b"secret"));
    }
    for len in 0..64 {
        let data = rng.bytes(len);
        let _ = sniff(&data);
        let _ = PublicKey::from_bytes(&data);
        let _ = PrivateKey::from_bytes(&data, None);
    }
}

#[test]
fn debug_output_of_private_key_is_redacted() {
    let rsa = rsa2048();
    let key = PrivateKey::from_bytes(&rsa.private_key_to_pem().unwrap(), None).unwrap();
    let debug = format!("{key:?}");
    assert!(
        debug.starts_with("PrivateKey { kind: RSA-2048, thumbprint: "),
        "{debug}"
    );
    let d_hex = rsa.d().to_hex_str().unwrap().to_string();
    assert!(!debug.contains(&d_hex[..16]));
    assert!(!debug.contains(&b64(&rsa.d().to_vec())[..16]));
}

#[test]
fn sniff_names_file_kinds() {
    let rsa = rsa2048();
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    assert_eq!(
        sniff(&pkey.private_key_to_pem_pkcs8().unwrap()),
        FileKind::PrivateKey
    );
    assert_eq!(
        sniff(&rsa.private_key_to_der().unwrap()),
        FileKind::PrivateKey
    );
    assert_eq!(
        sniff(&pkey.public_key_to_der().unwrap()),
        FileKind::PublicKey
    );
    assert_eq!(
        sniff(&rsa.public_key_to_der_pkcs1().unwrap()),
        FileKind::PublicKey
    );
    assert_eq!(
        sniff(&ec(EcCurve::P256).private_key_to_der().unwrap()),
        FileKind::PrivateKey
    );
    assert_eq!(
        sniff(rsa_jwk(rsa, true, "").as_bytes()),
        FileKind::PrivateJwk
    );
    assert_eq!(
        sniff(rsa_jwk(rsa, false, "").as_bytes()),
        FileKind::PublicJwk
    );
    assert_eq!(
        sniff(&fixture("certificate.crt.pem")),
        FileKind::Certificate
    );
    assert_eq!(
        sniff(&fixture("openssh-ed25519.key")),
        FileKind::OpenSshPrivateKey
    );
    assert_eq!(
        sniff(&fixture("openssh-ed25519.pub")),
        FileKind::SshPublicKey
    );
    assert_eq!(sniff(&fixture("pgp-public.asc")), FileKind::PgpPublicKey);
    assert_eq!(
        sniff(b"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"),
        FileKind::AgeKey
    );
    assert_eq!(sniff(b""), FileKind::Empty);
    assert_eq!(sniff(b"{}"), FileKind::Unknown);
    assert_eq!(FileKind::Certificate.to_string(), "an X.509 certificate");
    assert_eq!(
        KeyKind::Ec {
            curve: EcCurve::P521
        }
        .to_string(),
        "EC P-521"
    );
}

#[test]
fn absurd_pbkdf2_iteration_counts_are_refused_before_decrypting() {
    let pem = fixture("openssl-ec256-pkcs8-8388608-iterations.key.pem");
    let block = first_pem_block(std::str::from_utf8(&pem).unwrap()).unwrap();
    let mut der = block.decode().unwrap().body.to_vec();
    assert_eq!(pbkdf2_iterations(&der), Some(8_388_608));
    // INTEGER 0x00800000 -> 0x00ffffff (16,777,215 iterations).
    let at = der
        .windows(6)
        .position(|w| w == [0x02, 0x04, 0x00, 0x80, 0x00, 0x00])
        .unwrap();
    der[at + 3..at + 6].copy_from_slice(&[0xff, 0xff, 0xff]);
    let started = std::time::Instant::now();
    match PrivateKey::from_bytes(&der, Some(b"secret")) {
        Err(KeyError::UnsupportedAlgorithm(what)) => {
            assert!(what.contains("16777215 PBKDF2 iterations"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let pem = format!(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
        STANDARD.encode(&der)
    );
    assert!(matches!(
        PrivateKey::from_bytes(pem.as_bytes(), Some(b"x")),
        Err(KeyError::UnsupportedAlgorithm(_))
    ));
    // Without a password the count does not matter yet.
    assert!(matches!(
        PrivateKey::from_bytes(&der, None),
        Err(KeyError::PasswordRequired)
    ));
}

#[test]
fn ec_key_whose_public_point_is_not_its_own_is_refused() {
    let a = ec(EcCurve::P256);
    let b = ec(EcCurve::P256);
    let point = |k: &EcKey<Private>| {
        let mut ctx = BigNumContext::new().unwrap();
        k.public_key()
            .to_bytes(
                k.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .unwrap()
    };
    let mut der = a.private_key_to_der().unwrap();
    let (pa, pb) = (point(&a), point(&b));
    let at = der
        .windows(pa.len())
        .position(|w| w == pa.as_slice())
        .unwrap();
    der[at..at + pb.len()].copy_from_slice(&pb);
    let err = PrivateKey::from_bytes(&der, None).unwrap_err().to_string();
    assert!(err.contains("does not match its public point"), "{err}");
}

#[test]
fn text_starting_with_zero_is_not_taken_for_der() {
    assert_eq!(sniff(b"0123 hello"), FileKind::Unknown);
    assert_wrong_kind(PublicKey::from_bytes(b"0123 hello"), FileKind::Unknown);
    // Binary data starting with 0x30 is still reported as (broken) DER.
    let err = PublicKey::from_bytes(&[0x30, 0x82, 0x01, 0x22, 0xff])
        .unwrap_err()
        .to_string();
    assert!(err.contains("may be truncated"), "{err}");
}

#[test]
fn skopeo_sample_keys_parse() {
    for (name, kind) in [
        ("skopeo193-small-jwe.key.pem", "RSA-2048"),
        ("skopeo193-small-multi-ec256.key.pem", "EC P-256"),
        ("skopeo193-small-multi-ec384.key.pem", "EC P-384"),
        ("skopeo193-rsa4096.key.pem", "RSA-4096"),
        ("skopeo193-ec521.key.pem", "EC P-521"),
        ("skopeo193-jwk-rsa-kid.key.jwk", "RSA-2048"),
    ] {
        let key = PrivateKey::from_bytes(&fixture(name), None).unwrap();
        assert_eq!(key.kind().to_string(), kind, "{name}");
    }
}
