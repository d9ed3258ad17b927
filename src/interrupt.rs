//! Stopping a run part-way, cleanly: a process-wide stop request that running work notices at
//! its next check, unwinding through the same paths as any error, so that every temporary file,
//! staging directory and lock is released by its owner and nothing is published.
//!
//! The `layercrypt` command requests a stop when it receives SIGINT, SIGTERM or SIGHUP; an
//! embedder may call [`request`] from any thread (a stop button, a deadline). Checks sit where
//! work takes time: every chunk a blob stream reads ([`check`], through
//! [`crate::store::read_full`] and the verifying blob readers), the waits for key providers and
//! gpg, the engine's commit and each image of a batch. A chunk is at most 1 MiB, so workers
//! stop within milliseconds.
//!
//! Work that leaves something to clean up while it runs (a destination being written, a gpg
//! message in a temporary file) holds a [`Deferred`] guard. While one is held a stop request is
//! honoured by unwinding; when none is, nothing is on disk to clean, and the command exits at
//! once instead of waiting for a blocking call to return ([`request_or`]).
//!
//! The request is process-wide and permanent: once made, every run in the process fails at
//! its next check, as a process that was asked to stop should. This module must never do I/O
//! or depend on the rest of the crate: everything else depends on it.

use std::error::Error as StdError;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Whether a stop was requested.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// How many [`Deferred`] guards are alive. A lock rather than an atomic counter, so that
/// [`request_or`] decides and acts while no scope can start.
static DEFERRING: Mutex<usize> = Mutex::new(0);

fn deferring_count() -> MutexGuard<'static, usize> {
    DEFERRING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error a check returns once a stop was requested. Lower layers carry it inside their own
/// errors (an [`io::Error`] of kind `Other`, never `Interrupted`, which `std` retries);
/// [`caused`] finds it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Ask every running and future run of this process to stop at its next check.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// [`request`] a stop, and when no [`Deferred`] scope is alive (nothing to clean up), call
/// `otherwise` (which exits the process) instead of returning. No scope can start between
/// the decision and the exit, so exiting never leaves a half-made temporary behind.
pub fn request_or(otherwise: impl FnOnce()) {
    let count = deferring_count();
    request();
    if *count == 0 {
        otherwise();
    }
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err` once a stop was requested: call it where work can stop without harm.
pub fn check() -> io::Result<()> {
    if requested() {
        Err(io::Error::other(Interrupted))
    } else {
        Ok(())
    }
}

/// Whether `error`, or any error in its chain of sources, is [`Interrupted`].
pub fn caused(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<Interrupted>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<Interrupted>())
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Held while work has something to clean up should it stop: a stop request then only
/// [`request`]s, and the work unwinds at its next [`check`]. Guards nest; dropping one ends
/// its scope.
#[derive(Debug)]
#[must_use = "the scope ends when the guard is dropped"]
pub struct Deferred(());

impl Deferred {
    /// Start a scope that needs cleaning up should it be stopped; refused once a stop was
    /// requested, before the scope has made anything.
    pub fn new() -> Result<Deferred, Interrupted> {
        let mut count = deferring_count();
        if requested() {
            return Err(Interrupted);
        }
        *count += 1;
        Ok(Deferred(()))
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        *deferring_count() -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The request is process-wide and cannot be withdrawn, so these tests never make one;
    // the integration tests (tests/interrupt.rs) signal real runs.

    #[test]
    fn the_error_is_found_through_wrapping() {
        let wrapped = io::Error::other(Interrupted);
        assert!(caused(&wrapped));
        #[derive(Debug, thiserror::Error)]
        #[error("reading blob")]
        struct Outer(#[source] io::Error);
        assert!(caused(&Outer(io::Error::other(Interrupted))));
        assert!(!caused(&Outer(io::Error::other("disk full"))));
        assert!(!caused(&io::Error::from(io::ErrorKind::Interrupted)));
    }

    #[test]
    fn guards_nest() {
        // Other tests may hold guards at the same time: only "at least these" can be asserted.
        let a = Deferred::new().unwrap();
        let b = Deferred::new().unwrap();
        assert!(*deferring_count() >= 2);
        drop(a);
        assert!(*deferring_count() >= 1);
        drop(b);
    }

    #[test]
    fn no_check_fails_without_a_request() {
        assert!(!requested());
        assert!(check().is_ok());
    }
}
