"""The status page (``opsverify status``), read in a real headless Chromium (Debian ``chromium``).

Three real runs of the HTTP checks against the demo service, with ``--history``: ``api`` is healthy,
then answers 500 twice; ``steady`` stays healthy. The page written from that history is loaded in
Chromium (in a network namespace of its own); the test reads what a person would see: the failing
target first, since when it fails and when it was last healthy, its uptime, the measured latency.
The page holds no script, so what Chromium draws is what any browser shows with JavaScript off; the
screenshot it takes is kept with ``OPSVERIFY_SCREENSHOTS=DIR`` (docs/images/status-page.png is one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from opsverify import history
from opsverify.results import CheckRecord, RunInfo, utc_now
from tests import browser
from tests.harness import ROOT, SuiteRun, run_checks

STATUS = "test_endpoint_returns_expected_status"
LATENCY = "test_endpoint_answers_within_latency_budget"
needs_chromium = pytest.mark.skipif(browser.chromium() is None, reason=browser.MISSING)


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsverify", "status", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def _when(at: str) -> str:
    return f"{at[:19].replace('T', ' ')} UTC"


class Rows(HTMLParser):
    """The page as a person reads it: each target row's cells (by class) in page order, the text
    of every element, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag in ("style", "title"):  # not drawn on the page (a tooltip at most)
            self._skip += 1
        if tag == "tr" and "data-target" in found:
            self.rows.append({"target": found["data-target"], "state": found["data-state"], "cells": {},
                              "points": []})
        elif self.rows and tag == "td":
            self._cell = []
            self.rows[-1]["cells"][found.get("class") or f"cell{len(self.rows[-1]['cells'])}"] = self._cell
        elif self.rows and tag == "polyline":
            self.rows[-1]["points"].append(str(found["points"]).split())
        elif tag == "br" and self._cell is not None:
            self._cell.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title") and self._skip:
            self._skip -= 1
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def cell(self, row: dict[str, Any], name: str) -> str:
        return " ".join("".join(row["cells"][name]).split())


def _read(dom: str) -> Rows:
    parsed = Rows()
    parsed.feed(dom)
    return parsed


@pytest.fixture(scope="module")
def recorded(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SuiteRun]]:
    ok, bad = demo.url("/healthz"), demo.url("/status/500")
    history_file = tmp_path_factory.mktemp("status-history") / "history.sqlite"
    runs = []
    for n, api in enumerate((ok, bad, bad)):
        env = {"http": [{"name": "api", "url": api}, {"name": "steady", "url": ok}]}
        run = run_checks(tmp_path_factory.mktemp(f"status-run{n}"), env, f"--history={history_file}", "-k",
                         f"{STATUS} or {LATENCY}", paths=["checks/test_http.py"])
        assert run.summary is not None, run.stdout + run.stderr
        runs.append(run)
    assert [r.outcome(STATUS, "api") for r in runs] == ["passed", "failed", "failed"]
    return history_file, runs


@pytest.fixture(scope="module")
def page(recorded: tuple[Path, list[SuiteRun]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("status-page") / "site"
    proc = _status("--history", str(recorded[0]), "--out", str(out), "--title", "selftest status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"status page written to {out / 'index.html'}"
    return out / "index.html"


@needs_chromium
def test_chromium_shows_the_failing_target_first_with_since_and_uptime(recorded, page):
    _, runs = recorded
    seen = _read(browser.dump_dom(page))
    assert [(r["target"], r["state"]) for r in seen.rows] == [("api", "failing"), ("steady", "healthy")]
    api, steady = seen.rows
    assert seen.cell(api, "state") == "failing" and seen.cell(steady, "state") == "healthy"
    since = seen.cell(api, "since")
    assert since.startswith(_when(runs[1].summary["run"]["finished_at"]) + " | for ")  # type: ignore[index]
    assert since.endswith(f", 2 runs; last healthy {_when(runs[0].summary['run']['finished_at'])}")  # type: ignore[index]
    assert seen.cell(api, "num uptime-24h") == "33.3 % | 1/3 runs"
    assert seen.cell(api, "num uptime-7d") == "33.3 % | 1/3 runs"
    assert seen.cell(steady, "num uptime-24h") == "100.0 % | 3/3 runs"
    assert seen.cell(steady, "since").startswith(_when(runs[0].summary["run"]["finished_at"]))  # type: ignore[index]
    problem = seen.cell(api, "cell0")
    assert problem.startswith(f"api {STATUS} failed: selftest-api: expected HTTP 200 from GET ") and "got HTTP 500" in problem
    # the measured latency: one sparkline point per run, the newest value written beside it
    assert [len(points) for points in steady["points"]] == [3]
    newest = runs[2].record(LATENCY, "steady")["measured"][0]["value"]
    assert seen.cell(steady, "cell5") == f"{newest:.4g} ms | endpoint answers within latency budget"
    text = " ".join(" ".join(seen.text).split())
    assert "1 failing 0 could not be verified 1 healthy" in text
    assert f"Last run {_when(runs[2].summary['run']['finished_at'])} · 3 runs recorded" in text  # type: ignore[index]


@needs_chromium
def test_the_page_is_self_contained_and_readable_without_javascript(page, tmp_path):
    html = page.read_text()
    tags = _read(html).tags
    assert not [t for t, _ in tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    assert not [a for _, attrs in tags for a in attrs.values() if a and "://" in a]
    assert not [name for _, attrs in tags for name in attrs if name.startswith("on")]  # no event handlers
    assert "url(" not in html and "@import" not in html and "@font-face" not in html
    shot = tmp_path / "status-page.png"
    width, height = browser.screenshot(page, shot)
    assert (width, height) == (1280, 900) and shot.stat().st_size > 20_000  # drawn, not a blank page
    keep = os.environ.get("OPSVERIFY_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "status-page.png")


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@needs_chromium
def test_names_and_messages_are_escaped(tmp_path):
    """Names come from environment files (and a history file may be written by anything): the page
    shows them as text, never as markup."""
    history_file = tmp_path / "history.sqlite"
    at = utc_now()
    record = CheckRecord(nodeid=f"checks/test_http.py::{STATUS}[x]", check=STATUS, outcome="failed",
                         env=f"prod{HOSTILE}", target=f"api{HOSTILE}", system="http",
                         message=f"api: got HTTP 500 {HOSTILE}")
    history.append(history_file, RunInfo(environments=["prod"], started_at=at, finished_at=at, run_id="r1"), [record])
    proc = _status("--history", str(history_file), "--out", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    seen = _read(browser.dump_dom(tmp_path / "site" / "index.html"))
    assert not [t for t, _ in seen.tags if t in ("script", "img")]
    assert [r["target"] for r in seen.rows] == [f"api{HOSTILE}"]
    assert seen.cell(seen.rows[0], "cell0").startswith(f"api{HOSTILE} {STATUS} failed: api: got HTTP 500 {HOSTILE}")
    assert f"prod{HOSTILE}" in seen.text


def test_a_missing_history_or_an_unwritable_directory_is_one_line(tmp_path, recorded):
    missing = tmp_path / "none.sqlite"
    proc = _status("--history", str(missing), "--out", str(tmp_path / "site"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"opsverify status: {missing}: no history file (a run writes it with --history {missing})"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = _status("--history", str(recorded[0]), "--out", str(blocker / "site"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"opsverify status: {blocker / 'site'}: the status page cannot be written (Not a directory)"


def _record_at(history_file: Path, now: Any, age: Any, target: str, outcome: str = "passed") -> None:
    at = (now - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record = CheckRecord(nodeid=f"x::t[{target}]", check="t", outcome=outcome, env="e", target=target, system="http")  # type: ignore[arg-type]
    history.append(history_file, RunInfo(environments=["e"], started_at=at, finished_at=at, run_id=f"{target}-{at}"),
                   [record], now=now)


def test_the_uptime_windows_end_exactly_24_hours_and_7_days_back(tmp_path):
    """A run exactly 24 h old counts in the 24-hour uptime, one a second older only in the 7-day one;
    exactly 7 d old is still on the page, a second older is not. No run in a window is no figure
    (an em dash), not 100 %."""
    from datetime import UTC, datetime, timedelta

    from opsverify.status_page import status_of
    from opsverify.writers.status_html import uptime

    history_file, now = tmp_path / "history.sqlite", datetime.now(UTC)
    for name, age in (("week-edge", timedelta(days=7)), ("week-past", timedelta(days=7, microseconds=1)),
                      ("day-edge", timedelta(hours=24)), ("day-past", timedelta(hours=24, microseconds=1))):
        _record_at(history_file, now, age, name)
    with history.connect(history_file) as conn:
        page = status_of(conn, now)
    targets = {t.name: t for t in page.environments[0].systems[0].targets}
    assert sorted(targets) == ["day-edge", "day-past", "week-edge"]
    assert [uptime(targets[n].uptime_24h) for n in ("day-edge", "day-past", "week-edge")] == ["100.0 %", "—", "—"]
    assert [uptime(targets[n].uptime_7d) for n in ("day-edge", "day-past", "week-edge")] == ["100.0 %"] * 3


def test_since_reaches_back_past_the_7_day_window(tmp_path):
    """A target failing for 10 days: its streak starts before the window the page reads, so the
    older history is read for its "since" and its last healthy run."""
    from datetime import UTC, datetime, timedelta

    from opsverify.status_page import status_of

    history_file, now = tmp_path / "history.sqlite", datetime.now(UTC)
    _record_at(history_file, now, timedelta(days=11), "api", "passed")
    for days in (10, 9, 8, 3, 0):
        _record_at(history_file, now, timedelta(days=days), "api", "failed")
    with history.connect(history_file) as conn:
        (target,) = status_of(conn, now).environments[0].systems[0].targets
    stamp = lambda days: (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    assert (target.state, target.since, target.streak, target.last_healthy) == ("failing", stamp(10), 5, stamp(11))
    assert (target.uptime_7d.healthy, target.uptime_7d.runs) == (0, 2)
