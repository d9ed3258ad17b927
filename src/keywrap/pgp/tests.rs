//! Unit tests of the OpenPGP scheme against GnuPG-made keys and a skopeo-made message
//! (`testdata/pgp/`, see its README), without running gpg.

use std::path::PathBuf;

use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::Cert;
use openpgp::cert::CertParser;
use openpgp::cert::prelude::*;
use openpgp::crypto::SessionKey;
use openpgp::packet::Key;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::parse::Parse;
use openpgp::types::SymmetricAlgorithm;

use super::keyring::Opened;
use super::message::{self, Message, PayloadError};
use super::packet::{self, partial_frame, tag};
use super::recipients::{self, Query};
use super::*;
use crate::keys::passphrase::PassphraseSource;
use crate::testutil::XorShift;

const OPTIONS: &[u8] = br#"{"symkey":"c2VjcmV0LWxheWVyLWtleS0zMi1ieXRlcy0wMDAwMDA=","digest":"sha256:b067c907109e78ffa09de76598215d5d34853c773b14f2cdecd49a920712a3bc","cipheroptions":{"nonce":"J6Y0d7XPI0PRs4sZ6+o3Pg=="}}"#;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pgp")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

fn certs(name: &str) -> Vec<Cert> {
    CertParser::from_bytes(&fixture(name))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn keyring(name: &str, passphrase: Option<&str>) -> SecretKeyring {
    SecretKeyring::parse(
        &fixture(name),
        name,
        passphrase.map(|p| PassphraseSource::Literal(Zeroizing::new(p.into()))),
    )
    .unwrap()
}

/// The skopeo 1.9.3 (golang.org/x/crypto/openpgp) message to Alice and Bob.
fn skopeo_blob() -> Vec<u8> {
    use base64::Engine as _;
    let text = String::from_utf8(fixture("skopeo-alice-bob.pgp.b64")).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}

/// The encryption (sub)key a certificate file's first certificate would be encrypted to.
fn encryption_key(name: &str) -> Key<PublicParts, UnspecifiedRole> {
    let certs = certs(name);
    let m = recipients::Match {
        cert: &certs[0],
        named_key: None,
    };
    recipients::encryption_key(&m).unwrap().0
}

fn key_id(key: &Key<PublicParts, UnspecifiedRole>) -> u64 {
    u64::from_be_bytes(key.keyid().as_bytes().try_into().unwrap())
}

fn open(ring: &SecretKeyring, blob: &[u8]) -> Result<Vec<u8>, String> {
    match ring.open(&Message::parse(blob)?) {
        Opened::Options(o, _) => Ok(o.to_vec()),
        Opened::Failed(why) => Err(why),
    }
}

/// The session key of a message, recovered with a secret keyring file without passphrase.
fn session_key(blob: &[u8], ring: &str) -> (SymmetricAlgorithm, SessionKey) {
    let message = Message::parse(blob).unwrap();
    for cert in certs(ring) {
        for k in cert.keys().secret() {
            let mut pair = k.key().clone().into_keypair().unwrap();
            for p in &message.pkesks {
                if let Some((Some(algo), sk)) = p.packet().unwrap().decrypt(&mut pair, None) {
                    return (algo, sk);
                }
            }
        }
    }
    panic!("no session key with {ring}");
}

// --- Go-made messages --------------------------------------------------------------------

#[test]
fn skopeo_message_with_short_partial_chunks_opens_with_exported_keyrings() {
    let blob = skopeo_blob();
    // The SEIPD starts with a 128-byte partial chunk (0xe7), below RFC 4880's 512.
    let seipd_at = blob.iter().rposition(|&b| b == 0xd2).unwrap();
    assert!(blob.windows(2).any(|w| w == [0xd2, 0xe7]), "{seipd_at}");
    for (ring, pass) in [
        ("alice.sec.gpg", None),
        ("alice.sec.asc", None),
        ("bob.sec.gpg", Some("bob-pw")),
        ("bob.sec.asc", Some("bob-pw")),
    ] {
        let options = open(&keyring(ring, pass), &blob).unwrap_or_else(|e| panic!("{ring}: {e}"));
        let json: serde_json::Value = serde_json::from_slice(&options).unwrap();
        assert!(json["symkey"].is_string(), "{ring}: {json}");
        assert!(json["cipheroptions"]["nonce"].is_string(), "{ring}: {json}");
    }
}

#[test]
fn skopeo_message_is_described_as_go_lists_it() {
    let blob = skopeo_blob();
    let described = PgpWrapper::new(&Environment::default())
        .describe(&blob, &DescribeContext::default())
        .unwrap();
    let ids: Vec<String> = described
        .iter()
        .map(|r| r.key_id.clone().unwrap())
        .collect();
    let want: Vec<String> = ["alice.pub.gpg", "bob.pub.gpg"]
        .iter()
        .map(|f| format!("0x{:x}", key_id(&encryption_key(f))))
        .collect();
    assert_eq!(ids, want);
    assert!(
        described
            .iter()
            .all(|r| r.algorithm.as_deref() == Some("RSA"))
    );
    assert!(
        described
            .iter()
            .all(|r| r.scheme == "pgp" && r.user_ids.is_empty())
    );
}

#[test]
fn key_ids_are_printed_like_go() {
    // Go: "0x" + strconv.FormatUint(id, 16): lowercase, leading zeros dropped.
    assert_eq!(
        message::go_key_id(0x00BD_9B66_B3D6_58B4),
        "0xbd9b66b3d658b4"
    );
    assert_eq!(
        message::go_key_id(0x4926_E881_7D4A_DDEA),
        "0x4926e8817d4addea"
    );
    assert_eq!(message::go_key_id(0), "0x0");
}

// --- Passphrases ---------------------------------------------------------------------------

#[test]
fn protected_keys_report_missing_and_wrong_passphrases() {
    let blob = skopeo_blob();
    let bob = key_id(&encryption_key("bob.pub.gpg"));
    let missing = open(&keyring("bob.sec.asc", None), &blob).unwrap_err();
    assert!(
        missing.contains(&format!("secret key 0x{bob:x}"))
            && missing.contains("passphrase-protected and no passphrase was given"),
        "{missing}"
    );
    let wrong = keyring("bob.sec.gpg", Some("not-bobs"));
    let err = open(&wrong, &blob).unwrap_err();
    assert_eq!(err, format!("secret key 0x{bob:x}: wrong passphrase"));
    // The failure is remembered: a second layer does not ask again, and says the same.
    assert_eq!(open(&wrong, &blob).unwrap_err(), err);
    // A passphrase file with a trailing newline works (the newline is tried without).
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), "bob-pw\n").unwrap();
    let ring = SecretKeyring::parse(
        &fixture("bob.sec.gpg"),
        "bob.sec.gpg",
        Some(PassphraseSource::File(tmp.path().into())),
    )
    .unwrap();
    assert!(open(&ring, &blob).is_ok());
}

#[test]
fn keyrings_that_hold_other_keys_say_which_keys_were_wanted() {
    let blob = skopeo_blob();
    let err = open(&keyring("carol.sec.gpg", None), &blob).unwrap_err();
    let alice = key_id(&encryption_key("alice.pub.gpg"));
    assert!(
        err.starts_with(&format!("no secret key for 0x{alice:x}, 0x"))
            && err.contains("it holds 0x"),
        "{err}"
    );
}

#[test]
fn keyring_files_are_checked_when_loaded() {
    let public = SecretKeyring::parse(&fixture("alice.pub.gpg"), "alice.pub.gpg", None);
    assert!(
        matches!(
            public,
            Err(crate::keys::KeyError::WrongKind {
                found: FileKind::PgpPublicKey,
                ..
            })
        ),
        "{public:?}"
    );
    for garbage in [
        &b""[..],
        b"\x95\x01",
        b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n",
    ] {
        assert!(SecretKeyring::parse(garbage, "g", None).is_err());
    }
    let ring = keyring("alice.sec.asc", None);
    assert_eq!(ring.secret_key_ids().len(), 2);
    // Debug shows key ids and the source, never key material or passphrases.
    let shown = format!("{:?}", keyring("bob.sec.asc", Some("bob-pw")));
    assert!(
        shown.contains("bob.sec.asc") && !shown.contains("bob-pw"),
        "{shown}"
    );
}

#[test]
fn sniff_recognises_gpg_exports() {
    for f in [
        "alice.sec.gpg",
        "alice.sec.asc",
        "bob.sec.gpg",
        "bob.sec.asc",
        "carol.sec.gpg",
    ] {
        assert_eq!(sniff(&fixture(f)), FileKind::PgpSecretKey, "{f}");
    }
    for f in [
        "alice.pub.gpg",
        "alice.pub.asc",
        "all.pub.gpg",
        "carol.pub.gpg",
    ] {
        assert_eq!(sniff(&fixture(f)), FileKind::PgpPublicKey, "{f}");
    }
}

// --- Writing ---------------------------------------------------------------------------------

#[test]
fn messages_have_go_structure() {
    let alice = encryption_key("alice.pub.gpg");
    let carol = encryption_key("carol.pub.gpg");
    let dave = encryption_key("dave.pub.gpg");
    let blob = message::encrypt(
        &[&alice, &carol, &dave],
        SymmetricAlgorithm::AES256,
        OPTIONS,
    )
    .unwrap();
    let packets = packet::parse(&blob, 10).unwrap();
    assert_eq!(
        packets.iter().map(|p| p.tag).collect::<Vec<_>>(),
        vec![tag::PKESK, tag::PKESK, tag::PKESK, tag::SEIPD],
        "one PKESK per recipient, then the SEIPD"
    );
    assert!(packets.iter().all(|p| !p.partial), "definite lengths only");
    assert_eq!(packets[3].body[0], 1, "SEIPD version 1");
    let parsed = Message::parse(&blob).unwrap();
    let ids: Vec<u64> = parsed.pkesks.iter().map(|p| p.key_id).collect();
    assert_eq!(ids, vec![key_id(&alice), key_id(&carol), key_id(&dave)]);
    assert!(parsed.pkesks.iter().all(|p| p.version == 3));
    assert_eq!(parsed.pkesks[1].curve, Some("Curve25519"));
    assert_eq!(parsed.pkesks[2].curve, Some("P-256"));

    // Inside: exactly one literal packet, format u, no file name, date 0, the options.
    let (algo, sk) = session_key(&blob, "alice.sec.gpg");
    assert_eq!(algo, SymmetricAlgorithm::AES256);
    let inner = message::decrypt_inner(parsed.payload().unwrap(), algo, &sk).unwrap();
    let inner_packets = packet::parse(&inner, 10).unwrap();
    assert_eq!(inner_packets.len(), 1, "no compression, no signature");
    assert_eq!(inner_packets[0].tag, tag::LITERAL);
    let mut literal = vec![b'u', 0, 0, 0, 0, 0];
    literal.extend_from_slice(OPTIONS);
    assert_eq!(&inner_packets[0].body[..], &literal[..]);

    // Every recipient opens it.
    for ring in ["alice.sec.gpg", "carol.sec.gpg", "dave.sec.gpg"] {
        assert_eq!(
            open(&keyring(ring, None), &blob).unwrap(),
            OPTIONS,
            "{ring}"
        );
    }
}

#[test]
fn the_cipher_is_aes256_only_if_every_recipient_prefers_it() {
    let wrapper = PgpWrapper::new(&Environment::default());
    let spec = |f: &str| RecipientSpec {
        spec: format!("pgp:{f}"),
        value: fixture_path(f).display().to_string(),
    };
    let resolved = wrapper
        .recipients(&[spec("alice.pub.asc"), spec("oldprefs.pub.gpg")])
        .unwrap();
    let RecipientKind::Pgp(alice) = &resolved[0].kind else {
        panic!()
    };
    let RecipientKind::Pgp(old) = &resolved[1].kind else {
        panic!()
    };
    assert!(alice.prefers_aes256() && !old.prefers_aes256());
    let only_alice = wrapper.wrap(&[&resolved[0]], OPTIONS).unwrap();
    assert_eq!(
        session_key(&only_alice, "alice.sec.gpg").0,
        SymmetricAlgorithm::AES256
    );
    let both = wrapper
        .wrap(&[&resolved[0], &resolved[1]], OPTIONS)
        .unwrap();
    assert_eq!(
        session_key(&both, "alice.sec.gpg").0,
        SymmetricAlgorithm::AES128
    );
}

#[test]
fn one_pkesk_per_key_however_often_it_is_named() {
    let wrapper = PgpWrapper::new(&Environment::default());
    let path = fixture_path("alice.pub.gpg").display().to_string();
    let specs: Vec<RecipientSpec> = (0..3)
        .map(|_| RecipientSpec {
            spec: format!("pgp:{path}"),
            value: path.clone(),
        })
        .collect();
    let resolved = wrapper.recipients(&specs).unwrap();
    assert_eq!(resolved.len(), 3);
    let refs: Vec<&Recipient> = resolved.iter().collect();
    let blob = wrapper.wrap(&refs, OPTIONS).unwrap();
    assert_eq!(Message::parse(&blob).unwrap().pkesks.len(), 1);
}

// --- Recipient matching --------------------------------------------------------------------

fn matched(certs: &[Cert], value: &str) -> Vec<String> {
    recipients::find(certs, &Query::parse(value))
        .iter()
        .map(|m| recipients::first_user_id(m.cert).unwrap())
        .collect()
}

#[test]
fn recipients_match_like_go_and_by_key_id_or_fingerprint() {
    let all = certs("all.pub.gpg");
    let alice = ["Alice Example <alice@example.test>".to_string()];
    // Go's rules: the address or the display name, exact and case-sensitive.
    assert_eq!(matched(&all, "alice@example.test"), alice);
    assert_eq!(matched(&all, "Alice Example"), alice);
    assert!(matched(&all, "ALICE@example.test").is_empty());
    assert!(matched(&all, "alice").is_empty());
    assert!(matched(&all, "Alice").is_empty());
    // Also the whole user id, and a user id that is not an address (Go fails on it).
    assert_eq!(matched(&all, "Alice Example <alice@example.test>"), alice);
    assert_eq!(matched(&all, "Just A Name"), ["Just A Name"]);
    // Key ids and fingerprints, of the primary key or a subkey, any case, with or without 0x.
    let cert = &certs("alice.pub.gpg")[0];
    let primary = cert.primary_key().key();
    let sub = encryption_key("alice.pub.gpg");
    for value in [
        primary.keyid().to_hex(),
        format!("0x{}", primary.keyid().to_hex().to_lowercase()),
        sub.keyid().to_hex().to_lowercase(),
        primary.fingerprint().to_hex(),
        format!("0X{}", sub.fingerprint().to_hex().to_lowercase()),
    ] {
        assert_eq!(matched(&all, &value), alice, "{value}");
    }
    assert!(matched(&all, "0x0000000000000001").is_empty());
}

#[test]
fn a_name_several_certificates_carry_matches_them_all() {
    let twin = || {
        CertBuilder::new()
            .add_userid("Twin <twin@example.test>")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap()
            .0
    };
    let certs = vec![twin(), twin()];
    let found = recipients::find(&certs, &Query::parse("twin@example.test"));
    assert_eq!(found.len(), 2);
    assert_ne!(found[0].cert.fingerprint(), found[1].cert.fingerprint());
    assert_eq!(recipients::find(&certs, &Query::parse("Twin")).len(), 2);
}

#[test]
fn unusable_certificates_are_refused_with_the_reason() {
    for (file, why) in [
        ("signer.pub.gpg", "signing-only"),
        ("revoked.pub.gpg", "is revoked"),
        ("expired.pub.gpg", "has expired"),
    ] {
        let certs = certs(file);
        let m = recipients::Match {
            cert: &certs[0],
            named_key: None,
        };
        let err = recipients::encryption_key(&m).unwrap_err();
        assert!(err.contains(why), "{file}: {err}");
    }
    // Through the scheme: the message names the file and the key.
    let wrapper = PgpWrapper::new(&Environment::default());
    let path = fixture_path("revoked.pub.gpg").display().to_string();
    let err = wrapper
        .recipients(&[RecipientSpec {
            spec: format!("pgp:{path}"),
            value: path.clone(),
        }])
        .unwrap_err();
    let text = err.error.to_string();
    assert!(
        text.contains(&path) && text.contains("Revoked Example") && text.contains("is revoked"),
        "{text}"
    );
}

#[test]
fn a_named_encryption_subkey_is_the_one_used() {
    let cert = CertBuilder::new()
        .add_userid("Two Subkeys <two@example.test>")
        .add_transport_encryption_subkey()
        .add_transport_encryption_subkey()
        .generate()
        .unwrap()
        .0;
    let subkeys: Vec<_> = cert.keys().subkeys().map(|k| k.key().clone()).collect();
    for sub in &subkeys {
        let m = recipients::find(
            std::slice::from_ref(&cert),
            &Query::parse(&sub.keyid().to_hex()),
        )
        .pop()
        .unwrap();
        let (chosen, _) = recipients::encryption_key(&m).unwrap();
        assert_eq!(chosen.fingerprint(), sub.fingerprint());
    }
    // Named by the primary key: one key, the newest encryption subkey.
    let m = recipients::find(
        std::slice::from_ref(&cert),
        &Query::parse(&cert.keyid().to_hex()),
    )
    .pop()
    .unwrap();
    let (chosen, _) = recipients::encryption_key(&m).unwrap();
    assert!(
        subkeys
            .iter()
            .any(|s| s.fingerprint() == chosen.fingerprint())
    );
}

// --- Reading hostile and unusual messages --------------------------------------------------

/// A message framed as Go ocicrypt ≤ 1.3.1 frames it: SEIPD and literal packets with 128-byte
/// partial chunks (RFC 4880 requires at least 512 for the first one).
fn go_framed_message(recipient: &Key<PublicParts, UnspecifiedRole>, options: &[u8]) -> Vec<u8> {
    let algo = SymmetricAlgorithm::AES128;
    let sk = SessionKey::new(16).unwrap();
    let mut out = packet::frame(
        tag::PKESK,
        &openpgp::serialize::MarshalInto::to_vec(
            &openpgp::packet::pkesk::PKESK3::for_recipient(algo, &sk, recipient).unwrap(),
        )
        .unwrap(),
    );
    let mut literal_body = vec![b't', 0, 0, 0, 0, 0];
    literal_body.extend_from_slice(options);
    let literal = partial_frame(tag::LITERAL, &literal_body, 128);
    let body = message::seipd_body(algo, &sk, &literal).unwrap();
    out.extend(partial_frame(tag::SEIPD, &body, 128));
    out
}

#[test]
fn short_partial_chunks_are_reframed_and_read() {
    let alice = encryption_key("alice.pub.gpg");
    // Options long enough for several chunks, in both packets.
    let mut long = OPTIONS.to_vec();
    long.extend(std::iter::repeat_n(b' ', 700));
    let blob = go_framed_message(&alice, &long);
    let packets = packet::parse(&blob, 10).unwrap();
    assert!(packets[1].partial, "the SEIPD uses partial lengths");
    // sequoia alone refuses this framing; the scheme reads it.
    let pile = openpgp::PacketPile::from_bytes(&blob).unwrap();
    assert!(pile.descendants().any(|p| matches!(
        p,
        openpgp::Packet::Unknown(u) if u.error().to_string().contains("at least 512")
    )));
    assert_eq!(open(&keyring("alice.sec.gpg", None), &blob).unwrap(), long);
}

#[test]
fn tampered_data_is_never_returned() {
    let alice = encryption_key("alice.pub.gpg");
    let blob = message::encrypt(&[&alice], SymmetricAlgorithm::AES256, OPTIONS).unwrap();
    let (algo, sk) = session_key(&blob, "alice.sec.gpg");
    let payload_at = blob.len() - Message::parse(&blob).unwrap().payload().unwrap().len();
    let ring = keyring("alice.sec.gpg", None);
    for offset in payload_at..blob.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = blob.clone();
            bad[offset] ^= bit;
            let message = Message::parse(&bad).unwrap();
            let payload = message.payload().unwrap();
            match message::decrypt_payload(payload, algo, &sk) {
                Err(PayloadError::Integrity | PayloadError::WrongKey) => {}
                other => panic!("byte {offset} bit {bit:#x}: {other:?}"),
            }
            assert!(open(&ring, &bad).is_err(), "byte {offset}");
        }
    }
    // A wrong MDC is reported as such.
    let mut bad = blob.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = open(&ring, &bad).unwrap_err();
    assert!(err.contains("integrity check (MDC)"), "{err}");
}

#[test]
fn unprotected_and_unsupported_payloads_are_refused() {
    let alice = encryption_key("alice.pub.gpg");
    let blob = message::encrypt(&[&alice], SymmetricAlgorithm::AES256, OPTIONS).unwrap();
    let packets = packet::parse(&blob, 10).unwrap();
    let pkesk = packet::frame(tag::PKESK, &packets[0].body);
    let ring = keyring("alice.sec.gpg", None);
    let with = |t: u8, body: &[u8]| {
        let mut m = pkesk.clone();
        m.extend(packet::frame(t, body));
        m
    };
    let cases = [
        (
            with(tag::SED, &packets[1].body[1..]),
            "not integrity protected",
        ),
        (with(tag::AEAD, &[1, 9, 2, 16]), "AEAD"),
        (with(tag::SEIPD, &[2, 9, 2, 16]), "version 2"),
        (pkesk.clone(), "no encrypted data"),
    ];
    for (bad, why) in cases {
        let message = Message::parse(&bad).unwrap();
        assert!(message.payload().unwrap_err().contains(why), "{why}");
        let err = open(&ring, &bad).unwrap_err();
        assert!(err.contains(why), "{why}: {err}");
    }
    // A compressed or signed inside is refused after the MDC check.
    let (algo, sk) = (SymmetricAlgorithm::AES128, SessionKey::new(16).unwrap());
    for (inner, why) in [
        (packet::frame(tag::COMPRESSED, &[0, 1, 2]), "compressed"),
        (packet::frame(tag::ONE_PASS_SIG, &[3, 0, 8, 1]), "signed"),
        (Vec::new(), "empty"),
    ] {
        let body = message::seipd_body(algo, &sk, &inner).unwrap();
        let err = message::decrypt_payload(&body[1..], algo, &sk).unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
}

#[test]
fn wrapper_reports_malformed_blobs() {
    let wrapper = PgpWrapper::new(&Environment::default());
    let keys = KeyRing {
        pgp_keyrings: vec![keyring("alice.sec.gpg", None)],
        ..Default::default()
    };
    assert!(wrapper.has_keys(&keys));
    match wrapper.unwrap(&keys, b"not openpgp") {
        Err(UnwrapFailure::Malformed(why)) => {
            assert!(why.contains("not an OpenPGP message"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // Another keyring's failure is one attempt per keyring, naming the file.
    let keys = KeyRing {
        pgp_keyrings: vec![
            keyring("carol.sec.gpg", None),
            keyring("dave.sec.gpg", None),
        ],
        ..Default::default()
    };
    match wrapper.unwrap(&keys, &skopeo_blob()) {
        Err(UnwrapFailure::NotOpened(attempts)) => {
            assert_eq!(attempts.len(), 2);
            assert_eq!(attempts[0].key, "carol.sec.gpg");
            assert!(attempts[1].reason.starts_with("no secret key for 0x"));
        }
        other => panic!("{other:?}"),
    }
    // With the right one, the key that opened it is named.
    let keys = KeyRing {
        pgp_keyrings: vec![
            keyring("dave.sec.gpg", None),
            keyring("bob.sec.asc", Some("bob-pw")),
        ],
        ..Default::default()
    };
    let unwrapped = wrapper.unwrap(&keys, &skopeo_blob()).unwrap();
    let bob = key_id(&encryption_key("bob.pub.gpg"));
    assert_eq!(unwrapped.key, format!("bob.sec.asc (0x{bob:x})"));
    assert!(!format!("{unwrapped:?}").contains("symkey"));
}

#[test]
fn garbage_truncations_and_mutations_never_panic() {
    let wrapper = PgpWrapper::new(&Environment::default());
    let keys = KeyRing {
        pgp_keyrings: vec![
            keyring("alice.sec.gpg", None),
            keyring("carol.sec.gpg", None),
        ],
        ..Default::default()
    };
    let context = DescribeContext::default();
    let alice = encryption_key("alice.pub.gpg");
    let carol = encryption_key("carol.pub.gpg");
    let seeds = [
        skopeo_blob(),
        message::encrypt(&[&alice, &carol], SymmetricAlgorithm::AES128, OPTIONS).unwrap(),
        go_framed_message(&carol, OPTIONS),
    ];
    for seed in &seeds {
        for len in 0..seed.len() {
            let _ = wrapper.describe(&seed[..len], &context);
            let _ = wrapper.unwrap(&keys, &seed[..len]);
        }
    }
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let expected: Vec<Vec<u8>> = seeds
        .iter()
        .map(|s| wrapper.unwrap(&keys, s).unwrap().options.to_vec())
        .collect();
    for round in 0..1500 {
        let mut data = seeds[round % seeds.len()].clone();
        rng.mutate(&mut data, 4, None);
        let _ = wrapper.describe(&data, &context);
        if let Ok(u) = wrapper.unwrap(&keys, &data) {
            // Only a mutation outside the authenticated data (a PKESK's key id) may open.
            assert_eq!(
                u.options[..],
                expected[round % seeds.len()],
                "round {round}"
            );
        }
    }
    for len in 0..64 {
        let data = rng.bytes(len);
        let _ = wrapper.describe(&data, &context);
        let _ = wrapper.unwrap(&keys, &data);
    }
}

// --- Removing recipients -------------------------------------------------------------------

fn file_matcher(wrapper: &PgpWrapper, name: &str) -> RecipientMatcher {
    let path = fixture_path(name).display().to_string();
    let spec = RecipientSpec {
        spec: format!("pgp:{path}"),
        value: path,
    };
    RecipientMatcher {
        spec: spec.spec.clone(),
        target: MatchTarget::Recipients(wrapper.recipients(&[spec]).unwrap()),
    }
}

fn id_matcher(value: String) -> RecipientMatcher {
    RecipientMatcher {
        spec: value.clone(),
        target: MatchTarget::KeyId(value),
    }
}

/// The Go-made message to Alice and Bob loses Bob's PKESK and nothing else: Alice still
/// opens it, Bob no longer does, and the bytes are the message without that packet.
#[test]
fn removing_a_pkesk_keeps_the_rest_of_the_message() {
    let wrapper = PgpWrapper::new(&Environment::default());
    let blob = skopeo_blob();
    let bob = file_matcher(&wrapper, "bob.pub.gpg");
    let Removal::Edited {
        blob: edited,
        removed: 1,
    } = wrapper.remove(&blob, &bob).unwrap()
    else {
        panic!("Bob's PKESK was not removed");
    };
    assert!(open(&keyring("alice.sec.gpg", None), &edited).is_ok());
    assert!(open(&keyring("bob.sec.gpg", Some("bob-pw")), &edited).is_err());
    let spans = message::pkesk_spans(&blob).unwrap();
    let bob_id = key_id(&encryption_key("bob.pub.gpg"));
    let (_, span) = spans.iter().find(|(id, _)| *id == Some(bob_id)).unwrap();
    let mut expected = blob[..span.start].to_vec();
    expected.extend_from_slice(&blob[span.end..]);
    assert_eq!(edited, expected);

    // By key id (Go's 0x form and plain hex) and by subkey fingerprint, the same.
    let alice = encryption_key("alice.pub.gpg");
    for value in [
        message::go_key_id(key_id(&alice)),
        format!("{:016X}", key_id(&alice)),
        alice.fingerprint().to_hex(),
    ] {
        match wrapper.remove(&blob, &id_matcher(value.clone())).unwrap() {
            Removal::Edited { blob, removed: 1 } => {
                assert!(
                    open(&keyring("alice.sec.gpg", None), &blob).is_err(),
                    "{value}"
                )
            }
            other => panic!("{value}: {other:?}"),
        }
    }
    // Both gone: the message goes.
    let both = wrapper.remove(&edited, &file_matcher(&wrapper, "alice.pub.gpg"));
    assert_eq!(both.unwrap(), Removal::Emptied { removed: 1 });
    // Somebody else: nothing.
    assert_eq!(
        wrapper
            .remove(&blob, &file_matcher(&wrapper, "carol.pub.gpg"))
            .unwrap(),
        Removal::Unchanged
    );
}

#[test]
fn a_wildcard_pkesk_cannot_be_attributed() {
    let wrapper = PgpWrapper::new(&Environment::default());
    let mut blob = skopeo_blob();
    // Zero the key id of the first PKESK (a "hidden recipient").
    let first = packet::parse(&blob, 10).unwrap().remove(0);
    assert_eq!(first.tag, tag::PKESK);
    let body = first.span.end - first.body.len();
    blob[body + 1..body + 9].fill(0);
    match wrapper.remove(&blob, &file_matcher(&wrapper, "bob.pub.gpg")) {
        Err(RemoveError::Unidentifiable(why)) => assert!(why.contains("names no key"), "{why}"),
        other => panic!("{other:?}"),
    }
}
