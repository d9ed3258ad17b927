//! Command providers: run `path args…`, write the request JSON to its stdin, read the answer
//! JSON from its stdout.
//!
//! Unlike Go, which waits forever and reads any amount, a provider gets a deadline (the
//! provider's timeout, [`DEFAULT_TIMEOUT`](super::config::DEFAULT_TIMEOUT) unless configured)
//! and at most [`MAX_RESPONSE`] bytes of answer; past either it is killed. A failing provider's
//! stderr (the start of it) goes into the error, since that is where it explains itself; a
//! successful provider's stderr is discarded, as in Go. Nothing here retries, and nothing
//! writes the request or the answer anywhere else.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::config::CommandConfig;
use super::protocol::MAX_RESPONSE;

/// How much of a failing provider's stderr is kept for the error message: its first lines,
/// where a provider says what went wrong (a usage text after that adds nothing).
const STDERR_KEPT: usize = 1000;
const STDERR_LINES: usize = 5;

/// How often a wait for the provider looks whether a stop was requested.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// Run the provider once with `request`; its stdout on success.
pub(super) fn call(
    command: &CommandConfig,
    request: &[u8],
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let program = command.path.display().to_string();
    if command.path.as_os_str().is_empty() {
        return Err("its \"cmd\" has no \"path\" in the key-provider configuration".into());
    }
    let deadline = Instant::now() + timeout;
    let child = Command::new(&command.path)
        .args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut child = Reaper(child);

    // Each pipe gets its own thread, so a provider that writes before it reads cannot
    // deadlock against us. The threads own what they touch: if a provider leaves a pipe open
    // in a background process after it is killed, its thread is left behind rather than
    // blocking this call.
    let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
        thread::Builder::new()
            .name(format!("keyprovider-{name}"))
            .spawn(work)
            .map(drop)
            .map_err(|e| format!("cannot run {program}: no thread for its {name}: {e}"))
    };
    if let Some(mut stdin) = child.0.stdin.take() {
        let request = Zeroizing::new(request.to_vec());
        // A provider that exits without reading its input is judged by its answer.
        spawn(
            "stdin",
            Box::new(move || {
                let _ = stdin.write_all(&request);
            }),
        )?;
    }
    let (out_tx, out_rx) = mpsc::channel();
    if let Some(stdout) = child.0.stdout.take() {
        spawn(
            "stdout",
            Box::new(move || {
                // Sized once, so the answer (an unwrapped key) is never copied by a reallocation.
                let mut answer = Zeroizing::new(Vec::with_capacity(MAX_RESPONSE + 1));
                let read = stdout
                    .take(MAX_RESPONSE as u64 + 1)
                    .read_to_end(&mut answer);
                let _ = out_tx.send(read.map(|_| answer));
            }),
        )?;
    }
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(mut stderr) = child.0.stderr.take() {
        spawn(
            "stderr",
            Box::new(move || {
                let mut kept = Vec::new();
                let _ = (&mut stderr)
                    .take(STDERR_KEPT as u64 + 1)
                    .read_to_end(&mut kept);
                // Keep draining, so a chatty provider never blocks on a full pipe.
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                let _ = err_tx.send(kept);
            }),
        )?;
    }

    let too_slow = || {
        format!(
            "{program} did not answer within {} (it was stopped)",
            seconds(timeout)
        )
    };
    let stopped = || format!("{program} was stopped: {}", crate::interrupt::Interrupted);
    // Waited for in slices, so that a stop request (`crate::interrupt`) is noticed.
    let answer = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match out_rx.recv_timeout(left.min(POLL)) {
            Ok(Ok(answer)) => break answer,
            Ok(Err(e)) => return Err(format!("cannot read the answer of {program}: {e}")),
            Err(_) if crate::interrupt::requested() => return Err(stopped()),
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
            Err(_) => return Err(too_slow()),
        }
    };
    if answer.len() > MAX_RESPONSE {
        return Err(format!(
            "{program} answered more than {MAX_RESPONSE} bytes (it was stopped)"
        ));
    }
    let status = child.wait_until(deadline).ok_or_else(|| {
        if crate::interrupt::requested() {
            stopped()
        } else {
            too_slow()
        }
    })?;
    if !status.success() {
        let stderr = err_rx
            .recv_timeout(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(1)),
            )
            .unwrap_or_default();
        return Err(format!(
            "{program} failed ({status}){}",
            describe_stderr(&stderr)
        ));
    }
    Ok(answer)
}

/// A child that is killed and reaped if the call gives up on it.
struct Reaper(Child);

impl Reaper {
    /// The exit status, or `None` at the deadline or when a stop is requested.
    fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let mut pause = Duration::from_millis(1);
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => {}
                // Cannot happen for a child we spawned; treat it as "gone".
                Err(_) => return None,
            }
            let now = Instant::now();
            if now >= deadline || crate::interrupt::requested() {
                return None;
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `: <first lines of stderr>` for an error message, or nothing when it said nothing.
fn describe_stderr(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(&stderr[..stderr.len().min(STDERR_KEPT)]);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let shown: Vec<&str> = lines.by_ref().take(STDERR_LINES).collect();
    if shown.is_empty() {
        return String::new();
    }
    let mut out = format!(": {}", shown.join("; "));
    out.retain(|c| !c.is_control());
    if stderr.len() > STDERR_KEPT || lines.next().is_some() {
        out.push_str(" …");
    }
    out
}

/// `60 s`, `0.5 s`.
pub(super) fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> CommandConfig {
        CommandConfig {
            path: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        }
    }

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn the_request_goes_in_and_the_answer_comes_out() {
        let out = call(&sh("cat"), b"{\"x\":1}", LONG).unwrap();
        assert_eq!(&*out, b"{\"x\":1}");
        // A provider that answers before reading, or never reads, still works.
        let out = call(&sh("echo '{}'"), &vec![b'x'; 1 << 20], LONG).unwrap();
        assert_eq!(&*out, b"{}\n");
    }

    #[test]
    fn failures_say_what_the_provider_said() {
        let err = call(
            &sh("echo 'no such key' >&2; echo second >&2; exit 3"),
            b"",
            LONG,
        )
        .unwrap_err();
        assert_eq!(err, "/bin/sh failed (exit status: 3): no such key; second");
        let err = call(&sh("exit 1"), b"", LONG).unwrap_err();
        assert_eq!(err, "/bin/sh failed (exit status: 1)");
        let err = call(
            &sh("head -c 5000 /dev/zero | tr '\\0' e >&2; exit 1"),
            b"",
            LONG,
        )
        .unwrap_err();
        assert!(
            err.len() < STDERR_KEPT + 100 && err.ends_with(" …"),
            "{err}"
        );
        let err = call(&sh("seq 1 100 >&2; exit 1"), b"", LONG).unwrap_err();
        assert_eq!(err, "/bin/sh failed (exit status: 1): 1; 2; 3; 4; 5 …");
        let err = call(&sh("kill -9 $$"), b"", LONG).unwrap_err();
        assert!(err.contains("signal: 9"), "{err}");
        let missing = CommandConfig {
            path: "/nonexistent/provider".into(),
            args: vec![],
        };
        let err = call(&missing, b"", LONG).unwrap_err();
        assert!(
            err.starts_with("cannot run /nonexistent/provider: "),
            "{err}"
        );
        let empty = CommandConfig {
            path: "".into(),
            args: vec![],
        };
        assert!(call(&empty, b"", LONG).unwrap_err().contains("no \"path\""));
    }

    #[test]
    fn a_hung_provider_is_stopped() {
        let err = call(&sh("exec sleep 600"), b"", Duration::from_millis(200)).unwrap_err();
        assert_eq!(err, "/bin/sh did not answer within 0.2 s (it was stopped)");
        // Closing stdout without exiting counts as hanging too.
        let err = call(
            &sh("exec >&-; exec sleep 600"),
            b"",
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(err.contains("did not answer"), "{err}");
    }

    #[test]
    fn an_endless_answer_is_cut() {
        let err = call(&sh("exec cat /dev/zero"), b"", LONG).unwrap_err();
        assert!(err.contains("answered more than"), "{err}");
    }
}
