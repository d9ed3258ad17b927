//! The PKCS#7 reader (`keywrap::pkcs7`): any bytes as the wrapped blob of a layer's `pkcs7`
//! annotation, walked by the lenient BER reader, described, unwrapped with the fixtures' RSA
//! keys and certificates, and edited by recipient removal.
//!
//! Invariants: no panic, no allocation on the say-so of a length; an error has a message; a
//! blob that opens can be described and yields at most MAX_OPTIONS bytes; removing a recipient
//! leaves an envelope that describes to the remaining entries.

#![no_main]

use std::sync::OnceLock;

use layercrypt::keys::Certificate;
use layercrypt::keywrap::pkcs7::{self, MAX_OPTIONS, Pkcs7Recipient, Pkcs7Wrapper};
use layercrypt::keywrap::{
    KeyRing, KeyWrapper, MatchTarget, Recipient, RecipientKind, RecipientMatcher, Removal,
    UnwrapFailure,
};
use layercrypt_fuzz::{certificates, check_message, private_keys};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    keys: KeyRing,
    certificates: Vec<Certificate>,
    /// Removes the first certificate's entries.
    matcher: RecipientMatcher,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let keys = KeyRing {
            private_keys: private_keys()
                .into_iter()
                .filter(|k| k.source.contains("x509"))
                .collect(),
            certificates: certificates(),
            ..KeyRing::default()
        };
        let certificates: Vec<Certificate> = keys
            .certificates
            .iter()
            .map(|c| c.certificate.clone())
            .collect();
        let matcher = RecipientMatcher {
            spec: "pkcs7:x509.crt".into(),
            target: MatchTarget::Recipients(vec![Recipient {
                spec: "pkcs7:x509.crt".into(),
                scheme: "pkcs7".into(),
                kind: RecipientKind::Pkcs7(Pkcs7Recipient {
                    certificate: certificates[0].clone(),
                }),
            }]),
        };
        Fixed {
            keys,
            certificates,
            matcher,
        }
    })
}

fuzz_target!(|blob: &[u8]| {
    let fixed = fixed();
    let described = pkcs7::describe(blob, &fixed.certificates);
    match &described {
        Ok(recipients) => {
            for r in recipients {
                assert!(!r.to_string().is_empty());
            }
        }
        Err(e) => check_message(e),
    }
    match Pkcs7Wrapper.unwrap(&fixed.keys, blob) {
        Ok(unwrapped) => {
            assert!(
                described.is_ok(),
                "an envelope that opens does not describe"
            );
            assert!(unwrapped.options.len() <= MAX_OPTIONS);
        }
        Err(UnwrapFailure::Malformed(why)) => assert!(!why.is_empty()),
        Err(UnwrapFailure::NotOpened(attempts)) => {
            for a in &attempts {
                assert!(!a.reason.is_empty(), "{a:?}");
            }
        }
    }
    match Pkcs7Wrapper.remove(blob, &fixed.matcher) {
        Ok(Removal::Edited {
            blob: edited,
            removed,
        }) => {
            let before = described
                .as_ref()
                .expect("an edited envelope described before");
            let after = pkcs7::describe(&edited, &fixed.certificates)
                .expect("an edited envelope describes");
            assert!(removed > 0);
            assert_eq!(after.len() + removed, before.len());
        }
        Ok(Removal::Emptied { removed }) => {
            assert_eq!(Some(removed), described.as_ref().ok().map(Vec::len));
        }
        Ok(Removal::Unchanged) => {}
        Err(e) => check_message(&e),
    }
});
