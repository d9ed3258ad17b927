//! ocicrypt's PKCS#11 YAML files: key files (`pkcs11.uri`, `module.env`) and the module
//! policy (`pkcs11.module-directories`, `pkcs11.allowed-module-paths`), where the policy is
//! looked for, and how a URI's module is found and checked against it.
//!
//! Loading a PKCS#11 module runs its code inside this process, so a module is only ever
//! chosen through [`find_module`], which refuses anything the policy does not allow. This
//! module must never load a module itself, and never put a key file's text (which may hold a
//! PIN) into an error message.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::uri::{Pkcs11Uri, UriError};

/// Largest YAML file (key file or policy) read; real ones are a few hundred bytes.
pub const MAX_YAML_FILE: u64 = 64 * 1024;

/// The environment variable naming the policy file (or `internal`).
pub const POLICY_ENV: &str = "OCICRYPT_CONFIG";
/// The policy file name searched for in the configuration directories.
pub const POLICY_FILE_NAME: &str = "ocicrypt.conf";

/// The YAML options: no snippets of the input in error messages (a key file holds a PIN), and
/// serde-saphyr's default budgets against alias bombs and deep nesting.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options
}

/// A YAML parser message, with anything that looks like a PIN taken out (serde errors quote
/// the offending scalar, which may be the whole URI).
fn yaml_error(e: &serde_saphyr::Error) -> String {
    redact_pins(&e.to_string())
}

/// Replace the value of every `pin-value=` in `text` with `<redacted>`.
pub fn redact_pins(text: &str) -> String {
    const NEEDLE: &str = "pin-value=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(NEEDLE) {
        out.push_str(&rest[..at + NEEDLE.len()]);
        out.push_str("<redacted>");
        let tail = &rest[at + NEEDLE.len()..];
        let end = tail
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c == '`' || c.is_whitespace())
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// ocicrypt's key file layout (`crypto/pkcs11.Pkcs11KeyFile`); unknown fields are ignored, as
/// Go's yaml.v3 does.
#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyFileYaml {
    pkcs11: Option<KeyFileUri>,
    module: Option<KeyFileModule>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyFileUri {
    uri: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyFileModule {
    env: Option<BTreeMap<String, String>>,
}

/// A parsed PKCS#11 key file: the URI and the environment its module needs.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// The object's URI.
    pub uri: Pkcs11Uri,
    /// `module.env`, sorted by name.
    pub env: Vec<(String, String)>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("uri", &self.uri)
            .field("env", &self.env)
            .finish()
    }
}

/// Why a key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Not YAML of the expected shape.
    #[error("not an ocicrypt PKCS#11 key file (YAML with pkcs11.uri): {0}")]
    Yaml(String),
    /// No `pkcs11.uri`.
    #[error("the PKCS#11 key file has no pkcs11.uri")]
    NoUri,
    /// The URI is malformed.
    #[error("pkcs11.uri: {0}")]
    Uri(#[from] UriError),
    /// The URI cannot name an object.
    #[error("pkcs11.uri names {0}")]
    Incomplete(String),
    /// A `module.env` name cannot be an environment variable.
    #[error("module.env: `{0}` is not a valid environment variable name")]
    BadEnvName(String),
    /// A `module.env` value cannot be an environment variable's value.
    #[error("module.env: the value of {0} contains a NUL byte")]
    BadEnvValue(String),
}

impl KeyFile {
    /// Parse an ocicrypt PKCS#11 key file. Beyond what Go checks when reading the file, the URI
    /// must be usable: an `id` or `object`, a `slot-id` or `token`, and a `module-name` or
    /// `module-path` (Go finds these out only when the key is used).
    pub fn parse(data: &[u8]) -> Result<KeyFile, KeyFileError> {
        let text = std::str::from_utf8(data)
            .map_err(|_| KeyFileError::Yaml("the file is not UTF-8 text".into()))?;
        let yaml: KeyFileYaml = serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| KeyFileError::Yaml(yaml_error(&e)))?;
        // The URI text may hold the PIN: wiped once parsed.
        let uri = Zeroizing::new(yaml.pkcs11.and_then(|p| p.uri).unwrap_or_default());
        if uri.is_empty() {
            return Err(KeyFileError::NoUri);
        }
        let uri = Pkcs11Uri::parse(&uri)?;
        if uri.id().is_none() && uri.object().is_none() {
            return Err(KeyFileError::Incomplete(
                "no object: it needs an `id` or an `object` (label) attribute".into(),
            ));
        }
        if uri.slot_id()?.is_none() && uri.token().is_none() {
            return Err(KeyFileError::Incomplete(
                "no token: it needs a `token` (label) or `slot-id` attribute".into(),
            ));
        }
        if uri.module_name()?.is_none() && uri.module_path()?.is_none() {
            return Err(KeyFileError::Incomplete(
                "no module: it needs a `module-name` or `module-path` query attribute".into(),
            ));
        }
        let env: Vec<(String, String)> = yaml
            .module
            .and_then(|m| m.env)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for (name, value) in &env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(KeyFileError::BadEnvName(name.clone()));
            }
            if value.contains('\0') {
                return Err(KeyFileError::BadEnvValue(name.clone()));
            }
        }
        Ok(KeyFile { uri, env })
    }
}

/// ocicrypt's policy file layout (`config/pkcs11config.OcicryptConfig`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicyYaml {
    pkcs11: Option<PolicySection>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicySection {
    #[serde(rename = "module-directories")]
    module_directories: Option<Vec<String>>,
    #[serde(rename = "allowed-module-paths")]
    allowed_module_paths: Option<Vec<String>>,
}

/// Which PKCS#11 modules may be loaded, and where they are looked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Directories searched for a `module-name`.
    pub module_directories: Vec<String>,
    /// Allowed modules: exact paths, or directories (ending in `/`) whose direct entries are
    /// allowed.
    pub allowed_module_paths: Vec<String>,
    /// Where the policy came from (a file, or `OCICRYPT_CONFIG=internal`), for messages.
    pub origin: String,
}

/// Why no usable policy was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No policy file anywhere.
    #[error(
        "no PKCS#11 module policy was found (looked for {}); PKCS#11 modules are only loaded when a policy allows them. Set OCICRYPT_CONFIG=internal for the built-in policy (the usual module directories), or set OCICRYPT_CONFIG to a policy file",
        searched.join(", ")
    )]
    NotFound {
        /// What was looked for.
        searched: Vec<String>,
    },
    /// A policy file exists but cannot be read or parsed.
    #[error("PKCS#11 module policy {path}: {reason}")]
    Unusable {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl Policy {
    /// Parse a policy file's content.
    pub fn parse(data: &[u8], origin: &str) -> Result<Policy, PolicyError> {
        let unusable = |reason: String| PolicyError::Unusable {
            path: origin.to_string(),
            reason,
        };
        let text =
            std::str::from_utf8(data).map_err(|_| unusable("the file is not UTF-8 text".into()))?;
        let yaml: PolicyYaml = serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| unusable(format!("not a valid policy file: {}", yaml_error(&e))))?;
        let section = yaml.pkcs11.unwrap_or_default();
        Ok(Policy {
            module_directories: section.module_directories.unwrap_or_default(),
            allowed_module_paths: section.allowed_module_paths.unwrap_or_default(),
            origin: origin.to_string(),
        })
    }

    /// ocicrypt's built-in policy (`OCICRYPT_CONFIG=internal`): the usual module directories
    /// of Linux distributions, each both searched and allowed.
    pub fn internal() -> Policy {
        let mut dirs: Vec<String> = [
            "/usr/lib64/pkcs11/",     // Fedora, RHEL, openSUSE
            "/usr/lib/pkcs11/",       // Fedora, Arch Linux
            "/usr/local/lib/pkcs11/", // local installs
            "/usr/lib/softhsm/",      // Debian, Ubuntu
        ]
        .map(String::from)
        .to_vec();
        if let Some(triplet) = debian_multiarch() {
            dirs.push(format!("/usr/lib/{triplet}/"));
        }
        Policy {
            module_directories: dirs.clone(),
            allowed_module_paths: dirs,
            origin: format!("{POLICY_ENV}=internal"),
        }
    }

    /// Whether `path` may be loaded: an exact entry, or an entry ending in `/` that is its
    /// directory (not a parent of it), compared as strings, as go-pkcs11uri does.
    pub fn allows(&self, path: &str) -> bool {
        self.allowed_module_paths.iter().any(|allowed| {
            if allowed == path {
                return true;
            }
            // An empty entry allows nothing (Go would index it out of range).
            allowed.ends_with('/')
                && path
                    .strip_prefix(allowed.as_str())
                    .is_some_and(|rest| !rest.contains('/'))
        })
    }
}

/// The `/usr/lib/<triplet>/` directory ocicrypt adds for this architecture (Go's mapping of
/// GOARCH; 32-bit ARM gets `arm-linux-gnu`, as in Go).
fn debian_multiarch() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "powerpc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        _ => return None,
    };
    Some(format!("{arch}-linux-gnu"))
}

/// Where the policy is looked for, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySearch {
    /// `OCICRYPT_CONFIG`: `internal` or a file.
    pub ocicrypt_config: Option<String>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// The system-wide file.
    pub system: PathBuf,
}

impl PolicySearch {
    /// The search ocicrypt does, from `OCICRYPT_CONFIG` (given) and `XDG_CONFIG_HOME`/`HOME`
    /// (from the process environment).
    pub fn new(ocicrypt_config: Option<String>) -> PolicySearch {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        PolicySearch {
            ocicrypt_config: ocicrypt_config.filter(|v| !v.is_empty()),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            home: var("HOME"),
            // Go joins the relative "etc" and "ocicrypt.conf", so it reads etc/ocicrypt.conf
            // below the current directory (a bug; its comments name /etc). The absolute path
            // is what an administrator expects.
            system: PathBuf::from("/etc").join(POLICY_FILE_NAME),
        }
    }

    /// The candidate files, in order.
    fn candidates(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(c) = &self.ocicrypt_config {
            out.push(PathBuf::from(c));
        }
        if let Some(x) = &self.xdg_config_home {
            out.push(x.join(POLICY_FILE_NAME));
        }
        if let Some(h) = &self.home {
            out.push(h.join(".config").join(POLICY_FILE_NAME));
        }
        out.push(self.system.clone());
        out
    }

    /// Find and read the policy: `OCICRYPT_CONFIG=internal` is the built-in one; otherwise the
    /// first candidate file that exists (a file that does not exist is skipped, as in Go; one
    /// that exists but cannot be read or parsed is an error).
    pub fn load(&self) -> Result<Policy, PolicyError> {
        if self.ocicrypt_config.as_deref() == Some("internal") {
            return Ok(Policy::internal());
        }
        let mut searched = Vec::new();
        for path in self.candidates() {
            let shown = path.display().to_string();
            match fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    searched.push(shown);
                    continue;
                }
                _ => {}
            }
            let data = read_bounded(&path).map_err(|reason| PolicyError::Unusable {
                path: shown.clone(),
                reason,
            })?;
            return Policy::parse(&data, &shown);
        }
        Err(PolicyError::NotFound { searched })
    }
}

/// Read a small file, refusing one larger than [`MAX_YAML_FILE`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_YAML_FILE + 1).read_to_end(&mut data))
        .map_err(|e| e.to_string())?;
    if data.len() as u64 > MAX_YAML_FILE {
        return Err(format!("the file is larger than {MAX_YAML_FILE} bytes"));
    }
    Ok(data)
}

/// Why no module could be chosen for a URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// `module-path` cannot be examined.
    #[error("module-path {0} is not accessible")]
    Inaccessible(String),
    /// `module-path` is neither a file nor a directory.
    #[error("module-path {0} is neither a file nor a directory")]
    BadFileType(String),
    /// The module found (or named) is not allowed.
    #[error(
        "the PKCS#11 module {path} is not allowed by the policy ({origin}); add it (or its directory, ending in /) to pkcs11.allowed-module-paths"
    )]
    NotAllowed {
        /// The module.
        path: String,
        /// Where the policy came from.
        origin: String,
    },
    /// No `module-name` to search for.
    #[error("the URI has no module-name to search for")]
    NoModuleName,
    /// No file matched.
    #[error("no PKCS#11 module named `{name}` was found in {} (the policy's module-directories, {origin}); a name matches a file whose lower-cased name contains it followed by `.` or nothing, so `softhsm2` finds libsofthsm2.so", if dirs.is_empty() { "no directory".to_string() } else { dirs.join(", ") })]
    NotFound {
        /// The lower-cased module name.
        name: String,
        /// The directories searched.
        dirs: Vec<String>,
        /// Where the policy came from.
        origin: String,
    },
    /// The URI itself is unusable.
    #[error(transparent)]
    Uri(#[from] UriError),
}

/// The module file for `uri` under `policy`, as go-pkcs11uri's `GetModule` chooses it:
///
/// * `module-path` naming a file: that file, if the policy allows it;
/// * `module-path` naming a directory: search only there; otherwise search the policy's
///   `module-directories`, in order, each directory's entries sorted by name;
/// * a file matches when its lower-cased name contains the lower-cased `module-name`, and the
///   first occurrence is followed by the end of the name or a `.` (so `softhsm` does not match
///   `libsofthsm2.so`); the first match is the module, and it must be allowed.
pub fn find_module(uri: &Pkcs11Uri, policy: &Policy) -> Result<PathBuf, ModuleError> {
    let searchdirs: Vec<String> = match uri.module_path()? {
        Some(path) => {
            let shown = path.display().to_string();
            let meta = fs::metadata(&path).map_err(|_| ModuleError::Inaccessible(shown.clone()))?;
            if meta.is_file() {
                return if policy.allows(&shown) {
                    Ok(path)
                } else {
                    Err(ModuleError::NotAllowed {
                        path: shown,
                        origin: policy.origin.clone(),
                    })
                };
            }
            if !meta.is_dir() {
                return Err(ModuleError::BadFileType(shown));
            }
            vec![shown]
        }
        None => policy.module_directories.clone(),
    };
    let name = uri
        .module_name()?
        .ok_or(ModuleError::NoModuleName)?
        .to_lowercase();
    for dir in &searchdirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for file in names {
            if !module_name_matches(&file, &name) {
                continue;
            }
            let path = clean_join(dir, &file);
            return if policy.allows(&path) {
                Ok(PathBuf::from(path))
            } else {
                Err(ModuleError::NotAllowed {
                    path,
                    origin: policy.origin.clone(),
                })
            };
        }
    }
    Err(ModuleError::NotFound {
        name,
        dirs: searchdirs,
        origin: policy.origin.clone(),
    })
}

/// go-pkcs11uri's name rule: the first occurrence of `name` (lower case) in the lower-cased
/// file name must end the name or be followed by `.`.
pub fn module_name_matches(file: &str, name: &str) -> bool {
    let file = file.to_lowercase();
    match file.find(name) {
        Some(at) => {
            let after = &file[at + name.len()..];
            after.is_empty() || after.starts_with('.')
        }
        None => false,
    }
}

/// `dir` joined with `file` and cleaned lexically, as Go's `filepath.Join` does (`//` and `.`
/// removed, `..` resolved), so the allow-list compares the same strings Go compares.
fn clean_join(dir: &str, file: &str) -> String {
    let joined = format!("{dir}/{file}");
    let absolute = joined.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    if absolute {
        format!("/{body}")
    } else if body.is_empty() {
        ".".into()
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Pkcs11Uri {
        Pkcs11Uri::parse(text).unwrap()
    }

    fn policy(dirs: &[&str], allowed: &[&str]) -> Policy {
        Policy {
            module_directories: dirs.iter().map(|s| s.to_string()).collect(),
            allowed_module_paths: allowed.iter().map(|s| s.to_string()).collect(),
            origin: "test policy".into(),
        }
    }

    #[test]
    fn key_files_as_ocicrypt_documents_them() {
        let doc = b"pkcs11:\n  uri: pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=ee777786c4a769fb;token=mytoken;id=%A9%8B%58;object=imagekey;type=private?pin-value=my-pin&module-name=softhsm2\nmodule:\n  env:\n    SOFTHSM2_CONF: /home/user/.config/softhsm2/softhsm2.conf\n";
        let key = KeyFile::parse(doc).unwrap();
        assert_eq!(key.uri.token(), Some(&b"mytoken"[..]));
        assert_eq!(key.uri.id(), Some(&[0xa9, 0x8b, 0x58][..]));
        assert_eq!(
            key.env,
            [(
                "SOFTHSM2_CONF".to_string(),
                "/home/user/.config/softhsm2/softhsm2.conf".to_string()
            )]
        );
        assert!(!format!("{key:?}").contains("my-pin"));
        // ocicrypt's own test file: three-space indent, slot-id instead of a token, no env.
        let key = KeyFile::parse(
            b"pkcs11:\n   uri: pkcs11:slot-id=2053753261;object=k?module-name=softhsm2&pin-value=1234\n",
        )
        .unwrap();
        assert_eq!(key.uri.slot_id().unwrap(), Some(2_053_753_261));
        assert!(key.env.is_empty());
        // Unknown fields, flow style, quoting, comments and numbers as env values are fine.
        let key = KeyFile::parse(
            b"# a key\n---\n{\"pkcs11\": {uri: 'pkcs11:token=t;object=o?module-name=x'}, module: {env: {B: 2, A: x}}, extra: [1]}\n",
        )
        .unwrap();
        assert_eq!(
            key.env,
            [("A".into(), "x".into()), ("B".into(), "2".into())]
        );
    }

    #[test]
    fn bad_key_files_say_what_is_missing_without_echoing_the_pin() {
        let cases: &[(&[u8], &str)] = &[
            (b"pkcs11:\n  uri: foobar\n", "must start with `pkcs11:`"),
            (b"pkcs11:\n", "no pkcs11.uri"),
            (b"pkcs11:\n  uri: ''\n", "no pkcs11.uri"),
            (b"module:\n  env: {}\n", "no pkcs11.uri"),
            (b"pkcs11:\n  uri: pkcs11:token=t?module-name=x\n", "needs an `id` or an `object`"),
            (b"pkcs11:\n  uri: pkcs11:object=o?module-name=x\n", "needs a `token`"),
            (b"pkcs11:\n  uri: pkcs11:token=t;object=o\n", "needs a `module-name` or `module-path`"),
            (
                b"pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=x\nmodule:\n  env:\n    'A=B': x\n",
                "not a valid environment variable name",
            ),
            (b"\xff\xfe", "not UTF-8"),
            (b"[1, 2]", "not an ocicrypt PKCS#11 key file"),
            (b"pkcs11: [uri]", "not an ocicrypt PKCS#11 key file"),
            (b"pkcs11:\n  uri: a\n  uri: b\n", "not an ocicrypt PKCS#11 key file"),
        ];
        for (data, why) in cases {
            let err = KeyFile::parse(data).unwrap_err().to_string();
            assert!(
                err.contains(why),
                "{}: {err}",
                String::from_utf8_lossy(data)
            );
        }
        // A URI in the wrong place is quoted by the YAML error: the PIN is taken out.
        let err = KeyFile::parse(
            b"pkcs11: \"pkcs11:token=t;object=o?pin-value=hunter2&module-name=x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let err = KeyFile::parse(b"pkcs11:\n  uri: [\"pkcs11:object=o?pin-value=hunter2\"]\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        doc.push_str("pkcs11:\n  uri: pkcs11:token=t;object=o?module-name=x\n");
        assert!(KeyFile::parse(doc.as_bytes()).is_err());
    }

    #[test]
    fn pins_are_redacted_from_any_text() {
        assert_eq!(
            redact_pins("x pkcs11:a=b?pin-value=1234&module-name=y \"pin-value=5678\" pin-value="),
            "x pkcs11:a=b?pin-value=<redacted>&module-name=y \"pin-value=<redacted>\" pin-value=<redacted>"
        );
    }

    #[test]
    fn policy_files_parse_with_defaults() {
        let p = Policy::parse(
            b"pkcs11:\n  module-directories:\n    - /usr/lib64/pkcs11/\n  allowed-module-paths:\n    - /usr/lib64/pkcs11/libsofthsm2.so\n",
            "f",
        )
        .unwrap();
        assert_eq!(p.module_directories, ["/usr/lib64/pkcs11/"]);
        assert_eq!(p.allowed_module_paths, ["/usr/lib64/pkcs11/libsofthsm2.so"]);
        // A file without a pkcs11 section is an empty policy (it allows nothing), as in Go.
        for empty in [
            &b""[..],
            b"pkcs11:\n",
            b"other: 1\n",
            b"pkcs11:\n  module-directories:\n",
        ] {
            let p = Policy::parse(empty, "f").unwrap();
            assert!(p.module_directories.is_empty() && p.allowed_module_paths.is_empty());
        }
        let err = Policy::parse(b"pkcs11: [", "/x/ocicrypt.conf")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("PKCS#11 module policy /x/ocicrypt.conf: not a valid policy file"),
            "{err}"
        );
    }

    #[test]
    fn the_internal_policy_is_ocicrypts() {
        let p = Policy::internal();
        assert_eq!(
            &p.module_directories[..4],
            [
                "/usr/lib64/pkcs11/",
                "/usr/lib/pkcs11/",
                "/usr/local/lib/pkcs11/",
                "/usr/lib/softhsm/"
            ]
        );
        assert_eq!(p.module_directories, p.allowed_module_paths);
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(p.module_directories[4], "/usr/lib/x86_64-linux-gnu/");
        }
        assert!(p.allows("/usr/lib/softhsm/libsofthsm2.so"));
        // Entries are directories: nothing below them.
        assert!(!p.allows("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"));
    }

    #[test]
    fn allow_list_rules() {
        // An empty entry (Go would index it out of range) allows nothing.
        let p = policy(&[], &["/opt/p11/", "/usr/lib/one.so", ""]);
        assert!(p.allows("/opt/p11/a.so"));
        assert!(!p.allows("/opt/p11/sub/a.so"), "no subdirectories");
        assert!(
            !p.allows("/opt/p11"),
            "the directory itself is not a module"
        );
        assert!(p.allows("/usr/lib/one.so"));
        assert!(!p.allows("/usr/lib/one.so.1"));
        assert!(!p.allows("/usr/lib/"));
        assert!(!policy(&[], &[]).allows("/usr/lib/one.so"));
    }

    #[test]
    fn module_names_match_as_in_go() {
        assert!(module_name_matches("libsofthsm2.so", "softhsm2"));
        assert!(module_name_matches("LibSoftHSM2.so", "softhsm2"));
        assert!(!module_name_matches("libsofthsm2.so", "softhsm"));
        assert!(module_name_matches("libsofthsm.so", "softhsm"));
        assert!(module_name_matches("softhsm", "softhsm"));
        assert!(module_name_matches("libsofthsm2.so", "libsofthsm2.so"));
        assert!(!module_name_matches("opensc-pkcs11.so", "softhsm2"));
        // Only the first occurrence counts.
        assert!(!module_name_matches("softhsm2-softhsm.so", "softhsm"));
    }

    #[test]
    fn module_lookup_in_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("libsofthsm.so"), b"").unwrap();
        fs::write(b.join("libsofthsm2.so"), b"").unwrap();
        fs::write(b.join("libSoftHSM2.so.1"), b"").unwrap();
        let (a, b) = (format!("{}/", a.display()), format!("{}/", b.display()));
        let allowed = policy(&[&a, &b, "/nonexistent/"], &[&a, &b]);

        // The first directory has no match for softhsm2; the second does (sorted: `libS…` first).
        let found = find_module(&uri("pkcs11:object=o?module-name=SOFTHSM2"), &allowed).unwrap();
        assert_eq!(found, PathBuf::from(format!("{b}libSoftHSM2.so.1")));
        let found = find_module(&uri("pkcs11:object=o?module-name=softhsm"), &allowed).unwrap();
        assert_eq!(found, PathBuf::from(format!("{a}libsofthsm.so")));

        // Found but not allowed: an error naming the module, not a search further on.
        let only_a = policy(&[&b, &a], &[&format!("{a}libsofthsm.so")]);
        let err = find_module(&uri("pkcs11:object=o?module-name=softhsm2"), &only_a)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("libSoftHSM2.so.1 is not allowed by the policy (test policy)"),
            "{err}"
        );

        let err = find_module(&uri("pkcs11:object=o?module-name=opensc"), &allowed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no PKCS#11 module named `opensc` was found in"),
            "{err}"
        );
        let err = find_module(&uri("pkcs11:object=o"), &allowed).unwrap_err();
        assert_eq!(err, ModuleError::NoModuleName);
        let err = find_module(&uri("pkcs11:object=o?module-name=x"), &policy(&[], &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("found in no directory"), "{err}");
    }

    #[test]
    fn module_path_names_a_file_or_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mods");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let module = dir.join("libtoken.so");
        fs::write(&module, b"").unwrap();
        let d = format!("{}/", dir.display());
        let allowed = policy(&[], &[&d]);

        let u = uri(&format!("pkcs11:object=o?module-path={}", module.display()));
        assert_eq!(find_module(&u, &allowed).unwrap(), module);
        let err = find_module(&u, &policy(&[], &[])).unwrap_err().to_string();
        assert!(
            err.contains("libtoken.so is not allowed by the policy"),
            "{err}"
        );

        // A directory restricts the search to it; module-name is then needed.
        let u = uri(&format!(
            "pkcs11:object=o?module-path={}&module-name=token",
            dir.display()
        ));
        assert_eq!(find_module(&u, &allowed).unwrap(), module);
        let u = uri(&format!("pkcs11:object=o?module-path={}", dir.display()));
        assert_eq!(
            find_module(&u, &allowed).unwrap_err(),
            ModuleError::NoModuleName
        );
        // The directory path is cleaned before the allow-list check, as Go's filepath.Join does.
        let u = uri(&format!(
            "pkcs11:object=o?module-path={}/sub/..//&module-name=token",
            dir.display()
        ));
        assert_eq!(find_module(&u, &allowed).unwrap(), module);

        let u = uri("pkcs11:object=o?module-path=/nonexistent/lib.so");
        let err = find_module(&u, &allowed).unwrap_err().to_string();
        assert_eq!(err, "module-path /nonexistent/lib.so is not accessible");
        let u = uri("pkcs11:object=o?module-path=/dev/null");
        let err = find_module(&u, &allowed).unwrap_err().to_string();
        assert_eq!(
            err,
            "module-path /dev/null is neither a file nor a directory"
        );
    }

    #[test]
    fn clean_join_is_go_filepath_join() {
        assert_eq!(
            clean_join("/usr/lib/softhsm/", "libsofthsm2.so"),
            "/usr/lib/softhsm/libsofthsm2.so"
        );
        assert_eq!(
            clean_join("/usr//lib/./x/../softhsm", "a.so"),
            "/usr/lib/softhsm/a.so"
        );
        assert_eq!(clean_join("/..", "a.so"), "/a.so");
        assert_eq!(clean_join("rel/../..", "a.so"), "../a.so");
    }

    #[test]
    fn policy_search_order() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |rel: &str, dir: &str| {
            let path = tmp.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, format!("pkcs11:\n  module-directories: [{dir}]\n")).unwrap();
            path
        };
        let explicit = write("explicit.conf", "/explicit/");
        let xdg = tmp.path().join("xdg");
        let home = tmp.path().join("home");
        let system = write("etc/ocicrypt.conf", "/system/");
        let mut search = PolicySearch {
            ocicrypt_config: Some(explicit.display().to_string()),
            xdg_config_home: Some(xdg.clone()),
            home: Some(home.clone()),
            system: system.clone(),
        };
        let dirs = |s: &PolicySearch| s.load().map(|p| p.module_directories);
        assert_eq!(dirs(&search).unwrap(), ["/explicit/"]);
        // OCICRYPT_CONFIG naming a missing file is skipped, as in Go.
        search.ocicrypt_config = Some(tmp.path().join("missing.conf").display().to_string());
        assert_eq!(dirs(&search).unwrap(), ["/system/"]);
        write("home/.config/ocicrypt.conf", "/home/");
        assert_eq!(dirs(&search).unwrap(), ["/home/"]);
        write("xdg/ocicrypt.conf", "/xdg/");
        assert_eq!(dirs(&search).unwrap(), ["/xdg/"]);
        assert_eq!(
            search.load().unwrap().origin,
            xdg.join("ocicrypt.conf").display().to_string()
        );
        // `internal` wins over everything.
        search.ocicrypt_config = Some("internal".into());
        assert_eq!(search.load().unwrap(), Policy::internal());

        // Nothing anywhere: an error that lists what was searched and how to fix it.
        let none = PolicySearch {
            ocicrypt_config: None,
            xdg_config_home: None,
            home: Some(tmp.path().join("nohome")),
            system: tmp.path().join("etc/none.conf"),
        };
        let err = none.load().unwrap_err().to_string();
        assert!(err.contains("nohome/.config/ocicrypt.conf"), "{err}");
        assert!(err.contains("etc/none.conf"), "{err}");
        assert!(err.contains("OCICRYPT_CONFIG=internal"), "{err}");

        // A policy file that exists but is broken is an error, not skipped.
        fs::write(&explicit, b"pkcs11: {").unwrap();
        search.ocicrypt_config = Some(explicit.display().to_string());
        assert!(matches!(search.load(), Err(PolicyError::Unusable { .. })));
        // The system file is the absolute /etc one, whatever the current directory.
        assert_eq!(
            PolicySearch::new(None).system,
            PathBuf::from("/etc/ocicrypt.conf")
        );
    }
}
