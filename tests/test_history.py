"""Run history in SQLite: real runs of the HTTP checks append to one file; ``opsverify history``
answers since when a check fails, which ones flap, and one check's measured series."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT, SuiteRun, run_checks

STATUS = "test_endpoint_returns_expected_status"
LATENCY = "test_endpoint_answers_within_latency_budget"


def _run(tmp: Path, history: Path, urls: dict[str, str], *extra: str) -> SuiteRun:
    env = {"http": [{"name": name, "url": url} for name, url in urls.items()]}
    run = run_checks(tmp, env, f"--history={history}", "-k", f"{STATUS} or {LATENCY}", *extra,
                     paths=["checks/test_http.py"])
    assert run.summary is not None, run.stdout + run.stderr
    return run


def _history(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsverify", "history", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def recorded(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SuiteRun]]:
    """Four runs: `api` passes, then fails twice; `flappy` passes, fails, passes, fails; `steady` passes."""
    ok, bad = demo.url("/healthz"), demo.url("/status/500")
    plan = [{"api": ok, "flappy": ok, "steady": ok}, {"api": bad, "flappy": bad, "steady": ok},
            {"api": bad, "flappy": ok, "steady": ok}, {"api": bad, "flappy": bad, "steady": ok}]
    history = tmp_path_factory.mktemp("history") / "history.sqlite"
    runs = [_run(tmp_path_factory.mktemp(f"run{n}"), history, urls) for n, urls in enumerate(plan)]
    return history, runs


def test_the_file_is_wal_and_holds_every_record_of_every_run(recorded: tuple[Path, list[SuiteRun]]) -> None:
    history, runs = recorded
    with sqlite3.connect(history) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM checks").fetchone()[0] == sum(len(r.records) for r in runs)


def test_since_when_a_check_has_been_failing(recorded: tuple[Path, list[SuiteRun]]) -> None:
    history, runs = recorded
    proc = _history("--history", str(history), "--check", "api", "--wide")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(STATUS))
    since = runs[1].summary["run"]["finished_at"][:19].replace("T", " ")  # type: ignore[index]
    last_ok = runs[0].summary["run"]["finished_at"][:19].replace("T", " ")  # type: ignore[index]
    assert line.split()[1:3] == ["selftest-api", "failed"]
    assert since in line and last_ok in line and " 3 " in line  # failing for 3 runs
    assert "got HTTP 500" in line
    assert "selftest-steady" not in proc.stdout and proc.stdout.rstrip().endswith("1 failing now")


def test_flaps_in_the_last_24_hours(recorded: tuple[Path, list[SuiteRun]]) -> None:
    history, _ = recorded
    proc = _history("--history", str(history), "--flaps", "--wide")
    assert proc.returncode == 0, proc.stderr
    flapping = [ln for ln in proc.stdout.splitlines() if ln.startswith(STATUS)]
    assert len(flapping) == 1 and "selftest-flappy" in flapping[0], proc.stdout
    assert " 3 " in flapping[0] and "passed → failed → passed → failed" in flapping[0]


def test_the_measured_series_of_one_check(recorded: tuple[Path, list[SuiteRun]]) -> None:
    history, runs = recorded
    proc = _history("--history", str(history), "--series", LATENCY, "--target", "steady")
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines() if "selftest-steady" in ln]
    expected = [r.record(LATENCY, "steady")["measured"][0]["value"] for r in runs]
    assert [float(row[4]) for row in rows] == pytest.approx(expected, rel=1e-3)
    assert all(row[3] == "passed" and row[5] == "ms" for row in rows)


def test_retention_drops_runs_older_than_keep_days(demo: Any, tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _run(tmp_path / "a", history, {"api": demo.url("/healthz")})
    with sqlite3.connect(history) as conn:  # age the first run by ten days
        conn.execute("UPDATE runs SET finished_at = '2000-01-01T00:00:00.000000Z'")
        conn.execute("UPDATE checks SET at = '2000-01-01T00:00:00.000000Z'")
    _run(tmp_path / "b", history, {"api": demo.url("/healthz")}, "--history-keep-days=7")
    with sqlite3.connect(history) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert conn.execute("SELECT MIN(at) FROM checks").fetchone()[0] > "2000-01-02"


@pytest.mark.parametrize("days", ["-5", "0", "nan", "inf", "1e300", "soon"])
def test_a_bad_keep_days_is_a_usage_error_and_the_history_is_untouched(demo: Any, tmp_path: Path, days: str) -> None:
    history = tmp_path / "history.sqlite"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _run(tmp_path / "a", history, {"api": demo.url("/healthz")})
    before = history.read_bytes()
    run = run_checks(tmp_path / "b", {"http": [{"name": "api", "url": demo.url("/healthz")}]},
                     f"--history={history}", f"--history-keep-days={days}")
    assert run.ret == 4, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "--history-keep-days" in run.stderr and repr(days) in run.stderr
    with sqlite3.connect(history) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    assert history.read_bytes() == before


def test_a_missing_history_file_is_one_line(tmp_path: Path) -> None:
    proc = _history("--history", str(tmp_path / "none.sqlite"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"opsverify history: {tmp_path / 'none.sqlite'}: no history file "
                                   f"(a run writes it with --history {tmp_path / 'none.sqlite'})")


def test_the_narrow_table_fits_100_columns_and_keeps_brackets(recorded: tuple[Path, list[SuiteRun]]) -> None:
    history, _ = recorded
    proc = _history("--history", str(history))
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 100
    assert "[selftest-api]" in proc.stdout and "[selftest-flappy]" in proc.stdout  # text, not rich markup
