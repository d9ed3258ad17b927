#!/usr/bin/env bash
# Whole-image benchmark: layercrypt against skopeo on the same generated images.
#
#   scripts/bench-image.sh [--size 1G] [--runs 5] [--dir /tmp/layercrypt-bench] [--no-skopeo]
#
# Installs what it needs (skopeo, /usr/bin/time; scripts/deps.sh --test), builds the release
# binary and the generator, then runs scripts/bench_image.py, which documents what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test
cargo build --quiet --release --bin layercrypt --example mkimage --example hashrate
exec python3 scripts/bench_image.py "$@"
