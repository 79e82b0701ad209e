#!/usr/bin/env bash
# Installs everything the test suite needs beyond the Rust toolchain. Idempotent: a tool
# that is already present is left alone. Run as root (the project's machines are).
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool checks our Prometheus exposition (blyan-ops integration test).
if [ -f scripts/install-promtool.sh ]; then
  bash scripts/install-promtool.sh
fi

# aioquic, an independent QUIC + TLS 1.3 stack, for blyan-wire's interop test. It lives in
# a venv under target/; Debian's python3 needs python3-venv for that.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
bash scripts/install-aioquic.sh
