#!/usr/bin/env bash
# Obtain Prometheus (and promtool) from Debian's `prometheus` package WITHOUT installing it
# system-wide: `apt-get download` the .deb and unpack it with `dpkg-deb -x` into $OPSVERIFY_TOOLS,
# so the binary ends up at $OPSVERIFY_TOOLS/usr/bin/prometheus. Idempotent: does nothing when the
# binary is already there and runs. Needs no root (apt-get update, only done when the package is
# unknown to apt, does).
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/prometheus.sh
set -euo pipefail

source "$(dirname "$0")/lib.sh"
bin="$tools/usr/bin/prometheus"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "prometheus: already at $bin"
  exit 0
fi

deb_unpack prometheus prometheus

"$bin" --version 2>&1 | head -n 1
if [ -x "$tools/usr/bin/promtool" ]; then
  echo "promtool: $tools/usr/bin/promtool"
fi
