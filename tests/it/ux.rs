//! What people and scripts see: the exact stderr and exit status of the mistakes people make
//! most, the exit-status contract, a closed stdout pipe, progress bars that stay off stdout,
//! `--version`, the man page and the checked-in shell completions.
//!
//! Commands run in `testdata/`, so that the paths in messages are short and stable.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// `layercrypt` in `testdata/`, with none of the environment that changes its messages.
fn in_testdata() -> assert_cmd::Command {
    let mut cmd = layercrypt();
    cmd.current_dir(testdata(""))
        .env_remove("OCICRYPT_KEYPROVIDER_CONFIG")
        .env_remove("OCICRYPT_CONFIG")
        .env_remove("COLUMNS");
    cmd
}

/// Run `args` (split at spaces; `{out}`, here and in `stderr`, is a path in a fresh temporary
/// directory) and check the exit status, that stdout is empty and stderr is exactly `stderr`,
/// and that `{out}` was not created.
fn mistake(args: &str, code: i32, stderr: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let out = out_dir.display().to_string();
    let args: Vec<String> = args.split(' ').map(|a| a.replace("{out}", &out)).collect();
    let stderr = stderr.replace("{out}", &out);
    let output = in_testdata().args(&args).output().unwrap();
    let actual = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        actual,
        stderr,
        "\nstderr of `layercrypt {}` differs.\n--- expected\n{stderr}--- actual\n{actual}---",
        args.join(" ")
    );
    assert_eq!(
        output.status.code(),
        Some(code),
        "layercrypt {}",
        args.join(" ")
    );
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    assert!(!out_dir.exists(), "{} was created", out_dir.display());
}

// ---------------------------------------------------------------------------------------------
// The common mistakes, message for message

#[test]
fn a_private_key_given_as_a_recipient() {
    mistake(
        "encrypt -r jwe:keys/rsa2048.pem oci:images/plain:v1 oci:{out}:v1",
        2,
        "\
error: recipient `jwe:keys/rsa2048.pem`: keys/rsa2048.pem: this file is a private key; expected a public key (PEM/DER SubjectPublicKeyInfo, PKCS#1, or a public JWK)
hint: a recipient is a public key; extract it with `openssl pkey -in KEY.pem -pubout -out KEY.pub.pem`
",
    );
}

#[test]
fn a_recipient_without_its_scheme() {
    mistake(
        "encrypt -r keys/rsa2048.pub.pem oci:images/plain:v1 oci:{out}:v1",
        2,
        "\
error: recipient `keys/rsa2048.pub.pem`: a recipient is SCHEME:VALUE (jwe:FILE, pgp:EMAIL, pkcs7:CERT, pkcs11:FILE, provider:NAME)
hint: a recipient names its scheme: jwe:keys/rsa2048.pub.pem for a public key file, pkcs7:keys/rsa2048.pub.pem for an X.509 certificate, pgp:keys/rsa2048.pub.pem for an OpenPGP certificate or e-mail address
",
    );
}

#[test]
fn a_certificate_given_as_a_jwe_recipient() {
    mistake(
        "encrypt -r jwe:keys/x509.crt oci:images/plain:v1 oci:{out}:v1",
        2,
        "\
error: recipient `jwe:keys/x509.crt`: keys/x509.crt: this file is an X.509 certificate; expected a public key (PEM/DER SubjectPublicKeyInfo, PKCS#1, or a public JWK)
hint: X.509 certificates are PKCS#7 recipients: write pkcs7:CERT (for jwe:, extract the public key with `openssl x509 -in CERT -pubkey -noout`)
",
    );
}

#[test]
fn a_public_key_given_as_a_key() {
    mistake(
        "decrypt -k keys/rsa2048.pub.pem oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        "\
error: key file keys/rsa2048.pub.pem is a public key, which cannot decrypt layers (a key is a private key, an X.509 certificate, an OpenPGP secret keyring or a PKCS#11 key file)
hint: decryption needs the private key that belongs to the recipient's public key
",
    );
}

const SSH_AGE_HINT: &str = "hint: SSH and age keys are not ocicrypt key types; make an RSA or EC key with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem`\n";

#[test]
fn ssh_keys_are_not_ocicrypt_keys() {
    mistake(
        "encrypt -r jwe:keys/openssh-rsa2048.pub oci:images/plain:v1 oci:{out}:v1",
        2,
        &format!(
            "\
error: recipient `jwe:keys/openssh-rsa2048.pub`: keys/openssh-rsa2048.pub: this file is an SSH public key; expected a public key (PEM/DER SubjectPublicKeyInfo, PKCS#1, or a public JWK)
{SSH_AGE_HINT}"
        ),
    );
    mistake(
        "decrypt -k keys/openssh-rsa2048 oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        &format!(
            "\
error: key file keys/openssh-rsa2048 is an OpenSSH private key, which cannot decrypt layers (a key is a private key, an X.509 certificate, an OpenPGP secret keyring or a PKCS#11 key file)
{SSH_AGE_HINT}"
        ),
    );
}

#[test]
fn age_keys_are_not_ocicrypt_keys() {
    mistake(
        "encrypt -r jwe:keys/age-recipient.txt oci:images/plain:v1 oci:{out}:v1",
        2,
        &format!(
            "\
error: recipient `jwe:keys/age-recipient.txt`: keys/age-recipient.txt: this file is an age key; expected a public key (PEM/DER SubjectPublicKeyInfo, PKCS#1, or a public JWK)
{SSH_AGE_HINT}"
        ),
    );
    mistake(
        "decrypt -k keys/age-identity.txt oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        &format!(
            "\
error: key file keys/age-identity.txt is an age key, which cannot decrypt layers (a key is a private key, an X.509 certificate, an OpenPGP secret keyring or a PKCS#11 key file)
{SSH_AGE_HINT}"
        ),
    );
}

#[test]
fn an_ed25519_key_is_not_an_ocicrypt_key() {
    mistake(
        "decrypt -k keys/ed25519.pem oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        "\
error: key file keys/ed25519.pem: unsupported key: Ed25519 (layercrypt uses RSA and EC P-256/P-384/P-521 keys)
hint: ocicrypt keys are RSA or EC P-256/P-384/P-521; make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem`
",
    );
}

const PROVIDER_HINT: &str = "hint: set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file whose \"key-providers\" has an entry of that name (README: Key providers)\n";

#[test]
fn a_key_provider_without_configuration() {
    mistake(
        "encrypt -r provider:kbs oci:images/plain:v1 oci:{out}:v1",
        2,
        "\
error: recipient `provider:kbs`: no key provider named `kbs` is configured (OCICRYPT_KEYPROVIDER_CONFIG)
hint: set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file with a \"key-providers\" entry of that name
",
    );
    mistake(
        "decrypt -k provider:kbs oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        &format!(
            "\
error: key `provider:kbs`: no key provider named `kbs` is configured (OCICRYPT_KEYPROVIDER_CONFIG)
{PROVIDER_HINT}"
        ),
    );
}

/// A layer wrapped only for a key provider this run does not have.
#[test]
fn a_layer_for_a_key_provider_without_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("skopeo-rsa2048", tmp.path());
    Layout(dir.clone()).edit_manifest("v1", |m| {
        for l in m["layers"].as_array_mut().unwrap() {
            let a = l["annotations"].as_object_mut().unwrap();
            let jwe = a.remove("org.opencontainers.image.enc.keys.jwe").unwrap();
            a.insert("org.opencontainers.image.enc.keys.provider.kbs".into(), jwe);
        }
    });
    let out = in_testdata()
        .args(["decrypt", "-k", "keys/rsa2048.pem", &oci(&dir, "v1")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let digest = Layout(dir.clone()).layers("v1")[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "\
error: {}, linux/amd64, layer 0 ({}): cannot unwrap its layer key: it is encrypted for provider.kbs, and none of the given keys can be used for that: provider.kbs: no key provider named `kbs` is configured
{PROVIDER_HINT}",
            oci(&dir, "v1"),
            &digest[..19]
        )
    );
}

#[test]
fn a_passphrase_protected_key_without_its_passphrase() {
    mistake(
        "decrypt -k keys/rsa2048.enc-pkcs8.pem oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        "\
error: key file keys/rsa2048.enc-pkcs8.pem: this private key is encrypted; a password is required to use it
hint: give the passphrase with -k keys/rsa2048.enc-pkcs8.pem:file=PATH, -k keys/rsa2048.enc-pkcs8.pem:env=VAR, -k keys/rsa2048.enc-pkcs8.pem:fd=N or --passphrase-file PATH
",
    );
}

#[test]
fn an_encrypted_image_and_no_key() {
    mistake(
        "decrypt oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        "\
error: oci:images/skopeo-rsa2048:v1, linux/amd64, layer 0 (sha256:c566104203b8): cannot unwrap its layer key: it is encrypted for jwe, and no key was given to open it
hint: name the private key with -k KEY-FILE (`layercrypt inspect` lists the layer's recipients)
",
    );
}

#[test]
fn a_key_that_is_not_a_recipient() {
    mistake(
        "decrypt -k keys/ec256.pem oci:images/skopeo-rsa2048:v1 oci:{out}:v1",
        2,
        "\
error: oci:images/skopeo-rsa2048:v1, linux/amd64, layer 0 (sha256:c566104203b8): cannot unwrap its layer key: none of the given keys can open it (encrypted for jwe): jwe with keys/ec256.pem: EC P-256 key is not any of the 1 recipient
hint: each key's reason is given above; `layercrypt inspect` lists the layer's recipients
",
    );
}

#[test]
fn encrypting_into_a_docker_archive() {
    mistake(
        "encrypt -r jwe:keys/rsa2048.pub.pem oci:images/plain:v1 docker-archive:{out}",
        2,
        "\
error: docker-archive:{out}: a docker-archive cannot carry encryption metadata (layer media types and annotations), so encrypted images cannot be written to it
hint: write the encrypted image to oci:DIR[:REF] or oci-archive:FILE[:REF] instead
",
    );
}

#[test]
fn an_image_name_that_is_not_there() {
    mistake(
        "inspect oci:images/plain:v9",
        2,
        "error: oci:images/plain: no image named `v9` (available: multi, v1)\n",
    );
}

#[test]
fn an_image_that_is_not_there() {
    mistake(
        "inspect oci:images/nonexistent:v1",
        2,
        "\
error: opening images/nonexistent: No such file or directory (os error 2)
hint: check the path; an image is oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:REF] (`skopeo copy docker://IMAGE oci:DIR:REF` makes one)
",
    );
}

#[test]
fn no_recipient_is_a_usage_error() {
    mistake(
        "encrypt oci:images/plain:v1",
        2,
        "\
error: the following required arguments were not provided:
  --recipient <RECIPIENT>

Usage: layercrypt encrypt --recipient <RECIPIENT> <SRC> [DST]

For more information, try '--help'.
",
    );
}

// ---------------------------------------------------------------------------------------------
// Exit status and streams

/// 0 success, 1 `verify` found a problem, 2 error; help and version are successes. (130, 143
/// and 129, a run stopped by a signal, are the subject of tests/it/interrupt.rs.)
#[test]
fn exit_status_contract() {
    let ok = |args: &[&str]| in_testdata().args(args).assert().code(0);
    ok(&["--help"]);
    ok(&["encrypt", "--help"]);
    ok(&["--version"]);
    ok(&["inspect", "oci:images/skopeo-rsa2048:v1"]);
    ok(&[
        "verify",
        "-k",
        "keys/rsa2048.pem",
        "oci:images/skopeo-rsa2048:v1",
    ]);
    // verify ran and found a problem: 1, with the finding on stdout.
    in_testdata()
        .args(["verify", "--require-encrypted", "oci:images/plain:v1"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("FAILED: not encrypted"));
    in_testdata()
        .args([
            "verify",
            "-k",
            "keys/ec256.pem",
            "oci:images/skopeo-rsa2048:v1",
        ])
        .assert()
        .code(1);
    // verify could not run: 2.
    in_testdata()
        .args(["verify", "oci:images/nonexistent:v1"])
        .assert()
        .code(2);
    in_testdata().args(["verify"]).assert().code(2);
    in_testdata().args(["--frobnicate"]).assert().code(2);
    in_testdata()
        .args(["encrypt", "--progress", "sometimes", "-r", "jwe:x", "oci:a"])
        .assert()
        .code(2);
}

/// A reader that is gone (`| head -0`) ends the program quietly and successfully.
#[test]
fn a_closed_stdout_pipe_exits_quietly() {
    for args in [
        &["man"][..],
        &["--help"],
        &["completions", "bash"],
        &["inspect", "oci:images/skopeo-multiarch"],
        &["inspect", "--json", "oci:images/skopeo-multiarch"],
        &[
            "verify",
            "-k",
            "keys/rsa2048.pem",
            "oci:images/skopeo-multiarch",
        ],
    ] {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("layercrypt"))
            .current_dir(testdata(""))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the pipe before anything is written: every write fails with EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

/// `-q` prints nothing but errors; results go to stdout only.
#[test]
fn quiet_runs_print_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = oci(&tmp.path().join("enc"), "v1");
    in_testdata()
        .args([
            "encrypt",
            "-q",
            "--progress",
            "always",
            "-r",
            "jwe:keys/rsa2048.pub.pem",
        ])
        .args(["oci:images/plain:v1", &out])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    in_testdata()
        .args(["decrypt", "-q", "-k", "keys/rsa2048.pem", &out])
        .assert()
        .success()
        .stdout("")
        .stderr("");
}

/// `-v` says which key opened what, never key material.
#[test]
fn verbose_runs_trace_decisions_without_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_testdata()
        .args([
            "decrypt",
            "-v",
            "-k",
            "keys/rsa2048.pem",
            "--progress",
            "never",
        ])
        .args([
            "oci:images/skopeo-rsa2048:v1",
            &oci(&tmp.path().join("dec"), "v1"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: oci:images/skopeo-rsa2048:v1, linux/amd64, layer 0 (sha256:c566104203b8): opened with jwe key keys/rsa2048.pem"),
        "{err}"
    );
    assert!(
        !err.contains("PRIVATE KEY") && !err.contains("\"key\""),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Progress

fn encrypt_with_progress(mode: &str, extra: &[&str]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = in_testdata()
        .args([
            "encrypt",
            "--progress",
            mode,
            "-r",
            "jwe:keys/rsa2048.pub.pem",
        ])
        .args(extra)
        .args(["oci:images/plain:v1", &oci(&tmp.path().join("enc"), "v1")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout)
            .unwrap()
            .replace(&tmp.path().display().to_string(), "TMP"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--progress always` draws on stderr even when it is not a terminal: a bar per layer and
/// one in total, with bytes; stdout has the same results as without bars.
#[test]
fn progress_always_draws_on_stderr_and_leaves_stdout_alone() {
    let (stdout, stderr) = encrypt_with_progress("always", &[]);
    for part in [
        "layer 0 linux/amd64",
        "layer 2 linux/amd64",
        "total",
        "B/s",
        "/93.70 KiB",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr:?}");
    }
    let (quiet_stdout, quiet_stderr) = encrypt_with_progress("never", &[]);
    assert_eq!(quiet_stderr, "");
    let digests = |s: &str| s.replace(|c: char| c.is_ascii_hexdigit(), "");
    assert_eq!(digests(&stdout), digests(&quiet_stdout));
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    // auto: stderr is not a terminal here, so nothing is drawn.
    let (_, auto_stderr) = encrypt_with_progress("auto", &[]);
    assert_eq!(auto_stderr, "");
    // --json output stays clean JSON.
    let (json, _) = encrypt_with_progress("always", &["--json"]);
    serde_json::from_str::<serde_json::Value>(&json).unwrap();
}

#[test]
fn verify_full_shows_progress_on_request() {
    let out = in_testdata()
        .args([
            "verify",
            "--full",
            "--progress",
            "always",
            "-k",
            "keys/rsa2048.pem",
        ])
        .arg("oci:images/skopeo-rsa2048:v1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("check c566104203b8"), "{stderr:?}");
    assert!(stderr.contains("total"), "{stderr:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("oci:images/skopeo-rsa2048:v1  linux/amd64  layer 0"));
    assert!(!stdout.contains('\x1b'));
}

// ---------------------------------------------------------------------------------------------
// Version, man page, completions

/// `--version` names the optional features this build has (`+`) and lacks (`-`).
#[test]
fn version_lists_the_features_of_the_build() {
    let sign = |on: bool| if on { '+' } else { '-' };
    let features = format!(
        "{}pgp {}keyprovider-grpc {}registry",
        sign(cfg!(feature = "pgp")),
        sign(cfg!(feature = "keyprovider-grpc")),
        sign(cfg!(feature = "registry"))
    );
    in_testdata().arg("-V").assert().success().stdout(format!(
        "layercrypt {} ({features})\n",
        env!("CARGO_PKG_VERSION")
    ));
    in_testdata()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::starts_with(format!(
            "layercrypt {}\nfeatures: {features}\n",
            env!("CARGO_PKG_VERSION")
        )));
    // Which build: the target, the OpenSSL linked and how, the C library.
    let long = String::from_utf8(in_testdata().arg("--version").output().unwrap().stdout).unwrap();
    let build = long
        .lines()
        .find_map(|l| l.strip_prefix("build: "))
        .unwrap_or_else(|| panic!("no build line: {long}"));
    assert!(
        build.starts_with("x86_64-unknown-linux-gnu; OpenSSL 3.")
            || build.starts_with("aarch64-unknown-linux-gnu; OpenSSL 3."),
        "{build}"
    );
    let linked = if cfg!(feature = "vendored-openssl") {
        "built in (static, vendored)"
    } else {
        "from the system (shared)"
    };
    assert!(build.contains(linked), "{build}");
    assert!(build.contains("C library glibc (shared)"), "{build}");
}

/// The man page documents every subcommand and every one of its options, with the examples
/// of `--help`, and groff renders it without a warning.
#[test]
fn the_man_page_covers_every_command() {
    let page = String::from_utf8(in_testdata().arg("man").output().unwrap().stdout).unwrap();
    assert!(page.contains(".TH layercrypt 1"), "{page}");
    assert!(page.is_ascii());
    for (command, options) in [
        (
            "encrypt",
            &[
                "recipient",
                "platform",
                "layer",
                "dry\\-run",
                "json",
                "progress",
            ][..],
        ),
        (
            "decrypt",
            &[
                "key",
                "key\\-dir",
                "dec\\-recipient",
                "passphrase\\-file",
                "progress",
            ],
        ),
        (
            "rekey",
            &[
                "add",
                "remove",
                "set",
                "rotate",
                "from\\-file",
                "in\\-place",
            ],
        ),
        ("inspect", &["json", "dec\\-recipient", "gpg\\-homedir"]),
        ("verify", &["full", "require\\-encrypted", "progress"]),
        ("completions", &[]),
        ("man", &[]),
    ] {
        let section = format!(".SS \"layercrypt {command}\"");
        let start = page
            .find(&section)
            .unwrap_or_else(|| panic!("no {section}"));
        let rest = &page[start + section.len()..];
        let body = &rest[..rest.find(".SS ").or_else(|| rest.find(".SH ")).unwrap()];
        for option in options {
            assert!(
                body.contains(&format!("\\-\\-{option}")),
                "{command} --{option}"
            );
        }
        assert!(body.contains("Examples:"), "{command} has no examples");
    }
    for section in ["NAME", "SYNOPSIS", "COMMANDS", "NOTES", "VERSION"] {
        assert!(page.contains(&format!(".SH {section}\n")), "{section}");
    }
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    // groff comes with man-db on Debian (scripts/deps.sh installs it).
    let mut groff = groff.expect("groff is installed");
    use std::io::Write;
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
}

/// Every command's `--help` has examples.
#[test]
fn every_command_has_examples_in_its_help() {
    for command in [
        "encrypt",
        "decrypt",
        "rekey",
        "inspect",
        "verify",
        "completions",
        "man",
    ] {
        in_testdata()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicates::str::contains("Examples:\n  layercrypt "));
    }
    in_testdata()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("Exit status: 0 success"));
}

/// The scripts in `completions/` are what the binary generates, for every shell.
#[test]
fn completions_in_the_repository_match_the_binary() {
    for (shell, file) in [
        ("bash", "layercrypt.bash"),
        ("zsh", "_layercrypt"),
        ("fish", "layercrypt.fish"),
        ("elvish", "layercrypt.elv"),
        ("powershell", "_layercrypt.ps1"),
    ] {
        let generated = in_testdata()
            .args(["completions", shell])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("completions")
            .join(file);
        let committed = fs::read(&path).unwrap_or_default();
        assert!(
            generated == committed,
            "{} is stale; regenerate with scripts/completions.sh (after changing the CLI)",
            path.display()
        );
        let text = String::from_utf8(generated).unwrap();
        for word in ["encrypt", "rekey", "verify", "progress", "recipient"] {
            assert!(text.contains(word), "{shell}: {word}");
        }
    }
}
