#!/usr/bin/env bash
# Run the smoke suite against the local sandbox: installs what is needed, starts real services on
# 127.0.0.1 (`opsverify sandbox up`), runs `pytest -m smoke --env local`, then stops the sandbox
# (KEEP_SANDBOX=1 leaves it running). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh
# Bytecode, pytest's assertion-rewritten modules included, is cached under .opsverify/pycache: with
# PYTHONDONTWRITEBYTECODE set (as in many CI images) pytest rewrites and compiles every module of every
# plugin anew in each run, 1-2 s of every pytest start here.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$root/.opsverify/pycache"
.venv/bin/opsverify sandbox up
if [ "${KEEP_SANDBOX:-0}" != 1 ]; then
  trap '.venv/bin/opsverify sandbox down' EXIT
fi
.venv/bin/python -m pytest -m smoke --env local "$@"
