#!/usr/bin/env bash
# Run the smoke suite against the local sandbox: installs what is needed, starts real services on
# 127.0.0.1 (`opsverify sandbox up`), runs `pytest -m smoke --env local`, then stops the sandbox
# (KEEP_SANDBOX=1 leaves it running). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh
source scripts/bytecode.sh
.venv/bin/opsverify sandbox up
if [ "${KEEP_SANDBOX:-0}" != 1 ]; then
  trap '.venv/bin/opsverify sandbox down' EXIT
fi
.venv/bin/python -m pytest -m smoke --env local "$@"
