//! Tests of the PKCS#7 scheme: Go's exact bytes, round trips, every lenient reading variant
//! (built here, or made by OpenSSL and skopeo and kept under `testdata/pkcs7/`), how keys and
//! certificates are matched and what each failed attempt says, and hostile envelopes.

use std::path::Path;

use openssl::encrypt::Encrypter;
use openssl::rsa::Padding;
use openssl::symm::Cipher as OsslCipher;

use super::envelope::{ContentCipher, Hash, oid, tlv};
use super::*;
use crate::keys::PrivateKey;
use crate::testutil::XorShift;

fn testdata(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(rel),
    )
    .unwrap_or_else(|e| panic!("testdata/{rel}: {e}"))
}

fn cert(rel: &str) -> Certificate {
    Certificate::from_bytes(&testdata(rel)).unwrap()
}

fn named_cert(rel: &str) -> NamedCertificate {
    NamedCertificate {
        source: rel.to_string(),
        certificate: cert(rel),
    }
}

fn named_key(rel: &str) -> NamedKey {
    NamedKey {
        source: rel.to_string(),
        key: PrivateKey::from_bytes(&testdata(rel), None).unwrap(),
    }
}

const CERT: &str = "keys/x509.crt";
const KEY: &str = "keys/x509.key";
const CERT2: &str = "pkcs7/second.crt";
const KEY2: &str = "pkcs7/second.key";

fn options() -> Vec<u8> {
    testdata("pkcs7/options.json")
}

fn opened(result: Result<Unwrapped, UnwrapFailure>) -> Unwrapped {
    match result {
        Ok(u) => u,
        Err(e) => panic!("not opened: {e:?}"),
    }
}

fn attempts(result: Result<Unwrapped, UnwrapFailure>) -> Vec<Attempt> {
    match result {
        Err(UnwrapFailure::NotOpened(a)) => a,
        Err(other) => panic!("expected attempts, got {other:?}"),
        Ok(u) => panic!("unexpectedly opened with {}", u.key),
    }
}

// ---------------------------------------------------------------------------------------------
// A test-only envelope builder, for the variants layercrypt never writes itself.

#[derive(Clone, Copy)]
enum Transport {
    Pkcs1,
    /// OAEP with this hash; `mgf` writes the MGF1 parameters (Go omits them).
    Oaep {
        hash: Hash,
        mgf: bool,
    },
}

#[derive(Clone, Copy)]
enum GcmForm {
    /// Go: identifier 0x10 around the inner SEQUENCE.
    Go,
    /// The inner SEQUENCE under a proper 0x30.
    Sequence,
    /// RFC 5084: `30 { 04 nonce, 02 16 }`.
    Rfc5084,
    /// RFC 5084 without the tag length: 12-byte tag.
    Rfc5084DefaultTag,
}

#[derive(Clone, Copy)]
enum ContentAlg {
    Gcm { key_len: usize, form: GcmForm },
    Cbc { key_len: usize },
    Des3,
    Des,
}

#[derive(Clone, Copy)]
enum Layout {
    Primitive,
    Constructed,
    /// Constructed, in OCTET STRING segments of this size, the last nested once more.
    Segments(usize),
}

fn digest_of(hash: Hash) -> openssl::hash::MessageDigest {
    use openssl::hash::MessageDigest as M;
    match hash {
        Hash::Sha1 => M::sha1(),
        Hash::Sha224 => M::sha224(),
        Hash::Sha256 => M::sha256(),
        Hash::Sha384 => M::sha384(),
        Hash::Sha512 => M::sha512(),
    }
}

fn hash_oid(hash: Hash) -> der::oid::ObjectIdentifier {
    match hash {
        Hash::Sha1 => oid::SHA1,
        Hash::Sha224 => oid::SHA224,
        Hash::Sha256 => oid::SHA256,
        Hash::Sha384 => oid::SHA384,
        Hash::Sha512 => oid::SHA512,
    }
}

fn oid_der(o: der::oid::ObjectIdentifier) -> Vec<u8> {
    der::Encode::to_der(&o).unwrap()
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    openssl::rand::rand_bytes(&mut v).unwrap();
    v
}

fn build(
    recipients: &[(&Certificate, Transport)],
    alg: ContentAlg,
    layout: Layout,
    plaintext: &[u8],
) -> Vec<u8> {
    let t = |tag: u8, parts: &[&[u8]]| tlv(tag, parts).unwrap();
    let (key, alg_der, ciphertext) = match alg {
        ContentAlg::Gcm { key_len, form } => {
            let key = random(key_len);
            let nonce = random(12);
            let cipher = match key_len {
                16 => OsslCipher::aes_128_gcm(),
                24 => OsslCipher::aes_192_gcm(),
                _ => OsslCipher::aes_256_gcm(),
            };
            let tag_len = if matches!(form, GcmForm::Rfc5084DefaultTag) {
                12
            } else {
                16
            };
            let mut tag = vec![0u8; tag_len];
            let mut ct =
                openssl::symm::encrypt_aead(cipher, &key, Some(&nonce), &[], plaintext, &mut tag)
                    .unwrap();
            ct.extend(&tag);
            let o = match key_len {
                16 => oid::AES128_GCM,
                24 => oid::AES192_GCM,
                _ => oid::AES256_GCM,
            };
            let go_inner = t(0x30, &[&t(0x84, &[&nonce]), &t(0x02, &[&[16]])]);
            let params = match form {
                GcmForm::Go => t(0x10, &[&go_inner]),
                GcmForm::Sequence => t(0x30, &[&go_inner]),
                GcmForm::Rfc5084 => t(0x30, &[&t(0x04, &[&nonce]), &t(0x02, &[&[16]])]),
                GcmForm::Rfc5084DefaultTag => t(0x30, &[&t(0x04, &[&nonce])]),
            };
            (key, t(0x30, &[&oid_der(o), &params]), ct)
        }
        ContentAlg::Cbc { key_len } => {
            let key = random(key_len);
            let iv = random(16);
            let (cipher, o) = match key_len {
                16 => (OsslCipher::aes_128_cbc(), oid::AES128_CBC),
                24 => (OsslCipher::aes_192_cbc(), oid::AES192_CBC),
                _ => (OsslCipher::aes_256_cbc(), oid::AES256_CBC),
            };
            let ct = openssl::symm::encrypt(cipher, &key, Some(&iv), plaintext).unwrap();
            (key, t(0x30, &[&oid_der(o), &t(0x04, &[&iv])]), ct)
        }
        ContentAlg::Des3 => {
            let key = random(24);
            let iv = random(8);
            let ct = openssl::symm::encrypt(OsslCipher::des_ede3_cbc(), &key, Some(&iv), plaintext)
                .unwrap();
            (
                key,
                t(0x30, &[&oid_der(oid::DES_EDE3_CBC), &t(0x04, &[&iv])]),
                ct,
            )
        }
        ContentAlg::Des => {
            // OpenSSL 3 cannot encrypt single DES without its legacy provider either; the
            // content only has to look plausible.
            let iv = random(8);
            (
                random(8),
                t(0x30, &[&oid_der(oid::DES_CBC), &t(0x04, &[&iv])]),
                random(16),
            )
        }
    };
    let mut infos = Vec::new();
    for (certificate, transport) in recipients {
        let der = certificate.to_der();
        let (issuer, serial) = envelope::issuer_and_serial(&der).unwrap();
        let public = certificate.x509().public_key().unwrap();
        let mut enc = Encrypter::new(&public).unwrap();
        let kea = match transport {
            Transport::Pkcs1 => {
                enc.set_rsa_padding(Padding::PKCS1).unwrap();
                t(0x30, &[&oid_der(oid::RSA_ENCRYPTION), &[0x05, 0x00]])
            }
            Transport::Oaep { hash, mgf } => {
                enc.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
                enc.set_rsa_oaep_md(digest_of(*hash)).unwrap();
                enc.set_rsa_mgf1_md(digest_of(*hash)).unwrap();
                let hash_alg = t(0x30, &[&oid_der(hash_oid(*hash))]);
                let mut fields = vec![t(0xa0, &[&hash_alg])];
                if *mgf {
                    fields.push(t(0xa1, &[&t(0x30, &[&oid_der(oid::MGF1), &hash_alg])]));
                }
                let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
                t(0x30, &[&oid_der(oid::RSAES_OAEP), &t(0x30, &fields)])
            }
        };
        let mut ek = vec![0u8; enc.encrypt_len(&key).unwrap()];
        let n = enc.encrypt(&key, &mut ek).unwrap();
        ek.truncate(n);
        let ias = t(0x30, &[issuer, &t(0x02, &[&serial])]);
        infos.push(t(0x30, &[&t(0x02, &[&[0]]), &ias, &kea, &t(0x04, &[&ek])]));
    }
    let content = match layout {
        Layout::Primitive => t(0x80, &[&ciphertext]),
        Layout::Constructed => t(0xa0, &[&t(0x04, &[&ciphertext])]),
        Layout::Segments(size) => {
            let mut segments: Vec<Vec<u8>> =
                ciphertext.chunks(size).map(|c| t(0x04, &[c])).collect();
            if let Some(last) = segments.pop() {
                segments.push(t(0x24, &[&last]));
            }
            let parts: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
            t(0xa0, &parts)
        }
    };
    let infos: Vec<&[u8]> = infos.iter().map(Vec::as_slice).collect();
    let eci = t(0x30, &[&oid_der(oid::DATA), &alg_der, &content]);
    let ed = t(0x30, &[&t(0x02, &[&[0]]), &t(0x31, &infos), &eci]);
    t(0x30, &[&oid_der(oid::ENVELOPED_DATA), &t(0xa0, &[&ed])])
}

// ---------------------------------------------------------------------------------------------
// Writing

#[test]
fn writes_gos_envelope_structure() {
    let blob = wrap(&[cert(CERT)], &options()).unwrap();
    // ContentInfo { envelopedData, [0] { SEQUENCE { INTEGER 0, SET { ... } ...
    assert_eq!(&blob[..2], &[0x30, 0x82]);
    assert_eq!(&blob[4..15], &oid_der(oid::ENVELOPED_DATA)[..]);
    let env = envelope::parse(&blob).unwrap();
    assert_eq!(env.recipients.len(), 1);
    let Entry::KeyTransport(t) = &env.recipients[0] else {
        panic!("not key transport")
    };
    assert_eq!(t.algorithm, KeyTransportAlgorithm::RsaPkcs1);
    assert_eq!(t.encrypted_key.len(), 256);
    // rsaEncryption with its parameters omitted (not NULL), as Go writes it.
    let rsa = tlv(0x30, &[&oid_der(oid::RSA_ENCRYPTION)]).unwrap();
    let at = blob
        .windows(rsa.len())
        .position(|w| w == rsa)
        .expect("no bare rsaEncryption");
    assert_eq!(&blob[at + rsa.len()..][..4], &[0x04, 0x82, 0x01, 0x00]);
    // The content: Go's AES-128-GCM parameters, primitive [0] with ciphertext‖tag.
    let ContentCipher::AesGcm {
        key_len,
        nonce,
        tag_len,
    } = &env.content.cipher
    else {
        panic!("not GCM")
    };
    assert_eq!((*key_len, nonce.len(), *tag_len), (16, 12, 16));
    let mut nonce12 = [0u8; 12];
    nonce12.copy_from_slice(nonce);
    let alg = envelope::go_gcm_algorithm(&nonce12).unwrap();
    assert!(blob.windows(alg.len()).any(|w| w == alg));
    assert_eq!(env.content.ciphertext.len(), options().len() + 16);
    let tail = [&[0x80, 0x81, 0xd1][..], &env.content.ciphertext].concat();
    assert!(
        blob.ends_with(&tail),
        "content is not primitive [0] at the end"
    );
}

#[test]
fn skopeo_19_constructed_form_is_written_on_request() {
    let blob = wrap_with(&[cert(CERT)], &options(), ContentEncoding::Constructed).unwrap();
    let env = envelope::parse(&blob).unwrap();
    let tail = [
        &[0xa0, 0x81, 0xd4, 0x04, 0x81, 0xd1][..],
        &env.content.ciphertext,
    ]
    .concat();
    assert!(blob.ends_with(&tail));
    let u = opened(unwrap(&blob, &[named_key(KEY)], &[named_cert(CERT)]));
    assert_eq!(&u.options[..], &options()[..]);
}

#[test]
fn round_trip_with_one_and_several_recipients() {
    let opts = options();
    for certs in [vec![CERT], vec![CERT, CERT2], vec![CERT2, CERT]] {
        let certificates: Vec<Certificate> = certs.iter().map(|c| cert(c)).collect();
        let blob = wrap(&certificates, &opts).unwrap();
        for (c, k) in [(CERT, KEY), (CERT2, KEY2)] {
            if !certs.contains(&c) {
                continue;
            }
            // Go's way (key + certificate) and without the certificate (GCM authenticates).
            for with_cert in [true, false] {
                let cs = if with_cert {
                    vec![named_cert(c)]
                } else {
                    vec![]
                };
                let u = opened(unwrap(&blob, &[named_key(k)], &cs));
                assert_eq!(&u.options[..], &opts[..]);
                assert_eq!((u.scheme.as_str(), u.key.as_str()), ("pkcs7", k));
            }
        }
        // SET OF is in DER order, whatever order the certificates came in.
        let env = envelope::parse(&blob).unwrap();
        assert_eq!(env.recipients.len(), certs.len());
    }
    let a = wrap(&[cert(CERT), cert(CERT2)], &opts).unwrap();
    let b = wrap(&[cert(CERT2), cert(CERT)], &opts).unwrap();
    let serials = |blob: &[u8]| -> Vec<String> {
        describe(blob, &[])
            .unwrap()
            .into_iter()
            .map(|r| r.serial.unwrap())
            .collect()
    };
    assert_eq!(serials(&a), serials(&b));
    assert_eq!(serials(&a).len(), 2);
}

#[test]
fn wrap_refuses_what_go_would_not_or_cannot_write() {
    assert!(matches!(wrap(&[], b"{}"), Err(Pkcs7Error::NoRecipients)));
    let err = wrap(&[cert("pkcs7/ec.crt")], b"{}")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("PKCS#7 supports only RSA certificates")
            && err.contains("CN=layercrypt EC certificate")
            && err.contains("an EC key"),
        "{err}"
    );
    let big = vec![b' '; MAX_OPTIONS + 1];
    assert!(matches!(
        wrap(&[cert(CERT)], &big),
        Err(Pkcs7Error::OptionsTooLarge(_))
    ));
    let many = vec![cert(CERT); MAX_RECIPIENT_INFOS + 1];
    assert!(matches!(
        wrap(&many, b"{}"),
        Err(Pkcs7Error::TooManyRecipients(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Reading leniently

#[test]
fn reads_every_gcm_parameter_form_and_key_size() {
    let c = cert(CERT);
    let opts = options();
    for form in [
        GcmForm::Go,
        GcmForm::Sequence,
        GcmForm::Rfc5084,
        GcmForm::Rfc5084DefaultTag,
    ] {
        for key_len in [16, 24, 32] {
            let blob = build(
                &[(&c, Transport::Pkcs1)],
                ContentAlg::Gcm { key_len, form },
                Layout::Primitive,
                &opts,
            );
            let u = opened(unwrap(&blob, &[named_key(KEY)], &[named_cert(CERT)]));
            assert_eq!(&u.options[..], &opts[..]);
        }
    }
}

#[test]
fn reads_primitive_constructed_and_segmented_content() {
    let c = cert(CERT);
    let opts = options();
    for layout in [
        Layout::Primitive,
        Layout::Constructed,
        Layout::Segments(1),
        Layout::Segments(50),
    ] {
        for alg in [
            ContentAlg::Gcm {
                key_len: 16,
                form: GcmForm::Go,
            },
            ContentAlg::Cbc { key_len: 16 },
        ] {
            let blob = build(&[(&c, Transport::Pkcs1)], alg, layout, &opts);
            let u = opened(unwrap(&blob, &[named_key(KEY)], &[named_cert(CERT)]));
            assert_eq!(&u.options[..], &opts[..]);
        }
    }
}

#[test]
fn reads_cbc_and_des_ede3_content() {
    let c = cert(CERT);
    let opts = options();
    for alg in [
        ContentAlg::Cbc { key_len: 16 },
        ContentAlg::Cbc { key_len: 24 },
        ContentAlg::Cbc { key_len: 32 },
        ContentAlg::Des3,
    ] {
        let blob = build(&[(&c, Transport::Pkcs1)], alg, Layout::Primitive, &opts);
        let u = opened(unwrap(&blob, &[named_key(KEY)], &[named_cert(CERT)]));
        assert_eq!(&u.options[..], &opts[..]);
    }
}

#[test]
fn single_des_is_refused_clearly_when_openssl_lacks_it() {
    let blob = build(
        &[(&cert(CERT), Transport::Pkcs1)],
        ContentAlg::Des,
        Layout::Primitive,
        &options(),
    );
    match unwrap(&blob, &[named_key(KEY)], &[named_cert(CERT)]) {
        // OpenSSL 3 without the legacy provider (Debian's default).
        Err(UnwrapFailure::NotOpened(a)) => {
            assert!(
                a[0].reason
                    .contains("DES-CBC is not available in this OpenSSL"),
                "{a:?}"
            )
        }
        // With the legacy provider the random content does not decrypt.
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_oaep_with_every_hash() {
    let c = cert(CERT);
    let opts = options();
    for hash in [
        Hash::Sha1,
        Hash::Sha224,
        Hash::Sha256,
        Hash::Sha384,
        Hash::Sha512,
    ] {
        for mgf in [true, false] {
            let blob = build(
                &[(&c, Transport::Oaep { hash, mgf })],
                ContentAlg::Gcm {
                    key_len: 16,
                    form: GcmForm::Go,
                },
                Layout::Primitive,
                &opts,
            );
            let u = opened(unwrap(&blob, &[named_key(KEY)], &[named_cert(CERT)]));
            assert_eq!(&u.options[..], &opts[..]);
            let info = &describe(&blob, &[]).unwrap()[0];
            assert_eq!(info.algorithm.as_deref(), Some("RSA-OAEP"));
            assert_eq!(info.hash.as_deref(), Some(hash.name()));
        }
    }
}

#[test]
fn reads_what_openssl_cms_writes() {
    let opts = options();
    for fixture in [
        "openssl-aes128-cbc.der",
        "openssl-aes256-cbc-oaep.der",
        "openssl-aes192-cbc-oaep-sha256.der",
        "openssl-des3-keyid.der",
        "openssl-aes128-cbc-stream.der",
    ] {
        let blob = testdata(&format!("pkcs7/{fixture}"));
        for c in [CERT, "pkcs7/x509.crt.der"] {
            let u = opened(unwrap(&blob, &[named_key(KEY)], &[named_cert(c)]));
            assert_eq!(&u.options[..], &opts[..], "{fixture}");
        }
        // CBC content and no certificate: refused, not guessed.
        let a = attempts(unwrap(&blob, &[named_key(KEY)], &[]));
        assert_eq!(a.len(), 1);
        assert!(
            a[0].reason
                .contains("cannot tell a wrong key from the right one")
                && a[0].reason.contains("--dec-recipient pkcs7:CERT"),
            "{fixture}: {a:?}"
        );
    }
    let keyid = describe(&testdata("pkcs7/openssl-des3-keyid.der"), &[cert(CERT)]).unwrap();
    assert_eq!(
        keyid[0].key_id.as_deref(),
        Some("703d7284d9fae9463998463fa0853a54956e9380")
    );
    assert_eq!(
        keyid[0].subject.as_deref(),
        Some("CN=layercrypt test recipient")
    );
    assert_eq!(keyid[0].issuer, None);
}

#[test]
fn reads_what_skopeo_19_wrote() {
    let blob = testdata("pkcs7/skopeo193-small-multi.der");
    let dir = "samples/small-multi/keys/";
    let u = opened(unwrap(
        &blob,
        &[named_key(&format!("{dir}x509.key"))],
        &[named_cert(&format!("{dir}x509.crt"))],
    ));
    let json: serde_json::Value = serde_json::from_slice(&u.options).unwrap();
    assert!(json["symkey"].is_string(), "{json}");
    let info = describe(&blob, &[cert(&format!("{dir}x509.crt"))]).unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].algorithm.as_deref(), Some("RSA"));
    assert_eq!(info[0].issuer.as_deref(), Some("CN=peer-pkcs7"));
    assert_eq!(
        info[0].serial.as_deref(),
        Some("7d9aea6b62b79b0d021a09008899f9dbe81741c2")
    );
    assert_eq!(info[0].subject.as_deref(), Some("CN=peer-pkcs7"));
    assert_eq!(
        info[0].to_string(),
        "pkcs7[RSA subject=CN=peer-pkcs7 serial=7d9aea6b62b79b0d021a09008899f9dbe81741c2]"
    );
}

#[test]
fn describe_names_issuer_serial_and_subject() {
    let blob = wrap(&[cert(CERT), cert(CERT2)], &options()).unwrap();
    let info = describe(&blob, &[]).unwrap();
    let mut issuers: Vec<String> = info.iter().map(|i| i.issuer.clone().unwrap()).collect();
    issuers.sort();
    assert_eq!(
        issuers,
        [
            "CN=layercrypt second recipient,O=layercrypt tests",
            "CN=layercrypt test recipient"
        ]
    );
    assert!(
        info.iter()
            .all(|i| i.subject.is_none() && i.scheme == "pkcs7")
    );
    let info = describe(&blob, &[cert(CERT2)]).unwrap();
    let named: Vec<_> = info.iter().filter(|i| i.subject.is_some()).collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].serial.as_deref(), Some(&*cert(CERT2).serial_hex()));
}

// ---------------------------------------------------------------------------------------------
// Matching keys and certificates, and what failures say

#[test]
fn every_key_and_certificate_tried_says_why_it_failed() {
    let blob = wrap(&[cert(CERT)], &options()).unwrap();
    // A key whose certificate is not a recipient, an EC key, and a recipient's certificate
    // without its key.
    let ec = named_key("keys/ec256.pem");
    let a = attempts(unwrap(
        &blob,
        &[named_key(KEY2), ec],
        &[named_cert(CERT2), named_cert(CERT)],
    ));
    assert_eq!(a.len(), 3, "{a:#?}");
    assert_eq!(a[0].key, KEY2);
    assert!(
        a[0].reason
            .contains("its certificate CN=layercrypt second recipient,O=layercrypt tests serial")
            && a[0].reason.contains("is not a recipient")
            && a[0]
                .reason
                .contains("does not open the envelope's only entry: content does not authenticate"),
        "{}",
        a[0].reason
    );
    assert_eq!(a[1].key, "keys/ec256.pem");
    assert!(a[1].reason.contains("RSA keys only"), "{}", a[1].reason);
    assert_eq!(a[2].key, CERT);
    assert!(
        a[2].reason.starts_with(
            "no private key for certificate CN=layercrypt test recipient serial 548593a2"
        ) && a[2].reason.contains("(it is a recipient)"),
        "{}",
        a[2].reason
    );
    // A certificate nobody's key belongs to, which is not a recipient either.
    let a = attempts(unwrap(
        &blob,
        &[named_key(KEY2)],
        &[named_cert("pkcs7/ec.crt")],
    ));
    assert_eq!(a.len(), 2);
    assert!(
        a[1].reason.contains("CN=layercrypt EC certificate")
            && a[1].reason.ends_with("is not a recipient")
    );
}

#[test]
fn tampered_content_does_not_authenticate() {
    let mut blob = wrap(&[cert(CERT)], &options()).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 1;
    let a = attempts(unwrap(&blob, &[named_key(KEY)], &[named_cert(CERT)]));
    assert!(
        a[0].reason.contains("content does not authenticate"),
        "{a:?}"
    );
}

#[test]
fn a_wrong_key_on_cbc_content_is_never_guessed() {
    // Even with the recipient's certificate, a key that is not its key is not paired with it.
    let blob = testdata("pkcs7/openssl-aes128-cbc.der");
    let a = attempts(unwrap(&blob, &[named_key(KEY2)], &[named_cert(CERT)]));
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(a[0].reason.contains("cannot tell a wrong key"), "{a:?}");
    assert!(
        a[1].reason.starts_with("no private key for certificate"),
        "{a:?}"
    );
}

#[test]
fn has_keys_needs_an_rsa_private_key() {
    let mut ring = KeyRing::default();
    assert!(!Pkcs7Wrapper.has_keys(&ring));
    ring.certificates.push(named_cert(CERT));
    ring.private_keys.push(named_key("keys/ec256.pem"));
    assert!(!Pkcs7Wrapper.has_keys(&ring));
    ring.private_keys.push(named_key(KEY));
    assert!(Pkcs7Wrapper.has_keys(&ring));
}

#[test]
fn recipients_must_be_rsa_certificates() {
    let spec = |file: &str| RecipientSpec {
        spec: format!("pkcs7:{file}"),
        value: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(file)
            .display()
            .to_string(),
    };
    let ok = Pkcs7Wrapper
        .recipients(&[spec(CERT), spec("pkcs7/x509.crt.der")])
        .unwrap();
    assert_eq!(ok.len(), 2);
    let err = Pkcs7Wrapper
        .recipients(&[spec("pkcs7/ec.crt")])
        .unwrap_err();
    assert!(
        err.error
            .to_string()
            .contains("PKCS#7 supports only RSA certificates"),
        "{}",
        err.error
    );
    let err = Pkcs7Wrapper
        .recipients(&[spec("keys/rsa2048.pub.pem")])
        .unwrap_err();
    assert!(
        matches!(
            &err.error,
            RecipientError::Key {
                source: crate::keys::KeyError::WrongKind { .. },
                ..
            }
        ),
        "{:?}",
        err.error
    );
    assert!(
        err.error.to_string().contains("public key"),
        "{}",
        err.error
    );
    assert!(matches!(
        Pkcs7Wrapper
            .recipients(&[spec("nonexistent.crt")])
            .unwrap_err()
            .error,
        RecipientError::Io { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Hostile envelopes

fn seeds() -> Vec<Vec<u8>> {
    vec![
        wrap(&[cert(CERT), cert(CERT2)], &options()).unwrap(),
        testdata("pkcs7/skopeo193-small-multi.der"),
        testdata("pkcs7/openssl-aes128-cbc-stream.der"),
        testdata("pkcs7/openssl-aes192-cbc-oaep-sha256.der"),
        build(
            &[(&cert(CERT), Transport::Pkcs1)],
            ContentAlg::Gcm {
                key_len: 32,
                form: GcmForm::Rfc5084,
            },
            Layout::Segments(7),
            &options(),
        ),
    ]
}

#[test]
fn every_truncation_is_an_error() {
    let keys = [named_key(KEY)];
    let certs = [named_cert(CERT)];
    for seed in seeds() {
        for len in 0..seed.len() {
            let cut = &seed[..len];
            assert!(describe(cut, &[]).is_err(), "prefix of {len} bytes parsed");
            assert!(
                matches!(unwrap(cut, &keys, &certs), Err(UnwrapFailure::Malformed(_))),
                "prefix of {len} bytes"
            );
        }
    }
}

#[test]
fn lying_lengths_are_errors() {
    let seed = wrap(&[cert(CERT)], &options()).unwrap();
    // Outer length too long by one; a huge four-byte length; a five-byte length field.
    let mut longer = seed.clone();
    longer[3] += 1;
    let mut huge = seed.clone();
    huge.splice(1..4, [0x84, 0xff, 0xff, 0xff, 0xff]);
    let mut five = seed.clone();
    five.splice(1..4, [0x85, 0, 0, 0, 0x02, 0x71]);
    // The encrypted key's length says one byte more than it has (the next element then
    // starts one byte late).
    let at = seed
        .windows(4)
        .position(|w| w == [0x04, 0x82, 0x01, 0x00])
        .unwrap();
    let mut key_longer = seed.clone();
    key_longer[at + 3] = 0x01;
    // Trailing garbage after the ContentInfo.
    let mut trailing = seed.clone();
    trailing.push(0);
    for (name, blob, why) in [
        ("longer", longer, "claims"),
        ("huge", huge, "claims 4294967295 bytes"),
        ("five", five, "not valid"),
        ("key_longer", key_longer, ""),
        ("trailing", trailing, "unexpected byte"),
    ] {
        let err = describe(&blob, &[]).unwrap_err().to_string();
        assert!(err.contains(why), "{name}: {err}");
    }
}

#[test]
fn oversized_inputs_are_refused_before_parsing() {
    let big = vec![0x30; MAX_ENVELOPE + 1];
    assert!(
        describe(&big, &[])
            .unwrap_err()
            .to_string()
            .contains("more than")
    );
    // More recipient infos than allowed.
    let info = tlv(0xa2, &[&[]]).unwrap();
    let infos: Vec<&[u8]> = vec![info.as_slice(); MAX_RECIPIENT_INFOS + 1];
    let set = tlv(0x31, &infos).unwrap();
    let ed = tlv(0x30, &[&[0x02, 0x01, 0x00], &set]).unwrap();
    let ci = tlv(
        0x30,
        &[&oid_der(oid::ENVELOPED_DATA), &tlv(0xa0, &[&ed]).unwrap()],
    )
    .unwrap();
    let err = describe(&ci, &[]).unwrap_err().to_string();
    assert!(err.contains("more than 1000 recipientInfos"), "{err}");
}

#[test]
fn other_recipient_kinds_are_listed_not_used() {
    // A KEKRecipientInfo next to nothing usable: described, and unwrap has no entry to try.
    let kek = tlv(0xa2, &[&[0x02, 0x01, 0x04]]).unwrap();
    let seed = wrap(&[cert(CERT)], &options()).unwrap();
    let env = envelope::parse(&seed).unwrap();
    assert!(matches!(env.recipients[0], Entry::KeyTransport(_)));
    // The encryptedContentInfo of the seed: ContentInfo / [0] / EnvelopedData / third element.
    let ci = ber::Reader::new(&seed).read().unwrap();
    let mut r = ci.children("ci").unwrap();
    r.read().unwrap();
    let explicit = r.read().unwrap();
    let ed = explicit.children("x").unwrap().read().unwrap();
    let mut r = ed.children("ed").unwrap();
    r.read().unwrap();
    r.read().unwrap();
    let eci = r.read().unwrap().raw;
    let ed = tlv(
        0x30,
        &[&[0x02, 0x01, 0x00], &tlv(0x31, &[&kek]).unwrap(), eci],
    )
    .unwrap();
    let ci = tlv(
        0x30,
        &[&oid_der(oid::ENVELOPED_DATA), &tlv(0xa0, &[&ed]).unwrap()],
    )
    .unwrap();
    let info = describe(&ci, &[]).unwrap();
    assert_eq!(
        info[0].algorithm.as_deref(),
        Some("KEKRecipientInfo (key-encryption key), not supported")
    );
    let a = attempts(unwrap(&ci, &[named_key(KEY)], &[]));
    assert!(
        a[0].reason.contains("no key-transport entry to try"),
        "{a:?}"
    );
}

#[test]
fn mutations_never_panic() {
    let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
    let keys = [named_key(KEY)];
    let certs = [named_cert(CERT)];
    let seeds = seeds();
    // Each byte of one seed set to values that matter to a DER reader.
    for (i, _) in seeds[0].iter().enumerate() {
        for v in [0x00, 0x10, 0x30, 0x7f, 0x80, 0x81, 0x84, 0xa0, 0xff] {
            let mut data = seeds[0].clone();
            data[i] = v;
            let _ = describe(&data, &[]);
        }
    }
    for round in 0..400 {
        let mut data = seeds[round % seeds.len()].clone();
        rng.mutate(&mut data, 4, None);
        let _ = describe(&data, &[cert(CERT)]);
        let _ = unwrap(&data, &keys, &certs);
    }
}

#[test]
fn sealed_content_key_is_not_in_debug_output() {
    let sealed = crypto::seal(b"{}").unwrap();
    let debug = format!("{sealed:?}");
    assert!(debug.contains("<redacted>"));
    assert!(!debug.contains(&hex::encode(&sealed.key[..])));
}

// ---------------------------------------------------------------------------------------------
// Removing recipients

fn cert_matcher(rel: &str) -> RecipientMatcher {
    RecipientMatcher {
        spec: format!("pkcs7:{rel}"),
        target: MatchTarget::Recipients(vec![Recipient {
            spec: format!("pkcs7:{rel}"),
            scheme: SCHEME.into(),
            kind: RecipientKind::Pkcs7(Pkcs7Recipient {
                certificate: cert(rel),
            }),
        }]),
    }
}

/// One of two RecipientInfos goes; the other recipient still opens the envelope, the removed
/// one does not, and the content (with Go's GCM parameters) is byte for byte what it was.
#[test]
fn removing_a_recipient_info_keeps_the_rest() {
    let blob = wrap(&[cert(CERT), cert(CERT2)], &options()).unwrap();
    let Removal::Edited {
        blob: edited,
        removed: 1,
    } = Pkcs7Wrapper.remove(&blob, &cert_matcher(CERT2)).unwrap()
    else {
        panic!("not removed");
    };
    let keys = [named_key(KEY), named_key(KEY2)];
    let certs = [named_cert(CERT), named_cert(CERT2)];
    assert_eq!(
        *opened(unwrap(&edited, &keys[..1], &certs[..1])).options,
        options()
    );
    attempts(unwrap(&edited, &keys[1..], &certs[1..]));
    let before = envelope::parse(&blob).unwrap();
    let after = envelope::parse(&edited).unwrap();
    assert_eq!(after.recipients.len(), 1);
    assert_eq!(before.content.ciphertext, after.content.ciphertext);
    assert_eq!(before.content.cipher, after.content.cipher);
    // The content element's bytes are untouched: the edited envelope ends with them.
    let tail = &blob[blob.len() - 40..];
    assert!(edited.ends_with(tail));
    // Its last recipient removed, the envelope goes; a stranger matches nothing.
    assert_eq!(
        Pkcs7Wrapper.remove(&edited, &cert_matcher(CERT)).unwrap(),
        Removal::Emptied { removed: 1 }
    );
    let single = wrap(&[cert(CERT)], &options()).unwrap();
    assert_eq!(
        Pkcs7Wrapper.remove(&single, &cert_matcher(CERT2)).unwrap(),
        Removal::Unchanged
    );
}

/// Envelopes written by others (BER with indefinite lengths, subject-key-id recipients) can
/// be edited too: the recipient named by its key identifier, found through the certificate.
#[test]
fn removing_from_other_writers_envelopes() {
    let keyid = testdata("pkcs7/openssl-des3-keyid.der");
    assert_eq!(
        Pkcs7Wrapper.remove(&keyid, &cert_matcher(CERT)).unwrap(),
        Removal::Emptied { removed: 1 }
    );
    let stream = testdata("pkcs7/openssl-aes128-cbc-stream.der");
    assert_eq!(
        Pkcs7Wrapper.remove(&stream, &cert_matcher(CERT)).unwrap(),
        Removal::Emptied { removed: 1 }
    );
    assert_eq!(
        Pkcs7Wrapper.remove(&stream, &cert_matcher(CERT2)).unwrap(),
        Removal::Unchanged
    );
}
