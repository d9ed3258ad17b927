//! Registry options (`docker://` references): credentials, auth file, TLS, as skopeo and
//! podman take them. Passwords never need the command line: `--creds USER` asks on the
//! terminal, `--creds-file` reads `USER:PASSWORD` from a file, a descriptor or a variable.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use layercrypt::store::ImageRef;
use layercrypt::store::registry::{Access, Credentials};
use zeroize::Zeroizing;

use super::Failure;

/// Options for images in registries.
#[derive(Debug, Args)]
#[command(next_help_heading = "Registry options (docker:// images)")]
pub struct RegistryArgs {
    /// Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for
    /// on the terminal). Default: the auth files skopeo and podman use.
    #[arg(long, value_name = "USER[:PASSWORD]", conflicts_with = "creds_file")]
    pub creds: Option<String>,
    /// Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR.
    #[arg(long = "creds-file", value_name = "FILE|fd=N|env=VAR")]
    pub creds_file: Option<String>,
    /// Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or
    /// $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and
    /// ~/.docker/config.json are still searched after it).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Verify the registry's TLS certificate (default). `--tls-verify=false` accepts any
    /// certificate, and plain HTTP.
    #[arg(long = "tls-verify", value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the
    /// registry, instead of /etc/containers/certs.d/HOST[:PORT]/.
    #[arg(long = "cert-dir", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

impl RegistryArgs {
    /// How to reach registries, from these options; `delete_old` as `rekey --delete-old`.
    /// Nothing is read unless a reference names a registry.
    pub(super) fn access(
        &self,
        refs: &[&ImageRef],
        delete_old: bool,
    ) -> Result<Arc<Access>, Failure> {
        let registry = refs.iter().find_map(|r| match r {
            ImageRef::Registry { reference, .. } => Some(reference.registry.clone()),
            _ => None,
        });
        let credentials = match (&self.creds, &self.creds_file, &registry) {
            (_, _, None) => None,
            (Some(c), _, Some(registry)) if !c.contains(':') => Some(prompt_password(c, registry)?),
            (Some(c), _, _) => {
                Some(Credentials::parse(c).map_err(|e| usage(format!("--creds: {e}")))?)
            }
            (None, Some(source), _) => Some(read_credentials(source)?),
            (None, None, _) => None,
        };
        Ok(Arc::new(Access {
            credentials,
            authfile: self.authfile.clone(),
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            delete_old,
        }))
    }
}

impl RegistryArgs {
    /// How to reach a registry other than the one `--creds` or `--creds-file` are for: the
    /// same auth files and TLS settings, without those credentials.
    pub(super) fn access_from_files(&self) -> Arc<Access> {
        Arc::new(Access {
            credentials: None,
            authfile: self.authfile.clone(),
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            delete_old: false,
        })
    }
}

fn usage(message: String) -> Failure {
    Failure::Usage(
        message,
        "credentials are USER:PASSWORD; --creds USER asks for the password",
    )
}

fn prompt_password(user: &str, registry: &str) -> Result<Credentials, Failure> {
    if !super::interactive() {
        return Err(Failure::Usage(
            format!("--creds {user}: no password, and no terminal to ask for it on"),
            "give --creds-file FILE|fd=N|env=VAR holding USER:PASSWORD, or log in with `skopeo login` first",
        ));
    }
    let password = rpassword::prompt_password(format!("Password for {user}@{registry}: "))
        .map_err(|e| usage(format!("cannot read the password: {e}")))?;
    Ok(Credentials {
        username: user.to_string(),
        password: Zeroizing::new(password),
    })
}

fn read_credentials(source: &str) -> Result<Credentials, Failure> {
    const MAX: u64 = 64 * 1024;
    let fail = |reason: String| usage(format!("--creds-file {source}: {reason}"));
    let mut text = Zeroizing::new(String::new());
    if let Some(var) = source.strip_prefix("env=") {
        *text = std::env::var(var).map_err(|_| fail(format!("{var} is not set")))?;
    } else {
        let path = match source.strip_prefix("fd=") {
            Some(n) => {
                let n: u32 = n.parse().map_err(|_| fail("fd= needs a number".into()))?;
                PathBuf::from(format!("/dev/fd/{n}"))
            }
            None => PathBuf::from(source),
        };
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX).read_to_string(&mut text))
            .map_err(|e| fail(e.to_string()))?;
    }
    Credentials::parse(text.trim_end_matches(['\r', '\n'])).map_err(fail)
}
