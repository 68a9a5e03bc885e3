#!/usr/bin/env bash
# Obtain Prometheus blackbox_exporter from Debian's `prometheus-blackbox-exporter` package without a
# system-wide install (apt-get download + dpkg-deb -x into $OPSVERIFY_TOOLS, as scripts/tools/*.sh do):
# the peer bench/latency_accuracy.py measures opsverify against. Idempotent.
set -euo pipefail
source "$(dirname "$0")/../scripts/tools/lib.sh"
bin="$tools/usr/bin/prometheus-blackbox-exporter"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
deb_unpack blackbox_exporter prometheus-blackbox-exporter >&2
echo "$bin"
