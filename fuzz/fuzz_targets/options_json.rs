//! The layer cipher options JSON (`format::options`): private options as every scheme unwraps
//! them, public options as `pubopts` carries them, and Go's base64 for the byte fields.
//!
//! Invariants: no panic; an error has a message; what parses is written back as Go writes it
//! and reads back to the same value, byte for byte on the second round; options that parse are
//! either accepted as cipher parameters or refused with a message.

#![no_main]

use layercrypt::cipher::DecryptionParams;
use layercrypt::format::options::MAX_OPTIONS_LEN;
use layercrypt::format::{PrivateOptions, PublicOptions, decode_base64_go, encode_base64};
use layercrypt_fuzz::check_message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let private = PrivateOptions::from_json(data);
    match &private {
        Ok(options) => {
            let json = options.to_json();
            // Go's escaping can make a document longer than the limit it was read under.
            if json.len() <= MAX_OPTIONS_LEN {
                let again =
                    PrivateOptions::from_json(&json).expect("written private options read back");
                assert_eq!(&again, options, "private options changed in a round trip");
                assert_eq!(
                    again.to_json(),
                    json,
                    "private options are not written stably"
                );
            }
            // Debug output never shows the key.
            let debug = format!("{options:?}");
            assert!(debug.contains("redacted"), "{debug}");
        }
        Err(e) => check_message(e),
    }
    let public = PublicOptions::from_json(data);
    match &public {
        Ok(options) => {
            let json = options.to_json();
            if json.len() <= MAX_OPTIONS_LEN {
                let again =
                    PublicOptions::from_json(&json).expect("written public options read back");
                assert_eq!(&again, options, "public options changed in a round trip");
                assert_eq!(
                    again.to_json(),
                    json,
                    "public options are not written stably"
                );
            }
        }
        Err(e) => check_message(e),
    }
    if let (Ok(private), Ok(public)) = (&private, &public) {
        match DecryptionParams::from_options(private, public) {
            Ok(params) => {
                assert_eq!(&private.symkey[..], &params.secrets.key().as_bytes()[..]);
                assert_eq!(&public.hmac[..], &params.hmac[..]);
            }
            Err(e) => check_message(&e),
        }
    }
    // The same bytes as a base64 field or annotation value.
    if let Ok(text) = std::str::from_utf8(data) {
        match decode_base64_go(text) {
            Ok(bytes) => {
                let encoded = encode_base64(&bytes);
                assert_eq!(
                    decode_base64_go(&encoded).expect("our base64 decodes"),
                    bytes
                );
            }
            Err(e) => check_message(&e),
        }
    }
});
