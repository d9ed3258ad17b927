//! Unit tests of the JWE scheme: the shapes ocicrypt writes, every serialization and
//! algorithm it reads, skopeo samples, refusals that say why, hostile inputs, and removing
//! recipients through the `KeyWrapper` adapter. They must never need more than the fixtures
//! under `testdata/jwe/` and OpenSSL (no network, no gpg, no HSM).

use super::*;
use crate::keys::{B64URL_LENIENT, PrivateKey};
use crate::keywrap::{
    KeyWrapper, MatchTarget, Recipient, RecipientKind, RecipientMatcher, Removal, RemoveError,
};
use crate::testutil::XorShift;
use base64::Engine as _;
use josekit::jwe::alg::rsaes::RsaesJweAlgorithm;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use std::sync::OnceLock;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/jwe/");
const OPTIONS: &[u8] = br#"{"symkey":"8T7R6TX8DFnWPj169NLyiJJcTIrr6lIEj0YduP/mCk8=","digest":"sha256:b067c907109e78ffa09de76598215d5d34853c773b14f2cdecd49a920712a3bc","cipheroptions":{"nonce":"usHo9uP4LYPL4FNbkGQLGw=="}}"#;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fixture_key(name: &str) -> PrivateKey {
    PrivateKey::from_bytes(&fixture(name), None).unwrap()
}

/// Test keys, generated once per test run.
fn keys() -> &'static [PrivateKey; 5] {
    static KEYS: OnceLock<[PrivateKey; 5]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = |p: PKey<openssl::pkey::Private>| {
            PrivateKey::from_bytes(&p.private_key_to_pem_pkcs8().unwrap(), None).unwrap()
        };
        let ec = |nid| {
            let group = EcGroup::from_curve_name(nid).unwrap();
            pem(PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap())
        };
        [
            pem(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()),
            ec(Nid::X9_62_PRIME256V1),
            ec(Nid::SECP384R1),
            ec(Nid::SECP521R1),
            pem(PKey::from_rsa(Rsa::generate(3072).unwrap()).unwrap()),
        ]
    })
}

fn json(bytes: &[u8]) -> Map<String, Value> {
    serde_json::from_slice(bytes).unwrap()
}

fn protected_header(jwe: &Map<String, Value>) -> Map<String, Value> {
    let b64 = jwe["protected"].as_str().unwrap();
    serde_json::from_slice(&B64URL_LENIENT.decode(b64).unwrap()).unwrap()
}

/// The private options ocicrypt wraps: check the shape, not the values.
fn assert_private_options(plaintext: &[u8]) {
    let options = json(plaintext);
    assert!(options["symkey"].is_string(), "{options:?}");
    assert!(options["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(options["cipheroptions"]["nonce"].is_string());
}

fn reencode(jwe: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(jwe).unwrap()
}

#[test]
fn one_recipient_is_flattened_with_everything_in_the_protected_header() {
    for key in keys() {
        let public = key.public_key();
        let blob = wrap(std::slice::from_ref(&public), OPTIONS).unwrap();
        let jwe = json(&blob);
        let names: Vec<&str> = jwe.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["protected", "encrypted_key", "iv", "ciphertext", "tag"]
        );
        let header = protected_header(&jwe);
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"].as_str(), Some(public.thumbprint().as_str()));
        match key.kind() {
            KeyKind::Rsa { .. } => {
                assert_eq!(header["alg"], "RSA-OAEP");
                assert!(!header.contains_key("epk"));
            }
            KeyKind::Ec { curve } => {
                assert_eq!(header["alg"], "ECDH-ES+A256KW");
                assert_eq!(header["epk"]["crv"], curve.jwk_name());
            }
        }
        assert_eq!(*unwrap(&blob, std::slice::from_ref(key)).unwrap(), OPTIONS);
        let info = describe(&blob).unwrap();
        assert_eq!(info.serialization, JweSerialization::Flattened);
        assert!(key_matches(&info.recipients[0], &public));
    }
}

#[test]
fn three_mixed_recipients_are_general_and_each_key_opens_it() {
    let [rsa, p256, p384, ..] = keys();
    let recipients = [rsa.public_key(), p256.public_key(), p384.public_key()];
    let blob = wrap(&recipients, OPTIONS).unwrap();
    let jwe = json(&blob);
    let names: Vec<&str> = jwe.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["protected", "recipients", "iv", "ciphertext", "tag"]
    );
    assert_eq!(jwe["protected"], "eyJlbmMiOiJBMjU2R0NNIn0"); // {"enc":"A256GCM"}
    let entries = jwe["recipients"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let algs: Vec<&str> = entries
        .iter()
        .map(|e| e["header"]["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs, ["RSA-OAEP", "ECDH-ES+A256KW", "ECDH-ES+A256KW"]);
    for (entry, public) in entries.iter().zip(&recipients) {
        assert_eq!(
            entry["header"]["kid"].as_str(),
            Some(public.thumbprint().as_str())
        );
    }
    assert_eq!(entries[1]["header"]["epk"]["crv"], "P-256");
    assert_eq!(entries[2]["header"]["epk"]["crv"], "P-384");
    for key in [rsa, p256, p384] {
        assert_eq!(*unwrap(&blob, std::slice::from_ref(key)).unwrap(), OPTIONS);
    }
    let info = describe(&blob).unwrap();
    assert_eq!(info.serialization, JweSerialization::General);
    assert_eq!(info.enc, "A256GCM");
    assert_eq!(info.recipients[2].curve.as_deref(), Some("P-384"));
    assert!(key_matches(&info.recipients[1], &p256.public_key()));
    assert!(!key_matches(&info.recipients[1], &p384.public_key()));
}

/// ocicrypt-rs's bug: josekit's general-JSON decoder gives up at the
/// first recipient whose alg matches the key. Here three RSA-OAEP
/// recipients come before the one our key opens.
#[test]
fn last_recipient_of_same_alg_opens_a_general_jwe() {
    let [rsa, _, _, _, rsa3072] = keys();
    let others: Vec<PublicKey> = (0..3)
        .map(|_| {
            let pem = Rsa::generate(2048).unwrap().public_key_to_pem().unwrap();
            PublicKey::from_bytes(&pem).unwrap()
        })
        .chain([rsa.public_key()])
        .collect();
    let blob = wrap(&others, OPTIONS).unwrap();
    assert_eq!(*unwrap(&blob, std::slice::from_ref(rsa)).unwrap(), OPTIONS);
    // Keys in any order, including ones that fit no recipient.
    let mixed = [rsa3072.clone(), keys()[1].clone(), rsa.clone()];
    assert_eq!(*unwrap(&blob, &mixed).unwrap(), OPTIONS);
}

#[test]
fn jwk_alg_and_kid_are_honoured() {
    let [rsa, p256, _, p521, _] = keys();
    let rsa_jwk = jwk_of(rsa, r#","alg":"RSA-OAEP-256","kid":"rsa-1""#);
    let ec_jwk = jwk_of(p256, r#","alg":"ECDH-ES+A128KW","kid":"ec-1""#);
    let ec192 = jwk_of(p521, r#","alg":"ECDH-ES+A192KW""#);
    let blob = wrap(&[rsa_jwk.clone(), ec_jwk.clone(), ec192.clone()], OPTIONS).unwrap();
    let jwe = json(&blob);
    let headers: Vec<&Value> = jwe["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["header"])
        .collect();
    assert_eq!(headers[0]["alg"], "RSA-OAEP-256");
    assert_eq!(headers[0]["kid"], "rsa-1");
    assert_eq!(headers[1]["alg"], "ECDH-ES+A128KW");
    assert_eq!(headers[1]["kid"], "ec-1");
    assert_eq!(headers[2]["alg"], "ECDH-ES+A192KW");
    assert_eq!(headers[2]["kid"].as_str(), Some(p521.thumbprint().as_str()));
    for key in [rsa, p256, p521] {
        assert_eq!(*unwrap(&blob, std::slice::from_ref(key)).unwrap(), OPTIONS);
    }
    let info = describe(&blob).unwrap();
    assert!(key_matches(&info.recipients[0], &rsa_jwk));
    assert!(!key_matches(&info.recipients[0], &rsa.public_key()));

    let single = wrap(std::slice::from_ref(&ec_jwk), OPTIONS).unwrap();
    let header = protected_header(&json(&single));
    assert_eq!(header["alg"], "ECDH-ES+A128KW");
    assert_eq!(header["kid"], "ec-1");
}

fn jwk_of(key: &PrivateKey, extra: &str) -> PublicKey {
    let public = key.public_key();
    let b64 = |b: Vec<u8>| B64URL_LENIENT.encode(b);
    let text = match key.kind() {
        KeyKind::Rsa { .. } => {
            let rsa = public.pkey().rsa().unwrap();
            format!(
                r#"{{"kty":"RSA","n":"{}","e":"{}"{extra}}}"#,
                b64(rsa.n().to_vec()),
                b64(rsa.e().to_vec())
            )
        }
        KeyKind::Ec { curve } => {
            let ec = public.pkey().ec_key().unwrap();
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                .unwrap();
            let n = curve.field_bytes() as i32;
            format!(
                r#"{{"kty":"EC","crv":"{}","x":"{}","y":"{}"{extra}}}"#,
                curve.jwk_name(),
                b64(x.to_vec_padded(n).unwrap()),
                b64(y.to_vec_padded(n).unwrap())
            )
        }
    };
    PublicKey::from_bytes(text.as_bytes()).unwrap()
}

#[test]
fn jwk_alg_that_ocicrypt_refuses_or_that_does_not_fit_the_key() {
    let [rsa, p256, ..] = keys();
    for alg in ["RSA1_5", "dir", "ECDH-ES", "A256KW", "RSA-OAEP-512"] {
        let key = jwk_of(rsa, &format!(r#","alg":"{alg}""#));
        match wrap(&[key], OPTIONS) {
            Err(JweError::UnsupportedAlgorithm { alg: got }) => assert_eq!(got, alg),
            other => panic!("{alg}: {other:?}"),
        }
    }
    let err = wrap(&[jwk_of(p256, r#","alg":"RSA-OAEP""#)], OPTIONS).unwrap_err();
    assert!(matches!(err, JweError::KeyUnusable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the JWK asks for RSA-OAEP but the key is EC P-256"),
        "{err}"
    );
    assert!(matches!(wrap(&[], OPTIONS), Err(JweError::NoRecipients)));
}

#[test]
fn rsa_keys_below_2048_bits_are_refused_for_jwe_with_a_reason() {
    let pem = Rsa::generate(1024).unwrap().public_key_to_pem().unwrap();
    let key = PublicKey::from_bytes(&pem).unwrap();
    let err = wrap(&[key], OPTIONS).unwrap_err().to_string();
    assert!(
        err.contains("RSA keys shorter than 2048 bits are not supported for JWE"),
        "{err}"
    );
}

#[test]
fn skopeo_samples_unwrap() {
    let cases: &[(&str, &[&str])] = &[
        (
            "skopeo193-small-jwe.jwe.json",
            &["skopeo193-small-jwe.key.pem"],
        ),
        (
            "skopeo193-small-multi.jwe.json",
            &[
                "skopeo193-small-multi-rsa2048.key.pem",
                "skopeo193-small-multi-ec256.key.pem",
                "skopeo193-small-multi-ec384.key.pem",
            ],
        ),
        ("skopeo193-rsa2048.jwe.json", &["skopeo193-rsa2048.key.pem"]),
        ("skopeo193-rsa4096.jwe.json", &["skopeo193-rsa4096.key.pem"]),
        ("skopeo193-ec256.jwe.json", &["skopeo193-ec256.key.pem"]),
        ("skopeo193-ec384.jwe.json", &["skopeo193-ec384.key.pem"]),
        ("skopeo193-ec521.jwe.json", &["skopeo193-ec521.key.pem"]),
        (
            "skopeo193-jwk-rsa-kid.jwe.json",
            &["skopeo193-jwk-rsa-kid.key.jwk", "skopeo193-rsa2048.key.pem"],
        ),
        (
            "skopeo193-multi.jwe.json",
            &[
                "skopeo193-rsa2048.key.pem",
                "skopeo193-ec256.key.pem",
                "skopeo193-ec384.key.pem",
                "skopeo193-ec521.key.pem",
                "skopeo193-rsa4096.key.pem",
                "skopeo193-jwk-rsa-kid.key.jwk",
            ],
        ),
    ];
    for (jwe, key_files) in cases {
        let blob = fixture(jwe);
        let mut first: Option<Zeroizing<Vec<u8>>> = None;
        for key_file in *key_files {
            let key = fixture_key(key_file);
            let plaintext =
                unwrap(&blob, &[key]).unwrap_or_else(|e| panic!("{jwe} with {key_file}: {e}"));
            assert_private_options(&plaintext);
            if let Some(first) = &first {
                assert_eq!(first, &plaintext, "{jwe}");
            }
            first = Some(plaintext);
        }
    }
}

/// samples/manifest-jwe-rsa.json, layer 0: the exact private options bytes Go wrapped.
#[test]
fn skopeo_manifest_sample_gives_the_exact_private_options() {
    let plaintext = unwrap(
        &fixture("skopeo193-manifest-jwe-rsa-layer0.jwe.json"),
        &[fixture_key("skopeo193-small-jwe.key.pem")],
    )
    .unwrap();
    assert_eq!(
        *plaintext,
        fixture("skopeo193-manifest-jwe-rsa-layer0.privopts.json")
    );
}

#[test]
fn skopeo_samples_describe() {
    let info = describe(&fixture("skopeo193-small-multi.jwe.json")).unwrap();
    assert_eq!(info.serialization, JweSerialization::General);
    assert_eq!(info.enc, "A256GCM");
    let summary: Vec<(&str, Option<&str>)> = info
        .recipients
        .iter()
        .map(|r| (r.alg.as_str(), r.curve.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("RSA-OAEP", None),
            ("ECDH-ES+A256KW", Some("P-256")),
            ("ECDH-ES+A256KW", Some("P-384"))
        ]
    );
    assert!(info.recipients.iter().all(|r| r.kid.is_none()));
    let ec384 = fixture_key("skopeo193-small-multi-ec384.key.pem").public_key();
    // Go writes no kid: nothing matches by kid, but type and curve tell who may fit.
    assert!(!key_matches(&info.recipients[2], &ec384));
    assert!(key_may_fit(&info.recipients[2], &ec384));
    assert!(!key_may_fit(&info.recipients[1], &ec384));

    let info = describe(&fixture("skopeo193-jwk-rsa-kid.jwe.json")).unwrap();
    assert_eq!(info.serialization, JweSerialization::Flattened);
    assert_eq!(info.recipients[0].kid.as_deref(), Some("my-rsa-kid"));
    let jwk = PublicKey::from_bytes(&fixture("skopeo193-jwk-rsa-kid.pub.jwk")).unwrap();
    assert!(key_matches(&info.recipients[0], &jwk));
}

#[test]
fn rsa_ciphertexts_of_another_length_are_not_tried() {
    let [rsa2048, .., rsa3072] = keys();
    let blob = wrap(&[rsa2048.public_key()], OPTIONS).unwrap();
    match unwrap(&blob, std::slice::from_ref(rsa3072)) {
        Err(JweError::NoMatchingKey {
            recipients: 1,
            keys: 1,
            attempts: 0,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(unwrap(&blob, std::slice::from_ref(rsa2048)).is_ok());
}

#[test]
fn wrong_keys_give_no_matching_key() {
    let blob = fixture("skopeo193-small-multi.jwe.json");
    let [rsa, p256, _, p521, _] = keys();
    match unwrap(&blob, &[rsa.clone(), p256.clone(), p521.clone()]) {
        Err(JweError::NoMatchingKey {
            recipients: 3,
            keys: 3,
            attempts: 2,
        }) => {}
        other => panic!("{other:?}"),
    }
    let err = unwrap(
        &fixture("skopeo193-small-jwe.jwe.json"),
        std::slice::from_ref(rsa),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "none of the 1 private key(s) could open this JWE (1 recipient(s), 1 key/recipient pair(s) of matching type tried)"
    );
    assert!(matches!(
        unwrap(&blob, &[]),
        Err(JweError::NoMatchingKey { keys: 0, .. })
    ));
}

#[test]
fn compact_serialization_unwraps() {
    let key = &keys()[1];
    let jwe = json(&wrap(&[key.public_key()], OPTIONS).unwrap());
    let part = |name: &str| jwe[name].as_str().unwrap().to_string();
    let compact = [
        part("protected"),
        part("encrypted_key"),
        part("iv"),
        part("ciphertext"),
        part("tag"),
    ]
    .join(".");
    assert_eq!(
        *unwrap(compact.as_bytes(), std::slice::from_ref(key)).unwrap(),
        OPTIONS
    );
    assert_eq!(
        describe(compact.as_bytes()).unwrap().serialization,
        JweSerialization::Compact
    );
    // With surrounding whitespace, as a file might have.
    let padded = format!("\n{compact}\n");
    assert!(unwrap(padded.as_bytes(), std::slice::from_ref(key)).is_ok());
}

#[test]
fn cbc_hmac_content_encryption_is_accepted() {
    let key = &keys()[0];
    let spki = key.public_key().pkey().public_key_to_der().unwrap();
    for enc in [
        "A128CBC-HS256",
        "A192CBC-HS384",
        "A256CBC-HS512",
        "A128GCM",
        "A192GCM",
    ] {
        let encrypter = RsaesJweAlgorithm::RsaOaep256
            .encrypter_from_der(&spki)
            .unwrap();
        let mut shared = JweHeaderSet::new();
        shared.set_content_encryption(enc, true);
        let blob = JweContext::new()
            .serialize_general_json(OPTIONS, Some(&shared), &[(None, &encrypter)], None)
            .unwrap();
        assert_eq!(
            *unwrap(blob.as_bytes(), std::slice::from_ref(key)).unwrap(),
            OPTIONS,
            "{enc}"
        );
    }
}

/// A flattened JWE whose protected header we can rewrite.
fn with_protected(header: &str) -> Vec<u8> {
    let mut jwe = json(&wrap(&[keys()[0].public_key()], OPTIONS).unwrap());
    jwe.insert(
        "protected".into(),
        Value::String(B64URL_LENIENT.encode(header)),
    );
    reencode(&jwe)
}

#[test]
fn refused_algorithms_say_which() {
    let key = std::slice::from_ref(&keys()[0]);
    for alg in [
        "dir",
        "RSA1_5",
        "ECDH-ES",
        "A128KW",
        "PBES2-HS256+A128KW",
        "none",
    ] {
        let blob = with_protected(&format!(r#"{{"alg":"{alg}","enc":"A256GCM"}}"#));
        match unwrap(&blob, key) {
            Err(JweError::UnsupportedAlgorithm { alg: got }) => assert_eq!(got, alg),
            other => panic!("{alg}: {other:?}"),
        }
        // describe still reports it, for inspect.
        assert_eq!(describe(&blob).unwrap().recipients[0].alg, alg);
    }
    let blob = with_protected(r#"{"alg":"RSA-OAEP","enc":"A128CBC"}"#);
    assert!(
        matches!(unwrap(&blob, key), Err(JweError::UnsupportedEncryption { enc }) if enc == "A128CBC")
    );
    let blob = with_protected(r#"{"alg":"RSA-OAEP","enc":"A256GCM","zip":"DEF"}"#);
    assert!(matches!(
        unwrap(&blob, key),
        Err(JweError::UnsupportedFeature(_))
    ));
    let blob = with_protected(r#"{"alg":"RSA-OAEP","enc":"A256GCM","crit":["exp"],"exp":1}"#);
    assert!(matches!(
        unwrap(&blob, key),
        Err(JweError::UnsupportedFeature(_))
    ));
    let err = JweError::UnsupportedAlgorithm { alg: "dir".into() }.to_string();
    assert!(
        err.starts_with("unsupported JWE key algorithm \"dir\" (supported: RSA-OAEP,"),
        "{err}"
    );
}

#[test]
fn malformed_jwes_say_what_is_malformed() {
    let key = &keys()[1];
    let good = wrap(&[key.public_key()], OPTIONS).unwrap();
    let jwe = json(&good);
    let malformed = |blob: &[u8], why: &str| match unwrap(blob, std::slice::from_ref(key)) {
        Err(JweError::Malformed(text)) => assert!(text.contains(why), "{why}: {text}"),
        other => panic!("{why}: {other:?}"),
    };
    malformed(&good[..good.len() - 10], "not valid JSON");
    malformed(b"", "empty");
    malformed(b"a.b.c", "5 parts");
    malformed(b"!!.a.b.c.d", "not valid base64url");
    for field in ["iv", "ciphertext", "tag", "encrypted_key", "protected"] {
        let mut bad = jwe.clone();
        bad.insert(field.into(), Value::String("*not base64*".into()));
        malformed(&reencode(&bad), "not valid base64url");
    }
    for field in ["iv", "ciphertext", "tag"] {
        let mut bad = jwe.clone();
        bad.remove(field);
        malformed(&reencode(&bad), "is missing");
    }
    let mut bad = jwe.clone();
    bad.insert("iv".into(), Value::String("AAAA".into()));
    malformed(&reencode(&bad), "the iv has 3 bytes");
    let mut bad = jwe.clone();
    bad.insert("tag".into(), Value::String("AAAA".into()));
    malformed(&reencode(&bad), "authentication tag has 3 bytes");
    // AES key wrap input shorter than one block made josekit underflow.
    let mut bad = jwe.clone();
    bad.insert("encrypted_key".into(), Value::String("AAAA".into()));
    malformed(&reencode(&bad), "encrypted_key has 3 bytes");
    let mut bad = jwe.clone();
    bad.insert("header".into(), serde_json::json!({"alg": "RSA-OAEP"}));
    malformed(&reencode(&bad), "appears in more than one header");
    let mut bad = jwe.clone();
    bad.insert("recipients".into(), serde_json::json!([]));
    malformed(&reencode(&bad), "\"recipients\" is empty");
    // Thousands of recipients are refused before any key is tried (and `describe`, which
    // parses the same way, refuses them too).
    let one = serde_json::json!({"encrypted_key": jwe["encrypted_key"]});
    let mut bad = jwe.clone();
    bad.remove("encrypted_key");
    bad.insert(
        "recipients".into(),
        Value::Array(vec![one; MAX_RECIPIENTS + 1]),
    );
    malformed(&reencode(&bad), "more than 1000 recipients");
    assert!(describe(&reencode(&bad)).is_err());
}

#[test]
fn bad_ephemeral_keys_are_refused() {
    let key = &keys()[1];
    let jwe = json(&wrap(&[key.public_key()], OPTIONS).unwrap());
    let header = protected_header(&jwe);
    let with_epk = |epk: Value| {
        let mut header = header.clone();
        header.insert("epk".into(), epk);
        let mut bad = jwe.clone();
        bad.insert(
            "protected".into(),
            Value::String(B64URL_LENIENT.encode(serde_json::to_vec(&header).unwrap())),
        );
        reencode(&bad)
    };
    let epk = header["epk"].clone();
    let mut off_curve = epk.clone();
    off_curve["y"] = Value::String(B64URL_LENIENT.encode([1u8; 32]));
    let mut wrong_curve = epk.clone();
    wrong_curve["crv"] = "P-384".into();
    let mut okp = epk.clone();
    okp["kty"] = "OKP".into();
    for (epk, why) in [
        (off_curve, "not a point on P-256"),
        (wrong_curve, "not a point on P-384"),
        (okp, "expected \"EC\""),
        (Value::String("x".into()), "needs an \"epk\" object"),
    ] {
        match unwrap(&with_epk(epk), std::slice::from_ref(key)) {
            Err(JweError::Malformed(text)) => assert!(text.contains(why), "{why}: {text}"),
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[test]
fn tampered_content_is_reported_as_such() {
    let key = &keys()[0];
    let mut jwe = json(&wrap(&[key.public_key()], OPTIONS).unwrap());
    let mut ciphertext = B64URL_LENIENT
        .decode(jwe["ciphertext"].as_str().unwrap())
        .unwrap();
    ciphertext[0] ^= 1;
    jwe.insert(
        "ciphertext".into(),
        Value::String(B64URL_LENIENT.encode(&ciphertext)),
    );
    let err = unwrap(&reencode(&jwe), std::slice::from_ref(key)).unwrap_err();
    assert!(matches!(err, JweError::ContentAuthentication(_)), "{err}");
}

#[test]
fn garbage_and_mutations_never_panic() {
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let all = keys();
    let seeds = [
        wrap(&[all[1].public_key()], OPTIONS).unwrap(),
        wrap(&[all[0].public_key(), all[2].public_key()], OPTIONS).unwrap(),
        fixture("skopeo193-small-multi.jwe.json"),
    ];
    for round in 0..600 {
        let mut data = seeds[round % seeds.len()].clone();
        rng.mutate(&mut data, 4, Some(b"{}[]\",:.AZaz09_-=\x00\xff"));
        if rng.below(4) == 0 {
            data.truncate(rng.below(data.len()));
        }
        let _ = describe(&data);
        let _ = unwrap(&data, &all[..3]);
    }
    for len in 0..40 {
        let data = rng.bytes(len);
        let _ = describe(&data);
        let _ = unwrap(&data, &all[..1]);
    }
}

// ---------------------------------------------------------------------------
// Removing recipients

/// The private options the removal tests wrap.
const REMOVE_OPTIONS: &[u8] = br#"{"cipher":"AES_256_CTR_HMAC_SHA256","symkey":"a2V5","digest":"sha256:00","cipheroptions":{"nonce":"bm9uY2U="}}"#;

fn key(pkey: PKey<openssl::pkey::Private>) -> PrivateKey {
    PrivateKey::from_bytes(&pkey.private_key_to_pem_pkcs8().unwrap(), None).unwrap()
}

fn rsa() -> PrivateKey {
    key(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
}

fn ec(nid: Nid) -> PrivateKey {
    let group = EcGroup::from_curve_name(nid).unwrap();
    key(PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap())
}

fn by_key(k: &PrivateKey) -> RecipientMatcher {
    RecipientMatcher {
        spec: "jwe:test".into(),
        target: MatchTarget::Recipients(vec![Recipient {
            spec: "jwe:test".into(),
            scheme: "jwe".into(),
            kind: RecipientKind::Jwe(k.public_key()),
        }]),
    }
}

fn opens(blob: &[u8], k: &PrivateKey) -> bool {
    unwrap(blob, std::slice::from_ref(k)).is_ok()
}

#[test]
fn removing_one_of_three_keeps_the_others_exactly() {
    let keys = [rsa(), ec(Nid::X9_62_PRIME256V1), ec(Nid::SECP384R1)];
    let publics: Vec<PublicKey> = keys.iter().map(PrivateKey::public_key).collect();
    let blob = wrap(&publics, REMOVE_OPTIONS).unwrap();
    for (i, gone) in keys.iter().enumerate() {
        let Removal::Edited {
            blob: edited,
            removed,
        } = JweWrapper.remove(&blob, &by_key(gone)).unwrap()
        else {
            panic!("recipient {i} not removed");
        };
        assert_eq!(removed, 1);
        assert!(!opens(&edited, gone), "removed key {i} still opens it");
        for (j, k) in keys.iter().enumerate().filter(|(j, _)| *j != i) {
            assert_eq!(
                *unwrap(&edited, std::slice::from_ref(k)).unwrap(),
                REMOVE_OPTIONS,
                "{j}"
            );
        }
        // Everything but the recipients array is untouched.
        let before: Map<String, Value> = serde_json::from_slice(&blob).unwrap();
        let after: Map<String, Value> = serde_json::from_slice(&edited).unwrap();
        for field in ["protected", "iv", "ciphertext", "tag"] {
            assert_eq!(before[field], after[field]);
        }
        let list = |m: &Map<String, Value>| m["recipients"].as_array().unwrap().clone();
        let mut expected = list(&before);
        expected.remove(i);
        assert_eq!(list(&after), expected);
    }
}

#[test]
fn by_kid_and_all_recipients() {
    let keys = [rsa(), ec(Nid::X9_62_PRIME256V1)];
    let publics: Vec<PublicKey> = keys.iter().map(PrivateKey::public_key).collect();
    let blob = wrap(&publics, REMOVE_OPTIONS).unwrap();
    let kid = RecipientMatcher {
        spec: "kid".into(),
        target: MatchTarget::KeyId(publics[1].thumbprint()),
    };
    let Removal::Edited { blob: edited, .. } = JweWrapper.remove(&blob, &kid).unwrap() else {
        panic!("not removed by kid");
    };
    assert!(opens(&edited, &keys[0]) && !opens(&edited, &keys[1]));
    // Its only recipient gone, the blob goes.
    assert_eq!(
        JweWrapper.remove(&edited, &by_key(&keys[0])).unwrap(),
        Removal::Emptied { removed: 1 }
    );
    let single = wrap(&publics[..1], REMOVE_OPTIONS).unwrap();
    assert_eq!(
        JweWrapper.remove(&single, &by_key(&keys[0])).unwrap(),
        Removal::Emptied { removed: 1 }
    );
    // A key that is not a recipient (with a kid on every entry) matches nothing.
    let other = rsa();
    assert_eq!(
        JweWrapper.remove(&blob, &by_key(&other)).unwrap(),
        Removal::Unchanged
    );
    let unknown_kid = RecipientMatcher {
        spec: "kid".into(),
        target: MatchTarget::KeyId("nobody".into()),
    };
    assert_eq!(
        JweWrapper.remove(&blob, &unknown_kid).unwrap(),
        Removal::Unchanged
    );
}

/// Go writes no kid: an entry whose key type fits cannot be attributed, and that is an
/// error, never a guess. An entry whose type cannot fit the key is not it.
#[test]
fn go_entries_without_kid_cannot_be_attributed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/jwe");
    let blob = std::fs::read(dir.join("skopeo193-multi.jwe.json")).unwrap();
    let rsa_key = PrivateKey::from_bytes(
        &std::fs::read(dir.join("skopeo193-rsa2048.key.pem")).unwrap(),
        None,
    )
    .unwrap();
    match JweWrapper.remove(&blob, &by_key(&rsa_key)) {
        Err(RemoveError::Unidentifiable(why)) => {
            assert!(why.contains("no key id"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let ec_only = std::fs::read(dir.join("skopeo193-ec256.jwe.json")).unwrap();
    assert_eq!(
        JweWrapper.remove(&ec_only, &by_key(&rsa_key)).unwrap(),
        Removal::Unchanged
    );
}
