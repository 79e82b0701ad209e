#!/usr/bin/env bash
# Installs everything the test suite needs beyond the Rust toolchain. Idempotent: a tool
# that is already present is left alone. Run as root (the project's machines are).
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool checks our Prometheus exposition (blyan-ops integration test).
if [ -f scripts/install-promtool.sh ]; then
  bash scripts/install-promtool.sh
fi
