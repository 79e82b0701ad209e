#!/bin/sh
# Builds blyan-node as a statically linked x86_64 Linux executable and checks that it
# is static. The one recipe for the static binary: deploy/Dockerfile runs it in its build
# stage and scripts/check-deploy.sh runs it on the host, so both build the same thing.
#
# Usage: deploy/build-static.sh [OUT]
#   Builds into $CARGO_TARGET_DIR (default: target/ of the checkout) and, when OUT is
#   given, copies the binary there. Prints the binary's path on the last line.
#
# Why glibc with crt-static rather than musl: the musl target's standard library is not
# installed on the project's machines (no rustup downloads there), while the glibc target's
# is. `+crt-static` links glibc's libc.a into a static-pie executable. `--target` is what
# keeps the flag off build scripts and proc-macros (host artifacts must stay dynamic: a
# proc-macro is a shared library loaded by rustc).
#
# RUSTFLAGS replaces the rustflags of .cargo/config.toml, so the curve25519-dalek AVX-512
# backend cfg set there is repeated here (the binary still runs on every x86_64 CPU: the
# backend is picked at run time).
set -eu

cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export RUSTFLAGS='-C target-feature=+crt-static --cfg curve25519_dalek_backend="avx512"'

cargo build --release --locked -p blyan-node --bin blyan-node --target "$target"

bin="$CARGO_TARGET_DIR/$target/release/blyan-node"

# Static means: no program interpreter (ld-linux.so) and no shared library dependencies.
# readelf comes with binutils, which gcc (present wherever cargo links) depends on.
if readelf --program-headers --wide "$bin" | grep -q 'INTERP'; then
    echo "build-static.sh: $bin has a program interpreter: it is dynamically linked" >&2
    exit 1
fi
if readelf --dynamic --wide "$bin" | grep -q '(NEEDED)'; then
    echo "build-static.sh: $bin needs shared libraries:" >&2
    readelf --dynamic --wide "$bin" | grep '(NEEDED)' >&2
    exit 1
fi

if [ "$#" -ge 1 ]; then
    mkdir -p "$(dirname "$1")"
    cp "$bin" "$1"
    bin="$1"
fi
echo "$bin"
