//! The integration tests, in one test binary (as ripgrep does): `common` (`tests/it/common`;
//! the image generator alone is a thousand lines) is compiled once and the suite links once,
//! instead of once per test file. Each module here was a test binary of its own; run one group with
//! `cargo test --test it interop::` (a name filter), one test with its full path.
//!
//! Tests of one binary run in parallel threads of one process, so nothing here may change
//! process-wide state (environment, current directory, signal handling, the library's stop
//! flag) or measure the whole process; such tests have a binary of their own beside this
//! directory (`tests/interrupt_library.rs`, `tests/generator_memory.rs`). Shared fixtures are
//! made once per process (`OnceLock`) or per test in a directory of their own, and anything
//! the tests reach from outside (ports, sockets, GnuPG homes, SoftHSM tokens) is per test or
//! serialised (`common::softhsm::serial`).

mod common;

mod all_schemes;
mod architecture;
mod base;
mod cli;
mod crash;
mod docker_archive;
mod docker_load;
mod fleet;
mod formats;
mod generator;
mod hostile;
mod interop;
mod interrupt;
mod pgp;
mod pkcs11;
mod pkcs7;
mod provider;
mod registry;
#[cfg(feature = "registry")]
mod registry_store;
mod rekey;
mod secrets;
mod ux;
mod verify;
