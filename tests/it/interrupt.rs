//! Interrupted runs (issue 14, point 2): SIGINT, SIGTERM or SIGHUP stop the workers, remove
//! the run's temporaries and staging, release its locks, print one `error: interrupted` line
//! and exit 130, 143 or 129; the image is as it was, byte for byte. A second signal exits at
//! once, and what that leaves the next run removes, as after `kill -9`.
//!
//! The signals land where they matter without any timing: while layers stream (the test waits
//! until a partial ciphertext is on disk), or while the run waits for a key provider that never
//! answers (the provider writes its pid when it starts), with a staging directory, a finished
//! but unpublished ciphertext, or nothing on disk yet. Timeouts here only guard against hangs.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mkimage::{self, Compression, ImageSpec, LayerSpec};
use common::*;
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// Longest any step may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(120);

/// A layer big enough that the run is still streaming it when the signal lands: the debug
/// binary streams a few MB/s, a release one about a GB/s.
fn layer_size() -> u64 {
    if cfg!(debug_assertions) {
        32 << 20
    } else {
        1 << 30
    }
}

/// A plain layout of two uncompressed layers of [`layer_size`] under `v1`.
fn big_image(dir: &Path) {
    let mut image = ImageSpec::new("linux", "amd64", 21);
    image.layers = vec![
        LayerSpec::new(layer_size(), Compression::None),
        LayerSpec::new(layer_size(), Compression::None),
    ];
    mkimage::write_image(dir, "v1", &image).unwrap();
}

fn start(args: &[&str], provider_config: Option<&Path>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_layercrypt"));
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(config) = provider_config {
        cmd.env("OCICRYPT_KEYPROVIDER_CONFIG", config);
    }
    cmd.spawn().unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// Wait for `child` to end (killing it and failing the test if it hangs).
fn exit_status(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not end after its signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for the run to end: its exit code and stderr.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let status = exit_status(&mut child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every temporary layercrypt makes (`.layercrypt-tmp-*`) below `dir`, and `dir`'s pending
/// list.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".layercrypt-tmp-") || name == ".layercrypt-pending" {
                out.push(e.path());
            } else if e.file_type().unwrap().is_dir() {
                pending.push(e.path());
            }
        }
    }
    out
}

/// The largest temporary file below `dir` (0 when there is none).
fn largest_temporary(dir: &Path) -> u64 {
    leftovers(dir)
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// Every file below `dir`: relative path → (size, SHA-256), to compare trees without holding
/// their bytes.
fn fingerprint(dir: &Path) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                pending.push(e.path());
                continue;
            }
            let mut hasher = Sha256::new();
            let mut file = fs::File::open(e.path()).unwrap();
            let size = std::io::copy(&mut file, &mut hasher).unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            out.insert(rel, (size, hex::encode(hasher.finalize())));
        }
    }
    out
}

/// Whether nothing holds the layout's lock (`flock` on its directory) any more.
fn unlocked(dir: &Path) -> bool {
    Command::new("flock")
        .args(["--nonblock", "--exclusive"])
        .arg(dir)
        .arg("true")
        .status()
        .unwrap()
        .success()
}

/// A key-provider configuration whose provider `hang` writes its pid to `pid_file` and never
/// answers (the command runs `sleep` in its own process, which a stopped run must kill).
fn hanging_provider(dir: &Path, pid_file: &Path) -> PathBuf {
    let script = format!(
        "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 600",
        pid_file.display()
    );
    common::keyprovider::config(
        dir,
        "providers.json",
        json!({"hang": {"cmd": {"path": "/bin/sh", "args": ["-c", script]}}}),
    )
}

/// The pid the hanging provider wrote, once it has started.
fn provider_started(pid_file: &Path) -> u32 {
    let mut pid = None;
    wait_until("the key provider starts", || {
        pid = fs::read_to_string(pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

fn process_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// SIGTERM while both layers stream into the layout in place: the partial ciphertexts are
/// removed, the layout is byte-identical and unlocked, and the run says `error: interrupted`
/// and exits 143. The same into a new OCI archive, with SIGINT (130): no archive, no staging.
#[test]
fn a_signal_mid_stream_removes_the_partial_ciphertexts_and_changes_nothing() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = tmp.path().join("img");
    big_image(&dir);
    let before = fingerprint(&dir);
    let recipient = format!("jwe:{}", key("rsa2048.pub.pem"));

    let run = start(&["encrypt", "-r", &recipient, dir.to_str().unwrap()], None);
    wait_until("a partial ciphertext is on disk", || {
        largest_temporary(&dir) >= 1 << 20
    });
    signal(&run, "TERM");
    let (code, err) = finish(run);
    assert_eq!((code, err.as_str()), (Some(143), "error: interrupted\n"));
    assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());
    assert!(fingerprint(&dir) == before, "the layout changed");
    assert!(unlocked(&dir));

    let archive = tmp.path().join("out.tar");
    let run = start(
        &[
            "encrypt",
            "-r",
            &recipient,
            &oci(&dir, "v1"),
            &format!("oci-archive:{}:v1", archive.display()),
        ],
        None,
    );
    wait_until("the new archive is being written", || {
        largest_temporary(tmp.path()) >= 1 << 20
    });
    signal(&run, "INT");
    let (code, err) = finish(run);
    assert_eq!((code, err.as_str()), (Some(130), "error: interrupted\n"));
    assert_eq!(leftovers(tmp.path()), Vec::<PathBuf>::new());
    assert!(!archive.exists());
    assert!(fingerprint(&dir) == before, "the source changed");
}

/// A run blocked on a key provider that never answers stops at the signal, whichever one: the
/// provider is killed, the staging directory of the new layout removed, and the exit status
/// is 128 + the signal.
#[test]
fn a_run_waiting_for_a_key_provider_stops_and_removes_its_staging() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture_copy("plain", tmp.path());
    let before = fingerprint(&src);
    for (name, status) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let pid_file = tmp.path().join(format!("provider-{name}.pid"));
        let config = hanging_provider(tmp.path(), &pid_file);
        let dst = tmp.path().join(format!("out-{name}"));
        let run = start(
            &[
                "encrypt",
                "-r",
                "provider:hang",
                &oci(&src, "v1"),
                &oci(&dst, "v1"),
            ],
            Some(&config),
        );
        let provider = provider_started(&pid_file);
        assert_eq!(leftovers(tmp.path()).len(), 1, "the staging directory");
        signal(&run, name);
        let (code, err) = finish(run);
        assert_eq!(
            (code, err.as_str()),
            (Some(status), "error: interrupted\n"),
            "{name}"
        );
        assert_eq!(leftovers(tmp.path()), Vec::<PathBuf>::new(), "{name}");
        assert!(!dst.exists(), "{name}");
        assert!(
            process_gone(provider),
            "{name}: the provider was left running"
        );
    }
    assert!(fingerprint(&src) == before);
}

/// `rekey --rotate` wraps the new layer key after the new ciphertext is complete: a signal
/// while the provider is asked removes that finished, unpublished ciphertext too.
#[test]
fn a_rotation_stopped_before_its_commit_removes_the_new_ciphertext() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    layercrypt()
        .args(["encrypt", "-r", &format!("jwe:{}", key("rsa2048.pub.pem"))])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&dir, "v1"))
        .assert()
        .success();
    let before = fingerprint(&dir);
    let pid_file = tmp.path().join("provider.pid");
    let config = hanging_provider(tmp.path(), &pid_file);
    let run = start(
        &[
            "rekey",
            "-k",
            &key("rsa2048.pem"),
            "--rotate",
            "--set",
            "provider:hang",
            &oci(&dir, "v1"),
        ],
        Some(&config),
    );
    let provider = provider_started(&pid_file);
    // The new ciphertexts, complete but not published (small ones are still buffered).
    assert!(!leftovers(&dir).is_empty());
    signal(&run, "TERM");
    let (code, err) = finish(run);
    assert_eq!((code, err.as_str()), (Some(143), "error: interrupted\n"));
    assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());
    assert!(fingerprint(&dir) == before, "the layout changed");
    assert!(unlocked(&dir));
    assert!(process_gone(provider));
}

/// Two signals in a row: the second exits at once, possibly before the cleanup is done. One
/// `error: interrupted` line either way, and the next run that locks the layout removes
/// whatever was left, leaving the image as it was.
#[test]
fn a_second_signal_exits_at_once_and_the_next_run_sweeps_what_it_left() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = tmp.path().join("img");
    big_image(&dir);
    let before = fingerprint(&dir);
    let run = start(
        &[
            "encrypt",
            "-r",
            &format!("jwe:{}", key("rsa2048.pub.pem")),
            dir.to_str().unwrap(),
        ],
        None,
    );
    wait_until("a partial ciphertext is on disk", || {
        largest_temporary(&dir) >= 1 << 20
    });
    signal(&run, "TERM");
    signal(&run, "TERM");
    let (code, err) = finish(run);
    assert_eq!((code, err.as_str()), (Some(143), "error: interrupted\n"));
    // A run that finds nothing to change still locks the layout and sweeps it.
    layercrypt()
        .args(["decrypt", "-q", "-k", &key("rsa2048.pem")])
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(leftovers(&dir), Vec::<PathBuf>::new());
    assert!(fingerprint(&dir) == before, "the layout changed");
}

/// The environment in which a run with a key file of the test token starts itself again
/// (the key file asks for a `SOFTHSM2_CONF` the environment lacks), with the test policy and
/// the hanging provider of `config`.
fn pkcs11_rerun_environment(cmd: &mut Command, config: &Path) {
    cmd.env_remove("SOFTHSM2_CONF")
        .env("OCICRYPT_CONFIG", testdata("pkcs11/softhsm-policy.conf"))
        .env("OCICRYPT_OAEP_HASHALG", "sha1")
        .env("OCICRYPT_KEYPROVIDER_CONFIG", config);
}

/// A run that started itself again with a PKCS#11 key file's module environment (here: its
/// `SOFTHSM2_CONF`, missing from the environment) waits for that second process, which does
/// the work. A signal sent to the first is passed on: the second cleans up and reports, and the
/// first exits with its status, one `error: interrupted` line in all.
#[test]
fn a_signal_to_a_run_started_again_for_pkcs11_is_passed_on() {
    let token = common::softhsm::token();
    let _serial = common::softhsm::serial();
    let tmp = tempfile::tempdir().unwrap();
    let key_file = token.key(tmp.path(), "rsa3072");
    let pid_file = tmp.path().join("provider.pid");
    let config = hanging_provider(tmp.path(), &pid_file);
    let dst = tmp.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_layercrypt"));
    pkcs11_rerun_environment(&mut cmd, &config);
    cmd.args(["encrypt", "-r", &format!("pkcs11:{}", key_file.display())])
        .args(["-r", "provider:hang"])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&dst, "v1"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let run = cmd.spawn().unwrap();
    let provider = provider_started(&pid_file);
    signal(&run, "TERM");
    let (code, err) = finish(run);
    assert_eq!((code, err.as_str()), (Some(143), "error: interrupted\n"));
    assert_eq!(leftovers(tmp.path()), Vec::<PathBuf>::new());
    assert!(!dst.exists());
    assert!(process_gone(provider));
}

/// Ctrl-C on a terminal (`script` gives the run a pseudo-terminal) sends SIGINT to the whole
/// foreground process group: to the run, and to the process that started it again for its
/// PKCS#11 module environment. That one must not pass it on as well, which would count as a
/// second signal and skip the cleanup: the run stops cleanly, 130, one line.
#[test]
fn ctrl_c_on_a_terminal_stops_a_run_started_again_for_pkcs11_once() {
    use std::io::Write as _;
    let token = common::softhsm::token();
    let _serial = common::softhsm::serial();
    let tmp = tempfile::tempdir().unwrap();
    let key_file = token.key(tmp.path(), "rsa3072");
    let pid_file = tmp.path().join("provider.pid");
    let config = hanging_provider(tmp.path(), &pid_file);
    let dst = tmp.path().join("out");
    let command = format!(
        "{} encrypt -r pkcs11:{} -r provider:hang {} {}",
        env!("CARGO_BIN_EXE_layercrypt"),
        key_file.display(),
        oci(&testdata("images/plain"), "v1"),
        oci(&dst, "v1"),
    );
    let mut script = Command::new("script");
    pkcs11_rerun_environment(&mut script, &config);
    let mut run = script
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let provider = provider_started(&pid_file);
    run.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let status = exit_status(&mut run);
    let mut terminal = String::new();
    run.stdout
        .take()
        .unwrap()
        .read_to_string(&mut terminal)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{terminal}");
    assert_eq!(
        terminal.matches("error: interrupted").count(),
        1,
        "{terminal}"
    );
    assert_eq!(leftovers(tmp.path()), Vec::<PathBuf>::new());
    assert!(!dst.exists());
    assert!(process_gone(provider));
}

/// A decrypt run on a terminal of its own (`script`), waiting at its passphrase prompt with
/// the terminal in raw mode: the state a user sees when the prompt asks.
struct Prompting {
    session: common::terminal::Session,
    dst: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Prompting {
    /// Start the run (after it: its status and the terminal's modes) and wait for the prompt.
    fn start() -> Prompting {
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join("out");
        let command = format!(
            "tty; {} decrypt -k {} {} {}; echo status=$?; stty -a",
            env!("CARGO_BIN_EXE_layercrypt"),
            key("rsa2048.enc-legacy.pem"),
            oci(&testdata("images/skopeo-rsa2048"), "v1"),
            oci(&dst, "v1"),
        );
        let session = common::terminal::Session::start(&command);
        // The prompt's text comes before its raw mode: a Ctrl-C in between is the terminal's
        // SIGINT to the whole foreground group, the shell included, not a key the prompt reads.
        session.wait_for_prompt("Passphrase for");
        Prompting {
            session,
            dst,
            _tmp: tmp,
        }
    }

    /// The layercrypt process, found by its destination among the processes.
    fn layercrypt_pid(&self) -> u32 {
        let dst = self.dst.to_str().unwrap();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.first().is_some_and(|a| a.ends_with("layercrypt"))
                && args.iter().any(|a| a.contains(dst))
            {
                return pid;
            }
        }
        panic!("no layercrypt process writes {dst}");
    }

    /// Wait for the terminal session to end, check what every stopped prompt must leave (one
    /// `error: interrupted`, `status`, the terminal's modes back, nothing written), and return
    /// what the terminal showed.
    fn finish(self, status: i32) -> String {
        let (_, terminal) = self.session.finish();
        assert_eq!(
            terminal.matches("error: interrupted").count(),
            1,
            "{terminal}"
        );
        assert!(terminal.contains(&format!("status={status}")), "{terminal}");
        let modes: Vec<&str> = terminal.split_whitespace().collect();
        for mode in ["echo", "icanon", "isig"] {
            assert!(
                modes.contains(&mode),
                "{mode} is off after the run:\n{terminal}"
            );
        }
        assert!(!self.dst.exists());
        terminal
    }
}

/// Ctrl-C at a passphrase prompt: the prompt (which reads the terminal in raw mode, and so
/// receives Ctrl-C as a character) restores the terminal before the run stops, 130, one line;
/// the shell after it still echoes.
#[test]
fn ctrl_c_at_a_passphrase_prompt_restores_the_terminal() {
    let mut prompting = Prompting::start();
    prompting.session.type_in(b"\x03");
    prompting.finish(130);
}

/// `kill` while the prompt waits for an answer that never comes: the run does not wait for
/// Enter; it stops at once, 143, with the terminal's modes put back.
#[test]
fn a_signal_while_a_passphrase_prompt_waits_stops_the_run_and_restores_the_terminal() {
    let prompting = Prompting::start();
    let status = Command::new("kill")
        .args(["-TERM", &prompting.layercrypt_pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    prompting.finish(143);
}
