#!/usr/bin/env bash
# The project's test command: installs what the tests need (scripts/setup.sh), then runs
# every test of the workspace. The README names this script; .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked "$@"
