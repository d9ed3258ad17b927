//! Key providers end to end: the real `layercrypt` binary with `OCICRYPT_KEYPROVIDER_CONFIG`
//! pointing at the test provider (`examples/keyprovider`), as a command and as a gRPC server
//! (TCP, unix socket, TLS with a CA made here by openssl). Images encrypted for
//! `provider:NAME:ARGS` decrypt with and without `-k provider:NAME:ARGS` and restore the
//! original manifest; providers that fail, answer garbage or hang make layercrypt exit 2 with a
//! message that says so; and the requests a provider receives carry nothing but its own
//! parameters. skopeo 1.9.3 has no key-provider support, so there is no Go peer here: the
//! messages themselves are checked byte for byte against the spec in the unit tests.
//!
//! openssl is a test dependency (`scripts/deps.sh --test`); without it the TLS test fails.

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::keyprovider::*;
use common::*;
use serde_json::{Value, json};

const ANNOTATION: &str = "org.opencontainers.image.enc.keys.provider.kp";

/// Encrypt plain:v1 into `dir/NAME` for `recipients`, with `config`.
fn encrypt(config: &Path, dir: &Path, name: &str, recipients: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = with_config(config);
    cmd.arg("encrypt");
    for r in recipients {
        cmd.args(["-r", r]);
    }
    cmd.arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .success();
    out
}

/// Decrypt `src` with `keys` and check that the result is the original image.
fn decrypts_to_original(config: &Path, src: &Path, keys: &[&str], out: &Path) {
    let mut cmd = with_config(config);
    cmd.arg("decrypt");
    for k in keys {
        cmd.args(["-k", k]);
    }
    cmd.arg(oci(src, "v1"))
        .arg(oci(out, "v1"))
        .assert()
        .success();
    assert_eq!(
        Layout(out.to_path_buf()).entry("v1")["digest"],
        plain_digest("v1"),
        "decrypting {} with {keys:?} did not restore the original",
        src.display()
    );
}

/// Decryption that must fail with exit 2; its stderr.
fn decrypt_fails(config: &Path, src: &Path, keys: &[&str], out: &Path) -> String {
    let mut cmd = with_config(config);
    cmd.arg("decrypt");
    for k in keys {
        cmd.args(["-k", k]);
    }
    let output = cmd
        .arg(oci(src, "v1"))
        .arg(oci(out, "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(!out.exists(), "a failed decryption wrote {}", out.display());
    let err = stderr_of(&output);
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    err
}

/// Every layer is encrypted for the provider only, and its annotation is the provider's bytes
/// in base64 (the provider's own answer was base64 of them too: the "double base64").
fn assert_encrypted_for_kp(image: &Path) {
    let layers = Layout(image.to_path_buf()).layers("v1");
    assert_eq!(layers.len(), 3);
    for layer in &layers {
        assert!(layer["mediaType"].as_str().unwrap().ends_with("+encrypted"));
        let value = layer["annotations"][ANNOTATION].as_str().unwrap();
        assert!(!value.contains(','), "one blob per layer");
        let blob = B64.decode(value).unwrap();
        let provider_doc: Value = serde_json::from_slice(&blob).unwrap();
        assert_eq!(provider_doc["entries"].as_array().unwrap().len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Command providers

/// `provider:kp:ARGS` round trip: decryption works with the right ARGS, and without any
/// `-k` at all (the provider's own secret: node-level decryption); the wrong ARGS fail.
#[test]
fn command_provider_round_trip_with_and_without_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = config(
        tmp.path(),
        "kp.json",
        json!({"kp": cmd_provider(&["--name", "kp", "--secret", "s3cret"])}),
    );
    let enc = encrypt(&conf, tmp.path(), "enc", &["provider:kp:s3cret"]);
    assert_encrypted_for_kp(&enc);
    decrypts_to_original(&conf, &enc, &[], &tmp.path().join("dec-nokey"));
    decrypts_to_original(
        &conf,
        &enc,
        &["provider:kp:s3cret"],
        &tmp.path().join("dec-key"),
    );
    let err = decrypt_fails(
        &conf,
        &enc,
        &["provider:kp:wrong"],
        &tmp.path().join("dec-wrong"),
    );
    assert!(
        err.contains("provider.kp with provider kp: ")
            && err.contains("failed (exit status: 1): keyprovider: none of the 1 secret(s) opens"),
        "{err}"
    );
    // inspect names the provider.
    let out = with_config(&conf)
        .args(["inspect", "--json"])
        .arg(oci(&enc, "v1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\"provider.kp\""), "{text}");
}

/// Several recipients of one provider go in one request and each ARGS opens the layer alone;
/// `provider:kp` without ARGS sends "Enabled".
#[test]
fn several_recipients_of_one_provider() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    std::fs::create_dir(&capture).unwrap();
    let conf = config(
        tmp.path(),
        "kp.json",
        json!({"kp": cmd_provider(&["--name", "kp", "--capture", capture.to_str().unwrap()])}),
    );
    let enc = encrypt(
        &conf,
        tmp.path(),
        "enc",
        &[
            "provider:kp:alice",
            "provider:kp",
            "provider:kp:bob:with:colons",
        ],
    );
    let requests = captured(&capture);
    assert_eq!(requests.len(), 3, "one request per layer");
    for r in &requests {
        assert_eq!(
            r["keywrapparams"]["ec"],
            json!({"Parameters": {"kp": [B64.encode("alice"), B64.encode("Enabled"), B64.encode("bob:with:colons")]},
                   "DecryptConfig": {"Parameters": {}}})
        );
    }
    for k in [
        "provider:kp:alice",
        "provider:kp",
        "provider:kp:bob:with:colons",
    ] {
        let out = tmp.path().join(format!("dec-{}", k.replace(':', "_")));
        decrypts_to_original(&conf, &enc, &[k], &out);
    }
}

/// Providers that answer with arrays of numbers (CoCo's Rust providers) and with mixed-case,
/// padded-out documents (Go decodes both) work both ways.
#[test]
fn number_arrays_and_mixed_case_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = config(
        tmp.path(),
        "kp.json",
        json!({"kp": cmd_provider(&["--name", "kp", "--secret", "x", "--arrays", "--mixed-case"])}),
    );
    let enc = encrypt(&conf, tmp.path(), "enc", &["provider:kp:x"]);
    assert_encrypted_for_kp(&enc);
    decrypts_to_original(&conf, &enc, &[], &tmp.path().join("dec"));
}

/// The requests a provider sees: only its own parameters, never another scheme's recipients
/// or keys, nor another provider's arguments; Go's shape otherwise (checked by the provider).
#[test]
fn a_provider_never_sees_other_schemes_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    std::fs::create_dir(&capture).unwrap();
    let conf = config(
        tmp.path(),
        "kp.json",
        json!({
            "kp": cmd_provider(&["--name", "kp", "--capture", capture.to_str().unwrap()]),
            "other": cmd_provider(&["--name", "other"]),
        }),
    );
    // Encrypt for a JWE key, the other provider and kp in one run.
    let enc = encrypt(
        &conf,
        tmp.path(),
        "enc",
        &[
            &format!("jwe:{}", key("ec256.pub.pem")),
            "provider:other:OTHER-SECRET",
            "provider:kp:abc",
        ],
    );
    let wraps = captured(&capture);
    assert_eq!(wraps.len(), 3);
    for r in &wraps {
        assert_eq!(r["op"], "keywrap");
        assert_eq!(
            r["keywrapparams"]["ec"],
            json!({"Parameters": {"kp": ["YWJj"]}, "DecryptConfig": {"Parameters": {}}})
        );
    }
    // Strip the JWE and the other provider's annotations, so that kp must be asked, then
    // decrypt with a JWE private key, a password-protected key and both providers' args.
    let only_kp = tmp.path().join("only-kp");
    copy_tree(&enc, &only_kp);
    Layout(only_kp.clone()).edit_manifest("v1", |m| {
        for l in m["layers"].as_array_mut().unwrap() {
            let a = l["annotations"].as_object_mut().unwrap();
            a.remove("org.opencontainers.image.enc.keys.jwe");
            a.remove("org.opencontainers.image.enc.keys.provider.other");
        }
    });
    for f in std::fs::read_dir(&capture).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "test-password\n").unwrap();
    decrypts_to_original(
        &conf,
        &only_kp,
        &[
            &key("ec256.pem"),
            &format!("{}:file={}", key("rsa2048.enc-pkcs8.pem"), pw.display()),
            "provider:other:OTHER-SECRET",
            "provider:kp:abc",
        ],
        &tmp.path().join("dec"),
    );
    let unwraps = captured(&capture);
    assert!(!unwraps.is_empty());
    let ec256 = std::fs::read_to_string(key("ec256.pem")).unwrap();
    let ec256_body: String = ec256.lines().filter(|l| !l.starts_with("-----")).collect();
    for r in &unwraps {
        assert_eq!(r["op"], "keyunwrap");
        assert_eq!(
            r["keyunwrapparams"]["dc"],
            json!({"Parameters": {"kp": ["YWJj"]}})
        );
        let text = r.to_string();
        for secret in [
            &ec256_body[..40],
            &B64.encode(ec256.as_bytes())[..40],
            &B64.encode("test-password")[..],
            &B64.encode("OTHER-SECRET")[..],
            "privkeys",
        ] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }
}

/// Every request the test provider recorded in `dir`, parsed.
fn captured(dir: &Path) -> Vec<Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect()
}

/// Providers that fail, answer garbage, answer without a key or hang: exit 2, a message naming
/// the provider and the problem, nothing written.
#[test]
fn misbehaving_providers_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let good = config(
        tmp.path(),
        "good.json",
        json!({"kp": cmd_provider(&["--name", "kp", "--secret", "s"])}),
    );
    let enc = encrypt(&good, tmp.path(), "enc", &["provider:kp:s"]);
    let before = snapshot(&enc);
    let cases: &[(&str, Value, &str)] = &[
        (
            "fail",
            cmd_provider(&["--name", "kp", "--secret", "s", "--mode", "fail"]),
            "failed (exit status: 1): keyprovider: told to fail",
        ),
        (
            "garbage",
            cmd_provider(&["--name", "kp", "--secret", "s", "--mode", "garbage"]),
            "the answer is not valid JSON",
        ),
        (
            "empty",
            cmd_provider(&["--name", "kp", "--secret", "s", "--mode", "empty"]),
            "answered without the layer key (empty optsdata)",
        ),
        (
            "hang",
            {
                let mut p = cmd_provider(&["--name", "kp", "--secret", "s", "--mode", "hang"]);
                p["layercrypt-timeout-seconds"] = json!(0.5);
                p
            },
            "did not answer within 0.5 s (it was stopped)",
        ),
        (
            "missing",
            json!({"cmd": {"path": "/nonexistent/keyprovider"}}),
            "cannot run /nonexistent/keyprovider: No such file or directory",
        ),
    ];
    for (mode, entry, want) in cases {
        let conf = config(tmp.path(), &format!("{mode}.json"), json!({ "kp": entry }));
        let err = decrypt_fails(&conf, &enc, &[], &tmp.path().join(format!("dec-{mode}")));
        assert!(
            err.contains("provider.kp with provider kp: ") && err.contains(want),
            "{mode}: {err}"
        );
        // Encrypting with it fails too, before anything is written.
        let out = tmp.path().join(format!("enc-{mode}"));
        let output = with_config(&conf)
            .args(["encrypt", "-r", "provider:kp:s"])
            .arg(oci(&testdata("images/plain"), "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr_of(&output);
        let want = match *mode {
            "empty" => "answered with an empty annotation (no key for this provider)",
            _ => want,
        };
        assert!(
            err.contains("wrapping the layer key for provider.kp recipients failed: ")
                && err.contains(want),
            "{mode}: {err}"
        );
        assert!(!out.exists());
    }
    assert_eq!(snapshot(&enc), before);
}

/// A provider that is not configured, and configurations that cannot be used: clear errors
/// and warnings, exit 2.
#[test]
fn unknown_providers_and_broken_configurations() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = config(
        tmp.path(),
        "kp.json",
        json!({"kp": cmd_provider(&["--name", "kp"])}),
    );
    let run = |conf: &Path| {
        let output = with_config(conf)
            .args(["encrypt", "-r", "provider:nope:x"])
            .arg(oci(&testdata("images/plain"), "v1"))
            .arg(oci(&tmp.path().join("never"), "v1"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        stderr_of(&output)
    };
    assert_eq!(
        run(&conf),
        "error: recipient `provider:nope:x`: no key provider named `nope` is configured (OCICRYPT_KEYPROVIDER_CONFIG)\n\
         hint: set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file with a \"key-providers\" entry of that name\n"
    );
    let missing = tmp.path().join("missing.json");
    let err = run(&missing);
    assert!(
        err.starts_with(&format!(
            "warning: no key providers: the configuration {} (OCICRYPT_KEYPROVIDER_CONFIG) does not exist\n",
            missing.display()
        )),
        "{err}"
    );
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"key-providers\": {\"kp\": ").unwrap();
    let err = run(&broken);
    assert!(
        err.starts_with(&format!(
            "warning: no key providers: the configuration (OCICRYPT_KEYPROVIDER_CONFIG) cannot be used: {}: not valid JSON",
            broken.display()
        )),
        "{err}"
    );
    // An entry without a transport is refused when used, before anything is read.
    let unset = config(tmp.path(), "unset.json", json!({"kp": {}}));
    let output = with_config(&unset)
        .args(["encrypt", "-q", "-r", "provider:kp"])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&tmp.path().join("never"), "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(
        stderr_of(&output),
        "error: recipient `provider:kp`: key provider kp cannot be used: its configuration names neither \"cmd\" nor \"grpc\"\n"
    );
    assert!(!tmp.path().join("never").exists());
}

// ---------------------------------------------------------------------------------------------
// gRPC providers

/// gRPC providers need the `keyprovider-grpc` feature (on by default).
#[cfg(feature = "keyprovider-grpc")]
mod grpc {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// The test provider serving gRPC; killed when dropped.
    struct Server {
        child: Child,
        /// `HOST:PORT` or `unix:PATH`.
        address: String,
    }

    impl Server {
        fn start(dir: &Path, listen: &str, extra: &[&str]) -> Server {
            static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ready = dir.join(format!("ready-{n}"));
            let mut child = Command::new(provider_bin())
                .args(["--name", "kp", "--secret", "s3cret", "grpc", listen])
                .arg("--ready-file")
                .arg(&ready)
                .args(extra)
                .stdin(Stdio::null())
                .spawn()
                .expect("the test provider starts");
            // Wait until it listens (it writes the ready file then); give up only if it died or
            // after a very long time, so a slow machine never fails this.
            let give_up = Instant::now() + Duration::from_secs(120);
            while !ready.exists() {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the test gRPC provider exited: {status}");
                }
                assert!(
                    Instant::now() < give_up,
                    "the test gRPC provider never listened"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let address = std::fs::read_to_string(&ready).unwrap();
            Server { child, address }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn grpc_provider_over_tcp_and_unix_sockets() {
        let tmp = tempfile::tempdir().unwrap();
        let tcp = Server::start(tmp.path(), "127.0.0.1:0", &[]);
        let socket = tmp.path().join("kp.sock");
        let unix = Server::start(tmp.path(), &format!("unix:{}", socket.display()), &[]);
        let conf = config(tmp.path(), "tcp.json", json!({"kp": {"grpc": tcp.address}}));
        let enc = encrypt(&conf, tmp.path(), "enc", &["provider:kp:s3cret"]);
        assert_encrypted_for_kp(&enc);
        decrypts_to_original(&conf, &enc, &[], &tmp.path().join("dec-tcp"));
        // The same provider behind a unix socket (`unix:///ABSOLUTE-PATH`) opens it too.
        let conf = config(
            tmp.path(),
            "unix.json",
            json!({"kp": {"grpc": format!("unix://{}", socket.display())}}),
        );
        decrypts_to_original(
            &conf,
            &enc,
            &["provider:kp:s3cret"],
            &tmp.path().join("dec-unix"),
        );
        let err = decrypt_fails(
            &conf,
            &enc,
            &["provider:kp:wrong"],
            &tmp.path().join("wrong"),
        );
        assert!(
            err.contains("provider.kp with provider kp: gRPC unix://")
                && err.contains("none of the 1 secret(s) opens"),
            "{err}"
        );
        drop(unix);
        // A server that is gone: a connection error, not a hang.
        let err = decrypt_fails(&conf, &enc, &[], &tmp.path().join("gone"));
        assert!(err.contains("cannot connect to unix socket"), "{err}");
    }

    /// One provider (one runtime, one channel) used from many threads at once, as the
    /// engine's worker threads use it: every call gets its own answer.
    #[test]
    fn one_grpc_provider_serves_many_threads_at_once() {
        use layercrypt::keywrap::provider::ProviderWrapper;
        use layercrypt::keywrap::provider::config::{
            DEFAULT_TIMEOUT, GrpcConfig, ProviderConfig, Transport,
        };
        use layercrypt::keywrap::{KeyRing, KeyWrapper, RecipientSpec};

        let tmp = tempfile::tempdir().unwrap();
        let server = Server::start(tmp.path(), "127.0.0.1:0", &[]);
        let provider = ProviderWrapper::new(ProviderConfig {
            name: "kp".into(),
            transport: Transport::Grpc(GrpcConfig {
                target: server.address.clone(),
                tls: None,
            }),
            timeout: DEFAULT_TIMEOUT,
        });
        let recipients = provider
            .recipients(&[RecipientSpec {
                spec: "provider:kp:s3cret".into(),
                value: "s3cret".into(),
            }])
            .unwrap();
        let keys = KeyRing::default();
        std::thread::scope(|s| {
            for i in 0..16 {
                let (provider, recipients, keys) = (&provider, &recipients, &keys);
                s.spawn(move || {
                    let options = format!("{{\"options\":{i}}}");
                    let blob = provider
                        .wrap(&[&recipients[0]], options.as_bytes())
                        .unwrap();
                    let got = provider.unwrap(keys, &blob).unwrap();
                    assert_eq!(&got.options[..], options.as_bytes());
                });
            }
        });
    }

    /// Run openssl; it is a test dependency.
    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}); install it with scripts/deps.sh --test")
            });
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A test CA, a server certificate for localhost/127.0.0.1 and a client certificate.
    fn make_pki(dir: &Path) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=layercrypt test CA",
        ];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &ca);
        for (name, san, usage) in [
            ("server", "DNS:localhost,IP:127.0.0.1", "serverAuth"),
            ("client", "DNS:client.test", "clientAuth"),
        ] {
            let mut req = vec!["req", "-subj", "/CN=layercrypt test"];
            req.extend(ec);
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            req.extend(["-keyout", &key, "-out", &csr]);
            openssl(dir, &req);
            let ext = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext),
                format!(
                    "subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"
                ),
            )
            .unwrap();
            let pem = format!("{name}.pem");
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    &pem,
                ],
            );
        }
    }

    #[test]
    fn grpc_provider_over_tls() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = tmp.path().join("pki");
        std::fs::create_dir(&pki).unwrap();
        make_pki(&pki);
        let file = |n: &str| pki.join(n).display().to_string();
        // The server requires a client certificate from the test CA.
        let server = Server::start(
            tmp.path(),
            "127.0.0.1:0",
            &[
                "--tls-cert",
                &file("server.pem"),
                "--tls-key",
                &file("server.key"),
                "--client-ca",
                &file("ca.pem"),
            ],
        );
        let port = server.address.rsplit_once(':').unwrap().1.to_string();
        let tls = |extra: Value| {
            let mut t = json!({
                "root-ca-file": file("ca.pem"),
                "cert-file": file("client.pem"),
                "key-file": file("client.key"),
            });
            for (k, v) in extra.as_object().unwrap() {
                t[k] = v.clone();
            }
            t
        };
        // By IP address (checked against the certificate's IP), and by name.
        let conf = config(
            tmp.path(),
            "tls.json",
            json!({"kp": {"grpc": server.address, "grpc-tls": tls(json!({}))}}),
        );
        let enc = encrypt(&conf, tmp.path(), "enc", &["provider:kp:s3cret"]);
        assert_encrypted_for_kp(&enc);
        let by_name = config(
            tmp.path(),
            "tls-name.json",
            json!({"kp": {"grpc": format!("dns:///localhost:{port}"), "grpc-tls": tls(json!({}))}}),
        );
        decrypts_to_original(&by_name, &enc, &[], &tmp.path().join("dec"));

        for (name, grpc_tls, want) in [
            // The system's roots do not know the test CA.
            (
                "system-roots",
                tls(json!({"root-ca-file": ""})),
                "the server's certificate is not trusted",
            ),
            // The certificate is not for this name.
            (
                "wrong-name",
                tls(json!({"server-name": "kp.example"})),
                "TLS handshake with kp.example failed",
            ),
            // No client certificate: the server hangs up during the handshake.
            (
                "no-client-cert",
                tls(json!({"cert-file": "", "key-file": ""})),
                "gRPC ",
            ),
            (
                "unreadable-ca",
                tls(json!({"root-ca-file": file("nope.pem")})),
                "grpc-tls: cannot read root-ca-file",
            ),
        ] {
            let conf = config(
                tmp.path(),
                &format!("{name}.json"),
                json!({"kp": {"grpc": server.address, "grpc-tls": grpc_tls}}),
            );
            let err = decrypt_fails(&conf, &enc, &[], &tmp.path().join(format!("dec-{name}")));
            assert!(
                err.contains("provider.kp with provider kp: ") && err.contains(want),
                "{name}: {err}"
            );
        }
        // insecure-skip-verify accepts the untrusted certificate and the wrong name.
        let insecure = config(
            tmp.path(),
            "insecure.json",
            json!({"kp": {"grpc": server.address, "grpc-tls": tls(json!({
                "root-ca-file": "", "server-name": "kp.example", "insecure-skip-verify": true}))}}),
        );
        decrypts_to_original(&insecure, &enc, &[], &tmp.path().join("dec-insecure"));
        // Plaintext to a TLS server fails plainly.
        let plaintext = config(
            tmp.path(),
            "plaintext.json",
            json!({"kp": {"grpc": server.address}}),
        );
        let err = decrypt_fails(&plaintext, &enc, &[], &tmp.path().join("dec-plain"));
        assert!(
            err.contains("provider.kp with provider kp: gRPC 127.0.0.1:"),
            "{err}"
        );
    }

    /// Answers from a gRPC provider are decoded like command answers (number arrays, mixed case),
    /// and its failures are reported with the gRPC status.
    #[test]
    fn grpc_answers_and_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let arrays = Server::start(tmp.path(), "127.0.0.1:0", &["--arrays", "--mixed-case"]);
        let conf = config(
            tmp.path(),
            "kp.json",
            json!({"kp": {"grpc": arrays.address}}),
        );
        let enc = encrypt(&conf, tmp.path(), "enc", &["provider:kp:s3cret"]);
        assert_encrypted_for_kp(&enc);
        decrypts_to_original(&conf, &enc, &[], &tmp.path().join("dec"));
        drop(arrays);
        for (mode, want) in [
            (
                "fail",
                "gRPC 127.0.0.1:{port}: PermissionDenied: told to fail",
            ),
            ("garbage", "the answer is not valid JSON"),
            ("empty", "answered without the layer key (empty optsdata)"),
        ] {
            let server = Server::start(tmp.path(), "127.0.0.1:0", &["--mode", mode]);
            let conf = config(
                tmp.path(),
                &format!("{mode}.json"),
                json!({"kp": {"grpc": server.address}}),
            );
            let err = decrypt_fails(&conf, &enc, &[], &tmp.path().join(format!("dec-{mode}")));
            let port = server.address.rsplit_once(':').unwrap().1;
            let want = want.replace("{port}", port);
            assert!(err.contains(&want), "{mode}: {err}");
        }
        let hang = Server::start(tmp.path(), "127.0.0.1:0", &["--mode", "hang"]);
        let conf = config(
            tmp.path(),
            "hang.json",
            json!({"kp": {"grpc": hang.address, "layercrypt-timeout-seconds": 0.5}}),
        );
        let err = decrypt_fails(&conf, &enc, &[], &tmp.path().join("dec-hang"));
        assert!(err.contains("did not answer within 0.5 s"), "{err}");
    }
}

/// Without the `keyprovider-grpc` feature, a gRPC provider is refused with a clear reason.
#[cfg(not(feature = "keyprovider-grpc"))]
#[test]
fn grpc_providers_need_the_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = config(
        tmp.path(),
        "kp.json",
        json!({"kp": {"grpc": "127.0.0.1:1"}}),
    );
    let output = with_config(&conf)
        .args(["encrypt", "-r", "provider:kp:x"])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&tmp.path().join("never"), "v1"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&output);
    assert!(err.contains("built without gRPC support"), "{err}");
}
