#!/usr/bin/env bash
# Re-keying in a registry against the pull-rekey-push way, on the same image and registry.
#
#   scripts/bench-registry.sh [--size 1G] [--runs 3] [--dir /tmp/layercrypt-bench-registry]
#
# Installs what it needs (skopeo, docker-registry; scripts/deps.sh --test), builds the release
# binary and the generator, then runs scripts/bench_registry.py, which documents what is
# measured.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test
cargo build --quiet --release --bin layercrypt --example mkimage
exec python3 scripts/bench_registry.py "$@"
