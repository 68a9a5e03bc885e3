"""Waiting until healthy: ``--until-pass 5m [--interval 10s]`` re-probes what did not pass.

After the wave of probes, every selected check is *evaluated quietly*: its set-up, body and tear-down
run as usual, but nothing is reported (no console line, no JUnit, Allure or summary record). While
some checks have not passed (failed or errored; skipped ones do not wait) and the deadline is ahead,
the engine forgets the results of their probes (and of the probes those depended on) and runs them
again every interval; each check touching a re-run probe is evaluated again. When all pass, or at the
deadline, the run proceeds as any run: each check is reported once, on its last probe results, and
its record says how many attempts it took and when it was first seen passing (``attempts``,
``green_at``, ``green_after_s`` in ``summary.json``).

Ctrl-C ends a wait at once: every check is then reported with its last outcome and the run exits 2
(interrupted). ``-x`` / ``--maxfail`` act on the report as in any run: it stops at the first check
that is still not passing when the wait ends.

Example::

    pytest -m smoke --env staging --until-pass 5m --interval 10s

The same quiet evaluation and re-probing serve the analysis windows (:mod:`opsverify.analysis`).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pytest

from opsverify.durations import human_duration, parse_duration
from opsverify.results import utc_now

if TYPE_CHECKING:
    from opsverify.engine import ProbeKey
    from opsverify.session import OvSession

DEFAULT_INTERVAL_S = 10.0
SHOWN = 5  # checks named in a progress line


@dataclass(frozen=True)
class WaitPlan:
    """``--until-pass``: how long to wait at most and how often to re-probe."""

    deadline_s: float
    interval_s: float


@dataclass
class Seen:
    """What one quiet evaluation of a check saw."""

    outcome: str
    message: str
    measured: list[dict[str, Any]]
    warnings: list[str]


@dataclass
class Track:
    """A check's progress through a wait (kept in its stash, read into its record)."""

    attempts: int = 0
    outcome: str = "passed"
    message: str = ""
    green_at: str | None = None
    green_after_s: float | None = None


WAIT_PLAN_KEY = pytest.StashKey[WaitPlan]()
TRACK_KEY = pytest.StashKey[Track]()
RUN_KEY = pytest.StashKey[dict[str, Any]]()
SECTIONS_KEY = pytest.StashKey[int]()  # report sections (captured output) of a check's quiet evaluations


# -- options --------------------------------------------------------------------------------------
def add_options(group: Any) -> None:
    """The wait and window options (``pytest --help``, group opsverify)."""
    group.addoption("--until-pass", default=None, metavar="DURATION",
                    help="re-probe the checks that did not pass every --interval until all pass or DURATION "
                    "(5m, 90s) has passed; skipped checks do not wait")
    group.addoption("--interval", default=None, metavar="DURATION",
                    help=f"time between attempts of --until-pass, or between the samples of --samples "
                    f"(default {DEFAULT_INTERVAL_S:g}s, or the environment's analysis.interval_s)")
    group.addoption("--samples", type=int, default=None, metavar="N",
                    help="judge every read-only check on N samples taken --interval apart (an analysis "
                    "window; the environment's analysis: block sets its failure limits)")


def duration_option(config: pytest.Config, name: str) -> float | None:
    """The option ``--name`` as seconds, or ``None`` when it is not given; a bad value is a usage error."""
    value = config.getoption(name.replace("-", "_"))
    if value is None:
        return None
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise pytest.UsageError(f"--{name}: {exc}") from None


def configure(config: pytest.Config) -> None:
    """Validate ``--until-pass`` / ``--interval`` and remember the plan (a usage error names the option)."""
    until = duration_option(config, "until-pass")
    interval = duration_option(config, "interval")
    if until is None:
        return
    if config.getoption("samples") is not None:
        raise pytest.UsageError("--until-pass and --samples cannot be combined: wait for health first, then judge a window")
    step = interval if interval is not None else min(DEFAULT_INTERVAL_S, until)
    if step > until:
        raise pytest.UsageError(f"--interval {human_duration(step)} is longer than --until-pass {human_duration(until)}")
    config.stash[WAIT_PLAN_KEY] = WaitPlan(until, step)


# -- quiet evaluation and re-probing -------------------------------------------------------------------
@contextmanager
def _without_allure(config: pytest.Config) -> Iterator[None]:
    """allure-pytest's listener unplugged meanwhile (it would open a result for every evaluation)."""
    manager = config.pluginmanager
    allure = manager.get_plugin("allure_listener")
    if allure is not None:
        manager.unregister(allure)
    try:
        yield
    finally:
        if allure is not None:
            manager.register(allure, "allure_listener")


def _fresh_request(item: pytest.Item) -> None:
    """Give ``item`` a new fixture request, as pytest's run protocol does before running an item again.

    pytest has no public call for it (its own protocol and pytest-rerunfailures call the item's
    ``_initrequest``); without it the item's next set-up finds the fixtures it resolved before, torn down.
    """
    initrequest = getattr(item, "_initrequest", None)
    if callable(initrequest):
        initrequest()


def _quiet_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> list[pytest.TestReport]:
    """Set ``item`` up, run it and tear it down through pytest's hooks, making its reports without
    logging them (no terminal line, no JUnit, no record), as pytest's own run protocol does otherwise:
    ``-x``, Ctrl-C and ``pytest.exit`` act as they would there."""
    hook = item.ihook
    reraise: tuple[type[BaseException], ...] = (pytest.exit.Exception,)
    if not item.config.getoption("usepdb", False):
        reraise += (KeyboardInterrupt,)
    _fresh_request(item)  # the fixtures of the evaluation before are torn down: ask for them again
    reports: list[pytest.TestReport] = []

    def phase(when: Literal["setup", "call", "teardown"], run: Callable[[], object]) -> pytest.TestReport:
        call = pytest.CallInfo.from_call(run, when=when, reraise=reraise)
        report: pytest.TestReport = hook.pytest_runtest_makereport(item=item, call=call)
        reports.append(report)
        return report

    if phase("setup", lambda: hook.pytest_runtest_setup(item=item)).passed:
        phase("call", lambda: hook.pytest_runtest_call(item=item))
    if item.session.shouldfail or item.session.shouldstop:
        nextitem = None
    phase("teardown", lambda: hook.pytest_runtest_teardown(item=item, nextitem=nextitem))
    _fresh_request(item)  # so the reported run sets every fixture up afresh
    return reports


def evaluate(item: pytest.Item, nextitem: pytest.Item | None) -> Seen:
    """Run ``item`` (set-up, body, tear-down) without reporting it; say what it saw.

    Allure's listener is unplugged meanwhile; the check's notes are cleared after and its captured
    output left out of its reports (:func:`reported_sections`), so the reported run starts clean.
    """
    from opsverify.plugin.state import NOTES_KEY, PROP, notes_of

    if NOTES_KEY in item.stash:
        del item.stash[NOTES_KEY]
    with _without_allure(item.config):
        reports = _quiet_protocol(item, nextitem)
    notes = notes_of(item)
    seen = Seen("passed", "", list(notes.measured), list(notes.warnings))
    for report in reports:
        blob = next((json.loads(str(v)) for k, v in report.user_properties if k == PROP), None)
        kind = blob["kind"] if blob else ("skipped" if report.skipped else "error" if report.failed else "passed")
        if kind != "passed" and seen.outcome == "passed":
            seen.outcome, seen.message = kind, (blob or {}).get("message", "") or kind
    del item.stash[NOTES_KEY]
    # its reports hold the sections added since the evaluation before (see reported_sections)
    item.stash[SECTIONS_KEY] = item.stash.get(SECTIONS_KEY, 0) + max((len(r.sections) for r in reports), default=0)
    return seen


def reported_sections(item: pytest.Item, sections: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The report sections (captured output) of the reported run of ``item``, without those its quiet
    evaluations left behind (pytest gathers every section an item ever added into each of its reports)."""
    return sections[item.stash.get(SECTIONS_KEY, 0):]


def evaluate_all(batch: list[pytest.Item], anchor: pytest.Item | None) -> dict[str, Seen]:
    """Evaluate ``batch`` in order; fixtures are torn down as if ``anchor`` ran next."""
    seen: dict[str, Seen] = {}
    for index, item in enumerate(batch):
        nextitem = batch[index + 1] if index + 1 < len(batch) else anchor
        if nextitem is item:  # its own fixtures must go too, or its next set-up finds them half-kept
            nextitem = None
        seen[item.nodeid] = evaluate(item, nextitem)
    return seen


def reprobe(ovs: OvSession, keys: set[ProbeKey]) -> set[ProbeKey]:
    """Run the probes of ``keys`` again (and those they depended on); returns every key re-run."""
    gone = ovs.engine.forget(keys)
    futures = [ovs.engine.submit(key, ovs._request_for_key(key)) for key in sorted(keys)]
    concurrent.futures.wait(futures)
    return gone | keys


def teardown_all(session: pytest.Session) -> None:
    """Tear every fixture down (after an interrupted evaluation, so the reported run can set up afresh)."""
    if not session.items:
        return
    item = session.items[-1]
    try:
        with _without_allure(session.config):
            item.ihook.pytest_runtest_teardown(item=item, nextitem=None)
    except Exception:  # noqa: BLE001 - a fixture's own tear-down error is reported by its next run
        pass


def checks_of(items: list[pytest.Item]) -> list[pytest.Item]:
    """The opsverify checks among ``items`` that will run (not skipped by a marker)."""
    from opsverify.session import _statically_skipped

    return [i for i in items if "ov_case" in getattr(i, "fixturenames", ()) and not _statically_skipped(i)]


def progress(config: pytest.Config, text: str) -> None:
    """One progress line on the console (none under xdist workers, whose output nobody sees)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"opsverify: {text}")


def _named(items: list[pytest.Item], tracks: dict[str, Track]) -> str:
    shown = [f"{i.name} ({tracks[i.nodeid].outcome})" for i in items[:SHOWN]]
    more = f", and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(shown) + more


# -- the wait --------------------------------------------------------------------------------------------
def wait_until_pass(session: pytest.Session, items: list[pytest.Item], anchor: pytest.Item | None,
                    plan: WaitPlan, started: float) -> bool:
    """Evaluate and re-probe ``items`` until all pass or the deadline; returns whether Ctrl-C ended it."""
    from opsverify.plugin.state import ov

    config = session.config
    ovs = ov(config)
    checks = checks_of(items)
    tracks = {i.nodeid: Track() for i in checks}
    for item in checks:
        item.stash[TRACK_KEY] = tracks[item.nodeid]
    keys = {i.nodeid: set(ovs.item_probe_keys(i)) for i in checks}
    deadline = started + plan.deadline_s
    attempt, interrupted = 0, False
    batch = checks
    try:
        while True:
            attempt += 1
            for nodeid, seen in evaluate_all(batch, anchor).items():
                _note(tracks[nodeid], seen, started)
            pending = [i for i in checks if tracks[i.nodeid].outcome in ("failed", "error")]
            left = deadline - time.monotonic()
            next_at = started + attempt * plan.interval_s
            if not pending or next_at >= deadline or session.shouldstop or session.shouldfail:
                break
            progress(config, f"waiting for {len(pending)} of {len(checks)} checks to pass — attempt {attempt} "
                     f"done, next in {human_duration(max(0.0, next_at - time.monotonic()))}, "
                     f"{human_duration(max(0.0, left))} left: {_named(pending, tracks)}")
            time.sleep(max(0.0, next_at - time.monotonic()))
            rerun = reprobe(ovs, {k for i in pending for k in keys[i.nodeid]})
            batch = [i for i in checks if i in pending or keys[i.nodeid] & rerun]
    except KeyboardInterrupt:
        interrupted = True
        teardown_all(session)
    pending = [i for i in checks if tracks[i.nodeid].outcome in ("failed", "error")]
    waited = time.monotonic() - started
    ended = "interrupted" if interrupted else "deadline" if pending else "all passed"
    if pending:
        progress(config, f"stopped waiting ({ended}) after {attempt} attempts over {human_duration(waited)}: "
                 f"{len(pending)} of {len(checks)} checks still not passing: {_named(pending, tracks)}")
    elif attempt > 1:
        progress(config, f"all {len(checks)} checks passed after {human_duration(waited)} ({attempt} attempts)")
    config.stash[RUN_KEY] = {"until_pass_s": plan.deadline_s, "interval_s": plan.interval_s, "attempts": attempt,
                             "waited_s": round(waited, 3), "ended": ended, "not_passing": len(pending)}
    return interrupted


def _note(track: Track, seen: Seen, started: float) -> None:
    if seen.outcome == "passed" and track.green_at is not None:
        return  # re-evaluated only because a probe it shares was re-run: still green, no new attempt
    track.attempts += 1
    track.outcome, track.message = seen.outcome, seen.message
    if seen.outcome == "passed":
        if track.green_at is None:
            track.green_at = utc_now()
            track.green_after_s = round(time.monotonic() - started, 3)
    else:
        track.green_at = track.green_after_s = None


def record_fields(item: pytest.Item) -> dict[str, Any]:
    """What a check's record says about its wait (``attempts``, ``green_at``, ``green_after_s``)."""
    track = item.stash.get(TRACK_KEY, None)
    if track is None:
        return {}
    return {"attempts": track.attempts, "green_at": track.green_at, "green_after_s": track.green_after_s}


def run_summary(config: pytest.Config, records: list[Any], exit_status: int) -> dict[str, Any] | None:
    """The run's ``wait`` in ``summary.json``, or ``None`` without one.

    Under xdist the waits run on the workers: the controller tells the same from the plan and the
    records (``on_workers``); ``waited_s`` is then the latest green time, or the deadline.
    """
    found = config.stash.get(RUN_KEY, None)
    plan = config.stash.get(WAIT_PLAN_KEY, None)
    if found is not None or plan is None:
        return found
    pending = [r for r in records if r.outcome in ("failed", "error")]
    ended = "interrupted" if exit_status == 2 else "deadline" if pending else "all passed"
    greens = [r.green_after_s for r in records if r.green_after_s is not None]
    waited = plan.deadline_s if pending or not greens else max(greens)
    return {"until_pass_s": plan.deadline_s, "interval_s": plan.interval_s,
            "attempts": max((r.attempts for r in records), default=0), "waited_s": round(waited, 3),
            "ended": ended, "not_passing": len(pending), "on_workers": True}
