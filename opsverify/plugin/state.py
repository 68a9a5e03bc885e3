"""The run's state, kept in ``config.stash`` (and each check's in ``item.stash``), and how to reach it.

Nothing here is a hook: the plugin's modules, :mod:`opsverify.waiting`, :mod:`opsverify.analysis` and
``opsverify serve`` read the run through these accessors::

    session = ov(config)                 # the OvSession: environments, runbooks, engine
    records = collected_records(config)  # one CheckRecord per check reported so far
    notes_of(item).measured              # what a check recorded while it ran
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opsverify.expect import CheckNotes
from opsverify.project import project_root
from opsverify.results import CheckRecord
from opsverify.session import OvSession

PROP = "opsverify"
"""The ``user_properties`` key of a report's record fields (JSON), read back wherever reports go."""


@dataclass
class RunState:
    """What the run gathers on its way: when it started, a record per check, where reports went."""

    started_at: str
    records: dict[str, CheckRecord] = field(default_factory=dict)
    written: Path | None = None


SESSION_KEY = pytest.StashKey[OvSession]()
RUN_KEY = pytest.StashKey[RunState]()
NOTES_KEY = pytest.StashKey[CheckNotes]()
WAITED_KEY = pytest.StashKey[bool]()


def ov(config: pytest.Config) -> OvSession:
    """The run's opsverify session (made in ``pytest_configure``)."""
    return config.stash[SESSION_KEY]


def run_state(config: pytest.Config) -> RunState:
    """The run's :class:`RunState` (made in ``pytest_configure``)."""
    return config.stash[RUN_KEY]


def collected_records(config: pytest.Config) -> list[CheckRecord]:
    """Every check's record reported so far (all of them once the session finishes)."""
    state = config.stash.get(RUN_KEY, None)
    return list(state.records.values()) if state is not None else []


def notes_of(item: pytest.Item) -> CheckNotes:
    """What ``item`` recorded while it ran (measured values, warnings, facts); made on first use."""
    notes = item.stash.get(NOTES_KEY, None)
    if notes is None:
        notes = CheckNotes()
        item.stash[NOTES_KEY] = notes
    return notes


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker (xdist gives a worker's config its ``workerinput``)."""
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """Whether this process is the pytest-xdist controller of a distributed run (``-n N``, N >= 1)."""
    return not is_worker(config) and config.pluginmanager.has_plugin("dsession")


def wants_checks(config: pytest.Config) -> bool:
    """Whether the run was given an environment (``--env`` / ``--env-file``), so checks run."""
    return bool(config.getoption("env") or config.getoption("env_file"))


def writes_reports(config: pytest.Config) -> bool:
    """Whether this run writes report files: checks run, ``--no-reports`` is not given, not ``--collect-only``."""
    return wants_checks(config) and not config.getoption("no_reports") and not config.option.collectonly


def reports_dir(config: pytest.Config) -> Path:
    """Where the reports go: ``--reports-dir``, else ``reports/`` under the root directory."""
    chosen = config.getoption("reports_dir")
    return Path(chosen) if chosen else project_root(config) / "reports"
