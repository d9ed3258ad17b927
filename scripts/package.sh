#!/usr/bin/env bash
# Build what an air-gapped host installs, into target/package/dist/:
#
#   layercrypt-VERSION-ARCH-linux-gnu     the release binary: OpenSSL built in (vendored), no
#                                         shared library beyond glibc (and libgcc_s, which libc6
#                                         depends on), the dependency list embedded
#                                         (cargo auditable)
#   layercrypt_VERSION-1_DEBARCH.deb      that binary, the man page and the bash, zsh and fish
#                                         completions (cargo deb); depends on libc6 only
#   layercrypt-VERSION-ARCH-linux-gnu.cdx.json  a CycloneDX SBOM of the build (cargo cyclonedx)
#   SHA256SUMS                            of every file there
#
# for x86_64 (amd64), or with --arch arm64 for aarch64, cross-built in the Debian 11 root and
# run under qemu-user for the checks.
#
# By default the binary is built in a Debian 11 root made with debootstrap (cached under
# ~/.cache/layercrypt/rootfs), with this machine's Rust toolchain mounted into it, so that it
# needs glibc 2.31 at most and runs on Debian 11, 12 and 13 and the current RHEL and Ubuntu
# LTS releases. --host builds on this machine instead (faster; needs this machine's glibc).
#
# Builds are reproducible: the same commit gives the same bytes (SOURCE_DATE_EPOCH is the
# commit's time, paths are remapped, the build directory is always the same).
#
#   scripts/package.sh [--host] [--arch amd64|arm64] [--check]
#
# --check also proves it: builds a second time from scratch and compares every file, lints the
# .deb with lintian, checks the embedded dependency list (rust-audit-info) and the shared
# libraries and glibc version the binary needs, and runs the sample-image round trip with the
# binary in minimal Debian 11 and 13 roots (debootstrap --variant=minbase, nothing else
# installed; for arm64, under qemu-aarch64 with Debian 11's arm64 C library).
#
# Needs root (debootstrap, chroot, mounts) unless --host; installs what it needs with
# scripts/deps.sh --package and scripts/tools.sh --package.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

mode=portable
check=false
arch=amd64
want_arch=false
for arg in "$@"; do
    if $want_arch; then
        arch=$arg
        want_arch=false
        continue
    fi
    case $arg in
        --host) mode=host ;;
        --arch) want_arch=true ;;
        --arch=*) arch=${arg#--arch=} ;;
        --check) check=true ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "package: unknown argument $arg (see --help)" >&2
            exit 2
            ;;
    esac
done

case $arch in
    amd64) target=x86_64-unknown-linux-gnu ;;
    arm64) target=aarch64-unknown-linux-gnu ;;
    *)
        echo "package: --arch is amd64 or arm64, not $arch" >&2
        exit 2
        ;;
esac
triple=${target/-unknown/}
if [[ $arch != amd64 && $mode == host ]]; then
    echo "package: --arch $arch is cross-built in the Debian 11 root only (drop --host)" >&2
    exit 2
fi

scripts/deps.sh --package
scripts/tools.sh --package

say() { echo "package: $*" >&2; }
die() {
    say "$*"
    exit 1
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
commit=$(git rev-parse --short=12 HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] || commit="$commit-dirty"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
out=$src/target/package
# Always the same path: OpenSSL records its build directory (OPENSSLDIR) in the binary.
build_dir=$out/build
dist=$out/dist
assets=$out/assets
cache=${LAYERCRYPT_CACHE:-$HOME/.cache/layercrypt}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)

# The environment of the release build, the same on the host and in the Debian 11 root.
build_env=(
    "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
    "LAYERCRYPT_COMMIT=$commit"
    "CARGO_TARGET_DIR=$build_dir"
    "CARGO_PROFILE_RELEASE_STRIP=symbols"
    "RUSTFLAGS=--remap-path-prefix=$src=/build/layercrypt --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$rustup_home=/rustup"
    "CFLAGS=-ffile-prefix-map=$src=/build/layercrypt -ffile-prefix-map=$cargo_home=/cargo"
    "TZ=UTC"
    "LC_ALL=C.UTF-8"
)
if [[ $arch == arm64 ]]; then
    # The root's cross compiler and its Debian 11 arm64 C library (gcc-aarch64-linux-gnu,
    # libc6-dev-arm64-cross), for the C parts (OpenSSL, zstd), the link and bindgen.
    build_env+=(
        "CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc"
        "AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar"
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc"
        "BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu=--sysroot=/usr/aarch64-linux-gnu"
    )
    rustup target add "$target" >/dev/null
fi
build_cmd="cargo auditable build --release --locked --offline --target $target --features vendored-openssl"

# A root of Debian $1 (bullseye, trixie) at $2 with the packages $3 (comma-separated), made
# once and kept.
debian_root() {
    local suite=$1 root=$2 include=$3
    if [[ ! -f $root/.complete ]]; then
        say "making a Debian $suite root in $root (once)"
        rm -rf "$root" "$root.tmp"
        mkdir -p "$(dirname "$root")"
        debootstrap --variant=minbase ${include:+--include=$include} "$suite" "$root.tmp" "$mirror" >/dev/null
        touch "$root.tmp/.complete"
        mv "$root.tmp" "$root"
    fi
}

mounts=()
unmount_all() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount -l "${mounts[$i]}" 2>/dev/null || true
    done
    mounts=()
}
trap unmount_all EXIT

# Bind $1 at the same path inside the root $2.
bind() {
    mkdir -p "$2$1"
    mount --bind "$1" "$2$1"
    mounts+=("$2$1")
}

# Run the shell command $1 where the release is built: on this machine (--host), or in the
# Debian 11 root, set up by enter_root.
run_build() {
    if [[ $mode == portable ]]; then
        "${in_root[@]}" "${build_env[@]}" bash -c "cd '$src' && $1"
    else
        (cd "$src" && env "${build_env[@]}" bash -c "$1")
    fi
}

in_root=()
root_packages=(gcc libc6-dev make perl libclang-dev pkg-config ca-certificates dpkg-dev)
if [[ $arch == arm64 ]]; then
    root_packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
fi
build_root=$cache/rootfs/bullseye-build

# Run the binary $1 with the rest as arguments, on this machine: directly, or for arm64 under
# qemu-aarch64 with the Debian 11 root's arm64 C library.
run_bin() {
    if [[ $arch == arm64 ]]; then
        qemu-aarch64 -L "$build_root/usr/aarch64-linux-gnu" "$@"
    else
        "$@"
    fi
}
enter_root() {
    local root=$build_root
    debian_root bullseye "$root" "$(IFS=,; echo "${root_packages[*]}")"
    # The root reaches crates.io as this machine does: its resolver and the certificate
    # authorities it trusts (a proxy's own, say).
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    fi
    mkdir -p "$root/proc" "$root/dev"
    mount -t proc proc "$root/proc"
    mounts+=("$root/proc")
    bind /dev "$root"
    bind "$src" "$root"
    bind "$cargo_home" "$root"
    bind "$rustup_home" "$root"
    local tools=/opt/layercrypt-tools
    in_root=(chroot "$root" env -i "HOME=$HOME" "CARGO_HOME=$cargo_home"
        "RUSTUP_HOME=$rustup_home" "PATH=$tools/bin:$cargo_home/bin:/usr/bin:/bin")
    # A root made by an older version of this script may lack a package.
    if ! "${in_root[@]}" dpkg -s "${root_packages[@]}" >/dev/null 2>&1; then
        "${in_root[@]}" bash -c "apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${root_packages[*]}" >/dev/null
    fi
    # cargo-auditable runs as the compiler's wrapper and cargo-deb runs dpkg-shlibdeps, which
    # must see the root's glibc: both are built there, once, against it.
    local tool
    for tool in cargo-auditable cargo-deb; do
        if [[ ! -x $root$tools/bin/$tool ]]; then
            say "building $tool in the Debian 11 root (once)"
            "${in_root[@]}" cargo install --quiet --locked --root "$tools" "$tool"
        fi
    done
}

# Build everything for $arch into $dist (the other architecture's files stay).
build_all() {
    rm -rf "$assets"
    rm -f "$dist"/layercrypt-*-"$triple" "$dist"/layercrypt-*-"$triple".cdx.json \
        "$dist"/layercrypt_*_"$arch".deb "$dist/SHA256SUMS"
    mkdir -p "$dist" "$assets"
    cargo fetch --locked >/dev/null
    say "building the release binary ($mode)"
    if [[ $mode == portable ]]; then
        [[ $(id -u) -eq 0 ]] || die "the Debian 11 build needs root (or use --host)"
        enter_root
    fi
    run_build "$build_cmd"
    local bin=$build_dir/$target/release/layercrypt
    run_bin "$bin" --version >/dev/null || die "the binary does not run here"
    cp "$bin" "$dist/layercrypt-$version-$triple"

    # Man page, completions and changelogs, from the binary itself and the sources.
    run_bin "$bin" man >"$assets/layercrypt.1"
    run_bin "$bin" completions bash >"$assets/layercrypt.bash"
    run_bin "$bin" completions zsh >"$assets/_layercrypt"
    run_bin "$bin" completions fish >"$assets/layercrypt.fish"
    gzip -9n <CHANGELOG.md >"$assets/changelog.gz"
    local maintainer
    maintainer=$(sed -n 's/^maintainer = "\(.*\)"$/\1/p' Cargo.toml)
    printf '%s\n' "layercrypt ($version-1) unstable; urgency=medium" "" \
        "  * Upstream release $version, built from commit $commit." "" \
        " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")" >"$assets/changelog.Debian"
    touch -d "@$SOURCE_DATE_EPOCH" "$assets"/*

    say "building the .deb"
    # Where the binary was built, so that its dependencies are that system's glibc.
    run_build "cargo deb --quiet --no-build --no-strip --target $target --deb-revision 1 --output '$dist/' >/dev/null"
    unmount_all

    say "writing the SBOM"
    cargo cyclonedx --format json --spec-version 1.5 --target "$target" \
        --features vendored-openssl >/dev/null
    # No timestamp or random serial number: the same commit gives the same SBOM.
    python3 - "$src/layercrypt.cdx.json" "$dist/layercrypt-$version-$triple.cdx.json" <<'EOF'
import json, sys
bom = json.load(open(sys.argv[1]))
bom.pop("serialNumber", None)
bom.get("metadata", {}).pop("timestamp", None)
json.dump(bom, open(sys.argv[2], "w"), indent=2, sort_keys=True)
EOF
    rm -f "$src/layercrypt.cdx.json"

    (cd "$dist" && sha256sum -- layercrypt* >SHA256SUMS)
}

build_all
ls -l "$dist" >&2

if ! $check; then
    exit 0
fi

bin=$dist/layercrypt-$version-$triple
deb=$(ls "$dist"/layercrypt_*_"$arch".deb)

say "check: shared libraries and glibc"
# From the ELF headers (readelf reads either architecture).
libs=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\.so.*\]/\1/p' | sort -u | tr '\n' ' ')
for lib in $libs; do
    case $lib in
        # glibc's (package libc6), and libgcc_s, which libc6 depends on.
        libc | libm | libdl | libpthread | librt | libgcc_s | ld-linux-x86-64 | ld-linux-aarch64) ;;
        *) die "the binary needs $lib.so (only the C library is allowed): $libs" ;;
    esac
done
glibc=$(readelf --dyn-syms -W "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
say "  needs: $libs; newest glibc symbol: $glibc"
if [[ $mode == portable ]] && [[ $(printf '%s\n' "$glibc" GLIBC_2.31 | sort -V | tail -1) != GLIBC_2.31 ]]; then
    die "the binary needs $glibc, newer than Debian 11's glibc 2.31"
fi

say "check: embedded dependency list"
rust-audit-info "$bin" | python3 -c '
import json, sys
names = {p["name"] for p in json.load(sys.stdin)["packages"]}
missing = {"layercrypt", "openssl-src", "openssl-sys", "sequoia-openpgp", "reqwest"} - names
sys.exit(f"missing from the embedded list: {missing}" if missing else 0)
'

say "check: lintian"
lintian --fail-on error,warning "$deb" >&2

say "check: a second build from scratch gives the same bytes"
saved=$out/first
rm -rf "$saved"
cp -a "$dist" "$saved"
rm -rf "$build_dir"
build_all
if ! diff -r "$saved" "$dist" >&2; then
    die "not reproducible: see the differences above (first build in $saved)"
fi
rm -rf "$saved"
say "  reproducible: $(cd "$dist" && sha256sum -- * | grep -v SHA256SUMS | tr '\n' ';')"

# The sample image's digest, which each round trip must give back.
want=$(python3 scripts/image_digest.py testdata/images/plain v1)
if [[ $arch == arm64 ]]; then
    say "check: the sample-image round trip under qemu-aarch64 with Debian 11's arm64 C library"
    work=$(mktemp -d)
    cp -r testdata/images/plain "$work/plain"
    (
        cd "$work"
        run_bin "$bin" --version | grep '^build:' >&2
        run_bin "$bin" encrypt -q -r "jwe:$src/testdata/keys/rsa2048.pub.pem" oci:plain:v1 oci:enc:v1
        run_bin "$bin" verify -q -k "$src/testdata/keys/rsa2048.pem" --full --require-encrypted oci:enc:v1
        run_bin "$bin" decrypt -q -k "$src/testdata/keys/rsa2048.pem" oci:enc:v1 oci:dec:v1
    )
    got=$(python3 scripts/image_digest.py "$work/dec")
    rm -rf "$work"
    [[ $want == "$got" ]] || die "the round trip under qemu gave $got, not $want"
    say "  arm64 (glibc $(ls "$build_root"/usr/aarch64-linux-gnu/lib/libc-*.so | sed 's/.*libc-\(.*\)\.so/\1/')): encrypt, verify --full, decrypt back to $want"
    say "all checks passed"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "the runs in Debian roots need root"
# The oldest Debian it is built for, and the newest.
for suite in bullseye:11 trixie:13; do
    say "check: the sample-image round trip in a minimal Debian ${suite#*:} root"
    root=$cache/rootfs/${suite%%:*}-min
    debian_root "${suite%%:*}" "$root" ""
    work=$root/tmp/layercrypt-check
    rm -rf "$work"
    mkdir -p "$work"
    cp "$bin" "$work/layercrypt"
    cp -r testdata/images/plain "$work/plain"
    cp testdata/keys/rsa2048.pem testdata/keys/rsa2048.pub.pem "$work/"
    chroot "$root" env -i PATH=/usr/bin:/bin sh -ec '
        cd /tmp/layercrypt-check
        ./layercrypt --version | grep "^build:"
        ./layercrypt encrypt -q -r jwe:rsa2048.pub.pem oci:plain:v1 oci:enc:v1
        ./layercrypt verify -q -k rsa2048.pem --full --require-encrypted oci:enc:v1
        ./layercrypt decrypt -q -k rsa2048.pem oci:enc:v1 oci:dec:v1
    ' >&2
    got=$(python3 scripts/image_digest.py "$work/dec")
    rm -rf "$work"
    [[ $want == "$got" ]] || die "the round trip in Debian ${suite#*:} gave $got, not $want"
    say "  Debian ${suite#*:} (glibc $(chroot "$root" ldd --version | head -1 | awk '{print $NF}')): encrypt, verify --full, decrypt back to $want"
done
say "all checks passed"
