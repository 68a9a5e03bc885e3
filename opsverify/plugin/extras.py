"""The run's other outputs, each registered only when this run writes it: ``metrics.prom`` (with the
reports) and the SQLite history (``--history``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsverify.results import CheckRecord, RunInfo


class Metrics:
    """``metrics.prom`` beside ``summary.json`` (the Prometheus textfile of the run)."""

    def pytest_opsverify_reports_written(self, session: pytest.Session, run: RunInfo, records: list[CheckRecord],
                                         reports: Path, exitstatus: int) -> None:
        from opsverify.writers import metrics_prom

        metrics_prom.write(reports / "metrics.prom", run, records)


class History:
    """``--history PATH``: the run appended to the SQLite history."""

    def pytest_opsverify_reports_written(self, session: pytest.Session, run: RunInfo, records: list[CheckRecord],
                                         reports: Path, exitstatus: int) -> None:
        from opsverify import history

        history.after_run(session.config, run, records)
