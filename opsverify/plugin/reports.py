"""Reports: once the session finishes, ``summary.json`` and ``summary.md`` (and ``junit.xml`` and
``allure-results/`` through their own plugins) in the reports directory, then the optional parts
(metrics, history, Allure extras, the gate: ``pytest_opsverify_reports_written``); at the end of the
terminal summary, the warnings, where the reports went and the grouped outcomes.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from opsverify import __version__, analysis, console, waiting
from opsverify.config.secrets import REDACTOR
from opsverify.plugin.state import RUN_KEY, collected_records, is_worker, ov, reports_dir, run_state, wants_checks
from opsverify.project import project_root
from opsverify.results import CheckRecord, RunInfo, run_ending, utc_now


def git_commit(root: Path) -> str | None:
    """The commit the run verifies from: ``$GITHUB_SHA``, else ``git rev-parse HEAD`` in ``root``."""
    env_commit = os.environ.get("GITHUB_SHA")
    if env_commit:
        return env_commit
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_info(session: pytest.Session, records: list[CheckRecord], exitstatus: int) -> RunInfo:
    """The facts about the run as a whole that ``summary.json`` starts with."""
    from opsverify import inventory

    config = session.config
    ovs = ov(config)
    return RunInfo(
        environments=list(ovs.environments),
        started_at=run_state(config).started_at,
        finished_at=utc_now(),
        opsverify_version=__version__,
        git_commit=git_commit(project_root(config)),
        args=[REDACTOR.redact(a) for a in config.invocation_params.args],
        phase=ovs.phase_summary(),
        run_id=str(uuid.uuid4()),
        credentials=[c.to_dict() for c in inventory.collect(ovs, settled_only=True)],
        wait=waiting.run_summary(config, records, exitstatus),
        analysis=analysis.run_summary(config, records, exitstatus),
        ended=run_ending(exitstatus, len(records), str(session.shouldstop or session.shouldfail or "") or None),
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every plugin is configured now: take over the terminal's short summary (grouped)."""
    console.configure(session.config, wants_checks(session.config))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    ovs = ov(config)
    ovs.engine.shutdown()
    if is_worker(config) or not wants_checks(config) or config.getoption("no_reports") or config.option.collectonly:
        return
    for env in ovs.environments.values():
        for ref in env.secret_refs():
            ref.try_register()
    records = collected_records(config)
    run = run_info(session, records, exitstatus)
    out = reports_dir(config)
    from opsverify.writers import summary_json, summary_md

    summary_json.write(out / "summary.json", run, records)
    summary_md.write(out / "summary.md", run, records)
    run_state(config).written = out
    config.hook.pytest_opsverify_reports_written(session=session, run=run, records=records, reports=out,
                                                 exitstatus=exitstatus)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    records = collected_records(config)
    warned = [r for r in records if r.warnings]
    if warned:
        terminalreporter.section("opsverify warnings", sep="-", yellow=True)
        for record in warned:
            for text in record.warnings:
                terminalreporter.line(REDACTOR.redact(text))
    state = config.stash.get(RUN_KEY, None)
    written = state.written if state is not None else None
    if written is not None:
        terminalreporter.line(f"opsverify: reports written to {written}/ "
                              "(summary.md, summary.json, junit.xml, allure-results/, metrics.prom)")
    config.hook.pytest_opsverify_terminal_summary(terminalreporter=terminalreporter, config=config)
    console.terminal_summary(terminalreporter, config, records)
