//! The `layercrypt` command; everything it does lives in the library's [`layercrypt::cli`].

fn main() -> std::process::ExitCode {
    layercrypt::cli::main()
}
