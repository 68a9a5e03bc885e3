"""Hooks opsverify calls for its optional parts (the gate, metrics, history, Allure extras).

Each part is a plugin object registered only when it is active (``--gate``, ``--history``, reports
written, allure-pytest writing results), so a run that does not use it neither imports nor runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsverify.results import CheckRecord, RunInfo


@pytest.hookspec
def pytest_opsverify_reports_written(session: pytest.Session, run: RunInfo, records: list[CheckRecord],
                                     reports: Path, exitstatus: int) -> None:
    """``summary.json`` and ``summary.md`` of ``run`` are in ``reports``: add to them or judge them."""


@pytest.hookspec
def pytest_opsverify_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Add lines to the end of the run's terminal summary (before the grouped summary of outcomes)."""
