#!/usr/bin/env bash
# Install the cargo tools the test suite runs, idempotently: a tool already on PATH is left as
# it is; a missing one is built from crates.io with `cargo install --locked` (into
# ~/.cargo/bin, which must be on PATH).
#
#   cargo-deny   checks licenses, banned crates and sources (deny.toml)
#   cargo-fuzz   builds the fuzz targets of fuzz/ (scripts/fuzz.sh)
set -euo pipefail

if ! cargo deny --version >/dev/null 2>&1; then
    echo "tools: installing cargo-deny" >&2
    cargo install --locked cargo-deny
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "tools: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi
