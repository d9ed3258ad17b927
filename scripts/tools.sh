#!/usr/bin/env bash
# Install the cargo tools the test suite runs, idempotently: a tool already on PATH is left as
# it is; a missing one is built from crates.io with `cargo install --locked` (into
# ~/.cargo/bin, which must be on PATH).
#
#   cargo-deny   checks licenses, banned crates and sources (deny.toml)
#   cargo-fuzz   builds the fuzz targets of fuzz/ (scripts/fuzz.sh)
#
# With --package, also those of scripts/package.sh:
#   cargo-deb         the .deb
#   cargo-auditable   embeds the dependency list in the binary
#   cargo-cyclonedx   the CycloneDX SBOM
#   rust-audit-info   reads the embedded list back (the check)
set -euo pipefail

if ! cargo deny --version >/dev/null 2>&1; then
    echo "tools: installing cargo-deny" >&2
    cargo install --locked cargo-deny
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "tools: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

if [[ "${1:-}" == "--package" ]]; then
    for tool in cargo-deb cargo-auditable cargo-cyclonedx rust-audit-info; do
        if ! command -v "$tool" >/dev/null; then
            echo "tools: installing $tool" >&2
            cargo install --locked "$tool"
        fi
    done
fi
