"""The library, the fixture modules and the checks type-check under ``mypy --strict`` (pyproject's [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def test_library_and_fixtures_pass_strict_mypy(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
