"""Run history in SQLite: every run's records appended to one file, queried over time.

    pytest -m smoke --env staging --history reports/history.sqlite [--history-keep-days 30]
    opsverify history --history reports/history.sqlite              what fails now, and since when
    opsverify history --history reports/history.sqlite --flaps      what changed outcome twice or more (24 h)
    opsverify history --history reports/history.sqlite --series test_lag --target staging-orders

The file is in WAL mode: one run writes (each run appends in one transaction) while any number of
readers query it; a second writer waits for the first (up to 30 s) instead of failing. Rows older
than ``--history-keep-days`` are deleted by the run that appends. Times are UTC ISO strings, which
sort as they compare. Messages pass through the redactor before they are stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsverify.config.secrets import REDACTOR
from opsverify.errors import HistoryError
from opsverify.results import CheckRecord, RunInfo

DEFAULT_KEEP_DAYS = 30.0
BAD = ("failed", "error")
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    environments TEXT NOT NULL, git_commit TEXT, opsverify_version TEXT
);
CREATE TABLE IF NOT EXISTS checks (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    at TEXT NOT NULL, nodeid TEXT NOT NULL, check_name TEXT NOT NULL, env TEXT, target TEXT,
    item TEXT, label TEXT NOT NULL, system TEXT, outcome TEXT NOT NULL, message TEXT NOT NULL,
    value REAL, unit TEXT, measured TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checks_by_node ON checks (nodeid, at);
CREATE INDEX IF NOT EXISTS checks_by_time ON checks (at);
"""


@contextmanager
def connect(path: Path, *, create: bool = False) -> Iterator[sqlite3.Connection]:
    """An open connection to the history at ``path`` (WAL mode; ``create`` makes the file)."""
    if not create and not path.exists():
        raise HistoryError(f"{path}: no history file (a run writes it with --history {path})")
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30)
    except (sqlite3.Error, OSError) as exc:
        raise HistoryError(f"{path}: cannot be opened ({exc})") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if create:
            conn.executescript(SCHEMA)
        yield conn
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path}: not a readable history ({exc})") from exc
    finally:
        conn.close()


def _label(record: CheckRecord) -> str:
    return "-".join(p for p in (record.env, record.target, record.item) if p) or "unconfigured"


def append(path: Path, run: RunInfo, records: list[CheckRecord], keep_days: float = DEFAULT_KEEP_DAYS,
           now: datetime | None = None) -> int:
    """Append one run's records (in one transaction) and drop what is older than ``keep_days``;
    returns how many rows were deleted by the retention."""
    at = run.finished_at
    rows = []
    for r in records:
        first = r.measured[0] if r.measured else {}
        rows.append((run.run_id, at, r.nodeid, r.check, r.env, r.target, r.item, _label(r), r.system,
                     r.outcome, REDACTOR.redact(r.message or ""), first.get("value"), first.get("unit"),
                     REDACTOR.redact(json.dumps(r.measured))))
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=keep_days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with connect(path, create=True) as conn, conn:
        conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                     (run.run_id, run.started_at, at, ",".join(run.environments), run.git_commit,
                      run.opsverify_version))
        conn.executemany("INSERT INTO checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("DELETE FROM checks WHERE at < ?", (cutoff,))
        return conn.execute("DELETE FROM runs WHERE finished_at < ?", (cutoff,)).rowcount


@dataclass
class Failing:
    """A check whose latest outcome is failed or error, and since when it has been so."""

    check: str
    label: str
    outcome: str
    since: str
    runs: int  # consecutive runs it has failed in
    last_passed: str | None
    message: str


def _matches(where: str | None) -> tuple[str, list[str]]:
    if not where:
        return "", []
    return " AND (check_name LIKE ? OR label LIKE ?)", [f"%{where}%", f"%{where}%"]


def failing(conn: sqlite3.Connection, where: str | None = None) -> list[Failing]:
    """Every check failing (or erroring) in its latest run, with the start of its current streak."""
    extra, params = _matches(where)
    latest = conn.execute(
        "SELECT nodeid, check_name, label, outcome, message, at FROM checks c WHERE at = "
        "(SELECT MAX(at) FROM checks WHERE nodeid = c.nodeid)" + extra + " ORDER BY check_name, label",
        params).fetchall()
    found = []
    for nodeid, check, label, outcome, message, _ in latest:
        if outcome not in BAD:
            continue
        last_ok = conn.execute("SELECT MAX(at) FROM checks WHERE nodeid = ? AND outcome NOT IN (?, ?)",
                               (nodeid, *BAD)).fetchone()[0]
        since, runs = conn.execute("SELECT MIN(at), COUNT(*) FROM checks WHERE nodeid = ? AND at > ?",
                                   (nodeid, last_ok or "")).fetchone()
        found.append(Failing(check, label, outcome, since, runs, last_ok, message))
    return found


@dataclass
class Flap:
    """A check whose outcome changed at least twice within the window."""

    check: str
    label: str
    changes: int
    outcomes: list[str]  # oldest first
    last: str


def flaps(conn: sqlite3.Connection, hours: float = 24, where: str | None = None,
          now: datetime | None = None) -> list[Flap]:
    """Checks that went from passing to failing and back (or the other way) within ``hours``."""
    start = ((now or datetime.now(UTC)) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    extra, params = _matches(where)
    rows = conn.execute("SELECT nodeid, check_name, label, outcome, at FROM checks WHERE at >= ? "
                        "AND outcome != 'skipped'" + extra + " ORDER BY nodeid, at", [start, *params]).fetchall()
    by_node: dict[str, list[Any]] = {}
    for row in rows:
        by_node.setdefault(row[0], []).append(row)
    found = []
    for seen in by_node.values():
        outcomes = [row[3] for row in seen]
        changes = sum(1 for a, b in zip(outcomes, outcomes[1:]) if (a in BAD) != (b in BAD))
        if changes >= 2:
            found.append(Flap(seen[0][1], seen[0][2], changes, outcomes, seen[-1][4]))
    return sorted(found, key=lambda f: (-f.changes, f.check, f.label))


def series(conn: sqlite3.Connection, check: str, target: str | None = None) -> list[tuple[str, str, str, Any, str]]:
    """``(at, label, outcome, value, unit)`` of one check over time, oldest first; ``target`` narrows
    it to labels containing that text."""
    sql = "SELECT at, label, outcome, value, unit FROM checks WHERE check_name = ?"
    params = [check]
    if target:
        sql += " AND label LIKE ?"
        params.append(f"%{target}%")
    return [tuple(row) for row in conn.execute(sql + " ORDER BY label, at", params)]  # type: ignore[misc]


# -- the pytest side: options and the append after each run -------------------------------------------
MAX_KEEP_DAYS = 36_500


def keep_days(text: str) -> float:
    """``--history-keep-days``: a finite number of days above 0 and at most 100 years (a negative, NaN or
    enormous value would delete the whole history, or fail, when the run appends)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not math.isfinite(value) or not 0 < value <= MAX_KEEP_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 and at most {MAX_KEEP_DAYS:,} days")
    return value


def add_options(group: Any) -> None:
    """``--history PATH`` and ``--history-keep-days DAYS`` in the plugin's option group."""
    group.addoption("--history", default=None, metavar="PATH",
                    help="append this run's results to a SQLite history file (read it with `opsverify history`)")
    group.addoption("--history-keep-days", type=keep_days, default=DEFAULT_KEEP_DAYS, metavar="DAYS",
                    help=f"drop history older than this when appending (default {DEFAULT_KEEP_DAYS:g})")


def after_run(config: Any, run: RunInfo, records: list[CheckRecord]) -> None:
    """Append the run to ``--history`` when given; a failure to write is said on the terminal, and
    does not change the run's outcome."""
    chosen = config.getoption("history", None)
    if not chosen:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    try:
        append(Path(chosen), run, records, float(config.getoption("history_keep_days")))
    except HistoryError as exc:
        if reporter is not None:
            reporter.write_line(f"opsverify: history not written: {exc}", red=True)
        return
