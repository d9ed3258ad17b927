#!/usr/bin/env bash
# Install layercrypt on a Debian machine and run it once on the sample image in testdata/:
# installs build dependencies (scripts/deps.sh), builds and installs the binary with
# `cargo install` (into ~/.cargo/bin), then encrypts testdata/images/plain for a test key,
# shows who can open it, decrypts it again and checks that the result matches the original.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cargo install --quiet --locked --path .
bin="$(command -v layercrypt || echo "$HOME/.cargo/bin/layercrypt")"
echo "installed: $bin ($("$bin" --version))"

demo="$(mktemp -d "${TMPDIR:-/tmp}/layercrypt-demo.XXXXXX")"
echo
echo "== encrypt testdata/images/plain:v1 for testdata/keys/rsa2048.pub.pem"
"$bin" encrypt -r jwe:testdata/keys/rsa2048.pub.pem oci:testdata/images/plain:v1 "oci:$demo/encrypted:v1"
echo
echo "== inspect the encrypted image"
"$bin" inspect "oci:$demo/encrypted:v1"
echo
echo "== decrypt it with testdata/keys/rsa2048.pem"
"$bin" decrypt -k testdata/keys/rsa2048.pem "oci:$demo/encrypted:v1" "oci:$demo/decrypted:v1"
plain_manifest=$(python3 scripts/image_digest.py testdata/images/plain v1)
decrypted_manifest=$(python3 scripts/image_digest.py "$demo/decrypted")
if [[ "$plain_manifest" == "$decrypted_manifest" ]]; then
    echo
    echo "ok: the decrypted image is the original ($plain_manifest); demo files in $demo"
else
    echo "error: decrypted manifest $decrypted_manifest differs from the original $plain_manifest" >&2
    exit 1
fi
