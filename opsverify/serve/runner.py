"""One run of the selected checks, in this process: ``pytest.main`` with a collector plugin.

Example::

    done = run_once(settings, number=3)
    done.completed, done.exit_code, len(done.records), done.run.finished_at

pytest's terminal output is discarded (serve logs one line per run); its usage errors still reach
stderr. Reports files are not written (``--no-reports``): the records go to the port and, with
``--history``, to the history file. After the run, what the plugin froze for the garbage collector
(``gc.freeze()``, right for a one-shot process) is unfrozen and collected, so a long-running serve
does not keep every past run's objects.
"""

from __future__ import annotations

import contextlib
import gc
import io
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from opsverify import __version__
from opsverify.results import CheckRecord, RunInfo, run_ending, utc_now
from opsverify.serve.settings import ServeSettings

COMPLETED_EXITS = (0, 1)


@dataclass
class RunDone:
    """What one run produced: pytest's exit code, the run's facts and one record per check."""

    number: int
    exit_code: int
    run: RunInfo
    records: list[CheckRecord] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def completed(self) -> bool:
        """Every selected check ran to an outcome (pytest exit 0 or 1)."""
        return self.exit_code in COMPLETED_EXITS and self.run.ended.get("status") == "completed"


class _Collector:
    """The pytest plugin that hands the run's records back (after opsverify's own sessionfinish)."""

    def __init__(self) -> None:
        self.records: list[CheckRecord] = []
        self.environments: list[str] = []
        self.commit: str | None = None
        self.stopped_early: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from opsverify import plugin  # loaded by pytest by now (importing it earlier spoils its rewrite)
        from opsverify.plugin.reports import git_commit

        config = session.config
        self.records = plugin.collected_records(config)
        ovs = config.stash.get(plugin.SESSION_KEY, None)
        if ovs is not None:
            self.environments = list(ovs.environments)
            for env in ovs.environments.values():
                for ref in env.secret_refs():
                    ref.try_register()  # the redactor then masks those values in every serve output
        self.commit = git_commit(config.rootpath)
        self.stopped_early = str(session.shouldstop or session.shouldfail or "") or None


def pytest_args(settings: ServeSettings) -> list[str]:
    """The pytest command line of every run."""
    args = [f"--rootdir={settings.root}", "-c", str(settings.root / "pyproject.toml"), "-p", "no:cacheprovider",
            "--no-reports", "-q"]
    args += [f"--env={name}" for name in settings.envs]
    args += [f"--env-file={path}" for path in settings.env_files]
    if settings.markexpr:
        args += ["-m", settings.markexpr]
    return [*args, *settings.extra, str(settings.root / "checks")]


def run_once(settings: ServeSettings, number: int) -> RunDone:
    """Run the selected checks once and return what they found (never raises for a failed check;
    a Ctrl-C or SIGTERM during the run comes back as an interrupted run, exit 2)."""
    collector = _Collector()
    started_at, started = utc_now(), time.monotonic()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exit_code = int(pytest.main(pytest_args(settings), plugins=[collector]))
    finally:
        gc.unfreeze()
        gc.collect()
    run = RunInfo(environments=collector.environments or [*settings.envs], started_at=started_at,
                  finished_at=utc_now(), opsverify_version=__version__, git_commit=collector.commit,
                  args=["opsverify", "serve", *_shown_args(settings)], run_id=str(uuid.uuid4()),
                  ended=run_ending(exit_code, len(collector.records), collector.stopped_early))
    return RunDone(number, exit_code, run, collector.records, time.monotonic() - started)


def _shown_args(settings: ServeSettings) -> list[str]:
    shown: list[Any] = [*(f"--env={e}" for e in settings.envs), *(f"--env-file={f}" for f in settings.env_files)]
    if settings.markexpr:
        shown += ["-m", settings.markexpr]
    return [str(a) for a in shown]
