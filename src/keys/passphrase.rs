//! Where a key's passphrase comes from, and reading it.
//!
//! A passphrase is named as `pass=PASSWORD`, `file=PATH`, `fd=N` or `env=VAR` after a key file
//! (the ocicrypt forms, plus `env=`), or asked for on the terminal. A passphrase is never
//! *required* on the command line: a file, a descriptor or the environment do as well.
//!
//! This module is a leaf: it knows nothing of key rings or schemes (the key loader in
//! `keywrap::keyring` and the OpenPGP scheme both use it). It must never print a passphrase
//! (`Debug` of [`PassphraseSource`] redacts an inline one) or keep one outside a zeroizing
//! buffer, and never read more than 64 KiB from a file or descriptor.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Largest passphrase read from a file or descriptor.
const MAX_PASSPHRASE: u64 = 64 * 1024;

/// Where a key's passphrase comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// Given inline (`pass=`).
    Literal(Zeroizing<String>),
    /// The content of a file (`file=`).
    File(PathBuf),
    /// Read from an inherited file descriptor (`fd=`).
    Fd(u32),
    /// An environment variable (`env=`).
    Env(String),
    /// Ask on the terminal (only when one is attached).
    Prompt,
}

impl fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PassphraseSource::Literal(_) => f.write_str("Literal(<redacted>)"),
            PassphraseSource::File(p) => write!(f, "File({})", p.display()),
            PassphraseSource::Fd(n) => write!(f, "Fd({n})"),
            PassphraseSource::Env(v) => write!(f, "Env({v})"),
            PassphraseSource::Prompt => f.write_str("Prompt"),
        }
    }
}

/// Why a passphrase could not be read. The key loader turns it into its own error
/// (`KeySourceError::Passphrase` or `KeySourceError::Interrupted`), with the same message.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    /// The source failed.
    #[error("passphrase for key file {}: {reason}", path.display())]
    Unreadable {
        /// The key file whose passphrase was wanted.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Ctrl-C at the prompt.
    #[error("interrupted")]
    Interrupted,
}

/// Read the candidate passphrases for the key in `key_path` from a source: the exact bytes,
/// and, when they end in a newline, also without it (ocicrypt keeps the newline of `file=`;
/// editors add one).
pub fn passphrase_candidates(
    key_path: &Path,
    source: &PassphraseSource,
) -> Result<Vec<Zeroizing<Vec<u8>>>, PassphraseError> {
    let fail = |reason: String| PassphraseError::Unreadable {
        path: key_path.to_path_buf(),
        reason,
    };
    let raw: Zeroizing<Vec<u8>> = match source {
        PassphraseSource::Literal(s) => Zeroizing::new(s.as_bytes().to_vec()),
        PassphraseSource::File(p) => {
            let mut buf = Zeroizing::new(Vec::new());
            fs::File::open(p)
                .and_then(|f| f.take(MAX_PASSPHRASE).read_to_end(&mut buf))
                .map_err(|e| fail(format!("cannot read {}: {e}", p.display())))?;
            buf
        }
        PassphraseSource::Fd(n) => {
            // One read, as ocicrypt does, so a writer that keeps the pipe open cannot hang us.
            let mut buf = Zeroizing::new(vec![0u8; MAX_PASSPHRASE as usize]);
            let len = fs::File::open(format!("/dev/fd/{n}"))
                .and_then(|mut f| f.read(&mut buf))
                .map_err(|e| fail(format!("cannot read file descriptor {n}: {e}")))?;
            buf.truncate(len);
            buf
        }
        PassphraseSource::Env(var) => Zeroizing::new(
            std::env::var_os(var)
                .ok_or_else(|| fail(format!("environment variable {var} is not set")))?
                .into_encoded_bytes(),
        ),
        PassphraseSource::Prompt => {
            // The terminal is in raw mode while it asks, and a stop cannot wait for the
            // answer (a `kill` while it waits would hang until Enter): the prompt leaves
            // nothing on disk, so a command may exit on the spot, putting the terminal's modes
            // back itself (the layercrypt command does).
            let prompt = format!("Passphrase for {}: ", key_path.display());
            Zeroizing::new(
                rpassword::prompt_password(prompt)
                    .map_err(|e| match e.kind() {
                        // Ctrl-C, which the prompt answers by raising SIGINT.
                        std::io::ErrorKind::Interrupted => PassphraseError::Interrupted,
                        _ => fail(format!("cannot read it from the terminal: {e}")),
                    })?
                    .into_bytes(),
            )
        }
    };
    let mut out = vec![raw.clone()];
    let trimmed = raw
        .strip_suffix(b"\r\n")
        .or_else(|| raw.strip_suffix(b"\n"));
    if let Some(t) = trimmed {
        out.push(Zeroizing::new(t.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_candidates_drop_one_newline() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        fs::write(tmp.path(), b"secret\n").unwrap();
        let c = passphrase_candidates(Path::new("k"), &PassphraseSource::File(tmp.path().into()))
            .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(&c[1][..], b"secret");
        let text = format!(
            "{:?}",
            PassphraseSource::Literal(Zeroizing::new("hunter2".into()))
        );
        assert!(!text.contains("hunter2"));
    }
}
