#!/usr/bin/env bash
# Run opsverify's self-tests: every check against real local servers, healthy and faulted.
# Installs what it needs first (scripts/bootstrap.sh). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh
source scripts/bytecode.sh
.venv/bin/ruff check --quiet . || { echo "scripts/test.sh: ruff found the problems above" >&2; exit 1; }
set +e
.venv/bin/python -m pytest tests -p no:cacheprovider -n 2 "$@"
code=$?
set -e
if [ "$code" = 5 ]; then
  echo "scripts/test.sh: pytest collected no tests — a run that tests nothing is a failure" >&2
  exit 1
fi
exit "$code"
