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

source "$(dirname "$0")/lib.sh"
version=${RESTATE_SERVER_VERSION:-1.7.12}
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

if [ -x "$bin" ] && [ "$(npm_version "$pkg_dir")" = "$version" ]; then
  echo "restate-server: $version already at $bin (run it only under unshare -rn)"
  exit 0
fi

# The only install script is @scarf/scarf's postinstall, an install-analytics ping; the binary
# comes from the optional platform package and needs no script.
npm_install_pinned restate "$tools" @restatedev/restate-server "$version"

if [ ! -x "$bin" ]; then
  echo "restate: npm install finished but $bin is missing (platform package not installed?)" >&2
  exit 1
fi
echo "restate-server: $version at $bin (run it only under unshare -rn)"
