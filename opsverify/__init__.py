"""opsverify: operational runbook validation steps as pytest checks, per environment."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("opsverify")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0+src"
