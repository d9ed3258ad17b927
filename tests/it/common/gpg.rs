//! A throwaway GnuPG home for tests, and skopeo/layercrypt runs that use it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{layercrypt, testdata};

/// A fixture key under `testdata/pgp/`.
pub fn pgp_fixture(name: &str) -> PathBuf {
    testdata("pgp").join(name)
}

/// A throwaway GnuPG home; its gpg-agent is stopped when the test ends.
pub struct GpgHome {
    dir: tempfile::TempDir,
}

impl GpgHome {
    /// A new home holding the given fixture keys (`testdata/pgp/*.gpg`, public or secret).
    pub fn with(fixtures: &[&str]) -> GpgHome {
        // Short path: gpg-agent's socket lives inside the home and socket paths are limited.
        let dir = tempfile::Builder::new()
            .prefix("lc-gpg")
            .tempdir_in("/tmp")
            .unwrap();
        let home = GpgHome { dir };
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        for f in fixtures {
            home.gpg_ok(&["--import", pgp_fixture(f).to_str().unwrap()]);
        }
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn gpg(&self, args: &[&str]) -> Output {
        Command::new("gpg")
            .arg("--homedir")
            .arg(self.path())
            .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run gpg ({e}); install it with scripts/deps.sh --test")
            })
    }

    pub fn gpg_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.gpg(args);
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `gpg --export-secret-keys` of one key into a file (armored or not).
    pub fn export_secret(&self, who: &str, passphrase: &str, armor: bool, to: &Path) -> String {
        let mut args = vec!["--passphrase", passphrase, "--export-secret-keys"];
        if armor {
            args.insert(0, "--armor");
        }
        args.push(who);
        std::fs::write(to, self.gpg_ok(&args)).unwrap();
        to.display().to_string()
    }

    /// Key id and fingerprint of the encryption subkey and of the primary key of `who`, from
    /// gpg's listing (upper-case hex).
    pub fn ids(&self, who: &str) -> Ids {
        let text = String::from_utf8(self.gpg_ok(&["--with-colons", "--list-keys", who])).unwrap();
        let mut ids = Ids::default();
        let mut in_sub = false;
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            match f[0] {
                "pub" => ids.primary_id = f[4].to_string(),
                "sub" if f[11].contains('e') => {
                    in_sub = true;
                    ids.sub_id = f[4].to_string();
                }
                "fpr" if ids.primary_fpr.is_empty() => ids.primary_fpr = f[9].to_string(),
                "fpr" if in_sub && ids.sub_fpr.is_empty() => ids.sub_fpr = f[9].to_string(),
                _ => {}
            }
        }
        ids
    }

    /// skopeo with this home as `GNUPGHOME`.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        Command::new("skopeo")
            .env("GNUPGHOME", self.path())
            .arg("--policy")
            .arg(testdata("policy.json"))
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run skopeo ({e}); install it with scripts/deps.sh --test")
            })
    }

    pub fn skopeo_ok(&self, args: &[&str]) {
        let out = self.skopeo(args);
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// layercrypt with this home (`--gpg-homedir` is added by the caller where it applies;
    /// `GNUPGHOME` is set so nothing outside the test is ever consulted).
    pub fn layercrypt(&self) -> assert_cmd::Command {
        let mut cmd = layercrypt();
        cmd.env("GNUPGHOME", self.path());
        cmd
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

#[derive(Debug, Default)]
pub struct Ids {
    /// Primary key id (hex).
    pub primary_id: String,
    /// Primary fingerprint (hex).
    pub primary_fpr: String,
    /// Encryption subkey id (hex).
    pub sub_id: String,
    /// Encryption subkey fingerprint (hex).
    pub sub_fpr: String,
}

/// The key id as Go prints it (`0x%x`).
pub fn go_id(hex: &str) -> String {
    format!("0x{:x}", u64::from_str_radix(hex, 16).unwrap())
}
