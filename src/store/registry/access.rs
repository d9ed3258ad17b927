//! How to reach registries, as skopeo and podman are told: credentials, an auth file, TLS
//! verification and certificate directories, and whether to delete replaced manifests.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl Credentials {
    /// Parse `USER:PASSWORD` (the first colon separates them, as in skopeo's `--creds`).
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| "credentials are USER:PASSWORD".to_string())?;
        if user.is_empty() {
            return Err("the user name is empty".into());
        }
        Ok(Credentials {
            username: user.to_string(),
            password: Zeroizing::new(password.trim_end_matches(['\r', '\n']).to_string()),
        })
    }
}

/// How to reach registries for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Credentials given on the command line (`--creds`, `--creds-file`): used for every
    /// registry of the run, before any auth file.
    pub credentials: Option<Credentials>,
    /// `--authfile`: read instead of `$REGISTRY_AUTH_FILE` and
    /// `$XDG_RUNTIME_DIR/containers/auth.json` (the other files are still searched).
    pub authfile: Option<PathBuf>,
    /// Verify TLS certificates (and refuse plain HTTP). `false` is skopeo's
    /// `--tls-verify=false`: HTTPS without verification, else plain HTTP.
    pub tls_verify: bool,
    /// `--cert-dir`: CA certificates (`*.crt`) and a client certificate (`*.cert` with its
    /// `*.key`), used instead of `/etc/containers/certs.d/HOST[:PORT]/`.
    pub cert_dir: Option<PathBuf>,
    /// Delete the manifests a re-key replaced, by digest, where the registry allows it.
    pub delete_old: bool,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            credentials: None,
            authfile: None,
            tls_verify: true,
            cert_dir: None,
            delete_old: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_split_at_the_first_colon_and_never_show_the_password() {
        let c = Credentials::parse("me:pa:ss\n").unwrap();
        assert_eq!(c.username, "me");
        assert_eq!(c.password.as_str(), "pa:ss");
        assert!(!format!("{c:?}").contains("pa:ss"));
        assert!(Credentials::parse("nocolon").is_err());
        assert!(Credentials::parse(":pw").is_err());
    }
}
