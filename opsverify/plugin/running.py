"""Running a single-process session: every selected check's probes start at once, then the checks run.

Under pytest-xdist the workers do the same for the checks they were given
(:mod:`opsverify.plugin.xdist_support`). A ``--until-pass`` wait or an analysis window
(:mod:`opsverify.waiting`, :mod:`opsverify.analysis`) runs between the wave of probes and the report.
"""

from __future__ import annotations

import time

import pytest

from opsverify import analysis, console
from opsverify.plugin.state import is_controller, is_worker, ov


def report_every_check(session: pytest.Session) -> None:
    """Run and report every collected item in order, as pytest's own run loop does (``-x`` and
    ``--maxfail`` stop it the same way)."""
    items = session.items
    for index, item in enumerate(items):
        nextitem = items[index + 1] if index + 1 < len(items) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or is_controller(config) or is_worker(config):
        return
    started = time.monotonic()
    ovs = ov(config)
    ovs.on_waiting = console.progress(config, ovs.engine)
    ovs.prefetch(session.items)
    if analysis.wait_or_window(session, session.items, session.items[0] if session.items else None, started):
        report_every_check(session)
        raise session.Interrupted("the wait was interrupted (Ctrl-C): each check reports its last outcome")
