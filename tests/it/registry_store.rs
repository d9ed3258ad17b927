//! Images in a registry, from their manifests alone (issue 16): `inspect`, `verify` and
//! `rekey` on `docker://` references against Debian's Distribution registry on loopback, with
//! TLS from a CA the test makes and htpasswd auth, with skopeo as the peer on both sides.
//!
//! What they show: skopeo's encrypted multi-arch image is re-keyed in the registry, and
//! skopeo then decrypts it with the added key to the original image, byte for byte; the
//! registry's access log shows no request for a layer blob during inspect, verify and rekey;
//! a removed key no longer opens the new tag; `--delete-old` makes the old digest 404. And
//! each way a registry can fail or lie ends in one `error:`, exit 2, nothing pushed.

use crate::common;

use std::fs;

use serde_json::Value;

use common::fake_registry::{Answer, FakeRegistry};
use common::registry::{PASSWORD, Registry, USER};
use common::*;

/// skopeo's flags to reach the secure registry as a client (`src` or `dest`).
fn skopeo_auth(registry: &Registry, side: &str) -> Vec<String> {
    vec![
        format!("--{side}-cert-dir={}", registry.cert_dir().display()),
        format!("--{side}-creds={USER}:{PASSWORD}"),
    ]
}

/// layercrypt's flags for the secure registry: its CA, and credentials from a file.
fn access(registry: &Registry, creds: &std::path::Path) -> Vec<String> {
    vec![
        "--cert-dir".into(),
        registry.cert_dir().display().to_string(),
        "--creds-file".into(),
        creds.display().to_string(),
    ]
}

fn run(args: &[String]) -> std::process::Output {
    layercrypt().args(args).output().unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The digest of a manifest as the registry serves it.
fn served_digest(registry: &Registry, image: &str) -> String {
    let mut args = strings(&["inspect", "--raw"]);
    args.push(format!("--cert-dir={}", registry.cert_dir().display()));
    args.push(format!("--creds={USER}:{PASSWORD}"));
    args.push(image.to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    digest_of(&skopeo_ok(&refs).stdout)
}

/// Every layer digest of every manifest below the index `image` (as served).
fn layer_digests(registry: &Registry, image: &str, creds: &std::path::Path) -> Vec<String> {
    let mut args = strings(&["inspect", "--json"]);
    args.extend(access(registry, creds));
    args.push(image.to_string());
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut digests = Vec::new();
    for image in report["images"].as_array().unwrap() {
        for manifest in image["manifests"].as_array().unwrap() {
            for layer in manifest["layers"].as_array().unwrap() {
                digests.push(layer["digest"].as_str().unwrap().to_string());
            }
        }
    }
    digests.sort();
    digests.dedup();
    digests
}

/// The requests of `requests` that touch one of `blobs`.
fn blob_requests(requests: &[String], blobs: &[String]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| blobs.iter().any(|b| r.contains(&format!("/blobs/{b}"))))
        .cloned()
        .collect()
}

#[test]
fn rekey_in_the_registry_moves_no_layer_and_skopeo_reads_the_result() {
    let registry = Registry::start_secure();
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("creds");
    fs::write(&creds, format!("{USER}:{PASSWORD}\n")).unwrap();
    let image = registry.image("team/app:v1");

    // skopeo encrypts the multi-arch image for rsa2048 and pushes it.
    let mut push = strings(&["copy", "--all", "--encryption-key"]);
    push.push(format!("jwe:{}", key("rsa2048.pub.pem")));
    push.extend(skopeo_auth(&registry, "dest"));
    push.push(oci(&testdata("images/plain"), "multi"));
    push.push(image.clone());
    skopeo_ok(&push.iter().map(String::as_str).collect::<Vec<_>>());
    let layers = layer_digests(&registry, &image, &creds);
    // Two platforms of two layers, each encrypted on its own.
    assert_eq!(layers.len(), 4, "{layers:?}");
    let old = served_digest(&registry, &image);

    // inspect, verify (unwrap only) and rekey --add: no layer blob is requested.
    let start = registry.log_len();
    let mut inspect = strings(&["inspect"]);
    inspect.extend(access(&registry, &creds));
    inspect.push(image.clone());
    let out = run(&inspect);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("linux/arm64"));

    let mut verify = strings(&["verify", "-k", &key("rsa2048.pem")]);
    verify.extend(access(&registry, &creds));
    verify.push(image.clone());
    let out = run(&verify);
    assert!(out.status.success(), "{}", stderr_of(&out));

    let mut rekey = strings(&["rekey", "--json", "-k", &key("rsa2048.pem"), "--add"]);
    rekey.push(format!("jwe:{}", key("ec256.pub.pem")));
    rekey.extend(access(&registry, &creds));
    rekey.push(image.clone());
    let out = run(&rekey);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = served_digest(&registry, &image);
    assert_ne!(new, old);
    assert_eq!(
        report["images"][0]["old_digest"],
        old.as_str(),
        "{report:#}"
    );
    assert_eq!(
        report["images"][0]["new_digest"],
        new.as_str(),
        "{report:#}"
    );

    let requests = registry.requests_since(start);
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("PUT ") && r.contains("/manifests/v1")),
        "the tag was not moved: {requests:#?}"
    );
    assert_eq!(blob_requests(&requests, &layers), Vec::<String>::new());
    // Child manifests went in by digest before the index, and the tag last.
    let puts: Vec<&String> = requests.iter().filter(|r| r.starts_with("PUT ")).collect();
    assert_eq!(puts.len(), 4, "{puts:#?}");
    assert!(
        puts[..3].iter().all(|r| r.contains("/manifests/sha256:")),
        "{puts:#?}"
    );
    assert!(puts[3].contains("/manifests/v1"), "{puts:#?}");

    // skopeo pulls the tag and decrypts it with the added key: the original image.
    let back = tmp.path().join("back");
    let mut pull = strings(&["copy", "--all", "--decryption-key", &key("ec256.pem")]);
    pull.extend(skopeo_auth(&registry, "src"));
    pull.push(image.clone());
    pull.push(oci(&back, "multi"));
    skopeo_ok(&pull.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        Layout(back.clone()).entry("multi")["digest"],
        plain_digest("multi")
    );

    // --remove with --delete-old: the removed key opens nothing in the new tag, and the
    // replaced manifests are gone.
    let start = registry.log_len();
    let mut remove = strings(&[
        "rekey",
        "-k",
        &key("rsa2048.pem"),
        "--delete-old",
        "--remove",
    ]);
    remove.push(format!("jwe:{}", key("ec256.pub.pem")));
    remove.extend(access(&registry, &creds));
    remove.push(image.clone());
    let out = run(&remove);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deleted 3 replaced manifests"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let requests = registry.requests_since(start);
    assert_eq!(blob_requests(&requests, &layers), Vec::<String>::new());
    let mut removed_key = strings(&["verify", "-k", &key("ec256.pem")]);
    removed_key.extend(access(&registry, &creds));
    removed_key.push(image.clone());
    let out = run(&removed_key);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let replaced = format!("{}@{new}", registry.image("team/app"));
    let mut inspect_old = strings(&["inspect"]);
    inspect_old.extend(access(&registry, &creds));
    inspect_old.push(replaced);
    let out = run(&inspect_old);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("has no manifest"),
        "{}",
        stderr_of(&out)
    );

    // verify --full streams the layers (and only then are layer blobs requested).
    let start = registry.log_len();
    let mut full = strings(&["verify", "--full", "-k", &key("rsa2048.pem")]);
    full.extend(access(&registry, &creds));
    full.push(image.clone());
    let out = run(&full);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!blob_requests(&registry.requests_since(start), &layers).is_empty());
}

/// Re-keying to another tag of the same repository leaves the old tag as it was; a whole
/// repository (no tag) means every tag, in order; credentials come from an auth file as
/// `skopeo login` writes it.
#[test]
fn rekey_to_another_tag_and_a_whole_repository_with_an_auth_file() {
    use base64::Engine as _;
    let registry = Registry::start_secure();
    let tmp = tempfile::tempdir().unwrap();
    let auth = tmp.path().join("auth.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"{encoded}"}}}}}}"#,
            registry.port()
        ),
    )
    .unwrap();
    let flags = vec![
        "--cert-dir".to_string(),
        registry.cert_dir().display().to_string(),
        "--authfile".to_string(),
        auth.display().to_string(),
    ];
    let enc = tmp.path().join("enc");
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .args([oci(&testdata("images/plain"), "v1"), oci(&enc, "v1")])
        .assert()
        .success();
    for tag in ["a", "b"] {
        let mut push = strings(&["copy"]);
        push.extend(skopeo_auth(&registry, "dest"));
        push.push(oci(&enc, "v1"));
        push.push(registry.image(&format!("app:{tag}")));
        skopeo_ok(&push.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let before = served_digest(&registry, &registry.image("app:a"));

    let mut to_tag = strings(&["rekey", "-k", &key("rsa2048.pem"), "--add"]);
    to_tag.push(format!("jwe:{}", key("ec256.pub.pem")));
    to_tag.extend(flags.clone());
    to_tag.push(registry.image("app:a"));
    to_tag.push(registry.image("app:a-rekeyed"));
    let out = run(&to_tag);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(served_digest(&registry, &registry.image("app:a")), before);
    assert_ne!(
        served_digest(&registry, &registry.image("app:a-rekeyed")),
        before
    );

    // The whole repository: a, a-rekeyed (unchanged: it has ec256 already) and b.
    let mut all = strings(&["rekey", "--json", "-k", &key("rsa2048.pem"), "--add"]);
    all.push(format!("jwe:{}", key("ec256.pub.pem")));
    all.extend(flags.clone());
    all.push(registry.image("app"));
    let out = run(&all);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let repo = registry.image("app");
    assert_eq!(
        names,
        [
            format!("{repo}:a"),
            format!("{repo}:a-rekeyed"),
            format!("{repo}:b")
        ]
    );
    let mut check = strings(&["verify", "-k", &key("ec256.pem")]);
    check.extend(flags.clone());
    check.push(registry.image("app"));
    let out = run(&check);
    assert!(out.status.success(), "{}", stderr_of(&out));

    // Several images, two at a time: each report has the old and the new digest (what a
    // signing script needs), and the new one is what the registry serves.
    let tags = ["a", "b", "a-rekeyed"];
    let mut batch = strings(&[
        "rekey",
        "--json",
        "-j",
        "2",
        "-k",
        &key("rsa2048.pem"),
        "--remove",
    ]);
    batch.push(format!("jwe:{}", key("ec256.pub.pem")));
    batch.extend(flags);
    batch.extend(tags.iter().map(|t| registry.image(&format!("app:{t}"))));
    let out = run(&batch);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("note: the replaced manifests still exist"),
        "{}",
        stderr_of(&out)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = summary["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 3, "{summary:#}");
    for (report, tag) in reports.iter().zip(tags) {
        let image = &report["images"][0];
        assert_eq!(image["name"], format!("{repo}:{tag}"), "{summary:#}");
        assert_ne!(image["old_digest"], image["new_digest"], "{summary:#}");
        assert_eq!(
            image["new_digest"],
            served_digest(&registry, &registry.image(&format!("app:{tag}"))).as_str()
        );
    }
}

/// Encrypt, decrypt and rotation need layer data: refused before any request (the host
/// does not even exist), with the skopeo pipeline as the hint.
#[test]
fn layer_data_operations_are_refused_before_any_request() {
    let image = "docker://registry.invalid:5000/app:v1";
    let recipient = format!("jwe:{}", key("rsa2048.pub.pem"));
    let private = key("rsa2048.pem");
    for args in [
        vec!["encrypt", "-r", recipient.as_str(), image],
        vec!["decrypt", "-k", private.as_str(), image],
        vec![
            "rekey",
            "-k",
            private.as_str(),
            "--rotate",
            "--set",
            recipient.as_str(),
            image,
        ],
    ] {
        let out = layercrypt().args(&args).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("does not move to or from a registry"),
            "{args:?}: {err}"
        );
        assert!(err.contains("hint: copy the image to a layout"), "{err}");
        assert!(
            err.contains("skopeo copy docker://registry.invalid:5000/app:v1 oci:"),
            "{err}"
        );
    }
}

/// A registry image re-keyed into another store (a layout, another repository) or a layout
/// into a registry would copy every layer: refused before any request, whichever side it is.
#[test]
fn rekey_across_stores_with_a_registry_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:v1", dir.path().join("out").display());
    let image = "docker://registry.invalid:5000/app:v1";
    let private = key("rsa2048.pem");
    let recipient = format!("jwe:{}", key("ec256.pub.pem"));
    for (src, dst, without) in [
        (image, layout.as_str(), image),
        (layout.as_str(), image, image),
        (image, "docker://registry.invalid:5000/other:v1", image),
    ] {
        let out = layercrypt()
            .args(["rekey", "-k", &private, "--add", &recipient, src, dst])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{src} -> {dst}: {err}");
        assert!(
            err.contains(&format!("{without} holds no layer data")),
            "{src} -> {dst}: {err}"
        );
        assert!(err.contains("hint: re-key in the registry itself"), "{err}");
        assert!(!dir.path().join("out").exists(), "{src} -> {dst}");
    }
}

/// A manifest for the fake registry: one layer, any content (never fetched).
fn manifest() -> Vec<u8> {
    let config = digest_of(b"{}");
    let layer = format!("sha256:{}", "1".repeat(64));
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip+encrypted", "digest": layer, "size": 10}]
    }))
    .unwrap()
}

/// Run `rekey --add` against `fake` (plain HTTP): exit 2, one `error:` containing `expect`,
/// nothing pushed.
fn refused(fake: &FakeRegistry, image: &str, expect: &str) -> String {
    let recipient = format!("jwe:{}", key("ec256.pub.pem"));
    let private = key("rsa2048.pem");
    refused_by(
        fake,
        &[
            "rekey",
            "--tls-verify=false",
            "-k",
            &private,
            "--add",
            &recipient,
            image,
        ],
        expect,
    )
}

/// Run layercrypt with `args` against `fake`: exit 2 (3 for what retrying may fix: a 5xx),
/// one `error:` containing `expect`, nothing pushed.
fn refused_by(fake: &FakeRegistry, args: &[&str], expect: &str) -> String {
    let image = args.last().unwrap();
    let out = layercrypt().args(args).output().unwrap();
    let err = stderr_of(&out);
    let code = if image.contains("/broken:") { 3 } else { 2 };
    assert_eq!(out.status.code(), Some(code), "{image}: {err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(
        err.contains(expect),
        "{image}: expected {expect:?} in:\n{err}"
    );
    let pushed: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET ") && !r.starts_with("HEAD "))
        .collect();
    assert_eq!(pushed, Vec::<String>::new(), "{image}");
    err
}

#[test]
fn a_failing_or_lying_registry_is_a_clear_error_and_nothing_is_pushed() {
    let body = manifest();
    let digest = digest_of(&body);
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let other = FakeRegistry::start(|_| Answer::error(200, "ELSEWHERE"));
    let elsewhere = format!(
        "http://{}/v2/x/manifests/v1",
        other.host().replace("127.0.0.1", "localhost")
    );
    let fake = FakeRegistry::start(move |request| {
        let name = request.path.split('/').nth(2).unwrap_or("");
        match name {
            "unauthorized" => Answer {
                headers: vec![("WWW-Authenticate".into(), "Basic realm=\"test\"".into())],
                ..Answer::error(401, "UNAUTHORIZED")
            },
            "forbidden" => Answer::error(403, "DENIED"),
            "missing" => Answer::error(404, "MANIFEST_UNKNOWN"),
            "broken" => Answer::error(500, "INTERNAL"),
            "huge" => Answer::ok(oci_manifest, vec![b' '; 5 << 20]),
            "forged" => Answer {
                headers: vec![
                    ("Content-Type".into(), oci_manifest.into()),
                    (
                        "Docker-Content-Digest".into(),
                        format!("sha256:{}", "2".repeat(64)),
                    ),
                ],
                ..Answer::ok(oci_manifest, body.clone())
            },
            "redirect" => Answer {
                status: 302,
                headers: vec![("Location".into(), elsewhere.clone())],
                body: Vec::new(),
            },
            _ => Answer::error(404, "NAME_UNKNOWN"),
        }
    });
    let err = refused(&fake, &fake.image("unauthorized:v1"), "denied");
    assert!(err.contains("hint: log in first"), "{err}");
    refused(&fake, &fake.image("forbidden:v1"), "403");
    let err = refused(&fake, &fake.image("missing:v1"), "has no manifest");
    assert!(err.contains("hint: check the repository and tag"), "{err}");
    refused(&fake, &fake.image("broken:v1"), "answered 500");
    refused(&fake, &fake.image("huge:v1"), "more than 4194304 bytes");
    refused(&fake, &fake.image("forged:v1"), "whose bytes have digest");
    // Asked by digest, served other bytes (even without a header vouching for them).
    let asked = format!("{}@sha256:{}", fake.image("forged"), "3".repeat(64));
    refused_by(
        &fake,
        &["verify", "--tls-verify=false", &asked],
        "whose bytes have digest",
    );
    let _ = digest;
    refused(&fake, &fake.image("redirect:v1"), "another host");
    assert!(other.requests().is_empty(), "the redirect was followed");

    // An unreachable host: the port was just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = layercrypt()
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://127.0.0.1:{port}/app:v1"),
        ])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot reach registry"), "{err}");
}

/// TLS is verified by default: the secure registry's certificate is refused without its CA.
#[test]
fn tls_is_verified_unless_told_otherwise() {
    let registry = Registry::start_secure();
    let out = layercrypt()
        .args(["inspect", &registry.image("app:v1")])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("hint: trust the registry's CA"), "{err}");
    // With verification off, TLS passes and the registry asks for credentials.
    let out = layercrypt()
        .args(["inspect", "--tls-verify=false", &registry.image("app:v1")])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("denied"), "{err}");
}

/// Token auth as Docker Hub, GHCR and Harbor do it: the 401 names a token service; the token
/// is fetched with the credentials (Basic) for this repository's scope, then sent as Bearer.
#[test]
fn bearer_tokens_are_fetched_for_the_repository_with_the_credentials() {
    use base64::Engine as _;
    let body = manifest();
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let port = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let host = std::sync::Arc::clone(&port);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let fake = FakeRegistry::start(move |request| {
        if request.path.starts_with("/token?") {
            let scoped = request
                .path
                .contains("scope=repository%3Ateam%2Fapp%3Apull")
                && request.path.contains("service=fake-registry");
            return if scoped && request.authorization.as_deref() == Some(basic.as_str()) {
                Answer::ok("application/json", br#"{"token":"t0k3n"}"#.to_vec())
            } else {
                Answer::error(401, "UNAUTHORIZED")
            };
        }
        if request.authorization.as_deref() != Some("Bearer t0k3n") {
            let realm = format!("http://{}/token", host.get().unwrap());
            return Answer {
                headers: vec![(
                    "WWW-Authenticate".into(),
                    format!(
                        r#"Bearer realm="{realm}",service="fake-registry",scope="repository:team/app:pull""#
                    ),
                )],
                ..Answer::error(401, "UNAUTHORIZED")
            };
        }
        if request.path.contains("/blobs/") {
            return Answer::ok("application/octet-stream", b"{}".to_vec());
        }
        Answer::ok(oci_manifest, body.clone())
    });
    port.set(fake.host()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("creds");
    fs::write(&creds, format!("{USER}:{PASSWORD}")).unwrap();
    let out = layercrypt()
        .args(["inspect", "--json", "--tls-verify=false", "--creds-file"])
        .arg(&creds)
        .arg(fake.image("team/app:v1"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["images"][0]["digest"],
        digest_of(&manifest()).as_str(),
        "{report:#}"
    );
    let requests = fake.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("GET /token?")),
        "{requests:#?}"
    );

    // Wrong credentials: the token service says no, and the error says so.
    fs::write(&creds, format!("{USER}:wrong")).unwrap();
    let out = layercrypt()
        .args(["inspect", "--tls-verify=false", "--creds-file"])
        .arg(&creds)
        .arg(fake.image("team/app:v1"))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("denied a token for team/app (401"), "{err}");
    assert!(
        err.contains("hint: check the user name and password"),
        "{err}"
    );
}

/// `--creds USER` asks for the password on the terminal (never echoed), so it need not be in
/// argv; with no terminal, it is refused with what to do instead.
#[test]
fn a_missing_password_is_asked_for_on_the_terminal() {
    use std::process::{Command, Stdio};

    let registry = Registry::start_secure();
    let tmp = tempfile::tempdir().unwrap();
    let enc = tmp.path().join("enc");
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .args([oci(&testdata("images/plain"), "v1"), oci(&enc, "v1")])
        .assert()
        .success();
    let mut push = strings(&["copy"]);
    push.extend(skopeo_auth(&registry, "dest"));
    push.push(oci(&enc, "v1"));
    push.push(registry.image("app:v1"));
    skopeo_ok(&push.iter().map(String::as_str).collect::<Vec<_>>());

    let command = format!(
        "tty; {} inspect --cert-dir {} --creds {USER} {}; echo status=$?",
        env!("CARGO_BIN_EXE_layercrypt"),
        registry.cert_dir().display(),
        registry.image("app:v1"),
    );
    let mut session = common::terminal::Session::start(&command);
    // Typed once the prompt has the terminal in raw mode (its text comes first), the password
    // is read up to Enter and never echoed.
    session.wait_for_prompt(&format!("Password for {USER}@127.0.0.1:"));
    session.type_in(format!("{PASSWORD}\r").as_bytes());
    let (success, shown) = session.finish();
    assert!(success, "{shown}");
    assert!(shown.contains("status=0"), "{shown}");
    assert!(shown.contains("tar+gzip+encrypted"), "{shown}");
    assert!(
        !shown.contains(PASSWORD),
        "the password was echoed:\n{shown}"
    );

    // Without a terminal: refused, before any request.
    let out = Command::new(env!("CARGO_BIN_EXE_layercrypt"))
        .args(["inspect", "--creds", USER, &registry.image("app:v1")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no terminal to ask for it on"), "{err}");
}

/// A registry that serves the skopeo-encrypted fixture, takes pushes, and refuses DELETE (as
/// registries without `storage.delete.enabled` do): `--delete-old` re-keys, then says the old
/// manifest stays readable, with the registry's answer; the run succeeds.
#[test]
fn a_registry_that_refuses_deletes_is_reported_and_the_rekey_stands() {
    let layout = testdata("images/skopeo-rsa2048");
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let pushed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let seen = std::sync::Arc::clone(&pushed);
    let blob = move |digest: &str| {
        fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .ok()
    };
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let served = top.clone();
    let fake = FakeRegistry::start(move |request| {
        let path = request.path.as_str();
        match request.method.as_str() {
            "DELETE" => Answer::error(405, "UNSUPPORTED"),
            "PUT" => {
                seen.lock().unwrap().push(path.as_bytes().to_vec());
                Answer {
                    status: 201,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
            }
            _ if path.contains("/tags/list") => Answer::ok(
                "application/json",
                br#"{"name":"app","tags":["v1"]}"#.to_vec(),
            ),
            _ if path.ends_with("/manifests/v1") => {
                Answer::ok(manifest_type, blob(&served).unwrap())
            }
            _ => {
                let digest = path.rsplit('/').next().unwrap();
                match blob(digest) {
                    Some(bytes) => Answer::ok("application/octet-stream", bytes),
                    None => Answer::error(404, "BLOB_UNKNOWN"),
                }
            }
        }
    });
    let out = layercrypt()
        .args([
            "rekey",
            "--tls-verify=false",
            "--delete-old",
            "-k",
            &key("rsa2048.pem"),
        ])
        .args(["--add", &format!("jwe:{}", key("ec256.pub.pem"))])
        .arg(fake.image("app:v1"))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("refused to delete manifest {top} (405")),
        "{err}"
    );
    assert!(err.contains("stays readable by digest"), "{err}");
    let puts: Vec<String> = pushed
        .lock()
        .unwrap()
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(
        puts[0].contains("/manifests/sha256:") && puts[1].ends_with("/manifests/v1"),
        "{puts:?}"
    );
    // Only the config and manifests were read: no layer.
    let manifest: Value = serde_json::from_slice(
        &fs::read(
            testdata("images/skopeo-rsa2048/blobs/sha256").join(top.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            !fake.requests().iter().any(|r| r.contains(digest)),
            "layer {digest} was requested"
        );
    }
}

/// Credentials from a credential helper an auth file names (`credHelpers`), as `docker login`
/// with a helper leaves them.
#[test]
fn credentials_come_from_a_credential_helper() {
    use std::os::unix::fs::PermissionsExt as _;
    let registry = Registry::start_secure();
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-layercrypt-test");
    let asked = tmp.path().join("asked");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > {}\nprintf '%s' '{{\"ServerURL\":\"x\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
            asked.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let auth = tmp.path().join("auth.json");
    let host = format!("127.0.0.1:{}", registry.port());
    fs::write(
        &auth,
        format!(r#"{{"auths":{{}},"credHelpers":{{"{host}":"layercrypt-test"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = layercrypt()
        .env("PATH", path)
        .args(["inspect", "--cert-dir"])
        .arg(registry.cert_dir())
        .arg("--authfile")
        .arg(&auth)
        .arg(registry.image("nothing:here"))
        .output()
        .unwrap();
    // Authenticated (the repository simply does not exist), and the helper was asked for
    // this registry.
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("has no manifest"), "{err}");
    assert_eq!(fs::read_to_string(&asked).unwrap(), host);
}

/// `encrypt --base docker://…`: the base's manifest and config come from the registry (no
/// layer blob is requested), and the layers the image shares with it stay plain.
#[test]
fn a_base_image_in_a_registry_is_read_from_its_manifests() {
    use common::mkimage::{self, Compression, ImageSpec, LayerSpec};
    let registry = Registry::start_secure();
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("creds");
    fs::write(&creds, format!("{USER}:{PASSWORD}\n")).unwrap();
    let spec = |layers: usize| {
        let mut image = ImageSpec::new("linux", "amd64", 11);
        image.layers = vec![LayerSpec::new(4096, Compression::Gzip); layers];
        image
    };
    let base_dir = tmp.path().join("base");
    let base = mkimage::write_image(&base_dir, "v1", &spec(2)).unwrap();
    let app = tmp.path().join("app");
    mkimage::write_image(&app, "v1", &spec(3)).unwrap();
    let base_image = registry.image("library/base:v1");
    let mut push = strings(&["copy"]);
    push.extend(skopeo_auth(&registry, "dest"));
    push.push(oci(&base_dir, "v1"));
    push.push(base_image.clone());
    skopeo_ok(&push.iter().map(String::as_str).collect::<Vec<_>>());

    let start = registry.log_len();
    let mut encrypt = strings(&["encrypt", "-q", "-r"]);
    encrypt.push(format!("jwe:{}", key("rsa2048.pub.pem")));
    encrypt.push("--base".into());
    encrypt.push(base_image);
    encrypt.extend(access(&registry, &creds));
    encrypt.push(oci(&app, "v1"));
    let out = run(&encrypt);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let encrypted: Vec<bool> = Layout(app)
        .layers("v1")
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
        .collect();
    assert_eq!(encrypted, [false, false, true]);
    let layer_blobs: Vec<String> = base.images[0]
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    let requests = registry.requests_since(start);
    assert_eq!(blob_requests(&requests, &layer_blobs), Vec::<String>::new());
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&base.images[0].config.digest)),
        "the base's config was read: {requests:#?}"
    );
}
