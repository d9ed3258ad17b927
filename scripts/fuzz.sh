#!/usr/bin/env bash
# Build the fuzz targets (fuzz/, see fuzz/README.md) and run each for a set time, seeded with
# its committed corpus (fuzz/corpus/TARGET, read only: new inputs go to a scratch corpus under
# the target directory, kept between runs). Prints, per target, the seconds it ran, the inputs
# executed, the coverage reached and what it found; exits 1 if any target crashed, naming the
# input that crashed it.
#
#   scripts/fuzz.sh [--quick] [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET   default 300
#   TARGET               default: every target (`cargo fuzz list`); an unknown one is an error
#   --quick              build unoptimised and without AddressSanitizer: builds in a fraction
#                        of the time, runs ~10x slower; the smoke run of scripts/test.sh
#
# Toolchain: the nightly toolchain when rustup has one, else the default (stable) one with
# RUSTC_BOOTSTRAP=1, which unlocks the -Z flags cargo-fuzz needs (AddressSanitizer included;
# rustup's stable ships its runtime). FUZZ_TOOLCHAIN=stable|nightly overrides the choice.
# Other knobs: FUZZ_SANITIZER (address, none; default address, none with --quick),
# FUZZ_WORK (scratch corpora, artifacts and logs; default $CARGO_TARGET_DIR/fuzz-work or
# fuzz/target/fuzz-work), FUZZ_TIMEOUT (seconds one input may take, default 30),
# FUZZ_RSS_MB (default 2048). scripts/tools.sh installs cargo-fuzz when it is missing.
#
# A crash input is replayed with `BINARY INPUT` (the log says which binary); add it to the
# committed corpus once the bug is fixed, with a regression test in the normal test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
if [[ "${1:-}" == "--quick" ]]; then
    quick=true
    shift
fi
seconds=300
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    seconds="$1"
    shift
fi
if ((seconds == 0)); then
    echo "fuzz: SECONDS_PER_TARGET must be positive" >&2
    exit 2
fi

scripts/tools.sh

toolchain="${FUZZ_TOOLCHAIN:-}"
if [[ -z "$toolchain" ]] && rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=nightly
fi
cargo=(cargo ${toolchain:+"+$toolchain"})
if [[ "$toolchain" != nightly* ]]; then
    export RUSTC_BOOTSTRAP=1
fi

if $quick; then
    sanitizer="${FUZZ_SANITIZER:-none}"
    build=(--dev --sanitizer "$sanitizer")
    profile=debug
else
    sanitizer="${FUZZ_SANITIZER:-address}"
    build=(--sanitizer "$sanitizer")
    profile=release
fi

mapfile -t all < <("${cargo[@]}" fuzz list)
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=("${all[@]}")
fi
for t in "${targets[@]}"; do
    if [[ " ${all[*]} " != *" $t "* ]]; then
        echo "fuzz: no target \`$t\` (targets: ${all[*]})" >&2
        exit 2
    fi
    if [[ ! -d "fuzz/corpus/$t" ]]; then
        echo "fuzz: no committed corpus fuzz/corpus/$t" >&2
        exit 2
    fi
done

target_dir="${CARGO_TARGET_DIR:-$PWD/fuzz/target}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/$profile"
work="${FUZZ_WORK:-$target_dir/fuzz-work}"

echo "fuzz: building ${#targets[@]} target(s) with the ${toolchain:-default} toolchain${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}, $profile, sanitizer $sanitizer" >&2
build_start=$SECONDS
if ((${#targets[@]} == 1)); then
    "${cargo[@]}" fuzz build "${build[@]}" "${targets[0]}"
else
    "${cargo[@]}" fuzz build "${build[@]}"
fi
echo "fuzz: built in $((SECONDS - build_start)) s" >&2

# The value of `NAME: N` in a libFuzzer status line (the last one that has it).
field() {
    grep -oE "$1: [0-9]+" "$2" | tail -n 1 | awk '{print $2}'
}

crashed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$work/$t/corpus"
    artifacts="$work/$t/artifacts"
    log="$work/$t/log"
    mkdir -p "$corpus" "$artifacts"
    echo "fuzz: $t for $seconds s (log: $log)" >&2
    start=$SECONDS
    status=0
    "$bin_dir/$t" "$corpus" "fuzz/corpus/$t" \
        -max_total_time="$seconds" \
        -timeout="${FUZZ_TIMEOUT:-30}" \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
        -artifact_prefix="$artifacts/" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    ran=$((SECONDS - start))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    cov="$(field cov "$log")"
    ft="$(field ft "$log")"
    corp="$(grep -oE 'corp: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')"
    result=ok
    if ((status != 0)); then
        input="$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)"
        kind="$(grep -m 1 -oE 'ERROR: libFuzzer: [a-z -]+|panicked at [^:]+:[0-9]+' "$log" || true)"
        result="CRASH (${kind:-exit status $status}): ${input:-see $log}"
        crashed+=("$t: $result; replay: $bin_dir/$t ${input:-INPUT}")
        tail -n 40 "$log" >&2
    fi
    summary+=("$(printf '%-16s %6s %10s %7s %8s %7s  %s' "$t" "$ran" "${execs:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$result")")
done

printf '%-16s %6s %10s %7s %8s %7s  %s\n' target seconds execs cov features corpus result
printf '%s\n' "${summary[@]}"
if ((${#crashed[@]})); then
    echo >&2
    printf 'fuzz: %s\n' "${crashed[@]}" >&2
    exit 1
fi
