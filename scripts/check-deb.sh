#!/usr/bin/env bash
# Install the .deb scripts/package.sh built, check what it installed, and remove it again:
#   dpkg -i; the binary runs and says which build it is; `man -w layercrypt` finds the page;
#   bash completes `layercrypt enc` to `encrypt`, and the zsh and fish files are where those
#   shells look; the sample-image round trip (encrypt, verify --full, decrypt to the original
#   digest); dpkg -r leaves none of its files behind.
#
#   scripts/check-deb.sh [DEB]     (default: the one in target/package/dist/)
#
# Needs root (dpkg). Refuses to run when layercrypt is already installed from a package, so
# that it never removes what someone installed on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "check-deb: $*" >&2; }
die() {
    say "$*"
    exit 1
}

deb=${1:-$(ls target/package/dist/*.deb 2>/dev/null | head -1)}
[[ -f $deb ]] || die "no .deb (run scripts/package.sh first)"
[[ $(id -u) -eq 0 ]] || die "needs root, for dpkg"
if dpkg-query -W -f='${Status}' layercrypt 2>/dev/null | grep -q "install ok installed"; then
    die "layercrypt is already installed from a package; not touching it"
fi

installed=false
cleanup() {
    if $installed; then
        dpkg -r layercrypt >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
work=$(mktemp -d)
trap cleanup EXIT

say "installing $deb"
dpkg -i "$deb" >/dev/null
installed=true
files=$(dpkg -L layercrypt)

[[ $(command -v layercrypt) == /usr/bin/layercrypt ]] || die "layercrypt is not /usr/bin/layercrypt"
layercrypt --version | grep -q '^build: x86_64-unknown-linux-gnu; OpenSSL 3\.[0-9.]* built in' ||
    die "--version does not say it is the packaged build: $(layercrypt --version)"
man -w layercrypt | grep -q '^/usr/share/man/man1/layercrypt.1.gz$' || die "man -w layercrypt: $(man -w layercrypt 2>&1)"
# Bash's completion for `layercrypt enc<TAB>`.
completed=$(bash -c '
    source /usr/share/bash-completion/completions/layercrypt
    COMP_WORDS=(layercrypt enc); COMP_CWORD=1; COMP_LINE="layercrypt enc"; COMP_POINT=${#COMP_LINE}
    _layercrypt layercrypt enc layercrypt
    printf "%s\n" "${COMPREPLY[@]}"')
[[ $completed == encrypt ]] || die "bash completes 'layercrypt enc' to '$completed', not 'encrypt'"
for f in /usr/share/zsh/vendor-completions/_layercrypt /usr/share/fish/vendor_completions.d/layercrypt.fish; do
    grep -qx "$f" <<<"$files" || die "$f is not in the package"
    grep -q encrypt "$f" || die "$f does not complete encrypt"
done

say "sample-image round trip with the installed binary"
cp -r testdata/images/plain "$work/plain"
layercrypt encrypt -q -r jwe:testdata/keys/rsa2048.pub.pem "oci:$work/plain:v1" "oci:$work/enc:v1"
layercrypt verify -q -k testdata/keys/rsa2048.pem --full --require-encrypted "oci:$work/enc:v1"
layercrypt decrypt -q -k testdata/keys/rsa2048.pem "oci:$work/enc:v1" "oci:$work/dec:v1"
want=$(python3 scripts/image_digest.py testdata/images/plain v1)
got=$(python3 scripts/image_digest.py "$work/dec")
[[ $want == "$got" ]] || die "the round trip gave $got, not $want"

say "removing it"
dpkg -r layercrypt >/dev/null
installed=false
if dpkg-query -W -f='${Status}' layercrypt 2>/dev/null | grep -q "install ok installed"; then
    die "still installed after dpkg -r"
fi
while read -r f; do
    [[ -d $f || ! -e $f ]] || die "$f is left after dpkg -r"
done <<<"$files"
say "installed, checked and removed cleanly"
