//! A local Distribution registry for round trips through `skopeo copy docker://…`.
//!
//! [`Registry::start`] runs Debian's `docker-registry` (Distribution 2.8) on a free loopback
//! port, over plain HTTP, with filesystem storage in a temporary directory, and returns once
//! `GET /v2/` answers; dropping the guard stops it. [`Registry::start_secure`] runs one as
//! users meet it: TLS with a certificate from a CA the test makes, htpasswd (bcrypt) auth, and
//! an access log to prove which blobs were fetched. Each test starts its own registry (a
//! registry in a `static` would outlive the test process). The registry is a test dependency
//! (`scripts/deps.sh --test`): when it is missing the test fails, it never skips.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::skopeo_ok;

/// Debian's registry binary (package `docker-registry`).
pub const BINARY: &str = "/usr/bin/docker-registry";

/// How long a registry may take to answer `GET /v2/` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How many free ports to try when another process takes the chosen one first.
const START_ATTEMPTS: usize = 5;

/// Response header carrying a token unique to each registry, so that the readiness check
/// cannot mistake another server that took the port for ours.
const TOKEN_HEADER: &str = "X-Layercrypt-Test-Registry";

/// A running registry; stopped (killed and reaped) when dropped.
pub struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    /// For a secure registry: the directory with the CA (`ca.crt`) clients trust.
    cert_dir: Option<PathBuf>,
    // Dropped after `child` is stopped (fields drop after `Drop::drop`).
    _dir: TempDir,
}

/// How one start attempt ended.
enum Start {
    Ready,
    /// The process exited before it answered (typically: the port was taken meanwhile).
    Exited(String),
    TimedOut,
}

/// What a secure registry adds: TLS and one htpasswd user.
struct Secure {
    cert: PathBuf,
    key: PathBuf,
    htpasswd: PathBuf,
}

/// The user and password of a secure registry.
pub const USER: &str = "tester";
/// See [`USER`].
pub const PASSWORD: &str = "s3cret:with colon";

impl Registry {
    /// Start a registry and wait until it answers.
    pub fn start() -> Registry {
        Registry::start_with(false)
    }

    /// Start a registry with TLS (a CA made here; [`Registry::cert_dir`] holds it), htpasswd
    /// auth for [`USER`] and [`PASSWORD`], and an access log.
    pub fn start_secure() -> Registry {
        Registry::start_with(true)
    }

    fn start_with(secure: bool) -> Registry {
        assert!(
            Path::new(BINARY).is_file(),
            "the registry {BINARY} is missing; install it (Debian package docker-registry) with \
             scripts/deps.sh --test"
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).unwrap();
        let log = dir.path().join("registry.log");
        let (secure, cert_dir) = if secure {
            let (cert_dir, secure) = make_secure(dir.path());
            (Some(secure), Some(cert_dir))
        } else {
            (None, None)
        };
        let mut exits = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let token = unique_token();
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                config_yaml(&storage, port, &token, secure.as_ref()),
            )
            .unwrap();
            let mut child = spawn(&config, &log);
            match wait_ready(&mut child, port, &token, secure.is_some()) {
                Start::Ready => {
                    return Registry {
                        child,
                        port,
                        log,
                        cert_dir,
                        _dir: dir,
                    };
                }
                Start::Exited(status) => {
                    exits.push(format!(
                        "attempt {attempt}, port {port}: {status}\n{}",
                        read_log(&log)
                    ));
                }
                Start::TimedOut => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the registry on 127.0.0.1:{port} did not answer GET /v2/ within \
                         {READY_TIMEOUT:?}; its log:\n{}",
                        read_log(&log)
                    );
                }
            }
        }
        panic!(
            "the registry did not start in {START_ATTEMPTS} attempts:\n{}",
            exits.join("\n")
        );
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A skopeo reference to repository `name` (with a `:tag` or `@digest` if wanted) in this
    /// registry: `docker://127.0.0.1:PORT/NAME`.
    pub fn image(&self, name: &str) -> String {
        format!("docker://127.0.0.1:{}/{name}", self.port)
    }

    /// The registry's log so far (warnings and errors; for a secure one, every request).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The directory with the CA of a secure registry (`--cert-dir`, `--dest-cert-dir`).
    pub fn cert_dir(&self) -> &Path {
        self.cert_dir.as_deref().expect("a secure registry")
    }

    /// The request lines (`GET /v2/… HTTP/1.1`) of a secure registry's access log from byte
    /// `from` of its log on; [`Registry::log_len`] marks where a step starts.
    pub fn requests_since(&self, from: usize) -> Vec<String> {
        let log = self.log();
        log[from.min(log.len())..]
            .lines()
            .filter_map(|line| {
                let start = line.find('"')?;
                let rest = &line[start + 1..];
                let end = rest.find('"')?;
                let request = &rest[..end];
                request
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|path| path.starts_with("/v2/"))
                    .then(|| request.to_string())
            })
            .collect()
    }

    /// The log's length now.
    pub fn log_len(&self) -> usize {
        self.log().len()
    }
}

/// Make a CA, a certificate for 127.0.0.1 signed by it, and an htpasswd file in `dir`: the
/// clients' certificate directory (holding `ca.crt`), and what the registry serves with.
fn make_secure(dir: &Path) -> (PathBuf, Secure) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509, X509NameBuilder};

    let name = |cn: &str| {
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", cn).unwrap();
        n.build()
    };
    let ca_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut ca = X509::builder().unwrap();
    ca.set_version(2).unwrap();
    ca.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    ca.set_subject_name(&name("layercrypt test CA")).unwrap();
    ca.set_issuer_name(&name("layercrypt test CA")).unwrap();
    ca.set_pubkey(&ca_key).unwrap();
    ca.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    ca.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    ca.append_extension(KeyUsage::new().key_cert_sign().build().unwrap())
        .unwrap();
    ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = ca.build();

    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    cert.set_subject_name(&name("127.0.0.1")).unwrap();
    cert.set_issuer_name(ca.subject_name()).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&cert.x509v3_context(Some(&ca), None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();

    let certs = dir.join("certs");
    fs::create_dir(&certs).unwrap();
    fs::write(certs.join("ca.crt"), ca.to_pem().unwrap()).unwrap();
    let secure = Secure {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        htpasswd: dir.join("htpasswd"),
    };
    fs::write(&secure.cert, cert.to_pem().unwrap()).unwrap();
    fs::write(&secure.key, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    fs::write(&secure.htpasswd, format!("{USER}:{hash}\n")).unwrap();
    (certs, secure)
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skopeo copy [extra…] SRC DST` where SRC or DST is in a test registry (plain HTTP): TLS
/// verification is off on both sides, which is harmless for `oci:` references.
pub fn skopeo_copy(extra: &[&str], src: &str, dst: &str) -> Output {
    let mut args = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend([src, dst]);
    skopeo_ok(&args)
}

/// The manifest (or index) exactly as a registry serves it (`skopeo inspect --raw`).
pub fn raw_manifest(image: &str) -> Vec<u8> {
    skopeo_ok(&["inspect", "--raw", "--tls-verify=false", image]).stdout
}

/// A loopback port nobody listens on right now (the OS picks it; it may be taken again
/// before the registry binds it, which [`Registry::start`] retries).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A token no other registry of this run (or of another test process) uses.
fn unique_token() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The registry configuration: filesystem storage under `storage`, plain HTTP on
/// 127.0.0.1:`port`, warnings and errors only, no access log, deletes allowed, and the
/// identifying header.
fn config_yaml(storage: &Path, port: u16, token: &str, secure: Option<&Secure>) -> String {
    let (level, access_log) = if secure.is_some() {
        ("info", "false")
    } else {
        ("warn", "true")
    };
    let (tls, auth) = match secure {
        Some(s) => (
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                s.cert.display(),
                s.key.display()
            ),
            format!(
                "auth:\n  htpasswd:\n    realm: layercrypt-test\n    path: {}\n",
                s.htpasswd.display()
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "version: 0.1
log:
  level: {level}
  accesslog:
    disabled: {access_log}
{auth}storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: layercrypt-test-{token}
  headers:
    {TOKEN_HEADER}: [\"{token}\"]
{tls}",
        storage = storage.display()
    )
}

/// Start `docker-registry serve CONFIG`, both output streams into `log` (appended, so that the
/// log keeps earlier failed attempts). `REGISTRY_*` variables of the environment would
/// override the configuration, so the child does not inherit them.
fn spawn(config: &Path, log: &Path) -> Child {
    let out = File::options().create(true).append(true).open(log).unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(BINARY);
    cmd.arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(name);
        }
    }
    cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run {BINARY} ({e}); install it with scripts/deps.sh --test")
    })
}

/// Poll `GET /v2/` until this registry (recognised by its token) answers 200, it exits, or
/// the timeout passes.
fn wait_ready(child: &mut Child, port: u16, token: &str, tls: bool) -> Start {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Start::Exited(format!("exited with {status}"));
        }
        if answers(port, token, tls) {
            return Start::Ready;
        }
        if Instant::now() >= deadline {
            return Start::TimedOut;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `GET /v2/` on 127.0.0.1:`port` answers 200 (401 with auth) with our token header;
/// over TLS (any certificate) when `tls`.
fn answers(port: u16, token: &str, tls: bool) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    stream.set_read_timeout(timeout).unwrap();
    stream.set_write_timeout(timeout).unwrap();
    let request =
        format!("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    let exchanged = if tls {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut connector = SslConnector::builder(SslMethod::tls()).unwrap();
        connector.set_verify(SslVerifyMode::NONE);
        match connector.build().connect("127.0.0.1", stream) {
            Ok(mut s) => s.write_all(request.as_bytes()).is_ok() && read_all(&mut s, &mut response),
            Err(_) => false,
        }
    } else {
        let mut stream = stream;
        stream.write_all(request.as_bytes()).is_ok() && read_all(&mut stream, &mut response)
    };
    if !exchanged {
        return false;
    }
    let response = String::from_utf8_lossy(&response);
    let Some((head, _body)) = response.split_once("\r\n\r\n") else {
        return false;
    };
    let mut lines = head.lines();
    let ok = lines.next().is_some_and(|status| {
        let code = status.split_whitespace().nth(1);
        code == Some("200") || (tls && code == Some("401"))
    });
    ok && lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case(TOKEN_HEADER) && value.trim() == token
        })
    })
}

/// Read to the end; a TLS peer that closes without `close_notify` still gave its answer.
fn read_all(stream: &mut impl Read, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return !out.is_empty(),
        }
    }
}

fn read_log(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_else(|e| format!("(cannot read {}: {e})", log.display()))
}
