#!/usr/bin/env bash
# Run the whole test suite, as CI does (.ci/run calls this): installs missing test tools,
# then checks formatting and lints, and runs unit, integration, interop (against skopeo, gpg,
# SoftHSM, a local registry) and documentation tests, with the default features and without
# them, and a short run of every fuzz target. Interop tests fail, never skip, when a tool is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test

scripts/tools.sh && cargo deny --locked check --hide-inclusion-graph licenses bans sources
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
cargo test --doc
# Embedders can drop OpenPGP (LGPL sequoia) and gRPC: that build must work and pass too.
cargo clippy --no-default-features --all-targets -- -D warnings
cargo clippy --no-default-features --features cli --all-targets -- -D warnings
cargo test --no-default-features --features cli --all-targets
# Every fuzz target (fuzz/) for 10 s, unoptimised and without AddressSanitizer so that it
# builds quickly; `scripts/fuzz.sh` runs them for longer, with it.
scripts/fuzz.sh --quick 10
