//! The test key provider (`examples/keyprovider`) and key-provider configurations for tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::layercrypt;

/// The test provider binary, built (once per test run) by the cargo that builds this test, so
/// that `cargo test --test it provider::` alone also finds a fresh one.
pub fn provider_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/it-HASH → target/<profile>/examples/keyprovider
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let bin = profile_dir.join("examples").join("keyprovider");
        let target_dir = profile_dir.parent().unwrap();
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        // The same features as this test, so the nested build reuses what is built.
        let mut features = Vec::new();
        if cfg!(feature = "pgp") {
            features.push("pgp");
        }
        if cfg!(feature = "keyprovider-grpc") {
            features.push("keyprovider-grpc");
        }
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "keyprovider"])
            .args(["--no-default-features", "--features", &features.join(",")])
            .args([
                "--profile",
                if profile == "debug" { "dev" } else { profile },
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cannot build examples/keyprovider");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// A config entry running the test provider as a command with `args` (before `cmd`).
pub fn cmd_provider(args: &[&str]) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("cmd");
    json!({"cmd": {"path": provider_bin(), "args": all}})
}

/// Write a key-provider configuration with these entries; returns its path.
pub fn config(dir: &Path, file: &str, providers: Value) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, json!({ "key-providers": providers }).to_string()).unwrap();
    path
}

/// layercrypt with this key-provider configuration.
pub fn with_config(config: &Path) -> assert_cmd::Command {
    let mut cmd = layercrypt();
    cmd.env("OCICRYPT_KEYPROVIDER_CONFIG", config);
    cmd
}
