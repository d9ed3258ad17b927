#!/usr/bin/env bash
# Regenerate the shell completion scripts in completions/ from the CLI definition (run after
# changing a command or flag; tests/it/ux.rs fails while they are stale).
set -euo pipefail
cd "$(dirname "$0")/.."
for pair in bash:layercrypt.bash zsh:_layercrypt fish:layercrypt.fish elvish:layercrypt.elv \
    powershell:_layercrypt.ps1; do
    cargo run --quiet -- completions "${pair%%:*}" >"completions/${pair##*:}"
done
echo "completions/ regenerated"
