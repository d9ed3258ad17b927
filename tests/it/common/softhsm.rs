//! A SoftHSM 2 token for tests, made once per test process in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use super::{layercrypt, testdata};

/// Debian's SoftHSM module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const TOKEN: &str = "layercrypt-test";
pub const PIN: &str = "4321";
pub const SO_PIN: &str = "87654321";

/// Tests run one at a time against the token: SoftHSM rewrites the token file on every login
/// (its PIN-count flags), and another process reading it meanwhile can see a token without a
/// label. (Within one layercrypt process, operations on a module are serialised.)
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The token made for this test run, shared by all tests (they only read it).
pub struct Token {
    /// The directory holding the token, its configuration and exported public keys.
    pub dir: PathBuf,
    /// `softhsm2.conf`, for `SOFTHSM2_CONF`.
    pub conf: PathBuf,
}

pub fn run_tool(program: &str, args: &[&str], conf: &Path) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install softhsm2 and opensc with scripts/deps.sh --test")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The token: RSA-2048 (`rsa2048`, id 01), RSA-3072 (`rsa3072`, id 02) and EC P-256
/// (`ec256`, id 03) key pairs, and the RSA public keys exported as DER.
pub fn token() -> &'static Token {
    static TOKEN_DIR: OnceLock<Token> = OnceLock::new();
    TOKEN_DIR.get_or_init(|| {
        assert!(
            Path::new(MODULE).exists(),
            "the SoftHSM module {MODULE} is missing; install softhsm2 with scripts/deps.sh --test"
        );
        // Under the target directory, one per test process; those of earlier runs (whose
        // process is gone) are removed.
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("pkcs11-softhsm-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let dir = parent.join(format!("pkcs11-softhsm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        run_tool(
            "softhsm2-util",
            &[
                "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN,
            ],
            &conf,
        );
        for (kind, id, label) in [
            ("rsa:2048", "01", "rsa2048"),
            ("rsa:3072", "02", "rsa3072"),
            ("EC:prime256v1", "03", "ec256"),
        ] {
            run_tool(
                "pkcs11-tool",
                &[
                    "--module", MODULE, "--token-label", TOKEN, "--login", "--pin", PIN,
                    "--keypairgen", "--key-type", kind, "--id", id, "--label", label,
                ],
                &conf,
            );
        }
        for (id, name) in [("01", "rsa2048.pub.der"), ("02", "rsa3072.pub.der")] {
            let out = dir.join(name);
            run_tool(
                "pkcs11-tool",
                &[
                    "--module", MODULE, "--token-label", TOKEN, "--read-object", "--type",
                    "pubkey", "--id", id, "-o", out.to_str().unwrap(),
                ],
                &conf,
            );
        }
        Token { dir, conf }
    })
}

impl Token {
    /// Write a PKCS#11 key file for `uri_path` (path attributes after the token) with `query`
    /// attributes, asking for this token's `SOFTHSM2_CONF`.
    pub fn key_file(&self, dir: &Path, name: &str, uri_path: &str, query: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(
            &path,
            format!(
                "pkcs11:\n  uri: pkcs11:{uri_path}?{query}\nmodule:\n  env:\n    SOFTHSM2_CONF: {}\n",
                self.conf.display()
            ),
        )
        .unwrap();
        path
    }

    /// The usual key file: the object `label` on the test token, with the PIN and SoftHSM.
    pub fn key(&self, dir: &Path, label: &str) -> PathBuf {
        self.key_file(
            dir,
            &format!("{label}.yaml"),
            &format!("token={TOKEN};object={label}"),
            &format!("pin-value={PIN}&module-name=softhsm2"),
        )
    }

    /// The binary with the environment a user would set: the token's configuration, the test
    /// policy, SHA-1 OAEP; nothing inherited that could change the outcome.
    pub fn layercrypt(&self, hash: Option<&str>) -> assert_cmd::Command {
        let mut cmd = layercrypt();
        cmd.env("SOFTHSM2_CONF", &self.conf)
            .env("OCICRYPT_CONFIG", testdata("pkcs11/softhsm-policy.conf"))
            .env_remove("OCICRYPT_OAEP_HASHALG")
            .env_remove("OCICRYPT_KEYPROVIDER_CONFIG");
        if let Some(h) = hash {
            cmd.env("OCICRYPT_OAEP_HASHALG", h);
        }
        cmd
    }
}
