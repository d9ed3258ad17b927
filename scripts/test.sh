#!/usr/bin/env bash
# Run the whole test suite, as CI does (.ci/run calls this): installs missing test tools,
# then checks formatting and lints, and runs unit, integration, interop (against skopeo) and
# documentation tests. Interop tests fail, never skip, when skopeo is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
cargo test --doc
