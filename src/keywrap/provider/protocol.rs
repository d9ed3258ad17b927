//! The key-provider protocol messages, byte for byte as Go ocicrypt writes them, and the
//! answers decoded as Go's `encoding/json` decodes them.
//!
//! A request is one compact JSON document (`KeyProviderKeyWrapProtocolInput`):
//!
//! ```text
//! {"op":"keywrap","keywrapparams":{"ec":{"Parameters":{"NAME":["YWJj"]},"DecryptConfig":{"Parameters":{}}},"optsdata":"<base64>"},"keyunwrapparams":{"dc":null,"annotation":null}}
//! {"op":"keyunwrap","keywrapparams":{"ec":null,"optsdata":null},"keyunwrapparams":{"dc":{"Parameters":{"NAME":["YWJj"]}},"annotation":"<base64>"}}
//! ```
//!
//! Both params objects are always present (Go's `omitempty` has no effect on structs), every
//! `[]byte` is standard padded base64, and strings are escaped as Go escapes them (`<`, `>`,
//! `&`, U+2028 and U+2029 as `\u` sequences). Unlike Go, the parameter maps only ever hold
//! this provider's own entry: never another scheme's keys, passwords or recipients.
//!
//! An answer is `{"keywrapresults":{"annotation":…}}` or `{"keyunwrapresults":{"optsdata":…}}`;
//! the bytes may be a base64 string (Go providers) or an array of numbers (CoCo's Rust
//! providers); member names match case-insensitively and unknown members are ignored. Nothing
//! an answer holds is ever echoed into an error message: an unwrap answer carries the layer
//! key.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

use super::config::fold_eq;

/// Standard base64 as Go's `encoding/json` reads `[]byte`: padding required, non-zero trailing
/// bits accepted (Go's `base64.StdEncoding` is not strict).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The parameter a recipient or key without `:ARGS` contributes, as in Go.
pub const ENABLED: &[u8] = b"Enabled";

/// The largest answer accepted from a provider. Real answers are a few hundred bytes (the
/// private options are about 200; a provider's annotation a few times that).
pub const MAX_RESPONSE: usize = 1 << 20;

/// The request for wrapping `options` for one provider, whose recipients contributed `params`
/// (their ARGS, or [`ENABLED`]).
pub fn wrap_request(name: &str, params: &[&[u8]], options: &[u8]) -> Zeroizing<Vec<u8>> {
    let ec = Zeroizing::new(
        [
            r#"{"Parameters":"#,
            &parameters(name, params),
            r#","DecryptConfig":{"Parameters":{}}}"#,
        ]
        .concat(),
    );
    let optsdata = Zeroizing::new(GO_STD.encode(options));
    join(&[
        r#"{"op":"keywrap","keywrapparams":{"ec":"#,
        &ec,
        r#","optsdata":""#,
        &optsdata,
        r#""},"keyunwrapparams":{"dc":null,"annotation":null}}"#,
    ])
}

/// The request for unwrapping one annotation entry (`blob`: the provider's bytes, already
/// base64-decoded from the layer annotation) with the `-k provider:NAME[:ARGS]` parameters
/// given for this provider (`params` may be empty).
pub fn unwrap_request(name: &str, params: &[&[u8]], blob: &[u8]) -> Zeroizing<Vec<u8>> {
    let dc = Zeroizing::new([r#"{"Parameters":"#, &parameters(name, params), "}"].concat());
    let annotation = GO_STD.encode(blob);
    join(&[
        r#"{"op":"keyunwrap","keywrapparams":{"ec":null,"optsdata":null},"keyunwrapparams":{"dc":"#,
        &dc,
        r#","annotation":""#,
        &annotation,
        r#""}}"#,
    ])
}

/// `{"NAME":["b64",…]}`, or `{}` without parameters (Go writes an empty map as `{}`).
fn parameters(name: &str, params: &[&[u8]]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    if params.is_empty() {
        out.push_str("{}");
        return out;
    }
    // Size it once: the arguments may be secrets (a passphrase), and a growing String would
    // leave copies behind in freed memory.
    let name = go_string(name);
    let cap = 4
        + name.len()
        + params
            .iter()
            .map(|p| 3 + base64::encoded_len(p.len(), true).unwrap_or(0))
            .sum::<usize>();
    out.reserve_exact(cap);
    out.push('{');
    out.push_str(&name);
    out.push_str(":[");
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        GO_STD.encode_string(p, &mut out);
        out.push('"');
    }
    out.push_str("]}");
    out
}

/// Concatenate into one buffer sized up front (parts may hold secrets).
fn join(parts: &[&str]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
    out
}

/// A JSON string literal exactly as Go's `encoding/json` writes it (HTML-safe escaping).
pub fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why a provider's answer cannot be used. The text never quotes the answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResponseError(String);

/// The provider-defined bytes of a wrap answer (`keywrapresults.annotation`); empty when the
/// provider gave none.
pub fn decode_wrap_response(answer: &[u8]) -> Result<Vec<u8>, ResponseError> {
    decode(answer, "keywrapresults", "annotation").map(|v| v.to_vec())
}

/// The private options of an unwrap answer (`keyunwrapresults.optsdata`); empty when the
/// provider gave none.
pub fn decode_unwrap_response(answer: &[u8]) -> Result<Zeroizing<Vec<u8>>, ResponseError> {
    decode(answer, "keyunwrapresults", "optsdata")
}

fn decode(answer: &[u8], outer: &str, inner: &str) -> Result<Zeroizing<Vec<u8>>, ResponseError> {
    if answer.len() > MAX_RESPONSE {
        return Err(ResponseError(format!(
            "the answer is larger than {MAX_RESPONSE} bytes"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(answer);
    // The whole answer: `{OUTER: {INNER: bytes}}`, or `null`.
    let seed = Member {
        name: outer,
        within: None,
        seed: Member {
            name: inner,
            within: Some(outer),
            seed: Bytes {
                name: inner,
                // Each byte takes at least two characters ("0,"), so this never reallocates
                // (which would leave copies of the secret behind).
                capacity: answer.len() / 2 + 1,
            },
        },
    };
    let value = seed
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            ResponseError(match e.classify() {
                serde_json::error::Category::Data => {
                    format!("the answer is not a key-provider response: {e}")
                }
                _ => format!("the answer is not valid JSON: {e}"),
            })
        })?;
    Ok(value)
}

/// What a JSON value is, for messages that must not quote it.
struct Found(&'static str);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Visitor methods that refuse every JSON type except the ones a visitor overrides, naming
/// the type found but never its content.
macro_rules! refuse_others {
    ($($method:ident($($arg:ty)?) => $what:literal),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self $(, _: $arg)?) -> Result<Self::Value, E> {
                Err(E::custom(format_args!("expected {}, found {}", Expecting(&self), Found($what))))
            }
        )*
    };
}

/// `expecting` text of a visitor, usable after `self` is borrowed.
struct Expecting<'a, V>(&'a V);

impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
}

/// An object whose member NAME (matched as Go matches struct fields: case-insensitively, the
/// last match winning, other members ignored) is decoded by `seed`; or `null` (Go leaves the
/// field unset). `within` names the enclosing member, for messages.
#[derive(Clone, Copy)]
struct Member<'a, S> {
    name: &'a str,
    within: Option<&'a str>,
    seed: S,
}

impl<'de, S> DeserializeSeed<'de> for Member<'_, S>
where
    S: DeserializeSeed<'de, Value = Zeroizing<Vec<u8>>> + Copy,
{
    type Value = Zeroizing<Vec<u8>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S> Visitor<'de> for Member<'_, S>
where
    S: DeserializeSeed<'de, Value = Zeroizing<Vec<u8>>> + Copy,
{
    type Value = Zeroizing<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.within {
            None => write!(f, "an object with \"{}\"", self.name),
            Some(outer) => write!(f, "\"{outer}\" to be an object with \"{}\"", self.name),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Zeroizing::new(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Zeroizing::new(Vec::new());
        while let Some(key) = map.next_key::<String>()? {
            if fold_eq(&key, self.name) {
                found = map.next_value_seed(self.seed)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    refuse_others! {
        visit_bool(bool) => "a boolean", visit_i64(i64) => "a number", visit_u64(u64) => "a number",
        visit_f64(f64) => "a number", visit_str(&str) => "a string",
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(format_args!(
            "expected {}, found a list",
            Expecting(&self)
        )))
    }
}

/// A Go `[]byte`: a standard base64 string, an array of numbers 0–255, or `null`.
#[derive(Clone, Copy)]
struct Bytes<'a> {
    name: &'a str,
    capacity: usize,
}

impl<'de> DeserializeSeed<'de> for Bytes<'_> {
    type Value = Zeroizing<Vec<u8>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bytes<'_> {
    type Value = Zeroizing<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" to be a base64 string or a list of numbers 0-255",
            self.name
        )
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Zeroizing::new(Vec::new()))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        // Go's base64 decoder skips line breaks.
        let cleaned;
        let text = if text.contains(['\r', '\n']) {
            cleaned = Zeroizing::new(text.replace(['\r', '\n'], ""));
            cleaned.as_str()
        } else {
            text
        };
        let mut out = Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(text.len())));
        GO_STD.decode_vec(text, &mut out).map_err(|e| {
            E::custom(format_args!(
                "\"{}\" is not standard base64 ({e})",
                self.name
            ))
        })?;
        Ok(out)
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        let text = Zeroizing::new(text);
        self.visit_str(&text)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.capacity));
        while let Some(b) = seq.next_element_seed(Byte { name: self.name })? {
            out.push(b);
        }
        Ok(out)
    }

    refuse_others! {
        visit_bool(bool) => "a boolean", visit_i64(i64) => "a number", visit_u64(u64) => "a number",
        visit_f64(f64) => "a number",
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(format_args!(
            "expected {}, found an object",
            Expecting(&self)
        )))
    }
}

/// One element of a byte array: a whole number 0–255 (`null` is 0, as in Go).
struct Byte<'a> {
    name: &'a str,
}

impl<'de> DeserializeSeed<'de> for Byte<'_> {
    type Value = u8;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Byte<'_> {
    type Value = u8;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" to hold whole numbers 0-255", self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<u8, E> {
        Ok(0)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u8, E> {
        u8::try_from(v).map_err(|_| {
            E::custom(format_args!(
                "expected {}, found a number above 255",
                Expecting(&self)
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u8, E> {
        u8::try_from(v).map_err(|_| {
            E::custom(format_args!(
                "expected {}, found a number out of range",
                Expecting(&self)
            ))
        })
    }

    refuse_others! {
        visit_bool(bool) => "a boolean", visit_f64(f64) => "a fraction", visit_str(&str) => "a string",
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<u8, A::Error> {
        Err(de::Error::custom(format_args!(
            "expected {}, found a list",
            Expecting(&self)
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<u8, A::Error> {
        Err(de::Error::custom(format_args!(
            "expected {}, found an object",
            Expecting(&self)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;

    const OPTIONS: &[u8] = br#"{"symkey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","digest":"sha256:0ddff955440556faf94e26c2f9fb29b62554605f4987c0e332e141eeb469c2ec","cipheroptions":{"nonce":"8PHy8/T19vf4+fr7/P3//w=="}}"#;

    fn text(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    /// The wrap request of spec §7.3 (`provider:simplecrypt:abc`), to the byte.
    #[test]
    fn wrap_request_is_byte_exact() {
        let got = wrap_request("simplecrypt", &[b"abc"], OPTIONS);
        let want = format!(
            concat!(
                r#"{{"op":"keywrap","keywrapparams":{{"ec":{{"Parameters":{{"simplecrypt":["YWJj"]}},"#,
                r#""DecryptConfig":{{"Parameters":{{}}}}}},"optsdata":"{}"}},"#,
                r#""keyunwrapparams":{{"dc":null,"annotation":null}}}}"#
            ),
            GO_STD.encode(OPTIONS)
        );
        assert_eq!(text(&got), want);
        // Several recipients of one provider travel in one request, in order; no ARGS is
        // "Enabled".
        let got = wrap_request("p", &[b"one", ENABLED, b""], b"x");
        assert_eq!(
            text(&got),
            r#"{"op":"keywrap","keywrapparams":{"ec":{"Parameters":{"p":["b25l","RW5hYmxlZA==",""]},"DecryptConfig":{"Parameters":{}}},"optsdata":"eA=="},"keyunwrapparams":{"dc":null,"annotation":null}}"#
        );
        // The result is valid JSON with exactly the members Go writes.
        let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(v["keyunwrapparams"]["dc"], serde_json::Value::Null);
    }

    /// The unwrap request of spec §7.3, to the byte; without `-k provider:NAME` the parameters
    /// are an empty map, never another scheme's keys.
    #[test]
    fn unwrap_request_is_byte_exact() {
        let got = unwrap_request("simplecrypt", &[b"extra-params"], b"provider bytes");
        assert_eq!(
            text(&got),
            r#"{"op":"keyunwrap","keywrapparams":{"ec":null,"optsdata":null},"keyunwrapparams":{"dc":{"Parameters":{"simplecrypt":["ZXh0cmEtcGFyYW1z"]}},"annotation":"cHJvdmlkZXIgYnl0ZXM="}}"#
        );
        let got = unwrap_request("simplecrypt", &[], b"\x00\xff");
        assert_eq!(
            text(&got),
            r#"{"op":"keyunwrap","keywrapparams":{"ec":null,"optsdata":null},"keyunwrapparams":{"dc":{"Parameters":{}},"annotation":"AP8="}}"#
        );
    }

    #[test]
    fn names_are_escaped_as_go_escapes_them() {
        assert_eq!(go_string("kbs"), r#""kbs""#);
        assert_eq!(
            go_string("a\"b\\c<d>e&f\u{2028}\u{1}\n\t\u{8}\u{c}é"),
            r#""a\"b\\c\u003cd\u003ee\u0026f\u2028\u0001\n\t\b\fé""#
        );
        let got = wrap_request("<x>", &[ENABLED], b"");
        assert!(text(&got).contains(r#"{"Parameters":{"\u003cx\u003e":["RW5hYmxlZA=="]}"#));
    }

    #[test]
    fn answers_as_strings_or_number_arrays() {
        assert_eq!(
            decode_wrap_response(br#"{"keywrapresults":{"annotation":"AQID"}}"#).unwrap(),
            [1, 2, 3]
        );
        assert_eq!(
            decode_wrap_response(br#"{"keywrapresults":{"annotation":[1,2,3,255,0]}}"#).unwrap(),
            [1, 2, 3, 255, 0]
        );
        assert_eq!(
            &*decode_unwrap_response(br#"{"keyunwrapresults":{"optsdata":"eyJhIjoxfQ=="}}"#)
                .unwrap(),
            br#"{"a":1}"#
        );
        assert_eq!(
            &*decode_unwrap_response(br#"{"keyunwrapresults":{"optsdata":[123,125]}}"#).unwrap(),
            b"{}"
        );
        // Go's base64 skips line breaks (an escaped \n in the JSON string).
        assert_eq!(
            decode_wrap_response(br#"{"keywrapresults":{"annotation":"AQ\nID"}}"#).unwrap(),
            [1, 2, 3]
        );
        // Non-zero trailing bits are accepted, as by Go's non-strict decoder.
        assert_eq!(
            decode_wrap_response(br#"{"keywrapresults":{"annotation":"AR=="}}"#).unwrap(),
            [1]
        );
    }

    #[test]
    fn answers_are_decoded_as_go_decodes_them() {
        // Names match case-insensitively; unknown members, even nested ones, are ignored;
        // the last matching member wins.
        let got = decode_unwrap_response(
            br#"{"KeyUnwrapResults":{"OptsData":"AQ==","x":{"y":[null]}},"keywrapresults":{"annotation":"Ag=="},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(*got, [1]);
        let got = decode_wrap_response(
            br#"{"keywrapresults":{"annotation":"AQ=="},"KEYWRAPRESULTS":{"ANNOTATION":[9]}}"#,
        )
        .unwrap();
        assert_eq!(got, [9]);
        // Nulls and missing members are "no key" (empty), not errors.
        for empty in [
            "null",
            "{}",
            r#"{"keywrapresults":null}"#,
            r#"{"keywrapresults":{}}"#,
            r#"{"keywrapresults":{"annotation":null}}"#,
            r#"{"keywrapresults":{"annotation":""}}"#,
            r#"{"keywrapresults":{"annotation":[]}}"#,
            r#"{"keyunwrapresults":{"optsdata":"AQ=="}}"#,
            " { } \n",
        ] {
            assert!(
                decode_wrap_response(empty.as_bytes()).unwrap().is_empty(),
                "{empty}"
            );
        }
        // A null element is a zero byte, as in Go.
        assert_eq!(
            decode_wrap_response(br#"{"keywrapresults":{"annotation":[1,null]}}"#).unwrap(),
            [1, 0]
        );
    }

    #[test]
    fn garbage_is_refused_in_plain_words_without_quoting_it() {
        for (answer, want) in [
            ("", "not valid JSON"),
            ("not json", "not valid JSON"),
            (
                r#"{"keywrapresults":{"annotation":"AQ=="}} trailing"#,
                "not valid JSON",
            ),
            (r#"{"keywrapresults":"#, "not valid JSON"),
            (
                "[]",
                "expected an object with \"keywrapresults\", found a list",
            ),
            (r#""SECRET""#, "found a string"),
            ("42", "found a number"),
            (
                r#"{"keywrapresults":"SECRET"}"#,
                "\"keywrapresults\" to be an object",
            ),
            (r#"{"keywrapresults":[1]}"#, "found a list"),
            (
                r#"{"keywrapresults":{"annotation":"SECRET"}}"#,
                "not standard base64",
            ),
            (
                r#"{"keywrapresults":{"annotation":"AQ"}}"#,
                "not standard base64",
            ),
            (
                r#"{"keywrapresults":{"annotation":true}}"#,
                "found a boolean",
            ),
            (r#"{"keywrapresults":{"annotation":7}}"#, "found a number"),
            (r#"{"keywrapresults":{"annotation":{}}}"#, "found an object"),
            (
                r#"{"keywrapresults":{"annotation":[256]}}"#,
                "found a number above 255",
            ),
            (r#"{"keywrapresults":{"annotation":[-1]}}"#, "out of range"),
            (
                r#"{"keywrapresults":{"annotation":[1.0]}}"#,
                "found a fraction",
            ),
            (
                r#"{"keywrapresults":{"annotation":["1"]}}"#,
                "found a string",
            ),
            (r#"{"keywrapresults":{"annotation":[[1]]}}"#, "found a list"),
        ] {
            let err = decode_wrap_response(answer.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{answer}: {err}");
            assert!(!err.contains("SECRET"), "{answer}: {err}");
        }
        let huge = vec![b' '; MAX_RESPONSE + 1];
        assert!(
            decode_wrap_response(&huge)
                .unwrap_err()
                .to_string()
                .contains("larger")
        );
        // Deep nesting never overflows the stack: refused where it would be decoded, skipped
        // without recursion where it is ignored.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode_wrap_response(deep.as_bytes()).is_err());
        let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode_wrap_response(deep.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
        let seed = br#"{"keyunwrapresults":{"optsdata":[1,2,3],"x":"AQ=="},"y":null}"#;
        let alphabet = b"{}[]\",:.-eE019AZ=nul\\\x00\xff";
        for _ in 0..2000 {
            let mut data = seed.to_vec();
            rng.mutate(&mut data, 4, Some(alphabet));
            let _ = decode_unwrap_response(&data);
            let _ = decode_wrap_response(&data);
        }
    }
}
