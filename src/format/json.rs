//! JSON exactly as Go's `encoding/json` writes it, and an object type that rewrites documents
//! without losing anything.
//!
//! Manifests and indexes must survive an encrypt/decrypt round trip byte for byte, and must
//! keep fields this crate does not know about. [`JsonObject`] keeps every member's raw text and
//! position; only members that are changed are serialised again, with Go's escaping rules, and
//! the result is written compact as Go writes it.
//!
//! Never used for secrets: the raw text of members is kept in ordinary strings.

use std::fmt;

use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// A parse or type error in a JSON document, naming the member involved.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The text is not a JSON object.
    #[error("invalid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// A member has the wrong type.
    #[error("field `{field}` {problem}")]
    Field {
        /// The member name.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A JSON object whose members keep their order and raw text.
///
/// Reading a member decodes its raw text on demand; writing one replaces its raw text. Members
/// that are never touched are written back exactly as they were read (minus insignificant
/// whitespace), so fields from newer specs or other tools are never lost or reordered.
#[derive(Clone, Default)]
pub struct JsonObject {
    members: IndexMap<String, Box<RawValue>>,
}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_go_bytes()))
    }
}

impl JsonObject {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse a JSON object. Fails on anything else, including a top-level array.
    pub fn parse(bytes: &[u8]) -> Result<Self, JsonError> {
        let members: IndexMap<String, Box<RawValue>> =
            serde_json::from_slice(bytes).map_err(JsonError::Syntax)?;
        Ok(JsonObject { members })
    }

    /// Parse the member `field` of an enclosing object as an object.
    fn parse_member(field: &str, raw: &RawValue) -> Result<Self, JsonError> {
        serde_json::from_str(raw.get())
            .map(|members| JsonObject { members })
            .map_err(|e| JsonError::Field {
                field: field.to_string(),
                problem: format!("is not a JSON object: {e}"),
            })
    }

    /// Whether the member exists (even if `null`).
    pub fn contains(&self, field: &str) -> bool {
        self.members.contains_key(field)
    }

    /// Member names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Decode a member; `Ok(None)` when it is absent or `null`.
    pub fn get<T: DeserializeOwned>(&self, field: &str) -> Result<Option<T>, JsonError> {
        match self.members.get(field) {
            None => Ok(None),
            Some(raw) if raw.get().trim() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|e| JsonError::Field {
                    field: field.to_string(),
                    problem: format!("has an unexpected value: {e}"),
                }),
        }
    }

    /// Decode a member that must be present.
    pub fn require<T: DeserializeOwned>(&self, field: &str) -> Result<T, JsonError> {
        self.get(field)?.ok_or_else(|| JsonError::Field {
            field: field.to_string(),
            problem: "is missing".to_string(),
        })
    }

    /// A member that is a string; `Ok(None)` when absent or `null`.
    pub fn get_str(&self, field: &str) -> Result<Option<String>, JsonError> {
        self.get::<String>(field)
    }

    /// A member that is a JSON object; `Ok(None)` when absent or `null`.
    pub fn get_object(&self, field: &str) -> Result<Option<JsonObject>, JsonError> {
        match self.members.get(field) {
            None => Ok(None),
            Some(raw) if raw.get().trim() == "null" => Ok(None),
            Some(raw) => Self::parse_member(field, raw).map(Some),
        }
    }

    /// A member that is an array of objects; `Ok(None)` when absent or `null`.
    pub fn get_object_array(&self, field: &str) -> Result<Option<Vec<JsonObject>>, JsonError> {
        let Some(items) = self.get::<Vec<Box<RawValue>>>(field)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, raw)| Self::parse_member(&format!("{field}[{i}]"), raw))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Set a member from a serialisable value, keeping its position if it exists, else
    /// appending it.
    pub fn set<T: Serialize + ?Sized>(&mut self, field: &str, value: &T) {
        let raw = to_raw(value);
        self.set_raw(field, raw);
    }

    /// Set a member to JSON text as Go's `json.Marshal` writes a `json.RawMessage`: compact,
    /// with `<`, `>`, `&`, U+2028 and U+2029 escaped inside strings (unlike members that are
    /// kept, whose text is never re-escaped).
    pub fn set_raw_message(&mut self, field: &str, raw: &RawValue) {
        let raw = raw_from_bytes(go_compact(raw.get()).into_bytes());
        self.set_raw(field, raw);
    }

    /// Set a member to an object.
    pub fn set_object(&mut self, field: &str, value: &JsonObject) {
        self.set_raw(field, value.to_raw());
    }

    /// Set a member to an array of objects.
    pub fn set_object_array(&mut self, field: &str, items: &[JsonObject]) {
        let mut out = Vec::with_capacity(items.iter().map(|o| o.members.len() * 64).sum());
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_go(&mut out);
        }
        out.push(b']');
        self.set_raw(field, raw_from_bytes(out));
    }

    /// Set a member, inserting a new one just after the last of `after` that is present (or
    /// at the start), so it lands where Go's struct field order would put it.
    pub fn set_after<T: Serialize + ?Sized>(&mut self, field: &str, value: &T, after: &[&str]) {
        let raw = to_raw(value);
        self.set_raw_after(field, raw, after);
    }

    /// [`JsonObject::set_after`] for an object value.
    pub fn set_object_after(&mut self, field: &str, value: &JsonObject, after: &[&str]) {
        self.set_raw_after(field, value.to_raw(), after);
    }

    fn set_raw_after(&mut self, field: &str, raw: Box<RawValue>, after: &[&str]) {
        if let Some(slot) = self.members.get_mut(field) {
            *slot = raw;
            return;
        }
        let position = after
            .iter()
            .filter_map(|k| self.members.get_index_of(*k))
            .max()
            .map_or(0, |i| i + 1);
        self.members.shift_insert(position, field.to_string(), raw);
    }

    fn set_raw(&mut self, field: &str, raw: Box<RawValue>) {
        if let Some(slot) = self.members.get_mut(field) {
            *slot = raw;
        } else {
            self.members.insert(field.to_string(), raw);
        }
    }

    /// Remove a member, keeping the order of the others.
    pub fn remove(&mut self, field: &str) -> bool {
        self.members.shift_remove(field).is_some()
    }

    /// Keep only the members for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.members.retain(|k, _| keep(k));
    }

    /// Sort members by name, as Go writes a `map[string]…`.
    pub fn sort_keys(&mut self) {
        self.members.sort_unstable_keys();
    }

    /// The object as compact JSON with Go's escaping.
    pub fn to_go_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.members.len() * 64);
        self.write_go(&mut out);
        out
    }

    fn to_raw(&self) -> Box<RawValue> {
        raw_from_bytes(self.to_go_bytes())
    }

    fn write_go(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_go_string(out, k);
            out.push(b':');
            write_compact(out, v.get(), Strings::Verbatim);
        }
        out.push(b'}');
    }
}

/// Serialise a value to JSON text with Go's escaping. Values are the crate's own types (maps of
/// strings, numbers), which always serialise.
fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    raw_from_bytes(to_go_vec(value))
}

fn raw_from_bytes(bytes: Vec<u8>) -> Box<RawValue> {
    let text = String::from_utf8(bytes).expect("JSON text written by this module is UTF-8");
    RawValue::from_string(text).expect("JSON text written by this module is valid")
}

/// Serialise `value` compactly with Go's `encoding/json` escaping (`<`, `>`, `&`, U+2028 and
/// U+2029 escaped, lowercase `\u00xx` for other control characters).
pub fn to_go_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value
        .serialize(&mut ser)
        .expect("serialising plain data to memory cannot fail");
    out
}

/// A `serde_json` formatter that escapes strings as Go's encoder does.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(fragment.len());
        escape_go_into(&mut buf, fragment);
        writer.write_all(&buf)
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape::*;
        let s: String = match char_escape {
            Quote => "\\\"".into(),
            ReverseSolidus => "\\\\".into(),
            Solidus => "/".into(),
            Backspace => "\\b".into(),
            FormFeed => "\\f".into(),
            LineFeed => "\\n".into(),
            CarriageReturn => "\\r".into(),
            Tab => "\\t".into(),
            AsciiControl(b) => format!("\\u{b:04x}"),
        };
        writer.write_all(s.as_bytes())
    }
}

/// Write `s` as a JSON string literal with Go's escaping.
pub fn write_go_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_go_into(out, s);
    out.push(b'"');
}

/// Escape the characters Go escapes and serde_json's fragments still contain. serde_json has
/// already escaped `"`, `\` and control characters before calling the formatter with a
/// fragment, so when used as a formatter only the HTML-safety escapes remain to be done here;
/// when used directly on a raw string everything is handled.
fn escape_go_into(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// How [`write_compact`] copies the contents of strings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strings {
    /// Byte for byte, escapes included: what [`JsonObject`] does for members it did not
    /// change, so that untouched values keep their exact bytes (and documents their digest).
    Verbatim,
    /// With `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`…: what Go's `json.Marshal`
    /// does to a `json.RawMessage`, which skopeo's legacy layer `json` files hold. Verbatim
    /// would differ from Go on exactly those characters, so the two are not interchangeable.
    HtmlEscaped,
}

/// Copy JSON text, dropping whitespace outside strings; string contents are copied as
/// `strings` says. This is Go's `json.Compact` (plus, with [`Strings::HtmlEscaped`], the HTML
/// escaping `json.Marshal` adds); `text` must be valid JSON.
fn write_compact(out: &mut Vec<u8>, text: &str, strings: Strings) {
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            if strings == Strings::HtmlEscaped
                && !escaped
                && matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}')
            {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                continue;
            }
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(b'"');
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
    }
}

/// Go's `json.Compact` with HTML escaping, as `json.Marshal` applies it to a `RawMessage`:
/// whitespace outside strings dropped, `<`, `>`, `&`, U+2028 and U+2029 escaped inside them.
fn go_compact(raw: &str) -> String {
    let mut out = Vec::with_capacity(raw.len());
    write_compact(&mut out, raw, Strings::HtmlEscaped);
    String::from_utf8(out).expect("compacting UTF-8 JSON text keeps it UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_documents_round_trip_byte_for_byte() {
        let doc = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x-unknown":{"b":1,"a":[1.50,"\u003c"]},"annotations":{"z":"1","a":"\u0026"}}"#;
        let obj = JsonObject::parse(doc).unwrap();
        assert_eq!(obj.to_go_bytes(), doc.to_vec());
    }

    #[test]
    fn indented_documents_become_compact() {
        let doc = b"{\n  \"a\": [ 1, 2 ],\n  \"b\": \"x y\"\n}\n";
        let obj = JsonObject::parse(doc).unwrap();
        assert_eq!(obj.to_go_bytes(), br#"{"a":[1,2],"b":"x y"}"#.to_vec());
    }

    #[test]
    fn go_escaping() {
        let v = to_go_vec(&"<a&b> \u{2028}\u{1} \"q\" \\ é");
        assert_eq!(
            String::from_utf8(v).unwrap(),
            r#""\u003ca\u0026b\u003e \u2028\u0001 \"q\" \\ é""#
        );
        let mut out = Vec::new();
        write_go_string(&mut out, "<\u{7f}\n");
        assert_eq!(out, b"\"\\u003c\x7f\\n\"".to_vec());
    }

    #[test]
    fn go_compact_escapes_like_go() {
        assert_eq!(
            go_compact("{ \"a\" : [1, 2],\n \"b\":\"x <&> \\\" \u{2028}\" }"),
            "{\"a\":[1,2],\"b\":\"x \\u003c\\u0026\\u003e \\\" \\u2028\"}"
        );
    }

    #[test]
    fn raw_messages_are_escaped_and_kept_members_are_not() {
        let mut o = JsonObject::parse(br#"{"kept": "a <b>" }"#).unwrap();
        let raw = RawValue::from_string("{ \"x\": \"<&>\" }".to_string()).unwrap();
        o.set_raw_message("new", &raw);
        assert_eq!(
            o.to_go_bytes(),
            br#"{"kept":"a <b>","new":{"x":"\u003c\u0026\u003e"}}"#.to_vec()
        );
    }

    #[test]
    fn set_after_places_member_in_go_field_order() {
        let mut o =
            JsonObject::parse(br#"{"mediaType":"m","digest":"d","size":1,"platform":{}}"#).unwrap();
        o.set_after(
            "annotations",
            &serde_json::json!({"k":"v"}),
            &["mediaType", "digest", "size", "urls"],
        );
        assert_eq!(
            o.to_go_bytes(),
            br#"{"mediaType":"m","digest":"d","size":1,"annotations":{"k":"v"},"platform":{}}"#
                .to_vec()
        );
        o.set("size", &7u64);
        assert!(
            String::from_utf8(o.to_go_bytes())
                .unwrap()
                .contains(r#""size":7,"#)
        );
    }

    #[test]
    fn typed_access_reports_field_names() {
        let o = JsonObject::parse(br#"{"size":"big","layers":[{"a":1},2]}"#).unwrap();
        let e = o.get::<u64>("size").unwrap_err().to_string();
        assert!(e.contains("`size`"), "{e}");
        let e = o.get_object_array("layers").unwrap_err().to_string();
        assert!(e.contains("layers[1]"), "{e}");
        assert!(JsonObject::parse(b"[1]").is_err());
        assert!(o.get::<u64>("missing").unwrap().is_none());
    }
}
