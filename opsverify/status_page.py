"""What the status page shows, read from a run history (``--history`` SQLite file).

Per environment and system, each target's state in its latest run and since when it has been in
that state, its uptime over 24 h and 7 d, and the series of what its checks measured (days to
expiry, lag, latency), failures first::

    with history.connect(Path("reports/history.sqlite")) as conn:
        page = status_of(conn)
    page.environments[0].systems[0].targets[0].state     # "failing"

A *target* is one (environment, system, target, item) of the history. Its state in a run is the
worst outcome of its checks in that run: ``failing`` (a check failed: the system is not as
expected), else ``unverified`` (a check could not see it), else ``healthy``; a run where all of its
checks were skipped does not count. Uptime is the share of the window's counted runs in which it
was healthy: a run where it could not be verified counts against it (the page cannot vouch for
it); no run in the window is no figure at all, not 100 %. The page itself is drawn by
:mod:`opsverify.writers.status_html`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

STATES = ("failing", "unverified", "healthy")  # worst first: the page's order
_RANK = {"failing": 0, "unverified": 1, "healthy": 2}
_STATE_OF = {"failed": "failing", "error": "unverified", "passed": "healthy"}
SERIES_POINTS = 120  # the newest measured values a sparkline draws


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_at(at: str) -> datetime:
    """A history time (``2026-12-02T08:01:17.123456Z``) as an aware UTC datetime."""
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass
class Uptime:
    """The share of counted runs in a window in which the target was healthy."""

    hours: float
    healthy: int = 0
    runs: int = 0

    @property
    def percent(self) -> float | None:
        """``None`` when no run of the window counted (no evidence, no figure)."""
        return 100.0 * self.healthy / self.runs if self.runs else None


@dataclass
class Problem:
    """A check of the target that failed or could not verify in the latest run."""

    check: str
    outcome: str
    message: str


@dataclass
class Series:
    """What one check measured on the target over the last 7 d, oldest first."""

    check: str
    unit: str
    points: list[tuple[str, float]] = field(default_factory=list)  # (at, value)

    @property
    def last(self) -> float:
        return self.points[-1][1]


@dataclass
class TargetStatus:
    """One target's state now, since when, uptime and measured series."""

    env: str
    system: str
    name: str
    state: str
    since: str  # first run of the current streak (UTC history time)
    streak: int  # runs in the current streak
    last_run: str
    last_healthy: str | None
    uptime_24h: Uptime
    uptime_7d: Uptime
    problems: list[Problem] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)


@dataclass
class SystemStatus:
    name: str
    targets: list[TargetStatus]

    @property
    def worst(self) -> str:
        return min((t.state for t in self.targets), key=_RANK.__getitem__, default="healthy")


@dataclass
class EnvironmentStatus:
    name: str
    systems: list[SystemStatus]

    @property
    def worst(self) -> str:
        return min((s.worst for s in self.systems), key=_RANK.__getitem__, default="healthy")


@dataclass
class StatusPage:
    """Everything the page shows; ``counts`` is targets per state."""

    generated_at: str
    last_run: str | None
    runs: int
    environments: list[EnvironmentStatus]

    @property
    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(STATES, 0)
        for env in self.environments:
            for system in env.systems:
                for target in system.targets:
                    found[target.state] += 1
        return found


Key = tuple[str, str, str, str]  # env, system, target, item


def _name(target: str | None, item: str | None) -> str:
    return "/".join(part for part in (target, item) if part) or "(no target)"


def _run_states(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(at, outcome)`` rows of one target -> ``(at, state)`` per run, oldest first."""
    worst: dict[str, str] = {}
    for at, outcome in rows:
        state = _STATE_OF.get(outcome)
        if state is not None and (at not in worst or _RANK[state] < _RANK[worst[at]]):
            worst[at] = state
    return sorted(worst.items())


def _streak_start(conn: sqlite3.Connection, key: Key, runs: list[tuple[str, str]]) -> tuple[str, int, str | None]:
    """Start of the newest run's streak, its length, and the last healthy run before or in it.

    ``runs`` are the window's; when the streak reaches back to the window's start, the older
    history of this target is read as well.
    """
    state = runs[-1][1]
    index = len(runs) - 1
    while index > 0 and runs[index - 1][1] == state:
        index -= 1
    since, streak = runs[index][0], len(runs) - index
    healthy = [at for at, s in runs if s == "healthy"]
    last_healthy = healthy[-1] if healthy else None
    if index == 0:
        env, system, target, item = key
        older = _run_states(conn.execute(
            "SELECT at, outcome FROM checks WHERE at < ? AND IFNULL(env, '') = ? AND IFNULL(system, '') = ? "
            "AND IFNULL(target, '') = ? AND IFNULL(item, '') = ?", (since, env, system, target, item)).fetchall())
        for at, older_state in reversed(older):
            if older_state != state:
                if last_healthy is None and older_state == "healthy":
                    last_healthy = at
                break
            since, streak = at, streak + 1
        if last_healthy is None:
            last_healthy = next((at for at, s in reversed(older) if s == "healthy"), None)
    return since, streak, last_healthy


def status_of(conn: sqlite3.Connection, now: datetime | None = None) -> StatusPage:
    """The status page's content from an open history connection (``history.connect``)."""
    moment = now or datetime.now(UTC)
    week, day = _stamp(moment - timedelta(days=7)), _stamp(moment - timedelta(hours=24))
    rows = conn.execute(
        "SELECT at, IFNULL(env, ''), IFNULL(system, ''), IFNULL(target, ''), IFNULL(item, ''), check_name, "
        "outcome, message, value, unit FROM checks WHERE at >= ? ORDER BY at", (week,)).fetchall()
    by_key: dict[Key, list[tuple[str, str, str, str, float | None, str | None]]] = defaultdict(list)
    for at, env, system, target, item, check, outcome, message, value, unit in rows:
        by_key[(env, system, target, item)].append((at, check, outcome, message, value, unit))
    targets: list[TargetStatus] = []
    for key, seen in by_key.items():
        runs = _run_states([(at, outcome) for at, _, outcome, *_ in seen])
        if not runs:
            continue  # every check skipped in the window: nothing to show
        since, streak, last_healthy = _streak_start(conn, key, runs)
        last_at = runs[-1][0]
        uptime_24h, uptime_7d = Uptime(24), Uptime(24 * 7)
        for at, state in runs:
            for window, start in ((uptime_24h, day), (uptime_7d, week)):
                if at >= start:
                    window.runs += 1
                    window.healthy += state == "healthy"
        problems = [Problem(check, outcome, message) for at, check, outcome, message, *_ in seen
                    if at == last_at and outcome in ("failed", "error")]
        series: dict[tuple[str, str], Series] = {}
        for at, check, outcome, _, value, unit in seen:
            if value is not None and outcome != "skipped":
                line = series.setdefault((check, unit or ""), Series(check, unit or ""))
                line.points.append((at, float(value)))
        for line in series.values():
            del line.points[:-SERIES_POINTS]
        env, system, target, item = key
        targets.append(TargetStatus(env, system, _name(target, item), runs[-1][1], since, streak, last_at,
                                    last_healthy, uptime_24h, uptime_7d,
                                    sorted(problems, key=lambda p: (p.outcome != "failed", p.check)),
                                    sorted(series.values(), key=lambda s: s.check)))
    environments: dict[str, dict[str, list[TargetStatus]]] = defaultdict(lambda: defaultdict(list))
    for status in targets:
        environments[status.env][status.system].append(status)
    envs = [EnvironmentStatus(env or "(no environment)", [
        SystemStatus(system or "(no system)", sorted(found, key=lambda t: (_RANK[t.state], t.name)))
        for system, found in systems.items()]) for env, systems in environments.items()]
    for env_status in envs:
        env_status.systems.sort(key=lambda s: (_RANK[s.worst], s.name))
    envs.sort(key=lambda e: (_RANK[e.worst], e.name))
    last_run, runs_count = conn.execute("SELECT MAX(finished_at), COUNT(*) FROM runs").fetchone()
    return StatusPage(_stamp(moment), last_run, int(runs_count), envs)
