//! The annotation envelope (`format::Envelope`): the comma-separated base64 list of wrapped
//! keys in `org.opencontainers.image.enc.keys.<scheme>`, and the per-scheme description of a
//! layer's annotations built on it (`keywrap::describe_layer`, what `inspect` shows).
//!
//! Invariants: no panic; an error has a message; an envelope holds 1 to MAX_ENVELOPE_ENTRIES
//! blobs, is written back canonically and re-parses to the same blobs; describing a layer
//! yields one result per wrapped-key annotation.

#![no_main]

use layercrypt::format::json::JsonObject;
use layercrypt::format::{Envelope, MAX_ENVELOPE_ENTRIES, PUBOPTS_ANNOTATION, keys_annotation};
use layercrypt::keywrap::{DescribeContext, describe_layer};
use layercrypt_fuzz::{check_message, registry};
use libfuzzer_sys::fuzz_target;

/// The scheme the first byte picks: the built-in ones, a provider, one nobody knows.
const SCHEMES: &[&str] = &["jwe", "pgp", "pkcs7", "pkcs11", "provider.kbs", "unknown"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    match Envelope::parse(value) {
        Ok(envelope) => {
            let n = envelope.entries().len();
            assert!((1..=MAX_ENVELOPE_ENTRIES).contains(&n), "{n} entries");
            let annotation = envelope.to_annotation();
            let again = Envelope::parse(&annotation).expect("a written envelope parses");
            assert_eq!(again.entries(), envelope.entries());
            assert_eq!(again.to_annotation(), annotation);
            let _ = format!("{envelope:?}");
        }
        Err(e) => check_message(&e),
    }
    // The same value as a layer annotation of one scheme (or two, when the pick says so),
    // beside public options.
    let scheme = SCHEMES[usize::from(pick) % SCHEMES.len()];
    let mut annotations = JsonObject::new();
    annotations.set(PUBOPTS_ANNOTATION, "e30=");
    annotations.set(&keys_annotation(scheme), value);
    let mut expected = 1;
    if pick >= 128 {
        let other = SCHEMES[usize::from(pick / 8) % SCHEMES.len()];
        if other != scheme {
            annotations.set(&keys_annotation(other), value);
            expected += 1;
        }
    }
    let described = describe_layer(registry(), &annotations, &DescribeContext::default());
    assert_eq!(described.len(), expected);
    for (_, result) in &described {
        match result {
            Ok(recipients) => {
                for r in recipients {
                    assert!(!r.to_string().is_empty());
                }
            }
            Err(e) => check_message(e),
        }
    }
});
