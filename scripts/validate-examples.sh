#!/usr/bin/env bash
# Validate examples/kubernetes and examples/argo against the upstream schemas (see
# scripts/validate_examples.py), installing the validators first, idempotently, into a
# virtual environment under target/ (pinned versions from PyPI; nothing is installed
# system-wide, and an environment with the right versions is reused as it is).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/validators
pins=(kubernetes-validate==1.37.0 hera==7.1.0 PyYAML==6.0.3)
stamp="$venv/.pins"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
    echo "validate-examples: installing ${pins[*]} into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
    echo "${pins[*]}" >"$stamp"
fi
exec "$venv/bin/python" scripts/validate_examples.py "$@"
