//! JWE key unwrapping (`keywrap::jwe`): any bytes as the wrapped blob of a layer's `jwe`
//! annotation, described without keys, unwrapped with fixed test keys (RSA-2048, P-256 and
//! P-384 from `testdata/keys`, and RSA-2048, P-256, P-384 and P-521 keys of the samples: those
//! skopeo encrypted the fixtures for), and edited by recipient removal.
//!
//! Invariants: no panic; an error has a message; a blob that opens can be described, and its
//! plaintext is no longer than its ciphertext; removing recipients leaves a JWE that describes
//! to the remaining recipients, with the same content encryption.

#![no_main]

use std::sync::OnceLock;

use layercrypt::keywrap::jwe::{self, EntryMatch, JweWrapper};
use layercrypt::keywrap::{KeyRing, KeyWrapper, Removal, UnwrapFailure};
use layercrypt_fuzz::{check_message, private_keys};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| KeyRing {
        private_keys: private_keys()
            .into_iter()
            .filter(|k| !k.source.contains("x509"))
            .collect(),
        ..KeyRing::default()
    })
}

fuzz_target!(|blob: &[u8]| {
    let described = jwe::describe(blob);
    if let Err(e) = &described {
        check_message(e);
    }
    match JweWrapper.unwrap(keys(), blob) {
        Ok(unwrapped) => {
            let info = described.as_ref().expect("a JWE that opens describes");
            assert!(!info.recipients.is_empty());
            assert!(unwrapped.options.len() <= blob.len());
            assert!(!format!("{unwrapped:?}").contains("symkey"));
        }
        Err(UnwrapFailure::Malformed(why)) => assert!(!why.is_empty()),
        Err(UnwrapFailure::NotOpened(attempts)) => {
            assert_eq!(attempts.len(), keys().private_keys.len());
            for a in &attempts {
                assert!(!a.reason.is_empty());
            }
        }
    }
    // Remove the recipients whose kid has an even length; a recipient without one cannot be
    // attributed, which must be refused rather than guessed.
    let verdict = |r: &jwe::JweRecipientInfo| match &r.kid {
        Some(kid) if kid.len() % 2 == 0 => EntryMatch::Yes,
        Some(_) => EntryMatch::No,
        None => EntryMatch::Unknown,
    };
    match jwe::remove_recipients(blob, verdict) {
        Ok(Removal::Edited {
            blob: edited,
            removed,
        }) => {
            let before = described.as_ref().expect("an edited JWE described before");
            let after = jwe::describe(&edited).expect("an edited JWE describes");
            assert!(removed > 0);
            assert_eq!(after.recipients.len() + removed, before.recipients.len());
            assert_eq!(after.enc, before.enc);
            assert!(
                after
                    .recipients
                    .iter()
                    .all(|r| verdict(r) == EntryMatch::No)
            );
        }
        Ok(Removal::Emptied { removed }) => {
            let before = described.as_ref().expect("an emptied JWE described before");
            assert_eq!(removed, before.recipients.len());
        }
        Ok(Removal::Unchanged) => {
            if let Ok(info) = &described {
                assert!(info.recipients.iter().all(|r| verdict(r) == EntryMatch::No));
            }
        }
        Err(e) => check_message(&e),
    }
});
