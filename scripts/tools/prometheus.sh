#!/usr/bin/env bash
# Obtain Prometheus (and promtool) from Debian's `prometheus` package WITHOUT installing it
# system-wide: `apt-get download` the .deb and unpack it with `dpkg-deb -x` into $OPSVERIFY_TOOLS,
# so the binary ends up at $OPSVERIFY_TOOLS/usr/bin/prometheus. Idempotent: does nothing when the
# binary is already there and runs. Needs no root (apt-get update, only done when the package is
# unknown to apt, does).
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/prometheus.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tools=${OPSVERIFY_TOOLS:-$(cd "$here/../.." && pwd)/.opsverify/tools}
mkdir -p "$tools"
bin="$tools/usr/bin/prometheus"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "prometheus: already at $bin"
  exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "prometheus: apt-get and dpkg-deb are needed (Debian/Ubuntu) to obtain it" >&2
  exit 1
fi

# apt-cache knows the package only after an `apt-get update` on a fresh machine.
if ! apt-cache show prometheus >/dev/null 2>&1; then
  echo "prometheus: package unknown to apt; running apt-get update"
  apt-get update -qq
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt-get download writes into the current directory; as root it drops privileges to the `_apt`
# user, which cannot write to a mktemp (0700) dir owned by root (it then warns and downloads
# "unsandboxed"): hand the download dir to `_apt`.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
  chown _apt "$work"
fi
(cd "$work" && timeout 300 apt-get download -q prometheus)
deb=$(ls "$work"/prometheus_*.deb)
dpkg-deb -x "$deb" "$tools"

"$bin" --version 2>&1 | head -n 1
if [ -x "$tools/usr/bin/promtool" ]; then
  echo "promtool: $tools/usr/bin/promtool"
fi
