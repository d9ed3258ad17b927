//! Running GnuPG: exporting the public keyring (recipients), decrypting with the keys gpg holds
//! (no `-k` given, as ocicrypt's tools do), and listing user ids (for `inspect`).
//!
//! sequoia cannot read gpg's `pubring.kbx` or its agent's private keys, so gpg itself is asked,
//! the way Go ocicrypt does: `gpg --batch --export` for recipients, and here also
//! `gpg --decrypt` for the gpg-home path (Go exports the secret key instead; asking gpg to
//! decrypt needs no secret key to leave the agent). Every call is bounded in time, passes the
//! passphrase only on standard input, and checks gpg's machine-readable status lines rather
//! than its (translated) messages.
//!
//! This module must never accept a decryption that gpg did not confirm with `GOODMDC`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// How long one gpg call may take (starting gpg-agent included) before it is stopped.
const GPG_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest output read from gpg (a public keyring of a busy user is a few MiB).
const MAX_OUTPUT: u64 = 64 * 1024 * 1024;

/// The gpg program and the home it works in.
#[derive(Clone, Debug)]
pub struct Gpg {
    program: PathBuf,
    homedir: Option<PathBuf>,
}

/// What a gpg run produced.
struct Run {
    success: bool,
    stdout: Zeroizing<Vec<u8>>,
    stderr: String,
}

/// Why gpg did not decrypt a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpgFailure {
    /// gpg could not be run at all.
    NotRunnable(String),
    /// gpg holds none of the recipients' secret keys.
    NoSecretKey(Vec<String>),
    /// The secret key is protected and no passphrase was available.
    NeedsPassphrase,
    /// The passphrase given is wrong.
    WrongPassphrase,
    /// gpg decrypted, but did not confirm the integrity protection.
    NoIntegrity,
    /// Anything else, with gpg's own words.
    Other(String),
}

impl std::fmt::Display for GpgFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpgFailure::NotRunnable(e) => write!(f, "cannot run gpg: {e}"),
            GpgFailure::NoSecretKey(ids) if ids.is_empty() => {
                f.write_str("gpg has no secret key for this message")
            }
            GpgFailure::NoSecretKey(ids) => {
                write!(f, "gpg has no secret key for {}", ids.join(", "))
            }
            GpgFailure::NeedsPassphrase => f.write_str(
                "the secret key is passphrase-protected and no passphrase was given (use --passphrase-file, or run on a terminal)",
            ),
            GpgFailure::WrongPassphrase => f.write_str("wrong passphrase for the secret key"),
            GpgFailure::NoIntegrity => f.write_str(
                "gpg did not confirm the integrity protection (MDC) of the data; refused",
            ),
            GpgFailure::Other(e) => write!(f, "gpg failed: {e}"),
        }
    }
}

impl Gpg {
    /// gpg working in `homedir` (`None`: gpg's own default, `$GNUPGHOME` or `~/.gnupg`).
    pub fn new(homedir: Option<PathBuf>) -> Gpg {
        Gpg {
            program: PathBuf::from("gpg"),
            homedir,
        }
    }

    /// The home directory, for messages.
    pub fn describe_home(&self) -> String {
        match &self.homedir {
            Some(d) => format!("gpg (home {})", d.display()),
            None => "gpg".into(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(d) = &self.homedir {
            cmd.arg("--homedir").arg(d);
        }
        cmd.args(["--batch", "--no-tty"]);
        cmd
    }

    /// Whether `gpg --version` runs.
    pub fn available(&self) -> bool {
        Command::new(&self.program)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// The whole public keyring, binary (`gpg --batch --export`), as ocicrypt reads it.
    pub fn export_public_keys(&self) -> Result<Vec<u8>, String> {
        let mut cmd = self.command();
        cmd.arg("--export");
        let run = run(cmd, None).map_err(|e| format!("cannot run gpg --export: {e}"))?;
        if !run.success {
            return Err(format!(
                "gpg --export failed: {}",
                last_message(&run.stderr).unwrap_or("no message")
            ));
        }
        Ok(run.stdout.to_vec())
    }

    /// User ids by key id (16 upper-case hex digits, primary keys and subkeys alike) from
    /// `gpg --with-colons --list-keys`. Revoked and invalid user ids are left out.
    pub fn user_ids_by_key_id(&self) -> Result<HashMap<String, Vec<String>>, String> {
        let mut cmd = self.command();
        cmd.args(["--with-colons", "--fixed-list-mode", "--list-keys"]);
        let run = run(cmd, None).map_err(|e| format!("cannot run gpg --list-keys: {e}"))?;
        if !run.success {
            return Err(format!(
                "gpg --list-keys failed: {}",
                last_message(&run.stderr).unwrap_or("no message")
            ));
        }
        Ok(parse_colon_listing(&String::from_utf8_lossy(&run.stdout)))
    }

    /// Decrypt `message` with the keys gpg holds. Without `passphrase`, gpg may use only
    /// unprotected keys or passphrases its agent has cached (no pinentry is started); with
    /// one, it is given to gpg on standard input.
    pub fn decrypt(
        &self,
        message: &[u8],
        passphrase: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, GpgFailure> {
        // A stop request must not leave the file behind: it unwinds while the file exists.
        let _cleanup = crate::interrupt::Deferred::new()
            .map_err(|e| GpgFailure::NotRunnable(e.to_string()))?;
        // The message goes in a file, so that standard input is free for the passphrase.
        let mut file = tempfile::Builder::new()
            .prefix("layercrypt-pgp-")
            .tempfile()
            .map_err(|e| GpgFailure::NotRunnable(format!("cannot create a temporary file: {e}")))?;
        file.write_all(message)
            .and_then(|_| file.flush())
            .map_err(|e| GpgFailure::NotRunnable(format!("cannot write a temporary file: {e}")))?;
        let mut cmd = self.command();
        cmd.args(["--status-fd", "2", "--pinentry-mode"]);
        let stdin = match passphrase {
            None => {
                cmd.arg("error");
                None
            }
            Some(p) => {
                cmd.args(["loopback", "--passphrase-fd", "0"]);
                let mut line = Zeroizing::new(p.to_vec());
                line.push(b'\n');
                Some(line)
            }
        };
        cmd.arg("--decrypt").arg(file.path());
        let run = run(cmd, stdin.as_deref().map(|s| &s[..]))
            .map_err(|e| GpgFailure::NotRunnable(e.to_string()))?;
        interpret_decryption(run)
    }
}

/// Judge a `gpg --decrypt` run by its status lines.
fn interpret_decryption(run: Run) -> Result<Zeroizing<Vec<u8>>, GpgFailure> {
    let mut enc_to = Vec::new();
    let mut no_seckey = Vec::new();
    let mut okay = false;
    let mut good_mdc = false;
    let mut error_codes = Vec::new();
    for line in run.stderr.lines() {
        let Some(status) = line.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        let mut words = status.split_ascii_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("ENC_TO"), Some(id), _) => enc_to.push(id.to_string()),
            (Some("NO_SECKEY"), Some(id), _) => no_seckey.push(id.to_string()),
            (Some("DECRYPTION_OKAY"), _, _) => okay = true,
            (Some("GOODMDC"), _, _) => good_mdc = true,
            (Some("ERROR"), Some(_), Some(code)) => {
                if let Ok(code) = code.parse::<u32>() {
                    error_codes.push(code & 0xffff);
                }
            }
            _ => {}
        }
    }
    if run.success && okay && good_mdc {
        return Ok(run.stdout);
    }
    if run.success && okay {
        return Err(GpgFailure::NoIntegrity);
    }
    // libgpg-error codes: 11 bad passphrase, 85 no pinentry, 99 canceled, 179 no passphrase.
    if error_codes.contains(&11) {
        return Err(GpgFailure::WrongPassphrase);
    }
    if error_codes.iter().any(|c| matches!(c, 85 | 99 | 177 | 179)) {
        return Err(GpgFailure::NeedsPassphrase);
    }
    if !enc_to.is_empty() && enc_to.iter().all(|id| no_seckey.contains(id)) {
        let ids = enc_to
            .iter()
            .map(|id| match u64::from_str_radix(id, 16) {
                Ok(n) => format!("0x{n:x}"),
                Err(_) => id.clone(),
            })
            .collect();
        return Err(GpgFailure::NoSecretKey(ids));
    }
    Err(GpgFailure::Other(
        last_message(&run.stderr)
            .unwrap_or("no message")
            .to_string(),
    ))
}

/// The last human-readable `gpg: …` line.
fn last_message(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("gpg: ") && !l.contains("WARNING: unsafe"))
        .map(|l| l.trim_start_matches("gpg: ").trim())
}

/// Parse `--with-colons` key listings into key id → user ids of that certificate.
pub fn parse_colon_listing(text: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut ids: Vec<String> = Vec::new();
    let mut uids: Vec<String> = Vec::new();
    let mut flush = |ids: &mut Vec<String>, uids: &mut Vec<String>| {
        for id in ids.drain(..) {
            out.entry(id).or_default().extend(uids.iter().cloned());
        }
        uids.clear();
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.first().copied() {
            Some("pub") => {
                flush(&mut ids, &mut uids);
                if let Some(id) = fields.get(4) {
                    ids.push(id.to_ascii_uppercase());
                }
            }
            Some("sub") => {
                if let Some(id) = fields.get(4) {
                    ids.push(id.to_ascii_uppercase());
                }
            }
            Some("uid") => {
                let validity = fields.get(1).copied().unwrap_or("");
                if let Some(uid) = fields.get(9)
                    && !matches!(validity, "r" | "i")
                {
                    uids.push(unescape_colon_field(uid));
                }
            }
            _ => {}
        }
    }
    flush(&mut ids, &mut uids);
    out
}

/// Undo gpg's `\xHH` escaping of colon-listing fields.
fn unescape_colon_field(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(hex) = bytes.get(i + 2..i + 4)
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run a command with `stdin` as its standard input, collecting its output, within
/// [`GPG_TIMEOUT`].
fn run(mut cmd: Command, stdin: Option<&[u8]>) -> std::io::Result<Run> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A passphrase line is far below the pipe buffer: this write cannot block.
        let _ = pipe.write_all(data);
    }
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let status = wait_bounded(&mut child)?;
    let collect = |h: Option<std::thread::JoinHandle<Zeroizing<Vec<u8>>>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let stdout = collect(stdout);
    let stderr = String::from_utf8_lossy(&collect(stderr)).into_owned();
    Ok(Run {
        success: status,
        stdout,
        stderr,
    })
}

/// Read a pipe to its end (bounded) in a thread, so neither pipe can fill and block gpg.
fn reader(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Zeroizing<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut buf);
        buf
    })
}

/// Wait for the child, stopping it after [`GPG_TIMEOUT`], or when a stop is requested
/// ([`crate::interrupt`]). Returns whether it succeeded.
fn wait_bounded(child: &mut Child) -> std::io::Result<bool> {
    let deadline = Instant::now() + GPG_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        if let Err(e) = crate::interrupt::check() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "gpg did not finish within {} seconds",
                    GPG_TIMEOUT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colon_listings_map_primary_and_subkey_ids_to_user_ids() {
        let listing = "\
tru:o:1:1795329732:1:3:1:5
pub:u:2048:1:DC4D106F4EB4064B:1795329742:::u:::escaESCA::::::23::0:
fpr:::::::::F4408FF4AB0D8F678F9DE2A0DC4D106F4EB4064B:
uid:u::::1795329742::7367::Alice Example <alice@example.test>::::::::::0:
uid:r::::1795329742::7368::Old Alice <old@example.test>::::::::::0:
uid:u::::1795329742::7369::Colon\\x3a Name <c@example.test>::::::::::0:
sub:u:2048:1:F51A501527ECB3A8:1795329742::::::esa::::::23:
fpr:::::::::0183E1BA0EB8DF36BA49DDB8F51A501527ECB3A8:
pub:u:255:22:1C4743796E0898D6:1795329742:::u:::scaESCA:::::ed25519:::0:
uid:u::::1795329742::3888::Carol <carol@example.test>::::::::::0:
sub:u:255:18:72D8D2D87BA153E0:1795329742::::::e:::::cv25519::
";
        let map = parse_colon_listing(listing);
        let alice = vec![
            "Alice Example <alice@example.test>".to_string(),
            "Colon: Name <c@example.test>".to_string(),
        ];
        assert_eq!(map["DC4D106F4EB4064B"], alice);
        assert_eq!(map["F51A501527ECB3A8"], alice);
        assert_eq!(map["72D8D2D87BA153E0"], vec!["Carol <carol@example.test>"]);
        assert_eq!(map.len(), 4);
    }

    fn status(stderr: &str, success: bool) -> Result<Zeroizing<Vec<u8>>, GpgFailure> {
        interpret_decryption(Run {
            success,
            stdout: Zeroizing::new(b"{}".to_vec()),
            stderr: stderr.into(),
        })
    }

    #[test]
    fn decryptions_are_judged_by_status_lines() {
        let ok =
            "[GNUPG:] ENC_TO 26521F5450893C15 1 0\n[GNUPG:] DECRYPTION_OKAY\n[GNUPG:] GOODMDC\n";
        assert_eq!(&status(ok, true).unwrap()[..], b"{}");
        assert_eq!(
            status("[GNUPG:] DECRYPTION_OKAY\n", true).unwrap_err(),
            GpgFailure::NoIntegrity
        );
        assert_eq!(
            status(
                "[GNUPG:] ENC_TO 0026521F5450893C 1 0\n[GNUPG:] NO_SECKEY 0026521F5450893C\ngpg: decryption failed: No secret key\n",
                false
            )
            .unwrap_err(),
            GpgFailure::NoSecretKey(vec!["0x26521f5450893c".into()])
        );
        assert_eq!(
            status("[GNUPG:] ERROR pkdecrypt_failed 67108875\n", false).unwrap_err(),
            GpgFailure::WrongPassphrase
        );
        assert_eq!(
            status("[GNUPG:] ERROR pkdecrypt_failed 67108949\n", false).unwrap_err(),
            GpgFailure::NeedsPassphrase
        );
        assert_eq!(
            status("gpg: something odd\n", false).unwrap_err(),
            GpgFailure::Other("something odd".into())
        );
    }
}
