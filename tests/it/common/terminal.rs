//! A command run on a terminal of its own (`script` from util-linux), for prompts: what the
//! terminal shows, collected as it comes; the terminal's name (the command line must start
//! with `tty;`); and a wait for raw mode, since a prompt prints its text before it switches.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any wait may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(120);

/// A shell command line running on a terminal.
pub struct Session {
    /// The `script` process.
    pub run: Child,
    shown: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Session {
    /// Run `command` (a shell line starting with `tty;`) on a new terminal.
    pub fn start(command: &str) -> Session {
        let mut run = Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        let shown = Arc::new(Mutex::new(String::new()));
        let mut stdout = run.stdout.take().unwrap();
        let reader = {
            let shown = Arc::clone(&shown);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    shown
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        Session {
            run,
            shown,
            reader: Some(reader),
        }
    }

    /// What the terminal has shown so far.
    pub fn shown(&self) -> String {
        self.shown.lock().unwrap().clone()
    }

    /// Wait until the terminal shows `text`, then until the prompt has put it in raw mode.
    pub fn wait_for_prompt(&self, text: &str) {
        let deadline = Instant::now() + HANG;
        while !self.shown().contains(text) {
            assert!(
                Instant::now() < deadline,
                "never shown: {text}\n{}",
                self.shown()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let tty = self.shown().lines().next().unwrap().trim().to_string();
        loop {
            let modes = Command::new("stty")
                .args(["-F", &tty, "-a"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&modes.stdout)
                .split_whitespace()
                .any(|m| m == "-icanon")
            {
                return;
            }
            assert!(Instant::now() < deadline, "the prompt never set raw mode");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Type `bytes` on the terminal.
    pub fn type_in(&mut self, bytes: &[u8]) {
        self.run.stdin.as_mut().unwrap().write_all(bytes).unwrap();
    }

    /// Wait for the session to end (killing it and failing the test if it hangs); returns
    /// whether it succeeded and everything the terminal showed.
    pub fn finish(mut self) -> (bool, String) {
        let deadline = Instant::now() + HANG;
        let status = loop {
            if let Some(status) = self.run.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.run.kill();
                panic!("the run did not end:\n{}", self.shown());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.reader.take().unwrap().join().unwrap();
        (status.success(), self.shown())
    }
}
