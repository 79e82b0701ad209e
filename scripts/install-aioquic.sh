#!/usr/bin/env bash
# Creates a Python virtual environment with aioquic (and cryptography) for the QUIC interop
# test of blyan-wire (crates/blyan-wire/tests/it/transport_interop.rs). Idempotent.
#
#   scripts/install-aioquic.sh            # venv at target/interop-venv
#   BLYAN_INTEROP_VENV=/some/dir scripts/install-aioquic.sh
#
# The test finds the interpreter at $BLYAN_INTEROP_PYTHON, else <venv>/bin/python.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BLYAN_INTEROP_VENV:-$root/target/interop-venv}"
# Pinned so that the interop result does not change under us; aioquic supports
# Ed25519 certificates and signatures in its TLS 1.3 stack.
aioquic_version="1.7.2"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import aioquic, cryptography, sys; sys.exit(0 if aioquic.__version__ == '$aioquic_version' else 1)" 2>/dev/null; then
    echo "aioquic $aioquic_version already installed in $venv"
    exit 0
fi

if ! python3 -m venv --help >/dev/null 2>&1; then
    echo "python3 with the venv module is required (Debian: apt-get install python3-venv)" >&2
    exit 1
fi

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "aioquic==$aioquic_version" cryptography
"$venv/bin/python" -c "import aioquic; print('aioquic', aioquic.__version__, 'installed in $venv')"
