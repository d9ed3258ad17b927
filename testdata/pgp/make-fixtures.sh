#!/usr/bin/env bash
# make-fixtures.sh: (re)create the OpenPGP test keys in testdata/pgp/ with GnuPG, and the
# Go-made (skopeo 1.9.3) wrapped-key samples encrypted to them.
#
# Usage (from any directory):
#   bash testdata/pgp/make-fixtures.sh          create what is missing
#   bash testdata/pgp/make-fixtures.sh --force  remake everything (every fixture changes)
#
# Everything here is test-only material; the keys are NOT secret. Requires gpg (2.2) and
# skopeo; the GnuPG home is a throwaway temporary directory, killed and removed at the end.
# See testdata/pgp/README.md for what each file is.

set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$DIR/../.." && pwd)"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

if [[ $FORCE == 0 && -f "$DIR/alice.sec.gpg" && -f "$DIR/skopeo-alice-bob.pgp.b64" ]]; then
    echo "make-fixtures.sh: fixtures present (use --force to remake them)" >&2
    exit 0
fi

TMP="$(mktemp -d /tmp/lc-pgp-fixtures.XXXXXX)"
export GNUPGHOME="$TMP/home"
mkdir -m 700 "$GNUPGHOME"
cleanup() {
    gpgconf --homedir "$GNUPGHOME" --kill all >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

g() { gpg --batch --no-tty --pinentry-mode loopback "$@"; }
fpr_of() { gpg --batch --with-colons --list-keys "$1" | awk -F: '/^fpr/ { print $10; exit }'; }

# mk UID PRIMARY-ALGO SUBKEY-ALGO PASSPHRASE [EXPIRY] : a signing primary key and an
# encryption subkey (SUBKEY-ALGO "-" for none).
mk() {
    local uid=$1 primary=$2 sub=$3 pass=$4 expiry=${5:-never}
    g --passphrase "$pass" --quick-gen-key "$uid" "$primary" sign "$expiry" 2>/dev/null
    if [[ $sub != - ]]; then
        g --passphrase "$pass" --quick-add-key "$(fpr_of "=$uid")" "$sub" encr "$expiry" 2>/dev/null
    fi
}

mk 'Alice Example <alice@example.test>' rsa2048 rsa2048 ''
mk 'Bob Example <bob@example.test>' rsa2048 rsa2048 'bob-pw'
mk 'Carol <carol@example.test>' ed25519 cv25519 ''
mk 'Dave <dave@example.test>' nistp256 nistp256 ''
mk 'Signer Only <signer@example.test>' rsa2048 - ''
mk 'Revoked Example <revoked@example.test>' rsa2048 rsa2048 ''
mk 'Just A Name' rsa2048 rsa2048 ''
# Prefers AES-128 only: a message to it must use AES-128.
mk 'Old Prefs <oldprefs@example.test>' rsa2048 rsa2048 ''
g --command-fd 0 --edit-key oldprefs@example.test >/dev/null 2>&1 <<'EOF'
setpref AES SHA256 Uncompressed
y
save
EOF
# Expired: made in 2020 with a one-day lifetime.
gpg --batch --no-tty --pinentry-mode loopback --passphrase '' --faked-system-time 20200101T000000 \
    --quick-gen-key 'Expired Example <expired@example.test>' rsa2048 default 1d 2>/dev/null
# Revoke one with its own revocation certificate.
REV="$GNUPGHOME/openpgp-revocs.d/$(fpr_of revoked@example.test).rev"
sed 's/^:-----/-----/' "$REV" | g --import 2>/dev/null

exp() { g --passphrase "${3:-}" "$1" "${@:4}" "$2"; }
exp --export-secret-keys alice@example.test >"$DIR/alice.sec.gpg"
exp --export-secret-keys alice@example.test '' --armor >"$DIR/alice.sec.asc"
exp --export alice@example.test >"$DIR/alice.pub.gpg"
exp --export alice@example.test '' --armor >"$DIR/alice.pub.asc"
exp --export-secret-keys bob@example.test bob-pw --armor >"$DIR/bob.sec.asc"
exp --export-secret-keys bob@example.test bob-pw >"$DIR/bob.sec.gpg"
exp --export bob@example.test >"$DIR/bob.pub.gpg"
exp --export-secret-keys carol@example.test >"$DIR/carol.sec.gpg"
exp --export carol@example.test >"$DIR/carol.pub.gpg"
exp --export-secret-keys dave@example.test >"$DIR/dave.sec.gpg"
exp --export dave@example.test >"$DIR/dave.pub.gpg"
exp --export signer@example.test >"$DIR/signer.pub.gpg"
exp --export revoked@example.test >"$DIR/revoked.pub.gpg"
exp --export expired@example.test >"$DIR/expired.pub.gpg"
exp --export 'Just A Name' >"$DIR/bare-name.pub.gpg"
exp --export oldprefs@example.test >"$DIR/oldprefs.pub.gpg"
# Every public key in one keyring, as `gpg --export` gives it.
g --export >"$DIR/all.pub.gpg"

# Go-made samples: skopeo 1.9.3 encrypts the plain test image to Alice and Bob (one message,
# two PKESKs); the pgp annotation of the first layer is kept, base64 as in the annotation.
# skopeo needs a home whose every user id is an RFC 5322 address, so a second home holds only
# Alice and Bob.
export GNUPGHOME="$TMP/home2"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --import "$DIR/alice.pub.gpg" "$DIR/bob.pub.gpg" 2>/dev/null
skopeo --policy "$ROOT/testdata/policy.json" copy -q \
    --encryption-key pgp:alice@example.test --encryption-key pgp:bob@example.test \
    "oci:$ROOT/testdata/images/plain:v1" "oci:$TMP/out:v1"
python3 - "$TMP/out" "$DIR/skopeo-alice-bob.pgp.b64" <<'EOF'
import json, sys, os
out, dest = sys.argv[1], sys.argv[2]
def blob(d):
    a, h = d.split(":")
    return json.load(open(os.path.join(out, "blobs", a, h)))
index = json.load(open(os.path.join(out, "index.json")))
manifest = blob(index["manifests"][0]["digest"])
layer = manifest["layers"][0]
open(dest, "w").write(layer["annotations"]["org.opencontainers.image.enc.keys.pgp"] + "\n")
EOF
echo "make-fixtures.sh: wrote $(ls "$DIR" | wc -l) files to $DIR" >&2
