//! Finding a registry's credentials where skopeo and podman find them (containers-auth.json(5)):
//!
//! 1. `--authfile FILE`, else `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`;
//! 2. `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/containers/auth.json`);
//! 3. `$DOCKER_CONFIG/config.json` (`~/.docker/config.json`).
//!
//! The first file that knows the registry wins. In a file, `credHelpers` for the registry come
//! first (`docker-credential-NAME get`), then `auths` (the most specific of `host/repo/path`, …,
//! `host`, or Docker's legacy `https://host/v1/` keys), then `credsStore`. A named `--authfile`
//! that cannot be read is an error; the others are skipped when absent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use zeroize::Zeroizing;

use super::RegistryError;
use super::access::{Access, Credentials};

/// Largest auth file read.
const MAX_AUTH_FILE: u64 = 4 * 1024 * 1024;

/// The credentials for `registry` (`host[:port]`), for `repository`, if any file has them.
pub(crate) fn find(
    access: &Access,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>, RegistryError> {
    for (path, required) in auth_files(access) {
        let text = match read_file(&path) {
            Ok(Some(text)) => text,
            Ok(None) if !required => continue,
            Ok(None) => {
                return Err(RegistryError::AuthFile {
                    path,
                    reason: "it does not exist".into(),
                });
            }
            Err(reason) => return Err(RegistryError::AuthFile { path, reason }),
        };
        if let Some(c) = from_file(&path, &text, registry, repository)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The files to search, in order, and whether each must exist.
fn auth_files(access: &Access) -> Vec<(PathBuf, bool)> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut files = Vec::new();
    if let Some(f) = &access.authfile {
        files.push((f.clone(), true));
    } else if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push((f, false));
    } else if let Some(run) = env("XDG_RUNTIME_DIR") {
        files.push((run.join("containers/auth.json"), false));
    }
    if let Some(config) =
        env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        files.push((config.join("containers/auth.json"), false));
    }
    if let Some(docker) = env("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker")))
    {
        files.push((docker.join("config.json"), false));
    }
    files
}

fn read_file(path: &Path) -> Result<Option<Zeroizing<String>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_AUTH_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_AUTH_FILE {
        return Err(format!("larger than {MAX_AUTH_FILE} bytes"));
    }
    Ok(Some(text))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    creds_store: Option<String>,
}

/// The host part of an `auths` key: Docker's legacy keys are URLs (`https://host/v1/`).
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .unwrap_or(key);
    match key {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        k => k.to_string(),
    }
}

fn from_file(
    path: &Path,
    text: &str,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>, RegistryError> {
    let file: AuthFile = serde_json::from_str(text).map_err(|e| RegistryError::AuthFile {
        path: path.to_path_buf(),
        reason: format!("not an auth file: {e}"),
    })?;
    if let Some(helper) = file.cred_helpers.get(registry) {
        return helper_get(helper, registry);
    }
    // Most specific first: host/a/b, host/a, host.
    let mut scopes = vec![format!("{registry}/{repository}")];
    let mut cut = repository;
    while let Some((parent, _)) = cut.rsplit_once('/') {
        scopes.push(format!("{registry}/{parent}"));
        cut = parent;
    }
    scopes.push(registry.to_string());
    for scope in &scopes {
        let entry = file
            .auths
            .iter()
            .find(|(k, _)| *k == scope || normalize_key(k) == *scope);
        if let Some((_, value)) = entry {
            return entry_credentials(path, scope, value).map(Some);
        }
    }
    match &file.creds_store {
        Some(store) => helper_get(store, registry),
        None => Ok(None),
    }
}

fn entry_credentials(
    path: &Path,
    key: &str,
    value: &serde_json::Value,
) -> Result<Credentials, RegistryError> {
    let fail = |reason: &str| RegistryError::AuthFile {
        path: path.to_path_buf(),
        reason: format!("the entry for {key}: {reason}"),
    };
    if let Some(auth) = value
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| fail("`auth` is not base64"))?,
        );
        let text = std::str::from_utf8(&decoded).map_err(|_| fail("`auth` is not text"))?;
        return Credentials::parse(text).map_err(|e| fail(&e));
    }
    match (
        value.get("username").and_then(|u| u.as_str()),
        value.get("password").and_then(|p| p.as_str()),
    ) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Credentials {
            username: u.to_string(),
            password: Zeroizing::new(p.to_string()),
        }),
        _ => Err(fail(
            "it holds neither `auth` nor `username` and `password`",
        )),
    }
}

/// Ask `docker-credential-NAME get` for the registry's credentials.
fn helper_get(name: &str, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let program = format!("docker-credential-{name}");
    let fail = |reason: String| RegistryError::CredentialHelper {
        helper: program.clone(),
        registry: registry.to_string(),
        reason,
    };
    if name.is_empty() || name.contains(['/', '\0']) {
        return Err(fail("not a helper name".into()));
    }
    // Docker Hub's credentials are stored under its legacy URL.
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut out = Zeroizing::new(Vec::new());
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_AUTH_FILE)
            .read_to_end(&mut out)
            .map_err(|e| fail(e.to_string()))?;
    }
    let mut err = String::new();
    if let Some(stderr) = child.stderr.take() {
        let _ = stderr.take(64 * 1024).read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        let said = format!("{} {err}", String::from_utf8_lossy(&out));
        // The helper's way of saying it has nothing for this registry.
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("{status}: {}", said.trim())));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer =
        serde_json::from_slice(&out).map_err(|e| fail(format!("its answer: {e}")))?;
    let secret = Zeroizing::new(answer.secret);
    if answer.username == "<token>" {
        return Err(fail(
            "it holds an identity token, which layercrypt cannot use; log in with a user name and password".into(),
        ));
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(text: &str, registry: &str, repository: &str) -> Option<String> {
        from_file(Path::new("auth.json"), text, registry, repository)
            .unwrap()
            .map(|c| format!("{}:{}", c.username, c.password.as_str()))
    }

    #[test]
    fn the_most_specific_entry_wins_and_legacy_keys_match_their_host() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let text = format!(
            r#"{{"auths":{{"reg:5000":{{"auth":"{}"}},"reg:5000/team/app":{{"auth":"{}"}},"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
            b64("all:one"),
            b64("app:two"),
            b64("hub:three")
        );
        assert_eq!(
            creds(&text, "reg:5000", "team/app").as_deref(),
            Some("app:two")
        );
        assert_eq!(
            creds(&text, "reg:5000", "team/other").as_deref(),
            Some("all:one")
        );
        assert_eq!(
            creds(&text, "docker.io", "library/alpine").as_deref(),
            Some("hub:three")
        );
        assert_eq!(creds(&text, "elsewhere", "x"), None);
        assert!(from_file(Path::new("a"), "{", "r", "x").is_err());
        assert!(from_file(Path::new("a"), r#"{"auths":{"r":{"auth":"!!"}}}"#, "r", "x").is_err());
    }
}
