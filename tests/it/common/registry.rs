//! A local Distribution registry for round trips through `skopeo copy docker://…`.
//!
//! [`Registry::start`] runs Debian's `docker-registry` (Distribution 2.8) on a free loopback
//! port, over plain HTTP, with filesystem storage in a temporary directory, and returns once
//! `GET /v2/` answers; dropping the guard stops it. Each test starts its own registry (a
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

impl Registry {
    /// Start a registry and wait until it answers.
    pub fn start() -> Registry {
        assert!(
            Path::new(BINARY).is_file(),
            "the registry {BINARY} is missing; install it (Debian package docker-registry) with \
             scripts/deps.sh --test"
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).unwrap();
        let log = dir.path().join("registry.log");
        let mut exits = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let token = unique_token();
            let config = dir.path().join("config.yml");
            fs::write(&config, config_yaml(&storage, port, &token)).unwrap();
            let mut child = spawn(&config, &log);
            match wait_ready(&mut child, port, &token) {
                Start::Ready => {
                    return Registry {
                        child,
                        port,
                        log,
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

    /// The registry's log so far (warnings and errors).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }
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
fn config_yaml(storage: &Path, port: u16, token: &str) -> String {
    format!(
        "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: layercrypt-test-{token}
  headers:
    {TOKEN_HEADER}: [\"{token}\"]
",
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
fn wait_ready(child: &mut Child, port: u16, token: &str) -> Start {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Start::Exited(format!("exited with {status}"));
        }
        if answers(port, token) {
            return Start::Ready;
        }
        if Instant::now() >= deadline {
            return Start::TimedOut;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `GET /v2/` on 127.0.0.1:`port` answers 200 with our token header.
fn answers(port: u16, token: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    stream.set_read_timeout(timeout).unwrap();
    stream.set_write_timeout(timeout).unwrap();
    let request =
        format!("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    if stream.read_to_end(&mut response).is_err() {
        return false;
    }
    let response = String::from_utf8_lossy(&response);
    let Some((head, _body)) = response.split_once("\r\n\r\n") else {
        return false;
    };
    let mut lines = head.lines();
    let ok = lines
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"));
    ok && lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case(TOKEN_HEADER) && value.trim() == token
        })
    })
}

fn read_log(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_else(|e| format!("(cannot read {}: {e})", log.display()))
}
