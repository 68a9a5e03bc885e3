#!/usr/bin/env bash
# Obtain the Restate server from npm `@restatedev/restate-server` (1.7.x) into
# $OPSVERIFY_TOOLS/node_modules (a local `npm install --prefix`, never a global one), and make sure
# `ip` (iproute2) and `unshare` (util-linux) exist: the server may ONLY ever run inside its own
# network namespace (`unshare -rn sh -c 'ip link set lo up; exec restate-server ...'`), because it
# contacts GitHub for a release check at every start and no setting turns that off. This script
# never starts it: it only checks that the binary is there and executable.
# Idempotent: does nothing when the pinned version and the namespace tools are already present.
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/restate.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tools=${OPSVERIFY_TOOLS:-$(cd "$here/../.." && pwd)/.opsverify/tools}
version=${RESTATE_SERVER_VERSION:-1.7.12}
mkdir -p "$tools"
pkg_dir="$tools/node_modules/@restatedev/restate-server-linux-x64"
bin="$pkg_dir/bin/restate-server"

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "restate: ${need_apt[*]} missing and no apt-get to install them" >&2
    exit 1
  fi
  if ! apt-cache show "${need_apt[@]}" >/dev/null 2>&1; then
    echo "restate: packages unknown to apt; running apt-get update"
    timeout 300 apt-get update -qq
  fi
  timeout 300 apt-get install -y -q "${need_apt[@]}"
fi

installed=""
if [ -f "$pkg_dir/package.json" ]; then
  installed=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg_dir/package.json" | head -n 1)
fi
if [ -x "$bin" ] && [ "$installed" = "$version" ]; then
  echo "restate-server: $version already at $bin (run it only under unshare -rn)"
  exit 0
fi

if ! command -v npm >/dev/null; then
  echo "restate: npm is needed to obtain @restatedev/restate-server" >&2
  exit 1
fi
# --no-save/--no-package-lock keep $tools free of a package.json that later installs would merge.
# --ignore-scripts: the only install script is @scarf/scarf's postinstall, an install-analytics
# ping; the binary comes from the optional platform package and needs no script.
timeout 600 npm install --prefix "$tools" --no-save --no-package-lock --no-audit --no-fund \
  --ignore-scripts \
  "@restatedev/restate-server@$version"

if [ ! -x "$bin" ]; then
  echo "restate: npm install finished but $bin is missing (platform package not installed?)" >&2
  exit 1
fi
echo "restate-server: $version at $bin (run it only under unshare -rn)"
