#!/usr/bin/env bash
# Regenerate the committed gRPC code of the key-provider protocol from keyprovider.proto:
#
#   src/keywrap/provider/proto/keyprovider.rs   messages + client (used by the library)
#   examples/keyprovider/proto.rs               messages + server (used by the test provider)
#
# Building layercrypt never needs this (nor protoc): run it only after changing the .proto or
# moving to a new tonic/prost line, then review and commit the diff. It needs protoc (Debian:
# `apt-get install protobuf-compiler`) and builds tonic-prost-build in a throwaway crate.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
command -v protoc >/dev/null || { echo "regenerate: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/client" "$work/server"
cat >"$work/Cargo.toml" <<'TOML'
[package]
name = "keyprovider-codegen"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
tonic-prost-build = "0.14"
TOML
cat >"$work/src/main.rs" <<'RUST'
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (proto, include, client, server) = (&a[1], &a[2], &a[3], &a[4]);
    for (out, is_client) in [(client, true), (server, false)] {
        tonic_prost_build::configure()
            .build_client(is_client)
            .build_server(!is_client)
            .build_transport(false)
            .out_dir(out)
            .compile_protos(&[proto.as_str()], &[include.as_str()])
            .expect("protoc and tonic-prost-build succeed");
    }
}
RUST
cargo run --quiet --manifest-path "$work/Cargo.toml" --target-dir "$work/target" -- \
    "$here/keyprovider.proto" "$here" "$work/client" "$work/server"
cp "$work/client/keyprovider.rs" "$here/keyprovider.rs"
cp "$work/server/keyprovider.rs" "$root/examples/keyprovider/proto.rs"
# Committed as rustfmt leaves it, so `cargo fmt --check` and a regeneration agree.
rustfmt --edition 2024 "$here/keyprovider.rs" "$root/examples/keyprovider/proto.rs"
echo "regenerate: wrote $here/keyprovider.rs and $root/examples/keyprovider/proto.rs" >&2
