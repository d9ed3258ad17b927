#!/usr/bin/env bash
# Whole-image benchmark: layercrypt against skopeo on the same generated image.
#
#   scripts/bench-image.sh [--size 512M] [--layers 4] [--runs 3] [--dir /tmp/layercrypt-bench]
#
# Generates an OCI layout with the project's own generator (examples/mkimage.rs: random,
# incompressible content, gzip at level 1; no downloads), then encrypts it to a new layout and
# decrypts that again, with layercrypt (release build) and with skopeo 1.9 (`skopeo copy
# --encryption-key` / `--decryption-key`), alternating the tools, `--runs` times each.
# Prints the median wall time, throughput (image bytes / time) and the largest peak RSS
# (`/usr/bin/time`). Files are read from a warm page cache; both tools write to the same
# filesystem. layercrypt fsyncs every blob it publishes; skopeo does not.
set -euo pipefail
cd "$(dirname "$0")/.."

size=512M
layers=4
runs=3
dir=/tmp/layercrypt-bench
while (($#)); do
    case "$1" in
        --size) size=$2; shift 2 ;;
        --layers) layers=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        *) echo "usage: $0 [--size 512M] [--layers 4] [--runs 3] [--dir DIR]" >&2; exit 2 ;;
    esac
done

scripts/deps.sh --test
command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
cargo build --quiet --release --bin layercrypt --example mkimage
bin=target/release/layercrypt
policy=testdata/policy.json
pub=testdata/keys/rsa4096.pub.pem
priv=testdata/keys/rsa4096.pem

# Per-layer size: the total split evenly.
bytes=$(numfmt --from=iec "$size")
per_layer=$((bytes / layers))
image="$dir/plain-${size}-${layers}"
if [[ ! -f "$image/index.json" ]]; then
    rm -rf "$image"
    mkdir -p "$dir"
    target/release/examples/mkimage "$image" --ref v1 --layers "$layers" --layer-size "$per_layer" --compression gzip-fast >/dev/null
fi
image_bytes=$(du -sb --apparent-size "$image/blobs" | cut -f1)

# One timed run: prints "seconds max_rss_kib".
timed() {
    local out
    out=$(/usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n 1)
    echo "$out"
}

declare -A results
run() { # tool op command...
    local tool=$1 op=$2
    shift 2
    results["$tool $op"]+="$(timed "$@");"
}

# A skopeo-encrypted copy for skopeo's decryption runs and a layercrypt one for ours, so each
# tool decrypts its own output (the formats are identical; this keeps the runs independent).
rm -rf "$dir/enc-lc" "$dir/enc-sk"
"$bin" encrypt -q -r "jwe:$pub" "oci:$image:v1" "oci:$dir/enc-lc:v1"
skopeo --policy "$policy" copy -q --encryption-key "jwe:$pub" "oci:$image:v1" "oci:$dir/enc-sk:v1"

for ((i = 0; i < runs; i++)); do
    rm -rf "$dir/out"; run layercrypt encrypt "$bin" encrypt -q -r "jwe:$pub" "oci:$image:v1" "oci:$dir/out:v1"
    rm -rf "$dir/out"; run skopeo encrypt skopeo --policy "$policy" copy -q --encryption-key "jwe:$pub" "oci:$image:v1" "oci:$dir/out:v1"
    rm -rf "$dir/out"; run layercrypt decrypt "$bin" decrypt -q -k "$priv" "oci:$dir/enc-lc:v1" "oci:$dir/out:v1"
    rm -rf "$dir/out"; run skopeo decrypt skopeo --policy "$policy" copy -q --decryption-key "$priv" "oci:$dir/enc-sk:v1" "oci:$dir/out:v1"
done
rm -rf "$dir/out"

echo "image: $layers layer(s), $((image_bytes / 1048576)) MiB of blobs (random, gzip level 1), $runs runs each, warm page cache"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "skopeo: $(skopeo --version | cut -d' ' -f3), layercrypt: $("$bin" --version | cut -d' ' -f2)"
printf '%-11s %-8s %10s %10s %14s\n' tool op "median s" "MB/s" "peak RSS MiB"
for op in encrypt decrypt; do
    for tool in layercrypt skopeo; do
        python3 - "$tool" "$op" "${results["$tool $op"]}" "$image_bytes" <<'PY'
import statistics, sys
tool, op, raw, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runs = [tuple(map(float, r.split())) for r in raw.strip(";").split(";")]
secs = statistics.median(r[0] for r in runs)
rss = max(r[1] for r in runs) / 1024
print(f"{tool:<11} {op:<8} {secs:>10.2f} {size / secs / 1e6:>10.0f} {rss:>14.1f}")
PY
    done
done
