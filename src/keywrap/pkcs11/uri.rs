//! RFC 7512 `pkcs11:` URIs, read the way go-pkcs11uri (which ocicrypt uses) reads them.
//!
//! A URI names a token (`token=`, or `slot-id=`), an object on it (`object=` is its label,
//! `id=` its raw `CKA_ID` bytes), the PIN (`pin-value=`, or `pin-source=` naming a file) and
//! the module (`module-name=`, `module-path=`). Values are percent-decoded once, at parse time,
//! into bytes (an `id` is usually not UTF-8).
//!
//! This module must never show a PIN: `Debug` and [`Pkcs11Uri::redacted`] replace `pin-value`
//! with `<redacted>`, and PIN bytes live in [`Zeroizing`] buffers.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// Largest PIN file read through `pin-source` (real PINs are a few bytes; tokens cap them at
/// a few hundred).
const MAX_PIN_FILE: u64 = 64 * 1024;

/// The query attributes whose values are secrets.
const SECRET_ATTRIBUTES: &[&str] = &["pin-value"];

/// Why a `pkcs11:` URI cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// It does not start with `pkcs11:`.
    #[error("not a PKCS#11 URI: it must start with `pkcs11:`")]
    NoScheme,
    /// A `;`/`&` separated part has no `=`.
    #[error("malformed PKCS#11 URI: the {part} attribute `{name}` has no `=value`")]
    NoValue {
        /// `path` or `query`.
        part: &'static str,
        /// The attribute text (never a value).
        name: String,
    },
    /// An attribute appears twice.
    #[error("malformed PKCS#11 URI: the {part} attribute `{name}` appears twice")]
    Duplicate {
        /// `path` or `query`.
        part: &'static str,
        /// The attribute name.
        name: String,
    },
    /// A value has a `%` not followed by two hex digits.
    #[error("malformed PKCS#11 URI: the value of `{name}` has an invalid %-escape")]
    BadEscape {
        /// The attribute name.
        name: String,
    },
    /// An attribute's value is not of the form it must have.
    #[error("invalid PKCS#11 URI: {0}")]
    Invalid(String),
}

/// Why the PIN could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// `pin-source` is neither an absolute path nor an absolute `file:` URI.
    #[error("pin-source `{0}` must be an absolute path or an absolute file: URI")]
    NotAbsolute(String),
    /// `pin-source` uses a scheme other than `file:`.
    #[error("pin-source `{0}`: only file: URIs and absolute paths are supported")]
    UnsupportedScheme(String),
    /// The PIN file cannot be read.
    #[error("cannot read the PIN file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The OS error, or why its content was refused.
        reason: String,
    },
}

/// An attribute value: raw bytes after percent-decoding. Secrets are wiped when dropped.
type Value = Zeroizing<Vec<u8>>;

/// A parsed `pkcs11:` URI. Attributes keep the order they were written in (for messages);
/// `Debug` never shows the PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    path: Vec<(String, Value)>,
    query: Vec<(String, Value)>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pkcs11Uri").field(&self.redacted()).finish()
    }
}

impl Pkcs11Uri {
    /// Parse a URI as go-pkcs11uri's `Parse` does: `pkcs11:` then `;`-separated path
    /// attributes, optionally `?` and `&`-separated query attributes; every attribute is
    /// `name=value`, names are unique within their part, values are percent-decoded
    /// (`+` stays `+`). Then the checks of its `Validate`: `slot-id` is a number,
    /// `library-version` is `N` or `N.M`, `type` is an RFC 7512 object type, `pin-value` and
    /// `pin-source` are not both given, and `module-path` is absolute.
    pub fn parse(text: &str) -> Result<Pkcs11Uri, UriError> {
        let rest = text.strip_prefix("pkcs11:").ok_or(UriError::NoScheme)?;
        let (path_part, query_part) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri {
            path: Vec::new(),
            query: Vec::new(),
        };
        // go-pkcs11uri: an empty path is allowed, an empty query (`pkcs11:x=y?`) is not.
        if !path_part.is_empty() {
            uri.path = parse_attributes(path_part, ';', "path")?;
        }
        if let Some(q) = query_part {
            uri.query = parse_attributes(q, '&', "query")?;
        }
        uri.validate()?;
        Ok(uri)
    }

    fn validate(&self) -> Result<(), UriError> {
        let invalid = |m: String| Err(UriError::Invalid(m));
        self.slot_id()?;
        if let Some(v) = self.path_str("library-version")? {
            let ok = match v.split_once('.') {
                Some((a, b)) => all_digits(a) && all_digits(b),
                None => all_digits(v),
            };
            if !ok {
                return invalid(format!("library-version `{v}` is not N or N.M"));
            }
        }
        if let Some(v) = self.path_str("type")? {
            // RFC 7512 §2.3. (go-pkcs11uri's pattern has a typo that refuses `secret-key` and
            // `data`; ocicrypt ignores `type` anyway, so accepting them changes nothing.)
            if !matches!(
                v,
                "" | "public" | "private" | "cert" | "secret-key" | "data"
            ) {
                return invalid(format!(
                    "type `{v}` is not public, private, cert, secret-key or data"
                ));
            }
        }
        if self.query_value("pin-value").is_some() && self.query_value("pin-source").is_some() {
            return invalid("it must not give both pin-value and pin-source".into());
        }
        if let Some(v) = self.query_str("module-path")?
            && !v.starts_with('/')
        {
            return invalid(format!("module-path `{v}` must be an absolute path"));
        }
        Ok(())
    }

    /// A path attribute's value (percent-decoded bytes).
    pub fn path_value(&self, name: &str) -> Option<&[u8]> {
        find(&self.path, name)
    }

    /// A query attribute's value (percent-decoded bytes).
    pub fn query_value(&self, name: &str) -> Option<&[u8]> {
        find(&self.query, name)
    }

    fn path_str(&self, name: &str) -> Result<Option<&str>, UriError> {
        as_text(name, self.path_value(name))
    }

    fn query_str(&self, name: &str) -> Result<Option<&str>, UriError> {
        as_text(name, self.query_value(name))
    }

    /// `slot-id`: a decimal number that fits a `CK_SLOT_ID` of 32 bits, as ocicrypt requires.
    pub fn slot_id(&self) -> Result<Option<u64>, UriError> {
        let Some(v) = self.path_str("slot-id")? else {
            return Ok(None);
        };
        // Go: strconv.Atoi, then ParseInt and a range check (a leading `+` is accepted).
        let n: i64 = v
            .parse()
            .map_err(|_| UriError::Invalid(format!("slot-id `{v}` is not a number")))?;
        if n < 0 {
            return Err(UriError::Invalid(format!(
                "slot-id `{v}` is a negative number"
            )));
        }
        if n > i64::from(u32::MAX) {
            return Err(UriError::Invalid(format!(
                "slot-id `{v}` is larger than 32 bits"
            )));
        }
        Ok(Some(n as u64))
    }

    /// `token`: the token label to look for.
    pub fn token(&self) -> Option<&[u8]> {
        self.path_value("token")
    }

    /// `object`: the object label (`CKA_LABEL`).
    pub fn object(&self) -> Option<&[u8]> {
        self.path_value("object")
    }

    /// `id`: the object id (`CKA_ID`), raw bytes.
    pub fn id(&self) -> Option<&[u8]> {
        self.path_value("id")
    }

    /// `module-name` (not yet lower-cased).
    pub fn module_name(&self) -> Result<Option<&str>, UriError> {
        self.query_str("module-name")
    }

    /// `module-path`: an absolute file or directory.
    pub fn module_path(&self) -> Result<Option<PathBuf>, UriError> {
        Ok(self.query_str("module-path")?.map(PathBuf::from))
    }

    /// Whether a PIN is given (`pin-value` or `pin-source`), as go-pkcs11uri's `HasPIN`.
    pub fn has_pin(&self) -> bool {
        self.query_value("pin-value").is_some() || self.query_value("pin-source").is_some()
    }

    /// The PIN: `pin-value`, or the whole content of the `pin-source` file (no trimming: a
    /// trailing newline is part of the PIN, as in Go). `Ok(None)` when neither is given.
    pub fn pin(&self) -> Result<Option<Zeroizing<Vec<u8>>>, PinError> {
        if let Some(v) = self.query_value("pin-value") {
            return Ok(Some(Zeroizing::new(v.to_vec())));
        }
        let Some(source) = self.query_value("pin-source") else {
            return Ok(None);
        };
        let source = String::from_utf8_lossy(source).into_owned();
        let path = pin_source_path(&source)?;
        let unreadable = |reason: String| PinError::Unreadable {
            path: path.clone(),
            reason,
        };
        let mut pin = Zeroizing::new(Vec::new());
        fs::File::open(&path)
            .and_then(|f| f.take(MAX_PIN_FILE + 1).read_to_end(&mut pin))
            .map_err(|e| unreadable(e.to_string()))?;
        if pin.len() as u64 > MAX_PIN_FILE {
            return Err(unreadable(format!(
                "it is larger than {MAX_PIN_FILE} bytes"
            )));
        }
        Ok(Some(pin))
    }

    /// The URI with `pin-value` replaced by `<redacted>`, percent-encoded as go-pkcs11uri
    /// writes values (`id` always fully encoded), for messages.
    pub fn redacted(&self) -> String {
        let mut out = String::from("pkcs11:");
        for (i, (name, value)) in self.path.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(name);
            out.push('=');
            // A PIN written into the path by mistake is no less secret.
            if SECRET_ATTRIBUTES.contains(&name.as_str()) {
                out.push_str("<redacted>");
            } else {
                out.push_str(&escape(name, value, true));
            }
        }
        for (i, (name, value)) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(name);
            out.push('=');
            if SECRET_ATTRIBUTES.contains(&name.as_str()) {
                out.push_str("<redacted>");
            } else {
                out.push_str(&escape(name, value, false));
            }
        }
        out
    }

    /// Which object the URI names, in words: `label "imagekey", id %01%02`.
    pub fn object_description(&self) -> String {
        let mut parts = Vec::new();
        if let Some(label) = self.object() {
            parts.push(format!("label \"{}\"", String::from_utf8_lossy(label)));
        }
        if let Some(id) = self.id() {
            parts.push(format!("id {}", percent_all(id)));
        }
        if parts.is_empty() {
            "no label or id".into()
        } else {
            parts.join(" and ")
        }
    }

    /// Which token the URI names, in words: `token "mytoken"` or `slot 3`.
    pub fn token_description(&self) -> String {
        match (self.path_value("slot-id"), self.token()) {
            (Some(slot), _) => format!("slot {}", String::from_utf8_lossy(slot)),
            (None, Some(token)) => format!("token \"{}\"", String::from_utf8_lossy(token)),
            (None, None) => "no token".into(),
        }
    }
}

fn find<'a>(attributes: &'a [(String, Value)], name: &str) -> Option<&'a [u8]> {
    attributes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn as_text<'a>(name: &str, value: Option<&'a [u8]>) -> Result<Option<&'a str>, UriError> {
    value
        .map(|v| {
            std::str::from_utf8(v)
                .map_err(|_| UriError::Invalid(format!("the value of `{name}` is not UTF-8 text")))
        })
        .transpose()
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Split `text` on `separator` into `name=value` attributes (split at the first `=`),
/// percent-decoding values and refusing duplicates.
fn parse_attributes(
    text: &str,
    separator: char,
    part: &'static str,
) -> Result<Vec<(String, Value)>, UriError> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for attribute in text.split(separator) {
        let Some((name, raw)) = attribute.split_once('=') else {
            // Only the text before any `=` could be shown, and there is none: never echo a
            // whole attribute, it may be a PIN written without its name.
            return Err(UriError::NoValue {
                part,
                name: truncate_name(attribute),
            });
        };
        if out.iter().any(|(n, _)| n == name) {
            return Err(UriError::Duplicate {
                part,
                name: name.to_string(),
            });
        }
        let value = percent_decode(raw).ok_or_else(|| UriError::BadEscape {
            name: name.to_string(),
        })?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// An attribute text without `=` may be a mistyped secret: show only its start.
fn truncate_name(attribute: &str) -> String {
    let shown: String = attribute.chars().take(12).collect();
    if shown.len() < attribute.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

/// Percent-decode as Go's `url.PathUnescape`: `%XX` must be two hex digits, `+` is literal.
fn percent_decode(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16))?;
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn percent_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Encode a value as go-pkcs11uri's `Format` does: `id` fully, others per RFC 7512 §2.3.
fn escape(name: &str, value: &[u8], is_path: bool) -> String {
    if name == "id" {
        return percent_all(value);
    }
    let mut out = String::with_capacity(value.len());
    for &c in value {
        let plain = c.is_ascii_alphanumeric()
            || b"-._~:[]@!$'()*+,=".contains(&c)
            || (is_path && c == b'&')
            || (!is_path && b"/?|".contains(&c));
        if plain {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The file a `pin-source` names, as Go's `url.ParseRequestURI` sees it: an absolute path, or
/// `file:` with an absolute path (an authority may only be empty or `localhost`); the path
/// ends at `?` and is percent-decoded.
fn pin_source_path(source: &str) -> Result<String, PinError> {
    let scheme_end = source.find(':').filter(|&at| {
        let s = &source[..at];
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let path = match scheme_end {
        Some(at) if source[..at].eq_ignore_ascii_case("file") => {
            let rest = &source[at + 1..];
            match rest.strip_prefix("//") {
                Some(authority_and_path) => {
                    let slash = authority_and_path
                        .find('/')
                        .unwrap_or(authority_and_path.len());
                    let authority = &authority_and_path[..slash];
                    if !(authority.is_empty() || authority.eq_ignore_ascii_case("localhost")) {
                        return Err(PinError::NotAbsolute(source.to_string()));
                    }
                    &authority_and_path[slash..]
                }
                None => rest,
            }
        }
        Some(_) => return Err(PinError::UnsupportedScheme(source.to_string())),
        None => source,
    };
    let path = path.split('?').next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(PinError::NotAbsolute(source.to_string()));
    }
    let decoded = percent_decode(path).ok_or_else(|| PinError::NotAbsolute(source.to_string()))?;
    Ok(String::from_utf8_lossy(&decoded).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::XorShift;

    fn parse(text: &str) -> Pkcs11Uri {
        Pkcs11Uri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_path_attribute_is_read_and_percent_decoded() {
        let uri = parse(
            "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=f21985c5bec65cff;\
             token=ocicrypt-test;id=%2B%74%4C%87%C6;object=my%20key+1;type=public;\
             library-manufacturer=x;library-description=y;library-version=2.6;slot-id=42;\
             slot-manufacturer=z;slot-description=w",
        );
        assert_eq!(uri.path_value("model"), Some(&b"SoftHSM v2"[..]));
        assert_eq!(
            uri.path_value("manufacturer"),
            Some(&b"SoftHSM project"[..])
        );
        assert_eq!(uri.token(), Some(&b"ocicrypt-test"[..]));
        assert_eq!(uri.id(), Some(&[0x2b, 0x74, 0x4c, 0x87, 0xc6][..]));
        // `+` is a plain character in RFC 7512 values (Go's PathUnescape keeps it).
        assert_eq!(uri.object(), Some(&b"my key+1"[..]));
        assert_eq!(uri.path_value("type"), Some(&b"public"[..]));
        assert_eq!(uri.path_value("library-version"), Some(&b"2.6"[..]));
        assert_eq!(uri.slot_id().unwrap(), Some(42));
        assert_eq!(uri.path_value("slot-description"), Some(&b"w"[..]));
        assert!(!uri.has_pin());
        assert_eq!(uri.pin().unwrap(), None);
    }

    #[test]
    fn every_query_attribute_is_read() {
        let uri = parse(
            "pkcs11:token=t;object=o?pin-value=12%2634&module-name=SoftHSM2&module-path=/usr/lib/softhsm/",
        );
        assert_eq!(
            uri.pin().unwrap().as_deref().map(|p| &p[..]),
            Some(&b"12&34"[..])
        );
        assert!(uri.has_pin());
        assert_eq!(uri.module_name().unwrap(), Some("SoftHSM2"));
        assert_eq!(
            uri.module_path().unwrap(),
            Some(PathBuf::from("/usr/lib/softhsm/"))
        );
        // An empty path is allowed; an empty value too.
        let uri = parse("pkcs11:?module-name=x");
        assert_eq!(uri.token(), None);
        let uri = parse("pkcs11:object=");
        assert_eq!(uri.object(), Some(&b""[..]));
        // The value is split at the first `=` only.
        let uri = parse("pkcs11:object=a=b");
        assert_eq!(uri.object(), Some(&b"a=b"[..]));
    }

    #[test]
    fn malformed_uris_are_refused_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("foobar", "must start with `pkcs11:`"),
            ("PKCS11:token=x", "must start with `pkcs11:`"),
            ("pkcs11:token", "has no `=value`"),
            ("pkcs11:token=a;", "has no `=value`"),
            ("pkcs11:token=a?", "has no `=value`"),
            ("pkcs11:token=a?pin-value=1&", "has no `=value`"),
            ("pkcs11:token=a;token=b", "appears twice"),
            (
                "pkcs11:token=a?module-name=x&module-name=y",
                "appears twice",
            ),
            ("pkcs11:object=%zz", "invalid %-escape"),
            ("pkcs11:object=%4", "invalid %-escape"),
            ("pkcs11:object=abc%", "invalid %-escape"),
            ("pkcs11:slot-id=abc", "not a number"),
            ("pkcs11:slot-id=-1", "negative"),
            ("pkcs11:slot-id=4294967296", "larger than 32 bits"),
            ("pkcs11:slot-id=99999999999999999999", "not a number"),
            ("pkcs11:library-version=1.", "N or N.M"),
            ("pkcs11:library-version=a", "N or N.M"),
            ("pkcs11:type=key", "type `key`"),
            (
                "pkcs11:object=o?pin-value=1&pin-source=/x",
                "both pin-value and pin-source",
            ),
            (
                "pkcs11:object=o?module-path=lib.so",
                "must be an absolute path",
            ),
            ("pkcs11:token=%FF?module-path=%FF", "not UTF-8"),
        ];
        for (text, why) in cases {
            let err = Pkcs11Uri::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
        assert_eq!(parse("pkcs11:slot-id=+7").slot_id().unwrap(), Some(7));
        assert_eq!(
            parse("pkcs11:slot-id=4294967295").slot_id().unwrap(),
            Some(4_294_967_295)
        );
        for t in ["public", "private", "cert", "secret-key", "data", ""] {
            parse(&format!("pkcs11:object=o;type={t}"));
        }
    }

    #[test]
    fn the_pin_is_never_shown() {
        let uri = parse("pkcs11:token=t;object=o?pin-value=hunter2&module-name=softhsm2");
        let debug = format!("{uri:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("pin-value=<redacted>"), "{debug}");
        assert_eq!(
            uri.redacted(),
            "pkcs11:token=t;object=o?pin-value=<redacted>&module-name=softhsm2"
        );
        let misplaced = parse("pkcs11:pin-value=hunter2;object=o");
        assert!(!format!("{misplaced:?}").contains("hunter2"));
        assert!(
            !misplaced.has_pin(),
            "a PIN counts only as a query attribute, as in Go"
        );
        // An attribute without `=` is not echoed in full.
        let err = Pkcs11Uri::parse("pkcs11:object=o?hunter2-is-my-pin")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2-is-my-pin"), "{err}");
    }

    #[test]
    fn redacted_form_encodes_like_go() {
        let uri = parse("pkcs11:token=my%20token;id=%01%ab;object=a%26b?module-path=/x%20y/");
        assert_eq!(
            uri.redacted(),
            "pkcs11:token=my%20token;id=%01%AB;object=a&b?module-path=/x%20y/"
        );
        assert_eq!(uri.object_description(), "label \"a&b\" and id %01%AB");
        assert_eq!(uri.token_description(), "token \"my token\"");
        assert_eq!(
            parse("pkcs11:slot-id=3;id=%01").token_description(),
            "slot 3"
        );
    }

    #[test]
    fn pin_source_reads_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my pin");
        fs::write(&file, b"1234\n").unwrap();
        let encoded = file.display().to_string().replace(' ', "%20");
        // pin-source values are decoded twice (URI attribute, then the file: URI), as in Go.
        for source in [
            file.display().to_string(),
            format!("file://{}", file.display()),
            format!("file:{}", file.display()),
            format!("FILE://localhost{}", file.display()),
            format!("file://{encoded}").replace('%', "%25"),
        ] {
            let text = format!("pkcs11:object=o?pin-source={}", source.replace(' ', "%20"));
            let pin = parse(&text).pin().unwrap().unwrap();
            assert_eq!(&pin[..], b"1234\n", "{text}");
        }
        let cases: &[(&str, &str)] = &[
            ("relative/pin", "must be an absolute path"),
            ("file:relative", "must be an absolute path"),
            ("file://otherhost/pin", "must be an absolute path"),
            ("env:PIN", "only file: URIs"),
            ("https://example.com/pin", "only file: URIs"),
            (
                "/nonexistent/pin",
                "cannot read the PIN file /nonexistent/pin",
            ),
        ];
        for (source, why) in cases {
            let err = parse(&format!("pkcs11:object=o?pin-source={source}"))
                .pin()
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{source}: {err}");
        }
        let big = dir.path().join("big");
        fs::write(&big, vec![b'1'; MAX_PIN_FILE as usize + 1]).unwrap();
        let err = parse(&format!("pkcs11:object=o?pin-source={}", big.display()))
            .pin()
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"pkcs11:;?&=%0aF/ -xyz\xc3\xa9";
        for _ in 0..5000 {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len).map(|_| *rng.pick(alphabet)).collect();
            let text = format!("pkcs11:{}", String::from_utf8_lossy(&bytes));
            if let Ok(uri) = Pkcs11Uri::parse(&text) {
                let _ = uri.redacted();
                let _ = uri.slot_id();
                let _ = uri.module_name();
                let _ = uri.object_description();
            }
        }
    }
}
