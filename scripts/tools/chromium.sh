#!/usr/bin/env bash
# Install Debian's `chromium` (a headless browser) for the self-test that reads the status page as a
# person sees it (tests/test_status_page.py). Optional: a browser cannot be unpacked without root
# like the other Debian tools here (it needs its libraries installed), so this installs it with
# apt-get only when run as root, and otherwise says how and succeeds; without it only the browser
# tests are skipped, saying why. Idempotent: does nothing when chromium is already on PATH.
#
#   bash scripts/tools/chromium.sh
set -euo pipefail

for found in chromium chromium-browser google-chrome; do
  if command -v "$found" >/dev/null 2>&1; then
    echo "chromium: already at $(command -v "$found")"
    exit 0
  fi
done

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed (optional; as root: apt-get install -y chromium); the status-page browser test will be skipped" >&2
  exit 0
fi

echo "chromium: installing Debian chromium"
if ! (apt-get install -y -qq chromium >/dev/null 2>&1 || \
      (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)); then
  echo "chromium: apt-get install chromium failed (optional); the status-page browser test will be skipped" >&2
  exit 0
fi
chromium --version 2>/dev/null | head -n 1
