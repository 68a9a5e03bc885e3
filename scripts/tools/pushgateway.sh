#!/usr/bin/env bash
# Obtain the Prometheus Pushgateway from Debian's `prometheus-pushgateway` package WITHOUT installing
# it system-wide (as scripts/tools/prometheus.sh does for Prometheus): `apt-get download` the .deb and
# unpack it with `dpkg-deb -x` into $OPSVERIFY_TOOLS, so the binary ends up at
# $OPSVERIFY_TOOLS/usr/bin/prometheus-pushgateway. The self-tests of deploy/entrypoint.sh push a real
# run's metrics.prom to it (tests/test_deploy.py). Idempotent; needs no root.
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/pushgateway.sh
set -euo pipefail

source "$(dirname "$0")/lib.sh"
bin="$tools/usr/bin/prometheus-pushgateway"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "pushgateway: already at $bin"
  exit 0
fi

deb_unpack pushgateway prometheus-pushgateway

"$bin" --version 2>&1 | head -n 1
