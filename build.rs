//! Build information for `layercrypt --version`: the target, and which OpenSSL is linked and
//! how (openssl-sys, a direct dependency for this, tells its dependents through `DEP_OPENSSL_*`).
//! Only inputs of the build go in, never the time or the host, so that two builds of one
//! commit give the same bytes (scripts/package.sh checks it).

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LAYERCRYPT_COMMIT");
    let target = env::var("TARGET").unwrap_or_else(|_| "unknown target".into());
    let openssl = match env::var("DEP_OPENSSL_VERSION_NUMBER") {
        Ok(hex) => match u64::from_str_radix(&hex, 16) {
            // 0xMNN00PP0L for OpenSSL 3: major, minor, patch.
            Ok(v) => format!(
                "OpenSSL {}.{}.{}",
                v >> 28,
                (v >> 20) & 0xff,
                (v >> 4) & 0xff
            ),
            Err(_) => format!("OpenSSL {hex}"),
        },
        Err(_) => "OpenSSL (version unknown)".into(),
    };
    let linked = if env::var("DEP_OPENSSL_VENDORED").is_ok() {
        "built in (static, vendored)"
    } else {
        "from the system (shared)"
    };
    let libc = if target.ends_with("-musl") {
        "musl (static)"
    } else if target.contains("-gnu") {
        "glibc (shared)"
    } else {
        "the platform's"
    };
    let commit = env::var("LAYERCRYPT_COMMIT")
        .map(|c| format!(", commit {c}"))
        .unwrap_or_default();
    println!(
        "cargo:rustc-env=LAYERCRYPT_BUILD={target}; {openssl} {linked}; C library {libc}{commit}"
    );
}
