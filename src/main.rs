//! The `layercrypt` command: arguments in, a library request out, its report printed.
//!
//! The command line belongs to this binary, not to the library: clap, its man page and
//! completion generators, progress bars and signal handling are compiled only with the `cli`
//! feature, and the library's errors carry no flag names (the `hint:` lines that name flags
//! are made here, in `cli/hint.rs`).

#![forbid(unsafe_code)]
// The command passes the library's `Error` through as it is, once per run, on its way to
// stderr; its size does not matter here, and the library's public functions return it
// unboxed (which clippy leaves alone there, as an exported API).
#![allow(clippy::result_large_err)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
