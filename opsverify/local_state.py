"""Where a project keeps its local, git-ignored state: ``.opsverify/`` under the project's root.

The root is the directory a command runs in (the CLI) or pytest's rootdir (a run), never where
the opsverify package is installed. Two directories live there, each movable by a variable:

* the sandbox's state (``$OPSVERIFY_SANDBOX_DIR``, default ``<root>/.opsverify/sandbox``): its CA,
  logs and the secrets ``environments/local.yaml`` reads by reference;
* unpacked server binaries (``$OPSVERIFY_TOOLS``, default ``<root>/.opsverify/tools``), what
  ``scripts/install-tools.sh`` puts there.

Example::

    export_sandbox_dir(config.rootpath)   # ${OPSVERIFY_SANDBOX_DIR} in environment files now resolves
    tools_dir(Path.cwd())                 # -> .../project/.opsverify/tools (or $OPSVERIFY_TOOLS)
"""

from __future__ import annotations

import os
from pathlib import Path

SANDBOX_DIR_VARIABLE = "OPSVERIFY_SANDBOX_DIR"
TOOLS_DIR_VARIABLE = "OPSVERIFY_TOOLS"


def sandbox_dir(root: Path) -> Path:
    """The sandbox's state directory of the project at ``root`` (``$OPSVERIFY_SANDBOX_DIR`` first)."""
    return Path(os.environ.get(SANDBOX_DIR_VARIABLE, root / ".opsverify" / "sandbox"))


def tools_dir(root: Path) -> Path:
    """Where the project at ``root`` keeps unpacked server binaries (``$OPSVERIFY_TOOLS`` first)."""
    return Path(os.environ.get(TOOLS_DIR_VARIABLE, root / ".opsverify" / "tools"))


def export_sandbox_dir(root: Path) -> None:
    """Set ``$OPSVERIFY_SANDBOX_DIR`` to the sandbox of the project at ``root`` unless it is set."""
    os.environ.setdefault(SANDBOX_DIR_VARIABLE, str(sandbox_dir(root)))
