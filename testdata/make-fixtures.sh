#!/usr/bin/env bash
# make-fixtures.sh: (re)create layercrypt's test keys and the skopeo-made image fixtures, and
# check every fixture against skopeo.
#
# Usage (from any directory; all paths below are relative to the repository root):
#   bash testdata/make-fixtures.sh                  create what is missing, then verify everything
#   bash testdata/make-fixtures.sh --force-images   remake the plain layout and all skopeo fixtures
#   bash testdata/make-fixtures.sh --force          remake the keys too (then everything changes)
#   bash testdata/make-fixtures.sh --verify         verify only, write nothing
#
# Environment:
#   MKIMAGE  command that runs the image generator (examples/mkimage.rs), split on spaces.
#            Default: "cargo run --quiet --release --example mkimage --" (run at the repo root).
#   SKOPEO   skopeo binary (default: skopeo). The committed fixtures come from skopeo 1.9.3
#            (Debian bookworm; Go ocicrypt 1.0.x/1.1.x).
#
# What it writes (everything is test-only material; the keys are NOT secret):
#   testdata/keys/                 test keys made with the openssl CLI (+ pem2jwk.py, ssh-keygen,
#                                  age-keygen)
#   testdata/images/plain/         OCI layout from mkimage: ref v1 (3 layers) and ref multi (index)
#   testdata/images/skopeo-*/      encrypted copies of plain made by `skopeo copy --encryption-key`
#   testdata/images/docker-archive-skopeo.tar   plain:v1 as a docker-archive (`docker save` format),
#                                  written by `skopeo copy ... docker-archive:...`
#   testdata/images/skopeo-results.txt   what skopeo did: fixtures made or refused (with the
#                                  error), decryption results, key formats skopeo accepts, and how
#                                  skopeo reads every docker-archive fixture
#   testdata/policy.json           permissive containers-policy, passed to every skopeo call so
#                                  results do not depend on /etc/containers/policy.json
#
# Not written here: testdata/images/docker-save-*.tar and docker26-*.tar were made by real Docker
# daemons (20.10.24 and 26.1.5), whose exact commands are in testdata/README.md. This script needs
# no daemon and starts none; it only checks that skopeo reads those archives (and gets plain's
# config back). Remaking them needs a daemon, by hand.
#
# Idempotence: keys are generated only when missing. The plain layout is rebuilt in a temporary
# directory on every run and compared with the committed one; if they differ (for example after a
# compression-library upgrade) the committed one is kept and a warning says to use
# --force-images. docker-archive-skopeo.tar is deterministic (skopeo sets every mtime to 0), so it
# is likewise rebuilt in the temporary directory and compared, and written only when missing or
# remade (--force-images, new plain layout). Encrypted fixtures are random (fresh layer keys and
# IVs), so each is made only when missing (or when its inputs were remade). The verification
# always runs, and skopeo-results.txt has no timestamps, so re-running changes no file.
#
# Requires: bash, openssl, python3 (stdlib), skopeo, cargo (for the default MKIMAGE), ssh-keygen,
# age-keygen
# (optional: the OpenSSH key is skipped without it).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FORCE_KEYS=0
FORCE_IMAGES=0
VERIFY_ONLY=0
for arg in "$@"; do
    case "$arg" in
    --force) FORCE_KEYS=1 FORCE_IMAGES=1 ;;
    --force-images) FORCE_IMAGES=1 ;;
    --verify) VERIFY_ONLY=1 ;;
    -h | --help)
        sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "make-fixtures.sh: unknown argument $arg (try --help)" >&2
        exit 2
        ;;
    esac
done

KEYS=testdata/keys
IMAGES=testdata/images
PLAIN=$IMAGES/plain
POLICY=testdata/policy.json
RESULTS=$IMAGES/skopeo-results.txt
PASSWORD=test-password
read -r -a MKIMAGE_CMD <<<"${MKIMAGE:-cargo run --quiet --release --example mkimage --}"
SKOPEO_BIN=${SKOPEO:-skopeo}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/layercrypt-fixtures.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

log() { printf '%s\n' "$*" >&2; }
die() {
    log "make-fixtures.sh: error: $*"
    exit 1
}

for tool in openssl python3 "$SKOPEO_BIN"; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH"
done

# Every skopeo call goes through here, with the permissive policy.
run_skopeo() { "$SKOPEO_BIN" --policy "$POLICY" "$@"; }

# The message of skopeo's last fatal log line (time= stripped, so results stay reproducible).
skopeo_error() {
    sed -n 's/.*level=fatal msg="\(.*\)"$/\1/p' "$1" | tail -n 1 | sed "s|$TMP|<tmp>|g"
}

# ------------------------------------------------------------------------------------------------
# Keys

BASE_NEW=0
declare -A NEW_KEYS=() # key files (re)generated in this run; fixtures encrypted to them are remade

# need FILE: true when FILE must be (re)made in this run.
need() { [[ $VERIFY_ONLY == 0 && ($FORCE_KEYS == 1 || $BASE_NEW == 1 || ! -s $1) ]]; }

# base KEYFILE GENPKEY-ARGS...: a PKCS#8 PEM private key; sets BASE_NEW for its derived files.
base() {
    local file=$1
    shift
    BASE_NEW=0
    if need "$file"; then
        openssl genpkey "$@" -out "$file" 2>/dev/null
        BASE_NEW=1
        NEW_KEYS[$file]=1
        log "generated $file"
    fi
    [[ -s $file ]] || die "$file is missing (run without --verify)"
}

# derive OUT COMMAND...: run COMMAND (writes to stdout) into OUT when needed.
derive() {
    local out=$1
    shift
    if need "$out"; then
        "$@" >"$out.tmp" 2>"$TMP/err" || die "could not make $out: $(cat "$TMP/err")"
        mv "$out.tmp" "$out"
        NEW_KEYS[$out]=1
        log "generated $out"
    fi
}

make_keys() {
    mkdir -p "$KEYS"
    local k
    local rsa_new=0 ec_new=0
    for k in rsa2048:2048 rsa4096:4096; do
        base "$KEYS/${k%%:*}.pem" -algorithm RSA -pkeyopt "rsa_keygen_bits:${k#*:}"
        derive "$KEYS/${k%%:*}.pub.pem" openssl pkey -in "$KEYS/${k%%:*}.pem" -pubout
        if [[ $k == rsa2048:* ]]; then rsa_new=$BASE_NEW; fi
    done
    for k in ec256:P-256 ec384:P-384 ec521:P-521; do
        base "$KEYS/${k%%:*}.pem" -algorithm EC -pkeyopt "ec_paramgen_curve:${k#*:}" \
            -pkeyopt ec_param_enc:named_curve
        derive "$KEYS/${k%%:*}.pub.pem" openssl pkey -in "$KEYS/${k%%:*}.pem" -pubout
        if [[ $k == ec256:* ]]; then ec_new=$BASE_NEW; fi
    done

    # Format variants of rsa2048 and ec256 (same key material as rsa2048.pem / ec256.pem);
    # remade whenever their base key is new.
    local rsa=$KEYS/rsa2048.pem ec=$KEYS/ec256.pem
    BASE_NEW=$rsa_new
    derive "$KEYS/rsa2048.pkcs1.pem" openssl pkey -in "$rsa" -traditional
    derive "$KEYS/rsa2048.pub.pkcs1.pem" openssl rsa -in "$rsa" -RSAPublicKey_out
    derive "$KEYS/rsa2048.der" openssl pkcs8 -topk8 -nocrypt -in "$rsa" -outform DER
    derive "$KEYS/rsa2048.pub.der" openssl pkey -in "$rsa" -pubout -outform DER
    BASE_NEW=$ec_new
    derive "$KEYS/ec256.sec1.pem" openssl ec -in "$ec"
    derive "$KEYS/ec256.sec1.der" openssl ec -in "$ec" -outform DER
    BASE_NEW=$rsa_new
    derive "$KEYS/rsa2048.enc-pkcs8.pem" openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$rsa" \
        -passout "pass:$PASSWORD"
    derive "$KEYS/rsa2048.enc-legacy.pem" openssl rsa -in "$rsa" -aes256 -traditional \
        -passout "pass:$PASSWORD"

    # JWKs (RFC 7517), private and public, and public ones with an "alg" member.
    BASE_NEW=$rsa_new
    derive "$KEYS/rsa2048.jwk" python3 testdata/pem2jwk.py "$rsa"
    derive "$KEYS/rsa2048.pub.jwk" python3 testdata/pem2jwk.py "$rsa" --public
    derive "$KEYS/rsa2048.pub.oaep256.jwk" python3 testdata/pem2jwk.py "$rsa" --public \
        --alg RSA-OAEP-256
    BASE_NEW=$ec_new
    derive "$KEYS/ec256.jwk" python3 testdata/pem2jwk.py "$ec"
    derive "$KEYS/ec256.pub.jwk" python3 testdata/pem2jwk.py "$ec" --public
    derive "$KEYS/ec256.pub.a128kw.jwk" python3 testdata/pem2jwk.py "$ec" --public \
        --alg ECDH-ES+A128KW

    # Self-signed RSA certificate (PKCS#7 recipient), valid for 100 years.
    BASE_NEW=0
    if need "$KEYS/x509.crt" || need "$KEYS/x509.key"; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj "/CN=layercrypt test recipient" \
            -addext "keyUsage=keyEncipherment,dataEncipherment" \
            -keyout "$KEYS/x509.key" -out "$KEYS/x509.crt" 2>/dev/null
        log "generated $KEYS/x509.crt $KEYS/x509.key"
    fi

    # Unsupported key types and formats, for negative tests.
    base "$KEYS/ed25519.pem" -algorithm ed25519
    BASE_NEW=0
    if command -v ssh-keygen >/dev/null; then
        if need "$KEYS/openssh-rsa2048"; then
            rm -f "$KEYS/openssh-rsa2048" "$KEYS/openssh-rsa2048.pub"
            ssh-keygen -q -t rsa -b 2048 -N "" -C "layercrypt test key" -f "$KEYS/openssh-rsa2048"
            log "generated $KEYS/openssh-rsa2048"
        fi
    else
        log "warning: ssh-keygen not found, $KEYS/openssh-rsa2048 not made"
    fi
    if command -v age-keygen >/dev/null; then
        if need "$KEYS/age-identity.txt"; then
            rm -f "$KEYS/age-identity.txt" "$KEYS/age-recipient.txt"
            age-keygen -o "$KEYS/age-identity.txt" 2>/dev/null
            age-keygen -y "$KEYS/age-identity.txt" >"$KEYS/age-recipient.txt"
            log "generated $KEYS/age-identity.txt $KEYS/age-recipient.txt"
        fi
    else
        log "warning: age-keygen (Debian package age) not found, $KEYS/age-identity.txt not made"
    fi
}

# ------------------------------------------------------------------------------------------------
# Plain layout

# The generator's arguments for testdata/images/plain. Keep in step with README.md.
make_plain() {
    local dir=$1
    # v1: three gzip layers; the top one carries a non-encryption annotation.
    "${MKIMAGE_CMD[@]}" "$dir" --ref v1 --seed 1 \
        --layer 64K,gzip \
        --layer 96K,gzip,compressible \
        --layer 4K,gzip,files=1,annotation=org.opencontainers.image.title=top-layer >&2 || return 1
    # multi: linux/amd64 + linux/arm64/v8, a shared base layer, a zstd layer on arm64.
    "${MKIMAGE_CMD[@]}" "$dir" --ref multi --seed 2 --platforms linux/amd64,linux/arm64/v8 \
        --layer 24K,gzip,seed=100 \
        --layer 12K,gzip,platform=linux/amd64 \
        --layer 16K,zstd,platform=linux/arm64/v8 >&2 || return 1
}

PLAIN_CHANGED=0
update_plain() {
    [[ $VERIFY_ONLY == 1 ]] && return
    log "building the plain layout with: ${MKIMAGE_CMD[*]}"
    make_plain "$TMP/plain" || die "the image generator failed (MKIMAGE=${MKIMAGE_CMD[*]})"
    if [[ ! -d $PLAIN || $FORCE_IMAGES == 1 ]]; then
        rm -rf "$PLAIN"
        mkdir -p "$IMAGES"
        mv "$TMP/plain" "$PLAIN"
        PLAIN_CHANGED=1
        log "wrote $PLAIN"
    elif ! diff -r -q "$TMP/plain" "$PLAIN" >/dev/null; then
        log "warning: the generator no longer reproduces $PLAIN byte for byte"
        log "warning: (a compression library changed?); keeping the committed layout."
        log "warning: run with --force-images to rebuild it and every fixture made from it."
    fi
}

# ------------------------------------------------------------------------------------------------
# skopeo fixtures: NAME|REF|EXTRA COPY FLAGS|RECIPIENT FILES (space separated)|KEYS THAT OPEN IT

FIXTURES=(
    "skopeo-rsa2048|v1||rsa2048.pub.pem|rsa2048.pem"
    "skopeo-rsa4096|v1||rsa4096.pub.pem|rsa4096.pem"
    "skopeo-ec256|v1||ec256.pub.pem|ec256.pem"
    "skopeo-ec384|v1||ec384.pub.pem|ec384.pem"
    "skopeo-multi|v1||rsa2048.pub.pem ec256.pub.pem ec384.pub.pem|rsa2048.pem ec256.pem ec384.pem"
    "skopeo-partial|v1|--encrypt-layer -1|rsa2048.pub.pem|rsa2048.pem"
    "skopeo-multiarch|multi|--all|rsa2048.pub.pem|rsa2048.pem"
    "skopeo-jwk-oaep256|v1||rsa2048.pub.oaep256.jwk|rsa2048.pem rsa2048.jwk"
    "skopeo-jwk-a128kw|v1||ec256.pub.a128kw.jwk|ec256.pem ec256.jwk"
)

# Results lines, written to $RESULTS at the end.
RESULT_LINES=()
record() { RESULT_LINES+=("$*"); }
FAILURES=0
fail() {
    log "FAIL: $*"
    record "FAIL: $*"
    FAILURES=$((FAILURES + 1))
}

# make_fixture NAME REF FLAGS RECIPIENTS: encrypt plain:REF into $IMAGES/NAME unless it exists.
make_fixture() {
    local name=$1 ref=$2 flags=$3 recipients=$4
    local dest=$IMAGES/$name
    local -a args=(copy --quiet) extra=()
    [[ -n $flags ]] && read -r -a extra <<<"$flags" && args+=("${extra[@]}")
    local r remake=$FORCE_IMAGES
    [[ -d $dest && $PLAIN_CHANGED == 0 ]] || remake=1
    for r in $recipients; do
        args+=(--encryption-key "jwe:$KEYS/$r")
        [[ -z ${NEW_KEYS[$KEYS/$r]:-} ]] || remake=1
    done
    if [[ $VERIFY_ONLY == 0 && $remake == 1 ]]; then
        rm -rf "${dest:?}" "${TMP:?}/${name:?}"
        if run_skopeo "${args[@]}" "oci:$PLAIN:$ref" "oci:$TMP/$name:$ref" 2>"$TMP/err"; then
            mv "$TMP/$name" "$dest"
            log "made $dest"
        else
            log "$name not made, skopeo refuses: $(skopeo_error "$TMP/err")"
        fi
    fi
    local cmd="skopeo copy ${flags:+$flags }"
    for r in $recipients; do cmd+="--encryption-key jwe:keys/$r "; done
    cmd+="oci:images/plain:$ref oci:images/$name:$ref"
    if [[ -d $dest ]]; then
        record "$name: made by: $cmd"
    else
        # Re-run to capture the error (also in --verify mode): refusals are findings too.
        run_skopeo "${args[@]}" "oci:$PLAIN:$ref" "oci:$TMP/$name-refused:$ref" 2>"$TMP/err" &&
            fail "$IMAGES/$name is missing, but skopeo can make it: run without --verify"
        record "$name: NOT MADE: skopeo refuses: $cmd"
        record "$name:   error: $(skopeo_error "$TMP/err")"
    fi
}

# Media types of the layers of every manifest of REF in layout DIR, one line per manifest.
layer_media_types() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
layout, ref = sys.argv[1:]
def blob(d):
    return json.load(open(f"{layout}/blobs/sha256/{d.split(':')[1]}"))
index = json.load(open(f"{layout}/index.json"))
top = next(m for m in index["manifests"]
           if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
docs = [blob(m["digest"]) for m in blob(top["digest"])["manifests"]] \
    if top["mediaType"].endswith("index.v1+json") else [blob(top["digest"])]
for doc in docs:
    print(" ".join(l["mediaType"].rsplit(".", 1)[1] for l in doc["layers"]))
EOF
}

# verify_fixture NAME REF FLAGS KEYS: decrypt with each key, compare with plain, try a wrong key.
verify_fixture() {
    local name=$1 ref=$2 flags=$3 keys=$4
    local dest=$IMAGES/$name
    [[ -d $dest ]] || return 0
    local all=()
    [[ $flags == *--all* ]] && all=(--all)
    local plain_raw
    plain_raw=$(run_skopeo inspect --raw "oci:$PLAIN:$ref" | sha256sum | cut -d' ' -f1)
    record "$name:   layer media types: $(layer_media_types "$dest" "$ref" | paste -sd '|' | sed 's/|/ | /g')"
    local k out
    for k in $keys; do
        out=$TMP/dec-$name-${k//\//_}
        if ! run_skopeo copy --quiet "${all[@]}" --decryption-key "$KEYS/$k" "oci:$dest:$ref" \
            "oci:$out:$ref" 2>"$TMP/err"; then
            fail "$name: does not decrypt with keys/$k: $(skopeo_error "$TMP/err")"
            continue
        fi
        if [[ $(run_skopeo inspect --raw "oci:$out:$ref" | sha256sum | cut -d' ' -f1) == "$plain_raw" ]]; then
            record "$name:   decrypts with keys/$k; decrypted ${all:+index and }manifest byte-identical to plain:$ref (sha256:$plain_raw)"
        else
            fail "$name: decrypted with keys/$k, but the manifest differs from plain:$ref"
        fi
    done
    # A key that is not a recipient must be refused.
    local wrong=ec521.pem
    if run_skopeo copy --quiet "${all[@]}" --decryption-key "$KEYS/$wrong" "oci:$dest:$ref" \
        "oci:$TMP/wrong-$name:$ref" 2>"$TMP/err"; then
        fail "$name: skopeo decrypted it with keys/$wrong, which is not a recipient"
    else
        record "$name:   keys/$wrong (not a recipient) is refused: $(skopeo_error "$TMP/err" | sed 's/sha256:[0-9a-f]*/sha256:…/')"
    fi
}

# Which key files skopeo takes as --decryption-key (KEY[:PASSWORD] as skopeo spells it).
key_format_matrix() {
    record ""
    record "--decryption-key formats, tried on skopeo-rsa2048 / skopeo-ec256 (ref v1):"
    local entry fixture key n=0
    for entry in \
        skopeo-rsa2048:rsa2048.pem skopeo-rsa2048:rsa2048.pkcs1.pem skopeo-rsa2048:rsa2048.der \
        skopeo-rsa2048:rsa2048.jwk "skopeo-rsa2048:rsa2048.enc-pkcs8.pem:pass=$PASSWORD" \
        "skopeo-rsa2048:rsa2048.enc-legacy.pem:pass=$PASSWORD" \
        "skopeo-rsa2048:rsa2048.enc-legacy.pem:$PASSWORD" \
        skopeo-rsa2048:openssh-rsa2048 \
        skopeo-ec256:ec256.pem skopeo-ec256:ec256.sec1.pem skopeo-ec256:ec256.sec1.der \
        skopeo-ec256:ec256.jwk; do
        fixture=${entry%%:*} key=${entry#*:}
        [[ -d $IMAGES/$fixture && -e $KEYS/${key%%:*} ]] || continue
        if run_skopeo copy --quiet --decryption-key "$KEYS/$key" "oci:$IMAGES/$fixture:v1" \
            "oci:$TMP/fmt-$((++n)):v1" 2>"$TMP/err"; then
            record "  accepted  keys/$key"
        else
            record "  REJECTED  keys/$key: $(skopeo_error "$TMP/err" | sed 's/sha256:[0-9a-f]*/sha256:…/')"
        fi
    done
}

# ------------------------------------------------------------------------------------------------
# docker-archive fixtures (the `docker save` format). docker-archive-skopeo.tar is made here (skopeo
# writes it byte for byte the same on every run, so it is rebuilt in $TMP and compared, like the
# plain layout). The docker*-save*.tar archives come from real Docker daemons (commands in
# README.md; no daemon is needed or started here): they are only read back with skopeo.

DOCKER_ARCHIVE=docker-archive-skopeo.tar
DOCKER_ARCHIVE_REF=layercrypt/plain:v1

# FILE|SOURCE (skopeo's docker-archive image selector: empty, a tag, or @N)|EXPECTED: the plain
# image (REF or REF/ARCH) whose config, byte for byte, the entry must have; - for none.
DOCKER_ARCHIVES=(
    "docker-archive-skopeo.tar||v1"
    "docker-save-legacy.tar||v1"
    "docker-save-two.tar|layercrypt/plain:v1|v1"
    "docker-save-two.tar|layercrypt/plain:latest|v1"
    "docker-save-two.tar|layercrypt/second:v1|-"
    "docker26-save.tar||v1"
    "docker26-save-two.tar|layercrypt/plain:v1|v1"
    "docker26-save-two.tar|layercrypt/second:v1|-"
    "docker26-c8d-save.tar||v1"
    "docker26-c8d-save-gzip.tar||v1"
    "docker26-c8d-save-multi.tar||multi/amd64"
)

make_docker_archive() {
    local dest=$IMAGES/$DOCKER_ARCHIVE
    local cmd="skopeo copy oci:images/plain:v1 docker-archive:images/$DOCKER_ARCHIVE:$DOCKER_ARCHIVE_REF"
    record "$DOCKER_ARCHIVE: made by: $cmd"
    if ! run_skopeo copy --quiet "oci:$PLAIN:v1" \
        "docker-archive:$TMP/$DOCKER_ARCHIVE:$DOCKER_ARCHIVE_REF" 2>"$TMP/err"; then
        fail "skopeo cannot write $DOCKER_ARCHIVE: $(skopeo_error "$TMP/err")"
        return
    fi
    if [[ $VERIFY_ONLY == 0 && (! -s $dest || $FORCE_IMAGES == 1 || $PLAIN_CHANGED == 1) ]]; then
        cp "$TMP/$DOCKER_ARCHIVE" "$dest"
        log "made $dest"
    fi
    if [[ ! -s $dest ]]; then
        fail "$dest is missing: run without --verify"
    elif cmp -s "$TMP/$DOCKER_ARCHIVE" "$dest"; then
        record "$DOCKER_ARCHIVE:   this skopeo writes it again byte for byte (sha256:$(sha256sum "$dest" | cut -d' ' -f1))"
    else
        log "warning: skopeo no longer writes $dest byte for byte; keeping the committed one"
        log "warning: (run with --force-images to remake it)"
        record "$DOCKER_ARCHIVE:   this skopeo writes a different archive (sha256:$(sha256sum "$TMP/$DOCKER_ARCHIVE" | cut -d' ' -f1))"
    fi
}

# sha256 of the config of plain image EXPECTED (REF or REF/ARCH).
plain_config_sha() {
    local ref=${1%%/*} arch=()
    [[ $1 == */* ]] && arch=(--override-os linux --override-arch "${1#*/}")
    run_skopeo "${arch[@]}" inspect --config --raw "oci:$PLAIN:$ref" | sha256sum | cut -d' ' -f1
}

# verify_docker_archive FILE SOURCE EXPECTED: skopeo reads the entry (layers checked against their
# DiffIDs by the copy); its config must be EXPECTED's.
verify_docker_archive() {
    local file=$1 src=$2 expected=$3
    local name="$file${src:+:$src}"
    if [[ ! -s $IMAGES/$file ]]; then
        fail "$IMAGES/$file is missing"
        return
    fi
    local out=$TMP/read-${name//[:\/@]/_}
    if ! run_skopeo copy --quiet "docker-archive:$IMAGES/$name" "oci:$out:x" 2>"$TMP/err"; then
        fail "$name: skopeo cannot read it: $(skopeo_error "$TMP/err")"
        return
    fi
    local cfg n
    # The config as stored in the archive (a copy to oci: would rewrite a Docker config as OCI).
    cfg=$(run_skopeo inspect --config --raw "docker-archive:$IMAGES/$name" | sha256sum | cut -d' ' -f1)
    n=$(run_skopeo inspect --raw "docker-archive:$IMAGES/$name" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))')
    if [[ $expected == - ]]; then
        record "$name: skopeo reads it: config sha256:$cfg, $n layers"
    elif [[ $cfg == "$(plain_config_sha "$expected")" ]]; then
        record "$name: skopeo reads it: config sha256:$cfg (plain:$expected's), $n layers"
    else
        fail "$name: skopeo reads config sha256:$cfg, not plain:$expected's"
    fi
}

# What skopeo does with encryption and docker-archive (findings, re-checked on every run).
docker_archive_encryption() {
    local err
    # Decrypting straight into a docker-archive.
    if run_skopeo copy --quiet --decryption-key "$KEYS/rsa2048.pem" "oci:$IMAGES/skopeo-rsa2048:v1" \
        "docker-archive:$TMP/dec-direct.tar:$DOCKER_ARCHIVE_REF" 2>"$TMP/err"; then
        record "decrypt into docker-archive: skopeo copy --decryption-key keys/rsa2048.pem oci:images/skopeo-rsa2048:v1 docker-archive:… works"
    else
        record "decrypt into docker-archive: skopeo copy --decryption-key keys/rsa2048.pem oci:images/skopeo-rsa2048:v1 docker-archive:… fails:"
        record "  $(skopeo_error "$TMP/err")"
    fi
    # Decrypting to oci:, then copying to docker-archive.
    if run_skopeo copy --quiet --decryption-key "$KEYS/rsa2048.pem" "oci:$IMAGES/skopeo-rsa2048:v1" \
        "oci:$TMP/dec-oci:v1" 2>"$TMP/err" &&
        run_skopeo copy --quiet "oci:$TMP/dec-oci:v1" \
            "docker-archive:$TMP/dec-via-oci.tar:$DOCKER_ARCHIVE_REF" 2>>"$TMP/err"; then
        if cmp -s "$TMP/dec-via-oci.tar" "$IMAGES/$DOCKER_ARCHIVE"; then
            record "decrypt to oci:, then copy to docker-archive: byte-identical to $DOCKER_ARCHIVE"
        else
            record "decrypt to oci:, then copy to docker-archive: differs from $DOCKER_ARCHIVE"
        fi
    else
        fail "decrypt to oci: then docker-archive: $(skopeo_error "$TMP/err")"
    fi
    # Encrypting into a docker-archive: there is no place for the wrapped keys.
    if run_skopeo copy --quiet --encryption-key "jwe:$KEYS/rsa2048.pub.pem" "oci:$PLAIN:v1" \
        "docker-archive:$TMP/enc.tar:$DOCKER_ARCHIVE_REF" 2>"$TMP/err"; then
        record "encrypt into docker-archive: skopeo copy --encryption-key jwe:keys/rsa2048.pub.pem oci:images/plain:v1 docker-archive:… exits 0;"
        record "  $(python3 - "$TMP/enc.tar" <<'EOF'
import hashlib, json, sys, tarfile
t = tarfile.open(sys.argv[1])
item = json.load(t.extractfile("manifest.json"))[0]
diff_ids = json.load(t.extractfile(item["Config"]))["rootfs"]["diff_ids"]
layers = [hashlib.sha256(t.extractfile(l).read()).hexdigest() for l in item["Layers"]]
same = sum(f"sha256:{h}" == d for h, d in zip(layers, diff_ids))
print(f"{same} of {len(layers)} layer files match the config's diff_ids (the rest are ciphertext; "
      "no annotations, so the wrapped keys are lost)" if same < len(layers)
      else "every layer file matches the config's diff_ids (not encrypted)")
EOF
)"
    else
        record "encrypt into docker-archive: skopeo refuses: $(skopeo_error "$TMP/err")"
    fi
}

# ------------------------------------------------------------------------------------------------

if [[ ! -s $POLICY ]]; then
    [[ $VERIFY_ONLY == 1 ]] && die "$POLICY is missing"
    printf '%s\n' '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"
fi

make_keys
update_plain
[[ -d $PLAIN ]] || die "$PLAIN is missing"

record "# What skopeo did with the fixtures in this directory. Written by testdata/make-fixtures.sh"
record "# (paths relative to testdata/); re-running it verifies every line again."
record "$("$SKOPEO_BIN" --version)"
record ""
for f in "${FIXTURES[@]}"; do
    IFS='|' read -r name ref flags recipients keys <<<"$f"
    make_fixture "$name" "$ref" "$flags" "$recipients"
    verify_fixture "$name" "$ref" "$flags" "$keys"
done
key_format_matrix

record ""
record "docker-archive (docker save format):"
make_docker_archive
for f in "${DOCKER_ARCHIVES[@]}"; do
    IFS='|' read -r file src expected <<<"$f"
    verify_docker_archive "$file" "$src" "$expected"
done
docker_archive_encryption

if [[ $VERIFY_ONLY == 0 ]]; then
    printf '%s\n' "${RESULT_LINES[@]}" >"$RESULTS"
    log "wrote $RESULTS"
elif ! diff -u "$RESULTS" <(printf '%s\n' "${RESULT_LINES[@]}") >&2; then
    fail "$RESULTS is out of date (see the diff above)"
fi
log "testdata: $(du -sh testdata | cut -f1) in total"
if ((FAILURES > 0)); then
    die "$FAILURES check(s) failed"
fi
log "all fixtures verified"
