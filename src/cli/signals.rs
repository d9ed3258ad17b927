//! The command's answer to SIGINT, SIGTERM and SIGHUP (Ctrl-C, `kill`, a closed terminal).
//!
//! The signals are received on a thread of their own (signal-hook's self-pipe: the handler
//! only writes a byte, so nothing of ours runs in signal context). The first asks the run to
//! stop ([`layercrypt::interrupt`]):
//!
//! - while the run has something to clean up (a destination being written, a gpg message on
//!   disk), it unwinds at its next check: workers stop, temporaries and staging directories
//!   are removed, locks released, and nothing is published. The command then prints one
//!   `error: interrupted` line and exits 128 + the signal: 130, 143 or 129;
//! - otherwise (reading manifests, loading keys, waiting for a key provider before anything
//!   was written) nothing is lost by stopping on the spot, so it does, with the same line and
//!   status, rather than wait for a blocking call.
//!
//! A second signal exits at once, whatever is going on. What that leaves (temporaries, a
//! pending list), the next run that locks the store removes, as after `kill -9`.
//!
//! Exiting on the spot may happen while a passphrase prompt has the terminal in raw mode (a
//! Ctrl-C at the prompt, which it answers by raising SIGINT; a `kill` while it waits; a Ctrl-C
//! in the instant between the prompt's text and its raw mode). So the modes the terminal had
//! when the command started are kept, and put back before exiting if they changed. Never
//! otherwise: a process in the background that sets its terminal's modes is stopped (SIGTTOU).
//!
//! A process that only waits for the run it started again with a PKCS#11 module environment
//! passes each signal a process sent it (`kill`) on to that run, and exits with its status.
//! Signals from the terminal (Ctrl-C, a hang-up) reach the run itself, which is in the same
//! foreground process group: passing them on too would count as a second signal.

use std::fs::File;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};

pub(crate) use signal_hook::consts::SIGINT;
use signal_hook::consts::{SIGHUP, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The child every signal is passed on to (0: none).
static CHILD: AtomicU32 = AtomicU32::new(0);

/// Whether `error: interrupted` was printed: once, by whichever thread gets there first. A
/// lock, so that exiting on the spot waits for a line another thread is printing.
static REPORTED: Mutex<bool> = Mutex::new(false);

/// The controlling terminal and its modes when the command started; `None` without one.
static TERMINAL: OnceLock<Option<(File, Termios)>> = OnceLock::new();

/// What to do about the `count`-th signal.
#[derive(Debug, PartialEq, Eq)]
enum Response {
    /// Pass it on to the child, which answers it; this process waits for the child.
    Forward,
    /// Nothing: the child got it too, from the terminal; this process waits for the child.
    Wait,
    /// Ask the run to stop, or exit now if it has nothing to clean up.
    Stop,
    /// Exit now.
    Exit,
}

/// `child`: whether this process waits for a child; `from_terminal`: whether the kernel sent
/// the signal (the terminal's Ctrl-C or hang-up, sent to the whole foreground group) rather
/// than a process.
fn respond(count: u32, child: bool, from_terminal: bool) -> Response {
    match (child, from_terminal, count) {
        (true, true, _) => Response::Wait,
        (true, false, _) => Response::Forward,
        (false, _, 1) => Response::Stop,
        (false, _, _) => Response::Exit,
    }
}

/// Start receiving SIGINT, SIGTERM and SIGHUP.
pub(crate) fn install() -> std::io::Result<()> {
    TERMINAL.get_or_init(|| {
        let tty = File::open("/dev/tty").ok()?;
        let modes = tcgetattr(&tty).ok()?;
        Some((tty, modes))
    });
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("layercrypt-signals".into())
        .spawn(move || {
            let mut count = 0;
            for origin in signals.forever() {
                let signal = origin.signal;
                count += 1;
                let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                let child = CHILD.load(Ordering::SeqCst);
                let from_terminal = origin.cause == Cause::Kernel;
                match respond(count, child != 0, from_terminal) {
                    Response::Forward => forward(child, signal),
                    Response::Wait => {}
                    Response::Stop => layercrypt::interrupt::request_or(|| exit_now(signal)),
                    Response::Exit => exit_now(signal),
                }
            }
        })?;
    Ok(())
}

/// The signal that stopped the run, if one was received.
pub(crate) fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The exit status for a run stopped by `signal`, as shells report it.
pub(crate) fn exit_status(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(super::EXIT_ERROR)
}

/// Print `error: interrupted`, unless it was printed already.
pub(crate) fn report_interrupted() {
    report_locked(&mut REPORTED.lock().unwrap_or_else(PoisonError::into_inner));
}

fn report_locked(reported: &mut bool) {
    if !*reported {
        super::diagnostic("error", &layercrypt::interrupt::Interrupted.to_string());
        *reported = true;
    }
}

/// Exit now, without unwinding or running destructors: other threads may be anywhere. But not
/// in the middle of the line: the lock waits for a thread printing it.
fn exit_now(signal: i32) -> ! {
    let mut reported = REPORTED.lock().unwrap_or_else(PoisonError::into_inner);
    restore_terminal();
    report_locked(&mut reported);
    signal_hook::low_level::exit(i32::from(exit_status(signal)))
}

/// Put back the terminal's modes from the command's start, if a prompt left them changed.
fn restore_terminal() {
    let Some(Some((tty, started))) = TERMINAL.get() else {
        return;
    };
    if let Ok(now) = tcgetattr(tty)
        && (now.local_modes != started.local_modes || now.input_modes != started.input_modes)
    {
        // Exiting anyway: a terminal that refuses cannot be helped.
        let _ = tcsetattr(tty, OptionalActions::Now, started);
    }
}

/// Pass every signal to `child` while the guard lives.
pub(crate) struct Forwarding(());

impl Forwarding {
    /// Forward to the process `pid` from now on.
    pub(crate) fn to(pid: u32) -> Forwarding {
        CHILD.store(pid, Ordering::SeqCst);
        Forwarding(())
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        CHILD.store(0, Ordering::SeqCst);
    }
}

fn forward(child: u32, signal: i32) {
    use rustix::process::{Pid, Signal, kill_process};
    let signal = match signal {
        SIGINT => Signal::INT,
        SIGHUP => Signal::HUP,
        _ => Signal::TERM,
    };
    if let Some(pid) = i32::try_from(child).ok().and_then(Pid::from_raw) {
        // The child may have just exited: nothing to pass on then.
        let _ = kill_process(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_stops_the_second_exits_and_a_parent_forwards_what_was_sent_to_it() {
        for from_terminal in [false, true] {
            assert_eq!(respond(1, false, from_terminal), Response::Stop);
            assert_eq!(respond(2, false, from_terminal), Response::Exit);
            assert_eq!(respond(3, false, from_terminal), Response::Exit);
        }
        assert_eq!(respond(1, true, false), Response::Forward);
        assert_eq!(respond(2, true, false), Response::Forward);
        assert_eq!(respond(1, true, true), Response::Wait);
        assert_eq!(respond(2, true, true), Response::Wait);
    }

    #[test]
    fn exit_statuses_are_128_plus_the_signal() {
        assert_eq!(exit_status(SIGINT), 130);
        assert_eq!(exit_status(SIGTERM), 143);
        assert_eq!(exit_status(SIGHUP), 129);
    }
}
