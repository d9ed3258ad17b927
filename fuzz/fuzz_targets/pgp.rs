//! OpenPGP unwrapping (`keywrap::pgp`, cargo feature `pgp`): any bytes as the wrapped blob of
//! a layer's `pgp` annotation, framed by layercrypt's own packet reader (with Go's short
//! partial chunks), described, unwrapped with unprotected test keyrings (RSA, cv25519, P-256;
//! never asking gpg), and edited by recipient removal.
//!
//! Invariants: no panic; an error has a message; a message that opens can be described and
//! yields at most MAX_OPTIONS bytes; the PKESK spans removal works with lie inside the blob, in
//! order, one per PKESK the parser sees; removing a recipient leaves a message with one PKESK
//! fewer per removal.

#![no_main]

use std::sync::OnceLock;

use layercrypt::fuzzing::{MAX_OPTIONS, Message, pkesk_spans};
use layercrypt::keywrap::pgp::PgpWrapper;
use layercrypt::keywrap::{
    DescribeContext, Environment, KeyRing, KeyWrapper, MatchTarget, RecipientMatcher, Removal,
    UnwrapFailure,
};
use layercrypt_fuzz::{check_message, key_ring};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    wrapper: PgpWrapper,
    keys: KeyRing,
    /// Alice's encryption subkey (testdata/pgp/README.md), a recipient of skopeo's message.
    matcher: RecipientMatcher,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let all = key_ring();
        Fixed {
            wrapper: PgpWrapper::new(&Environment::default()),
            keys: KeyRing {
                pgp_keyrings: all.pgp_keyrings,
                use_gpg: false,
                ..KeyRing::default()
            },
            matcher: RecipientMatcher {
                spec: "3631BE422BDA5120".into(),
                target: MatchTarget::KeyId("3631BE422BDA5120".into()),
            },
        }
    })
}

fuzz_target!(|blob: &[u8]| {
    let fixed = fixed();
    let parsed = Message::parse(blob);
    let spans = pkesk_spans(blob);
    if let Ok(spans) = &spans {
        let mut end = 0;
        for (_, span) in spans {
            assert!(end <= span.start && span.start < span.end && span.end <= blob.len());
            end = span.end;
        }
    }
    match &parsed {
        Ok(message) => {
            let spans = spans
                .as_ref()
                .expect("a message that parses has PKESK spans");
            assert_eq!(spans.len(), message.pkesks.len());
            let _ = format!("{message:?}");
        }
        Err(e) => check_message(e),
    }
    let described = fixed.wrapper.describe(blob, &DescribeContext::default());
    match &described {
        Ok(recipients) => {
            assert_eq!(
                Some(recipients.len()),
                parsed.as_ref().ok().map(|m| m.pkesks.len())
            );
        }
        Err(e) => check_message(e),
    }
    match fixed.wrapper.unwrap(&fixed.keys, blob) {
        Ok(unwrapped) => {
            assert!(described.is_ok(), "a message that opens does not describe");
            assert!(unwrapped.options.len() <= MAX_OPTIONS);
        }
        Err(UnwrapFailure::Malformed(why)) => assert!(!why.is_empty()),
        Err(UnwrapFailure::NotOpened(attempts)) => {
            assert_eq!(attempts.len(), fixed.keys.pgp_keyrings.len());
            for a in &attempts {
                assert!(!a.reason.is_empty(), "{a:?}");
            }
        }
    }
    match fixed.wrapper.remove(blob, &fixed.matcher) {
        Ok(Removal::Edited {
            blob: edited,
            removed,
        }) => {
            let before = spans.as_ref().expect("an edited message had PKESK spans");
            let after = pkesk_spans(&edited).expect("an edited message has PKESK spans");
            assert!(removed > 0);
            assert_eq!(after.len() + removed, before.len());
            if let Ok(message) = &parsed {
                let again = Message::parse(&edited).expect("an edited message parses");
                assert_eq!(again.pkesks.len() + removed, message.pkesks.len());
            }
        }
        Ok(Removal::Emptied { removed }) => {
            assert_eq!(Some(removed), spans.as_ref().ok().map(Vec::len));
        }
        Ok(Removal::Unchanged) => {}
        Err(e) => check_message(&e),
    }
});
