//! A private Docker daemon for `docker load` of the archives layercrypt writes.
//!
//! [`Dockerd::start`] runs Debian's dockerd 20.10 (which starts its own containerd) with the
//! vfs storage driver and no networking, listening on a unix socket, with its data root, exec
//! root, pid file and socket in a fresh directory under `/tmp` (a unix socket path must stay
//! under 108 bytes, so not under a possibly long `$TMPDIR`), and returns once `docker version`
//! reaches it. Dropping the guard stops it (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]),
//! unmounts what it left mounted and removes the directory.
//!
//! Each test starts its own daemon: `docker load` skips reading a layer whose chain ID is
//! already in the store, so an image loaded earlier would hide a broken layer in a later
//! archive. Docker is a test dependency (`scripts/deps.sh --test` installs `docker.io`): when
//! it is missing the test fails, it never skips.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Debian's daemon (package `docker.io`, 20.10).
pub const DAEMON: &str = "/usr/sbin/dockerd";

/// Debian's client, preferred to any other `docker` in `PATH` (a newer client also works: it
/// negotiates the API version down).
const DEBIAN_CLIENT: &str = "/usr/bin/docker";

/// How long the daemon may take to answer `docker version` (about a second is usual).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the daemon may take to stop after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running daemon; stopped, and its directory removed, when dropped.
pub struct Dockerd {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    client_config: PathBuf,
    dir: TempDir,
}

impl Dockerd {
    /// Start a daemon and wait until the client reaches it; panics with the daemon's log if it
    /// exits or does not answer within [`READY_TIMEOUT`].
    pub fn start() -> Dockerd {
        assert!(
            Path::new(DAEMON).is_file(),
            "the Docker daemon {DAEMON} is missing; install it (Debian package docker.io) with \
             scripts/deps.sh --test"
        );
        let dir = tempfile::Builder::new()
            .prefix("layercrypt-dockerd.")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path();
        // An empty configuration file, so that a system-wide /etc/docker/daemon.json cannot
        // change how this daemon runs.
        let config = root.join("daemon.json");
        fs::write(&config, "{}\n").unwrap();
        let client_config = root.join("client");
        fs::create_dir(&client_config).unwrap();
        let socket = root.join("dockerd.sock");
        let log = root.join("dockerd.log");
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(DAEMON)
            .arg(format!("--config-file={}", config.display()))
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
            ])
            .arg(format!("--host=unix://{}", socket.display()))
            .arg(format!("--data-root={}", root.join("data").display()))
            .arg(format!("--exec-root={}", root.join("exec").display()))
            .arg(format!("--pidfile={}", root.join("dockerd.pid").display()))
            // dockerd runs containerd, runc and docker-init from PATH: Debian's, in /usr/bin.
            .env("PATH", daemon_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {DAEMON} ({e}); install it with scripts/deps.sh --test")
            });
        // From here on, a panic drops the guard, which stops the daemon and cleans up.
        let mut daemon = Dockerd {
            child,
            socket,
            log,
            client_config,
            dir,
        };
        daemon.wait_ready();
        daemon
    }

    /// Poll `docker version` until it reaches the daemon; panic if the daemon exits or the
    /// timeout passes.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "dockerd exited with {status} before it answered; its log:\n{}",
                    self.log()
                );
            }
            let out = self.docker(["version"]);
            if out.status.success() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "dockerd did not answer `docker version` on {} within {READY_TIMEOUT:?} \
                     (last client error: {}); its log:\n{}",
                    self.socket.display(),
                    String::from_utf8_lossy(&out.stderr).trim(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run the client against this daemon: `docker -H unix://SOCKET ARGS…`, with a client
    /// configuration of its own (not `~/.docker`).
    pub fn docker<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let client = client();
        let mut cmd = Command::new(client);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .env("DOCKER_CONFIG", &self.client_config)
            .stdin(Stdio::null());
        // These would conflict with -H or point the client elsewhere.
        for name in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
        ] {
            cmd.env_remove(name);
        }
        cmd.output().unwrap_or_else(|e| {
            panic!("cannot run {client} ({e}); install it (docker.io) with scripts/deps.sh --test")
        })
    }

    /// `docker load -i ARCHIVE`, which must succeed; returns its stdout (`Loaded image: …`).
    pub fn load(&self, archive: &Path) -> String {
        let out = self.docker([OsStr::new("load"), OsStr::new("-i"), archive.as_os_str()]);
        assert!(
            out.status.success(),
            "docker load -i {} failed ({}): {}",
            archive.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `docker image inspect NAME`, which must succeed: the one image's JSON object.
    pub fn image_inspect(&self, name: &str) -> Value {
        let out = self.docker(["image", "inspect", name]);
        assert!(
            out.status.success(),
            "docker image inspect {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let mut images: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(images.len(), 1, "docker image inspect {name}: {images:?}");
        images.remove(0)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's log so far (its and its containerd's output).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log)
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log.display()))
    }

    /// SIGTERM (with the `kill` command: the standard library only sends SIGKILL), wait for a
    /// clean shutdown, then SIGKILL. dockerd stops its containerd itself, and containerd dies
    /// with it when dockerd is killed.
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "warning: dockerd (pid {}) did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it",
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
        // dockerd bind-mounts its data root onto itself and unmounts it on a clean shutdown
        // only; a killed daemon leaves the mount behind, and the directory cannot be removed.
        for mount in mounts_under(self.dir.path()) {
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(&mount)
                .stderr(Stdio::null())
                .status();
        }
        // vfs layers hold root-owned, read-only files: fine to remove as root.
        if let Err(e) = fs::remove_dir_all(self.dir.path()) {
            eprintln!(
                "warning: cannot remove dockerd's directory {}: {e}",
                self.dir.path().display()
            );
        }
    }
}

/// The client to run: Debian's if it is there, else `docker` from `PATH`.
fn client() -> &'static str {
    if Path::new(DEBIAN_CLIENT).is_file() {
        DEBIAN_CLIENT
    } else {
        "docker"
    }
}

/// `PATH` for the daemon: Debian's system directories first, then the inherited ones.
fn daemon_path() -> String {
    let inherited = std::env::var("PATH").unwrap_or_default();
    format!("/usr/sbin:/usr/bin:/sbin:/bin:{inherited}")
}

/// Mount points at or under `dir`, deepest first (from `/proc/self/mountinfo`; paths under
/// `/tmp/layercrypt-dockerd.*` need no unescaping).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|mount| mount.starts_with(dir))
        .collect();
    mounts.sort_by(|a, b| {
        let depth = |p: &PathBuf| p.components().count();
        depth(b).cmp(&depth(a)).then_with(|| a.cmp(b))
    });
    mounts.dedup();
    mounts
}
