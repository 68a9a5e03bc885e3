"""The suite shipped with opsverify: its facade fixtures, checks and runbooks.

Installed from a wheel, they are this package's ``fixtures`` and ``checks`` subpackages and its
``runbooks/`` folder. In opsverify's own source tree they are the top-level folders ``fixtures/``,
``checks/`` and ``runbooks/`` (``pyproject.toml`` maps them here for the wheel), and this package's
path reaches them there, so ``opsverify.bundled.fixtures.http`` names the same file either way::

    from opsverify.bundled import CHECKS, FACADES, RUNBOOKS, in_source_tree

    FACADES          # ["opsverify.bundled.fixtures.api_tokens", ...], every facade module
    CHECKS           # the folder of the shipped checks
    in_source_tree() # True in opsverify's repository, where its checks/ are collected as any project's
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_SOURCE = _HERE.parents[1]


def in_source_tree() -> bool:
    """Whether this is opsverify's source tree (the suite at its top), not an installed copy."""
    return not (_HERE / "fixtures").is_dir() and (_SOURCE / "fixtures" / "__init__.py").is_file()


if in_source_tree():
    __path__.append(str(_SOURCE))

_BASE = _SOURCE if in_source_tree() else _HERE

CHECKS = _BASE / "checks"
"""The folder of the shipped checks (``checks/`` of the source tree, or the installed package's)."""

RUNBOOKS = _BASE / "runbooks"
"""The folder of the shipped runbooks, whose steps the shipped checks name."""

FACADES = sorted(
    f"{__name__}.fixtures.{info.name}" for info in pkgutil.iter_modules([str(_BASE / "fixtures")])
)
"""Every facade module (one per system), registered as a pytest plugin by :mod:`opsverify.bundled.plugin`."""
