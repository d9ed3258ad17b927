#!/usr/bin/env bash
# Run the whole test suite, as CI does (.ci/run calls this): installs missing test tools,
# then checks formatting and lints, and runs unit, integration, interop (against skopeo, gpg,
# SoftHSM, a local registry) and documentation tests, with the default features and without
# them, a short run of every fuzz target, and the packaged release installed and removed.
# Interop tests fail, never skip, when a tool is missing.
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
# The packaged release for this machine (the binary with OpenSSL built in, the .deb, the
# SBOM, the checksums), installed with dpkg, checked and removed again. The portable build in
# a Debian 11 root, its reproducibility and its run in a minimal Debian 11 root are
# `scripts/package.sh --check`, run by hand before a release (it takes twice as long).
scripts/package.sh --host
scripts/check-deb.sh
