#!/usr/bin/env bash
# Obtain the Prometheus Pushgateway from Debian's `prometheus-pushgateway` package WITHOUT installing
# it system-wide (as scripts/tools/prometheus.sh does for Prometheus): `apt-get download` the .deb and
# unpack it with `dpkg-deb -x` into $OPSVERIFY_TOOLS, so the binary ends up at
# $OPSVERIFY_TOOLS/usr/bin/prometheus-pushgateway. The self-tests of deploy/entrypoint.sh push a real
# run's metrics.prom to it (tests/test_deploy.py). Idempotent; needs no root.
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/pushgateway.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tools=${OPSVERIFY_TOOLS:-$(cd "$here/../.." && pwd)/.opsverify/tools}
mkdir -p "$tools"
bin="$tools/usr/bin/prometheus-pushgateway"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "pushgateway: already at $bin"
  exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "pushgateway: apt-get and dpkg-deb are needed (Debian/Ubuntu) to obtain it" >&2
  exit 1
fi

if ! apt-cache show prometheus-pushgateway >/dev/null 2>&1; then
  echo "pushgateway: package unknown to apt; running apt-get update"
  apt-get update -qq
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# as root, apt-get download drops privileges to `_apt`, which must be able to write the directory
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
  chown _apt "$work"
fi
(cd "$work" && timeout 300 apt-get download -q prometheus-pushgateway)
deb=$(ls "$work"/prometheus-pushgateway_*.deb)
dpkg-deb -x "$deb" "$tools"

"$bin" --version 2>&1 | head -n 1
