#!/usr/bin/env bash
# Obtain the Allure report generator from npm `allure-commandline` (it bundles Allure 2's Java
# distribution) into $OPSVERIFY_TOOLS/allure/node_modules (a local `npm install --prefix` of its
# own, never a global one: npm prunes packages it did not save from a shared prefix), so
# `allure generate reports/allure-results -o reports/allure-report` works with the machine's Java
# (`java -version`: 8 or later). Idempotent: does nothing when the pinned version is already there.
# Without Java the report cannot be rendered (the self-test that renders one is then
# skipped with that reason), but the install itself still succeeds.
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/allure.sh
set -euo pipefail

source "$(dirname "$0")/lib.sh"
version=${ALLURE_COMMANDLINE_VERSION:-2.46.1}
prefix="$tools/allure"
mkdir -p "$prefix"
pkg_dir="$prefix/node_modules/allure-commandline"
bin="$pkg_dir/dist/bin/allure"

if [ -x "$bin" ] && [ "$(npm_version "$pkg_dir")" = "$version" ]; then
  echo "allure: $version already at $bin"
  exit 0
fi

# The package has no install script (the Java distribution is inside the tarball).
npm_install_pinned allure "$prefix" allure-commandline "$version"

if [ ! -f "$bin" ]; then
  echo "allure: npm install finished but $bin is missing" >&2
  exit 1
fi
chmod +x "$bin"
if ! command -v java >/dev/null 2>&1; then
  echo "allure: installed at $bin, but java is not on PATH: install a JRE to render reports" >&2
fi
echo "allure: $version at $bin"
