//! The key-provider configuration file (`OCICRYPT_KEYPROVIDER_CONFIG`), read as Go ocicrypt
//! reads it.
//!
//! ```json
//! {"key-providers": {
//!     "mycmd":  {"cmd": {"path": "/usr/local/bin/my-provider", "args": ["--x"]}},
//!     "mygrpc": {"grpc": "localhost:50051",
//!                "grpc-tls": {"root-ca-file": "ca.pem", "cert-file": "c.pem", "key-file": "k.pem",
//!                             "server-name": "kp.example", "insecure-skip-verify": false}}}}
//! ```
//!
//! Decoding follows Go's `encoding/json`: member names match case-insensitively, unknown members
//! are ignored, `null` means "not set", and a member of the wrong type makes the whole file
//! unusable (Go then registers no provider at all; so do we, with a warning). `cmd` wins over
//! `grpc` when both are set. One extension, ignored by Go: `"layercrypt-timeout-seconds"` in a
//! provider entry overrides the [`DEFAULT_TIMEOUT`] for that provider.
//!
//! This module only parses; it never runs or connects to anything.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// How long a provider may take to answer one request before layercrypt gives up on it: long
/// enough for a provider that asks a remote key broker (attestation included), short enough
/// that a hung provider cannot hang a run forever. Override per provider with
/// `"layercrypt-timeout-seconds"`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest configuration file read (a real one is a few hundred bytes).
const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// One `key-providers` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The provider name: the `NAME` of `provider:NAME` and of the annotation
    /// `org.opencontainers.image.enc.keys.provider.NAME`.
    pub name: String,
    /// How the provider is reached.
    pub transport: Transport,
    /// How long one request may take (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
}

/// How a provider is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A program: the request JSON on its stdin, the response JSON on its stdout.
    Command(CommandConfig),
    /// A gRPC `keyprovider.KeyProviderService`.
    Grpc(GrpcConfig),
    /// The entry names neither `cmd` nor `grpc` (Go registers it, and every call fails).
    Unset,
}

/// A command provider (`"cmd": {"path": …, "args": […]}`).
#[derive(Clone, PartialEq, Eq)]
pub struct CommandConfig {
    /// The program (run as is: an absolute path, or a name looked up in `PATH`).
    pub path: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

/// A gRPC provider (`"grpc": TARGET`, optional `"grpc-tls"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcConfig {
    /// The dial target as Go's gRPC takes it: `host:port`, `dns:[//authority/]host:port`,
    /// `passthrough:///host:port`, `unix:PATH` or `unix:///ABSOLUTE-PATH`.
    pub target: String,
    /// TLS settings; `None`: plaintext.
    pub tls: Option<GrpcTls>,
}

/// `"grpc-tls"`: TLS for a gRPC provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrpcTls {
    /// PEM file of the CA certificates to trust instead of the system's (`root-ca-file`).
    pub root_ca_file: Option<PathBuf>,
    /// PEM client certificate (`cert-file`), used together with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (`key-file`).
    pub key_file: Option<PathBuf>,
    /// The name the server certificate must carry (`server-name`); default: the target's host
    /// (`localhost` for unix sockets), as Go's gRPC does.
    pub server_name: Option<String>,
    /// `insecure-skip-verify`: accept any server certificate. The connection is then encrypted
    /// but not authenticated: anyone who can intercept it can pose as the provider and learn
    /// every layer key sent to it.
    pub insecure_skip_verify: bool,
}

/// Why the configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any sensible configuration.
    #[error("{} is larger than {MAX_CONFIG_SIZE} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a valid configuration.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
}

impl fmt::Debug for CommandConfig {
    // Arguments may carry credentials (a token for a key broker): show only how many.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandConfig")
            .field("path", &self.path)
            .field("args", &format_args!("<{} redacted>", self.args.len()))
            .finish()
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Command(c) => write!(f, "command {}", c.path.display()),
            Transport::Grpc(g) => write!(
                f,
                "gRPC {}{}",
                g.target,
                if g.tls.is_some() { " (TLS)" } else { "" }
            ),
            Transport::Unset => f.write_str("no transport"),
        }
    }
}

/// Read the configuration file at `path`. A file that does not exist yields `Ok(None)`, as in
/// Go (no providers, nothing to warn about); any other problem is an error the caller turns
/// into a warning.
pub fn load(path: &Path) -> Result<Option<Vec<ProviderConfig>>, ConfigError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut data = Vec::new();
    file.take(MAX_CONFIG_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if data.len() as u64 > MAX_CONFIG_SIZE {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    parse(&data)
        .map(Some)
        .map_err(|reason| ConfigError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
}

/// Parse a configuration document; providers come sorted by name.
pub fn parse(data: &[u8]) -> Result<Vec<ProviderConfig>, String> {
    let root: Value = serde_json::from_slice(data).map_err(|e| format!("not valid JSON: {e}"))?;
    let root = match &root {
        // `null` decodes into Go's struct as "nothing set".
        Value::Null => return Ok(Vec::new()),
        Value::Object(o) => o,
        other => return Err(format!("expected a JSON object, found {}", kind(other))),
    };
    let providers = match member(root, "key-providers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Err(format!(
                "\"key-providers\" must be an object, found {}",
                kind(other)
            ));
        }
    };
    // A JSON object may repeat a name; Go keeps the last one, and so does a BTreeMap insert.
    let mut out = BTreeMap::new();
    for (name, attrs) in providers {
        out.insert(name.clone(), provider(name, attrs)?);
    }
    Ok(out.into_values().collect())
}

fn provider(name: &str, attrs: &Value) -> Result<ProviderConfig, String> {
    let at = |what: &str| format!("key provider \"{name}\": {what}");
    let attrs = match attrs {
        // Go decodes `null` into a zero KeyProviderAttrs: registered, but unusable.
        Value::Null => {
            return Ok(ProviderConfig {
                name: name.to_string(),
                transport: Transport::Unset,
                timeout: DEFAULT_TIMEOUT,
            });
        }
        Value::Object(o) => o,
        other => return Err(at(&format!("expected an object, found {}", kind(other)))),
    };
    let timeout = match member(attrs, "layercrypt-timeout-seconds") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| *s > 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                at("\"layercrypt-timeout-seconds\" must be a number of seconds, above 0 and at most 86400")
            })?,
        Some(other) => {
            return Err(at(&format!(
                "\"layercrypt-timeout-seconds\" must be a number, found {}",
                kind(other)
            )));
        }
    };
    let command = match member(attrs, "cmd") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => Some(CommandConfig {
            path: PathBuf::from(string(c, "path").map_err(|e| at(&format!("cmd: {e}")))?),
            args: strings(c, "args").map_err(|e| at(&format!("cmd: {e}")))?,
        }),
        Some(other) => {
            return Err(at(&format!(
                "\"cmd\" must be an object, found {}",
                kind(other)
            )));
        }
    };
    let target = string(attrs, "grpc").map_err(|e| at(&e))?;
    let tls = match member(attrs, "grpc-tls") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => {
            let tls_err = |e: String| at(&format!("grpc-tls: {e}"));
            let path = |n: &str| -> Result<Option<PathBuf>, String> {
                let s = string(t, n).map_err(tls_err)?;
                Ok((!s.is_empty()).then(|| PathBuf::from(s)))
            };
            let server_name = string(t, "server-name").map_err(tls_err)?;
            let insecure_skip_verify = match member(t, "insecure-skip-verify") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(tls_err(format!(
                        "\"insecure-skip-verify\" must be true or false, found {}",
                        kind(other)
                    )));
                }
            };
            Some(GrpcTls {
                root_ca_file: path("root-ca-file")?,
                cert_file: path("cert-file")?,
                key_file: path("key-file")?,
                server_name: (!server_name.is_empty()).then_some(server_name),
                insecure_skip_verify,
            })
        }
        Some(other) => {
            return Err(at(&format!(
                "\"grpc-tls\" must be an object, found {}",
                kind(other)
            )));
        }
    };
    // Go: `if Command != nil { cmd } else if Grpc != "" { grpc }`.
    let transport = match (command, target.is_empty()) {
        (Some(c), _) => Transport::Command(c),
        (None, false) => Transport::Grpc(GrpcConfig { target, tls }),
        (None, true) => Transport::Unset,
    };
    Ok(ProviderConfig {
        name: name.to_string(),
        transport,
        timeout,
    })
}

/// The member `name` of `object`, matched as Go's `encoding/json` matches struct fields:
/// case-insensitively (Unicode simple folding); when several members match, the last wins.
pub(crate) fn member<'a>(
    object: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Option<&'a Value> {
    object
        .iter()
        .rev()
        .find(|(k, _)| fold_eq(k, name))
        .map(|(_, v)| v)
}

/// Whether two member names are equal under Go's `encoding/json` folding (`bytes.EqualFold`):
/// case-insensitive, with the Kelvin sign matching `k` and the long s matching `s`.
pub(crate) fn fold_eq(a: &str, b: &str) -> bool {
    fn fold(c: char) -> char {
        match c {
            '\u{212A}' => 'k',
            '\u{017F}' => 's',
            c => {
                let mut lower = c.to_lowercase();
                match (lower.next(), lower.next()) {
                    (Some(l), None) => l,
                    _ => c,
                }
            }
        }
    }
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// A string member; absent or `null` is the empty string (Go's zero value).
fn string(object: &serde_json::Map<String, Value>, name: &str) -> Result<String, String> {
    match member(object, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "\"{name}\" must be a string, found {}",
            kind(other)
        )),
    }
}

/// A list-of-strings member; absent or `null` is empty.
fn strings(object: &serde_json::Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    match member(object, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                // Go leaves a `null` element of a []string as "".
                Value::Null => Ok(String::new()),
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "\"{name}\" must hold strings, found {}",
                    kind(other)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "\"{name}\" must be a list of strings, found {}",
            kind(other)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> ProviderConfig {
        let mut all = parse(json.as_bytes()).unwrap();
        assert_eq!(all.len(), 1, "{json}");
        all.remove(0)
    }

    #[test]
    fn the_documented_example_parses() {
        let all = parse(
            br#"{"key-providers": {
                "mycmd":  {"cmd": {"path": "/usr/local/bin/my-provider", "args": ["--x"]}},
                "mygrpc": {"grpc": "localhost:50051",
                           "grpc-tls": {"root-ca-file": "ca.pem", "cert-file": "c.pem",
                                        "key-file": "k.pem", "server-name": "kp.example",
                                        "insecure-skip-verify": false}}}}"#,
        )
        .unwrap();
        assert_eq!(
            all,
            vec![
                ProviderConfig {
                    name: "mycmd".into(),
                    transport: Transport::Command(CommandConfig {
                        path: "/usr/local/bin/my-provider".into(),
                        args: vec!["--x".into()],
                    }),
                    timeout: DEFAULT_TIMEOUT,
                },
                ProviderConfig {
                    name: "mygrpc".into(),
                    transport: Transport::Grpc(GrpcConfig {
                        target: "localhost:50051".into(),
                        tls: Some(GrpcTls {
                            root_ca_file: Some("ca.pem".into()),
                            cert_file: Some("c.pem".into()),
                            key_file: Some("k.pem".into()),
                            server_name: Some("kp.example".into()),
                            insecure_skip_verify: false,
                        }),
                    }),
                    timeout: DEFAULT_TIMEOUT,
                },
            ]
        );
    }

    #[test]
    fn cmd_wins_over_grpc() {
        let p = one(r#"{"key-providers":{"p":{"grpc":"localhost:1","cmd":{"path":"/bin/kp"}}}}"#);
        assert!(matches!(p.transport, Transport::Command(c) if c.path == Path::new("/bin/kp")));
        // Even an empty cmd object wins (Go checks `Command != nil`); it fails when used.
        let p = one(r#"{"key-providers":{"p":{"grpc":"localhost:1","cmd":{}}}}"#);
        assert!(matches!(p.transport, Transport::Command(c) if c.path.as_os_str().is_empty()));
    }

    #[test]
    fn decoding_is_as_lenient_as_go() {
        // Case-insensitive names (the last match wins), unknown members, nulls.
        let p = one(
            r#"{"Key-Providers":{"p":{"GRPC":"a:1","gRPC":"b:2","extra":[1,{}],"cmd":null,
                "grpc-tls":null}},"other":true}"#,
        );
        assert_eq!(
            p.transport,
            Transport::Grpc(GrpcConfig {
                target: "b:2".into(),
                tls: None
            })
        );
        // Kelvin sign and long s fold like k and s.
        let p = one("{\"\u{212A}ey-provider\u{017F}\":{\"p\":{\"cmd\":{\"path\":\"x\"}}}}");
        assert!(matches!(p.transport, Transport::Command(_)));
        // Neither transport, or a null entry: registered, unusable.
        assert_eq!(
            one(r#"{"key-providers":{"p":{}}}"#).transport,
            Transport::Unset
        );
        assert_eq!(
            one(r#"{"key-providers":{"p":null}}"#).transport,
            Transport::Unset
        );
        // No providers at all.
        assert!(parse(b"{}").unwrap().is_empty());
        assert!(parse(b"null").unwrap().is_empty());
        assert!(parse(br#"{"key-providers":null}"#).unwrap().is_empty());
        // Providers come sorted by name; a repeated name keeps the last entry.
        let all = parse(
            br#"{"key-providers":{"b":{"cmd":{"path":"1"}},"a":{"grpc":"x:1"},"b":{"cmd":{"path":"2"}}}}"#,
        )
        .unwrap();
        assert_eq!(all[0].name, "a");
        assert!(matches!(&all[1].transport, Transport::Command(c) if c.path == Path::new("2")));
    }

    #[test]
    fn debug_hides_command_arguments() {
        let p =
            one(r#"{"key-providers":{"p":{"cmd":{"path":"/bin/kp","args":["--token","T0K3N"]}}}}"#);
        let text = format!("{p:?}");
        assert!(
            text.contains("/bin/kp") && text.contains("<2 redacted>"),
            "{text}"
        );
        assert!(!text.contains("T0K3N"), "{text}");
    }

    #[test]
    fn the_timeout_extension() {
        let p =
            one(r#"{"key-providers":{"p":{"cmd":{"path":"x"},"layercrypt-timeout-seconds":0.5}}}"#);
        assert_eq!(p.timeout, Duration::from_millis(500));
        for bad in ["0", "-1", "1e9", "\"60\"", "true"] {
            let json = format!(
                r#"{{"key-providers":{{"p":{{"cmd":{{"path":"x"}},"layercrypt-timeout-seconds":{bad}}}}}}}"#
            );
            let err = parse(json.as_bytes()).unwrap_err();
            assert!(err.contains("layercrypt-timeout-seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_documents_say_what_is_wrong() {
        for (json, want) in [
            ("", "not valid JSON"),
            ("{", "not valid JSON"),
            ("[]", "expected a JSON object, found a list"),
            (
                r#"{"key-providers":[]}"#,
                "\"key-providers\" must be an object, found a list",
            ),
            (
                r#"{"key-providers":{"p":"cmd"}}"#,
                "key provider \"p\": expected an object",
            ),
            (
                r#"{"key-providers":{"p":{"cmd":"/bin/x"}}}"#,
                "\"cmd\" must be an object, found a string",
            ),
            (
                r#"{"key-providers":{"p":{"cmd":{"path":1}}}}"#,
                "cmd: \"path\" must be a string, found a number",
            ),
            (
                r#"{"key-providers":{"p":{"cmd":{"path":"x","args":"a"}}}}"#,
                "\"args\" must be a list of strings",
            ),
            (
                r#"{"key-providers":{"p":{"cmd":{"path":"x","args":[1]}}}}"#,
                "\"args\" must hold strings",
            ),
            (
                r#"{"key-providers":{"p":{"grpc":50051}}}"#,
                "\"grpc\" must be a string, found a number",
            ),
            (
                r#"{"key-providers":{"p":{"grpc":"x:1","grpc-tls":true}}}"#,
                "\"grpc-tls\" must be an object",
            ),
            (
                r#"{"key-providers":{"p":{"grpc":"x:1","grpc-tls":{"insecure-skip-verify":"yes"}}}}"#,
                "must be true or false",
            ),
        ] {
            let err = parse(json.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().unwrap();
        // A missing file is not an error (Go: no providers, silently).
        assert!(load(&dir.path().join("nope.json")).unwrap().is_none());
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{oops").unwrap();
        let err = load(&bad).unwrap_err().to_string();
        assert!(err.starts_with(&bad.display().to_string()), "{err}");
        assert!(err.contains("not valid JSON"), "{err}");
        // A directory cannot be read as a file.
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_CONFIG_SIZE as usize + 1]).unwrap();
        assert!(matches!(load(&big), Err(ConfigError::TooLarge { .. })));
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"key-providers":{"p":{"cmd":{"path":"x"}}}}"#).unwrap();
        assert_eq!(load(&good).unwrap().unwrap().len(), 1);
    }
}
