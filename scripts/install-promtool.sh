#!/bin/sh
# Installs `promtool` (Prometheus' checker, used by blyan-ops' exposition test)
# on Debian or Ubuntu. Idempotent: does nothing when promtool is already found.
#
# It takes only the promtool binary out of Debian's `prometheus` package
# (`apt-get download` + `dpkg-deb -x`) instead of installing the package: the
# package would also create a system user, pull ~10 web dependencies and
# start a Prometheus server on port 9090, which is the node's default
# metrics port. Needs root (apt-get update, writing the install directory).
#
# Environment:
#   PROMTOOL_INSTALL_DIR  where to put promtool (default /usr/local/bin)
set -eu

install_dir="${PROMTOOL_INSTALL_DIR:-/usr/local/bin}"

if found="$(command -v promtool 2>/dev/null)"; then
    echo "promtool already installed: $found"
    exit 0
fi
if [ -x "$install_dir/promtool" ]; then
    echo "promtool already installed: $install_dir/promtool (not on PATH)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-promtool.sh: run as root (it runs apt-get update and writes $install_dir)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "install-promtool.sh: needs apt-get and dpkg-deb (Debian or Ubuntu);" >&2
    echo "  elsewhere install promtool from https://prometheus.io/download/" >&2
    exit 1
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT INT TERM
# apt drops privileges to _apt while downloading; let it write here.
if id _apt >/dev/null 2>&1; then
    chown _apt "$workdir"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
(cd "$workdir" && apt-get download -qq prometheus)

deb="$(find "$workdir" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)"
if [ -z "$deb" ]; then
    echo "install-promtool.sh: apt-get download produced no prometheus_*.deb" >&2
    exit 1
fi
dpkg-deb -x "$deb" "$workdir/root"
mkdir -p "$install_dir"
install -m 0755 "$workdir/root/usr/bin/promtool" "$install_dir/promtool"
"$install_dir/promtool" --version
echo "promtool installed: $install_dir/promtool"
