#!/usr/bin/env bash
# Install the Debian packages layercrypt needs, idempotently: only missing packages are
# installed, and `apt-get update` runs only when something is missing.
#
#   scripts/deps.sh          build dependencies (OpenSSL headers, pkg-config, a C compiler, and
#                            libclang for the bindings of sequoia-openpgp's OpenSSL backend)
#   scripts/deps.sh --package  also what scripts/package.sh needs (debootstrap, lintian, ...)
#   scripts/deps.sh --test   also the tools the test suite runs against (skopeo, gnupg, openssl,
#                            softhsm2 and opensc for the PKCS#11 tests, docker-registry for
#                            the registry round trip, docker.io for `docker load`, strace
#                            for the crash tests, python3-venv for the example validators)
#
# Needs root or sudo when something is missing. The Rust toolchain itself (cargo, rustc
# >= 1.89) must already be installed, e.g. with rustup.
set -euo pipefail

packages=(pkg-config libssl-dev gcc make)
# OpenPGP (cargo feature `pgp`, on by default): sequoia-openpgp's OpenSSL backend generates its
# OpenSSL bindings with bindgen, which needs libclang at build time.
packages+=(libclang-dev)
# scripts/package.sh: a Debian 11 root to build in and to run the binary in, the OpenSSL source
# build (perl), the .deb's shared-library dependencies (dpkg-shlibdeps) and its lint, and
# objdump for the glibc symbols the binary needs; man-db for the installed-package check.
if [[ "${1:-}" == "--package" || "${1:-}" == "--test" ]]; then
    packages+=(debootstrap perl dpkg-dev lintian binutils man-db bash-completion)
    # The arm64 build's checks run it under qemu-user.
    packages+=(qemu-user)
fi
if [[ "${1:-}" == "--test" ]]; then
    packages+=(skopeo gnupg openssl)
    # PKCS#11 tests (tests/it/pkcs11.rs): a software token and pkcs11-tool to fill it.
    packages+=(softhsm2 opensc)
    # Registry round trip (tests/it/registry.rs): a local Distribution registry (2.8,
    # /usr/bin/docker-registry) that skopeo pushes to and pulls from over plain HTTP.
    packages+=(docker-registry)
    # For tests/it/docker_load.rs: `docker load` of archives layercrypt writes. Docker 20.10
    # (dockerd and the client in /usr/bin; it pulls in containerd and runc); each test
    # starts its own daemon on a unix socket, so no system service is used.
    packages+=(docker.io)
    # For tests/it/crash.rs: strace kills a run exactly as it is about to rename or remove a
    # given file (--inject=...:signal=KILL).
    packages+=(strace)
    # For scripts/validate-examples.sh (tests/it/fleet.rs): a virtual environment for the
    # Kubernetes and Argo validators from PyPI.
    packages+=(python3 python3-venv)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}" >&2
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Another apt or dpkg may be running (unattended upgrades, a parallel install): wait for
    # its lock instead of failing at once.
    apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=120)
    "${apt[@]}" update -qq
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "deps: cargo not found; install Rust (>= 1.89) with rustup: https://rustup.rs" >&2
    exit 1
fi
