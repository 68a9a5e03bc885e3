"""Analysis windows: judge each read-only check on N samples instead of one snapshot.

``--samples N --interval S`` (or an environment's ``analysis:`` block, :mod:`opsverify.config.analysis`)
runs every selected read-only probe N times, S apart. After each round every read-only check is
evaluated quietly (:func:`opsverify.waiting.evaluate`); at the end each is reported once, with the
window's verdict, which follows Argo Rollouts' AnalysisRun:

- **failed** when more than ``failure_limit`` samples failed (default 0: any failed sample fails it);
- else **error** when ``consecutive_error_limit`` samples in a row errored (default 4), or when no
  sample saw the system at all (Argo would call such a window successful; a gate must not);
- else **passed** (a failed or errored sample within the limits is kept in the record, not hidden).

A ``trend`` check (:mod:`opsverify.trends`) judges its whole series in every sample: its window's
verdict is its last sample's. ``-x`` / ``--maxfail N`` end the window after the sample in which N
checks failed past their ``failure_limit`` (no later sample could change that); Ctrl-C ends it at
once, each check judged on the samples taken.

Mutating and disruptive checks run once, as in any run, and so do the probes they share. Each
record keeps the window (``window`` in ``summary.json``: samples, interval, limits, span, and every
sample's outcome, message and values); ``measured`` holds every sample's values, tagged with
``sample`` and ``outcome``.

Example::

    pytest -m smoke --env staging --samples 5 --interval 30s
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from opsverify.config.base import Safety
from opsverify.durations import human_duration
from opsverify.errors import CheckFailed, WindowErrored
from opsverify.results import utc_now
from opsverify.waiting import DEFAULT_INTERVAL_S, Seen, checks_of, duration_option, evaluate_all, progress, \
    reprobe, teardown_all

DEFAULT_FAILURE_LIMIT = 0
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4


@dataclass(frozen=True)
class WindowPlan:
    """One schedule for the whole run: how many samples, how far apart, for which environments."""

    samples: int
    interval_s: float
    envs: tuple[str, ...]


@dataclass
class Window:
    """One check's samples and the verdict on them."""

    interval_s: float
    planned: int
    failure_limit: int
    consecutive_error_limit: int
    trend: bool = False  # judged on its series as a whole: the last sample's verdict is the window's
    taken: list[tuple[int, str, float, Seen]] = field(default_factory=list)  # (sample, UTC time, monotonic, seen)
    verdict: str = "passed"
    reason: str = ""

    def judge(self) -> None:
        """Set ``verdict`` and ``reason`` from the samples taken (AnalysisRun semantics, see the module)."""
        outcomes = [seen.outcome for _, _, _, seen in self.taken]
        failed = [s for s in self.taken if s[3].outcome == "failed"]
        run = longest = 0
        for outcome in outcomes:
            run = run + 1 if outcome == "error" else 0
            longest = max(longest, run)
        errors = [s for s in self.taken if s[3].outcome == "error"]
        if self.trend and self.taken:
            last = self.taken[-1][3]
            self.verdict = last.outcome
            self.reason = last.message if last.outcome == "skipped" else \
                f"judged on the trend of {len(outcomes)} samples — {_first(self.taken[-1:])}"
        elif len(failed) > self.failure_limit:
            self.verdict = "failed"
            self.reason = (f"{len(failed)} of {len(outcomes)} samples failed, more than failure_limit "
                           f"{self.failure_limit} — {_first(failed)}")
        elif longest >= self.consecutive_error_limit:
            self.verdict = "error"
            self.reason = (f"{longest} samples in a row could not see the system (consecutive_error_limit "
                           f"{self.consecutive_error_limit}) — {_first(errors)}")
        elif "passed" not in outcomes and errors:
            self.verdict = "error"
            self.reason = f"no sample of {len(outcomes)} saw the system — {_first(errors)}"
        elif outcomes and all(o == "skipped" for o in outcomes):
            self.verdict, self.reason = "skipped", self.taken[-1][3].message
        else:
            self.verdict, self.reason = "passed", ""

    def settled_failed(self) -> bool:
        """Whether more samples cannot change a failed verdict (more than ``failure_limit`` failed already)."""
        failed = sum(1 for s in self.taken if s[3].outcome == "failed")
        return not self.trend and failed > self.failure_limit

    def measured(self) -> list[dict[str, Any]]:
        """Every sample's values, each tagged with its sample number and outcome."""
        return [{**m, "sample": n, "outcome": seen.outcome} for n, _, _, seen in self.taken for m in seen.measured]

    def to_dict(self) -> dict[str, Any]:
        """The ``window`` of the check's record."""
        counts = {o: sum(1 for s in self.taken if s[3].outcome == o) for o in ("passed", "failed", "error", "skipped")}
        span = self.taken[-1][2] - self.taken[0][2] if self.taken else 0.0
        return {
            "samples": len(self.taken), "planned": self.planned, "interval_s": self.interval_s,
            "failure_limit": self.failure_limit, "consecutive_error_limit": self.consecutive_error_limit,
            "window_s": round(span, 3), "started_at": self.taken[0][1] if self.taken else None,
            "finished_at": self.taken[-1][1] if self.taken else None, "counts": counts,
            "verdict": self.verdict,
            "outcomes": [{"sample": n, "at": at, "outcome": seen.outcome, "message": seen.message,
                          "values": {m["name"]: m["value"] for m in seen.measured}}
                         for n, at, _, seen in self.taken],
        }


def _first(samples: list[tuple[int, str, float, Seen]]) -> str:
    number, _, _, seen = samples[0]
    text = seen.message
    head, sep, rest = text.partition(": ")
    if sep and "-" in head and " " not in head:  # drop the leading "env-target: " (the label says it)
        text = rest
    return f"sample {number}: {text}"


PLAN_KEY = pytest.StashKey[WindowPlan]()
WINDOW_KEY = pytest.StashKey[Window]()
RUN_KEY = pytest.StashKey[dict[str, Any]]()


# -- configuration ---------------------------------------------------------------------------------------
def configure(config: pytest.Config, environments: dict[str, Any]) -> None:
    """Decide the run's window from ``--samples``/``--interval`` and the environments' ``analysis:``."""
    from opsverify.config.analysis import MAX_SAMPLES
    from opsverify.waiting import WAIT_PLAN_KEY

    cli_samples = config.getoption("samples")
    cli_interval = duration_option(config, "interval")
    if cli_samples is not None and not 1 <= cli_samples <= MAX_SAMPLES:
        raise pytest.UsageError(f"--samples must be between 1 and {MAX_SAMPLES}, got {cli_samples}")
    if WAIT_PLAN_KEY in config.stash:
        return  # --until-pass waits on single checks; the environments' windows do not apply
    schedules: dict[tuple[int, float], list[str]] = {}
    for env in environments.values():
        analysis = env.analysis
        samples = cli_samples or (analysis.samples if analysis else 1)
        interval = cli_interval or (analysis.interval_s if analysis else DEFAULT_INTERVAL_S)
        if samples > 1:
            schedules.setdefault((samples, interval), []).append(env.name)
    if cli_interval is not None and not schedules and cli_samples is None:
        raise pytest.UsageError("--interval needs --until-pass or --samples (or an analysis: block with samples > 1)")
    if len(schedules) > 1:
        shown = "; ".join(f"{', '.join(names)}: {n} samples every {human_duration(s)}"
                          for (n, s), names in schedules.items())
        raise pytest.UsageError(f"the environments ask for different analysis windows ({shown}): run them "
                                "separately, or give one with --samples and --interval")
    if schedules:
        (samples, interval), names = next(iter(schedules.items()))
        config.stash[PLAN_KEY] = WindowPlan(samples, interval, tuple(names))
        config.pluginmanager.register(WindowVerdicts(), "opsverify-window-verdicts")


def _limits(env: Any) -> tuple[int, int]:
    analysis = env.analysis
    if analysis is None:
        return DEFAULT_FAILURE_LIMIT, DEFAULT_CONSECUTIVE_ERROR_LIMIT
    return analysis.failure_limit, analysis.consecutive_error_limit


# -- the window ---------------------------------------------------------------------------------------------
def run_window(session: pytest.Session, items: list[pytest.Item], anchor: pytest.Item | None,
               plan: WindowPlan, started: float) -> bool:
    """Take the window's samples of every read-only check of ``items``; returns whether Ctrl-C ended it."""
    from opsverify.plugin import ov
    from opsverify.session import case_of

    config = session.config
    ovs = ov(config)
    windowed: list[pytest.Item] = []
    others: list[pytest.Item] = []
    for item in checks_of(items):
        case = case_of(item)
        chosen = case is not None and case.env in plan.envs and ovs.safety_of(item, case) == Safety.read_only
        (windowed if chosen else others).append(item)
    keys = {k for i in windowed for k in ovs.item_probe_keys(i)} - {k for i in others for k in ovs.item_probe_keys(i)}
    windows: dict[str, Window] = {}
    for item in windowed:
        case = case_of(item)
        assert case is not None
        failure_limit, error_limit = _limits(ovs.environments[case.env])
        windows[item.nodeid] = Window(plan.interval_s, plan.samples, failure_limit, error_limit,
                                      trend=item.get_closest_marker("trend") is not None)
    interrupted = stopped = False
    maxfail = int(config.getoption("maxfail", 0) or 0)
    try:
        for number in range(1, plan.samples + 1):
            at, moment = utc_now(), started  # a sample's time is when its probes started
            if number > 1:
                time.sleep(max(0.0, started + (number - 1) * plan.interval_s - time.monotonic()))
                at, moment = utc_now(), time.monotonic()
                reprobe(ovs, keys)
            for nodeid, seen in evaluate_all(windowed, anchor).items():
                windows[nodeid].taken.append((number, at, moment, seen))
            bad = sum(1 for w in windows.values() if w.taken[-1][3].outcome in ("failed", "error"))
            left = f", next in {human_duration(max(0.0, started + number * plan.interval_s - time.monotonic()))}" \
                if number < plan.samples else ""
            progress(config, f"analysis window: sample {number} of {plan.samples} taken of {len(windowed)} "
                     f"read-only checks ({bad} not passing in this sample){left}")
            if session.shouldstop or session.shouldfail:
                break
            settled = sum(1 for w in windows.values() if w.settled_failed())
            if maxfail and settled >= maxfail and number < plan.samples:
                stopped = True
                progress(config, f"analysis window stopped after sample {number} of {plan.samples}: {settled} "
                         f"checks failed past their failure_limit, and -x/--maxfail {maxfail} ends the run there")
                break
    except KeyboardInterrupt:
        interrupted = True
        teardown_all(session)
    for item in windowed:  # from now on the check is reported with its window's verdict
        window = windows[item.nodeid]
        if window.taken:
            window.judge()
            item.stash[WINDOW_KEY] = window
    config.stash[RUN_KEY] = {"samples": plan.samples, "interval_s": plan.interval_s, "environments": list(plan.envs),
                             "checks": len(windowed), "run_once": len(others), "interrupted": interrupted,
                             "stopped_early": stopped}
    return interrupted


def wait_or_window(session: pytest.Session, items: list[pytest.Item], anchor: pytest.Item | None,
                   started: float) -> bool:
    """Run ``--until-pass`` or the analysis window over ``items``, if asked; whether Ctrl-C ended it."""
    from opsverify.waiting import WAIT_PLAN_KEY, wait_until_pass

    plan = session.config.stash.get(WAIT_PLAN_KEY, None)
    if plan is not None:
        return wait_until_pass(session, items, anchor, plan, started)
    window = session.config.stash.get(PLAN_KEY, None)
    if window is not None:
        return run_window(session, items, anchor, window, started)
    return False


def judged(item: pytest.Item) -> bool:
    """Whether ``item`` is reported with a window's verdict (its probe fixtures then wait for nothing)."""
    return WINDOW_KEY in item.stash


def record_fields(item: pytest.Item) -> dict[str, Any]:
    """The ``window`` of the check's record, or nothing."""
    window = item.stash.get(WINDOW_KEY, None)
    return {"window": window.to_dict()} if window is not None else {}


class WindowVerdicts:
    """Reports a windowed check with its window's verdict instead of running its body again."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Fail, error, skip or pass the check as its window says; its values come from every sample."""
        from opsverify.plugin import notes_of
        from opsverify.session import case_of

        window = pyfuncitem.stash.get(WINDOW_KEY, None)
        if window is None:
            return None
        notes = notes_of(pyfuncitem)
        notes.measured[:] = window.measured()
        notes.warnings[:] = list(window.taken[-1][3].warnings)
        case = case_of(pyfuncitem)
        label = case.id if case is not None else pyfuncitem.name
        if window.verdict == "failed":
            raise CheckFailed(f"{label}: {window.reason}", target=label)
        if window.verdict == "error":
            raise WindowErrored(f"{label}: {window.reason}")
        if window.verdict == "skipped":
            pytest.skip(window.reason)
        return True


def run_summary(config: pytest.Config, records: list[Any], exit_status: int) -> dict[str, Any] | None:
    """The run's ``analysis`` in ``summary.json``: what the window did, or ``None`` without one.

    Under xdist the windows are taken on the workers: the controller tells the same from the
    plan and the records (``on_workers``), with the interruption read from the exit status.
    """
    found = config.stash.get(RUN_KEY, None)
    plan = config.stash.get(PLAN_KEY, None)
    if found is not None or plan is None:
        return found
    windows = [r.window for r in records if r.window]
    interrupted = exit_status == 2
    return {"samples": plan.samples, "interval_s": plan.interval_s, "environments": list(plan.envs),
            "checks": len(windows), "run_once": len(records) - len(windows), "interrupted": interrupted,
            "stopped_early": not interrupted and any(w["samples"] < w["planned"] for w in windows),
            "on_workers": True}
