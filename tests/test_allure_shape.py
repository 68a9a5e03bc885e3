"""Allure results as a reader meets them: Behaviors environment → system → target, readable
parameters with the measured value and its threshold, the probe's time as the test's, runbook links
absolute under a base URL, and history (the Trend) carried from one report to the next.

Two real runs of the HTTP and TLS checks against the demo service, as a GitHub Actions job would
make them (its variables set, so ``executor.json`` is written): ``slow`` answers after 300 ms,
``broken`` with 500, ``good`` has a certificate 90 days from expiry. The written
``allure-results`` JSON is asserted; where Java is installed, smoke.yml's own "Allure report" step
renders a report after each run with allure-commandline, copying the previous report's ``history/``
into the results first (as README says), and the second report's trend holds both runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.harness import SuiteRun, run_checks
from tests.test_reports import ALLURE
from tests.test_workflows import load, run_step_script, step

STATUS = "test_endpoint_returns_expected_status"
LATENCY = "test_endpoint_answers_within_latency_budget"
EXPIRY = "test_certificate_is_not_close_to_expiry"
BASE = "https://runbooks.example.test/ops/"
SLOW_MS = 300
GITHUB = {"GITHUB_SERVER_URL": "https://github.example.test", "GITHUB_REPOSITORY": "acme/ops",
          "GITHUB_WORKFLOW": "smoke"}


def _run(tmp: Path, demo: Any, number: int) -> SuiteRun:
    env = {
        "tier": "staging",
        "http": [{"name": "slow", "url": demo.url(f"/slow?ms={SLOW_MS}"), "max_latency_ms": {"warn": 20000, "critical": 30000}},
                 {"name": "broken", "url": demo.url("/status/500")},
                 {"name": "warned", "url": demo.url("/slow?ms=60"), "max_latency_ms": {"warn": 20, "critical": 30000}}],
        "tls": [demo.tls("good")],
    }
    github = {**GITHUB, "GITHUB_RUN_ID": str(9000 + number), "GITHUB_RUN_NUMBER": str(number)}
    run = run_checks(tmp, env, f"--runbook-base-url={BASE}", "-k", f"{STATUS} or {LATENCY} or {EXPIRY}",
                     paths=["checks/test_http.py", "checks/test_tls.py"], env_name="staging", env_vars=github)
    assert run.summary is not None, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def runs(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> list[SuiteRun]:
    return [_run(tmp_path_factory.mktemp(f"allure{n}"), demo, n) for n in (1, 2)]


def _results(run: SuiteRun) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (run.reports / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text())
        found[data["name"]] = data
    return found


def _labels(result: dict[str, Any], *names: str) -> dict[str, list[str]]:
    return {name: [lb["value"] for lb in result["labels"] if lb["name"] == name] for name in names}


def _params(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in result["parameters"]}


def test_behaviors_and_suites_group_environment_system_target(runs):
    results = _results(runs[0])
    broken = results[f"{STATUS}[staging-broken]"]
    assert _labels(broken, "epic", "feature", "story", "parentSuite", "suite", "subSuite") == {
        "epic": ["staging"], "feature": ["http"], "story": ["broken"],
        "parentSuite": ["staging"], "suite": ["http"], "subSuite": []}
    good = results[f"{EXPIRY}[staging-good]"]
    assert _labels(good, "epic", "feature", "story", "suite") == {
        "epic": ["staging"], "feature": ["tls"], "story": ["good"], "suite": ["tls"]}


def test_parameters_are_readable_with_the_measured_value_and_threshold(runs):
    run = runs[0]
    results = _results(run)
    texts = [p.read_text() for p in (run.reports / "allure-results").glob("*-result.json")]
    assert not [t for t in texts if "Case(" in t or '"ov_case"' in t]
    assert list(_params(results[f"{STATUS}[staging-broken]"])) == ["environment", "target"]
    assert _params(results[f"{STATUS}[staging-broken]"])["target"]["value"] == "broken"
    measured = run.record(EXPIRY, "good")["measured"][0]
    params = _params(results[f"{EXPIRY}[staging-good]"])
    name = measured["name"]
    assert list(params) == ["environment", "target", f"measured {name}", f"threshold {name}"]
    assert params["environment"] == {"name": "environment", "value": "staging"}
    assert params[f"measured {name}"] == {"name": f"measured {name}", "value": f"{measured['value']:g} d",
                                          "excluded": True}
    assert params[f"threshold {name}"]["value"] == "at least 14 d (warn below 30 d)"
    latency = _params(results[f"{LATENCY}[staging-slow]"])
    limit = next(p for n, p in latency.items() if n.startswith("threshold "))
    assert limit["value"] == "at most 30000 ms (warn above 20000 ms)" and limit["excluded"] is True
    warned = run.record(LATENCY, "warned")["measured"][0]
    shown = _params(results[f"{LATENCY}[staging-warned]"])[f"measured {warned['name']}"]["value"]
    assert warned["level"] == "warn" and shown == f"{warned['value']:g} ms (past warn)"


def test_the_measured_parameters_do_not_split_a_checks_history(runs):
    """The history id is what Allure's History and Trend join runs on: the same per check and
    target in both runs (although the measured values differ), and different between targets."""
    first, second = (_results(run) for run in runs)
    assert set(first) == set(second)
    assert {n: r["historyId"] for n, r in first.items()} == {n: r["historyId"] for n, r in second.items()}
    assert len({r["historyId"] for r in first.values()}) == len(first)
    name = f"{LATENCY}[staging-slow]"
    assert [p["value"] for p in first[name]["parameters"] if p["name"].startswith("measured ")] != \
        [p["value"] for p in second[name]["parameters"] if p["name"].startswith("measured ")]


def test_the_duration_is_the_probes(runs):
    """The probe of ``slow`` waits 300 ms for its answer before any check runs; pytest's time in the
    check is a few ms. The test result's start and stop are the probe's."""
    run = runs[0]
    results = _results(run)
    status = results[f"{STATUS}[staging-slow]"]
    assert status["stop"] - status["start"] >= SLOW_MS
    assert run.record(STATUS, "slow")["duration_s"] * 1000 < status["stop"] - status["start"]
    started = min(r["start"] for r in results.values())
    assert status["start"] - started < 60_000  # a real wall-clock time of this run, in ms
    broken = results[f"{STATUS}[staging-broken]"]
    assert broken["stop"] - broken["start"] < SLOW_MS <= status["stop"] - status["start"]


def test_runbook_links_are_absolute_under_the_base_url(runs):
    run = runs[0]
    broken = _results(run)[f"{STATUS}[staging-broken]"]
    anchor = "runbooks/platform.md#platformhttp-status--the-health-endpoint-returns-the-expected-status"
    assert {"type": "link", "name": "runbook platform#http-status", "url": BASE + anchor} in broken["links"]
    assert f"({BASE}{anchor})" in (run.reports / "summary.md").read_text()


def test_executor_names_the_github_run(runs):
    executor = json.loads((runs[1].reports / "allure-results" / "executor.json").read_text())
    assert executor == {"name": "GitHub Actions", "type": "github", "buildOrder": 2, "buildName": "smoke #2",
                        "buildUrl": "https://github.example.test/acme/ops/actions/runs/9002"}


@pytest.mark.parametrize(("args", "variable", "expected"), [
    (["--runbook-base-url=ftp://runbooks.example.test"], None,
     "--runbook-base-url: 'ftp://runbooks.example.test' is not an http(s) URL with a host"),
    (["--runbook-base-url=https://runbooks.example.test/ops?ref=main"], None,
     "--runbook-base-url: 'https://runbooks.example.test/ops?ref=main' must not have a query or fragment"),
    ([], "https://deploy:hunter2@runbooks.example.test/",
     "OPSVERIFY_RUNBOOK_BASE_URL: 'https://***@runbooks.example.test/' must not carry credentials"),
])
def test_a_bad_runbook_base_url_is_a_usage_error(run_suite, demo, args, variable, expected):
    done = run_suite({"http": [{"name": "api", "url": demo.url("/healthz")}]}, *args,
                     env_vars={"OPSVERIFY_RUNBOOK_BASE_URL": variable} if variable else None,
                     paths=["checks/test_http.py"])
    assert done.ret == 4, done.stdout + done.stderr
    line = next(ln for ln in done.stderr.splitlines() if "runbook" in ln.lower() or "RUNBOOK" in ln)
    assert expected in line and "Traceback" not in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("java") is None,
                    reason="Java is not installed: allure-commandline needs a JRE (`java -version`) to render HTML")
def test_smoke_workflow_keeps_allure_history_and_trend_across_runs(runs, tmp_path):
    """smoke.yml's "Allure report" step, run by bash after each of the two runs in one checkout (its
    cached .opsverify/history/ kept between them, as the Actions cache does): the second report's
    trend holds both runs, each check's history the first run, and Behaviors read env → system → target."""
    assert ALLURE.exists(), f"{ALLURE} missing: run `bash scripts/tools/allure.sh` (npm allure-commandline)"
    script = step(load("smoke.yml"), "Allure report")["run"]
    results = tmp_path / "reports" / "staging" / "allure-results"
    for run in runs:
        shutil.rmtree(tmp_path / "reports", ignore_errors=True)  # a fresh runner: only the cache survives
        shutil.copytree(run.reports / "allure-results", results)
        proc = run_step_script(script, tmp_path, {"OPSVERIFY_ENV": "staging", "ALLURE": str(ALLURE)})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (tmp_path / ".opsverify" / "history" / "allure-staging" / "history-trend.json").exists()
    report = tmp_path / "reports" / "staging" / "allure-report"
    trend = json.loads((report / "widgets" / "history-trend.json").read_text())
    assert [point["buildOrder"] for point in trend] == [2, 1]
    assert trend[0]["data"]["failed"] == trend[1]["data"]["failed"] == 1
    cases = {c["name"]: c for c in (json.loads(p.read_text()) for p in (report / "data" / "test-cases").glob("*.json"))}
    broken = cases[f"{STATUS}[staging-broken]"]
    assert [entry["status"] for entry in broken["extra"]["history"]["items"]] == ["failed"]  # the first run's
    assert cases[f"{STATUS}[staging-slow]"]["time"]["duration"] >= SLOW_MS
    tree = json.loads((report / "data" / "behaviors.json").read_text())
    paths = {path for child in tree["children"] for path in _paths(child)}  # below the root "behaviors"
    assert ("staging", "http", "broken", f"{STATUS}[staging-broken]") in paths
    assert ("staging", "tls", "good", f"{EXPIRY}[staging-good]") in paths


def test_smoke_workflow_generates_the_report_and_status_page_before_saving_the_cache():
    smoke = load("smoke.yml")
    names = [s.get("name") for s in smoke["jobs"]["smoke"]["steps"]]
    order = ["Smoke checks", "Install the Allure report generator", "Allure report", "Status page",
             "Save the run history", "Upload the reports"]
    assert [names.index(name) for name in order] == sorted(names.index(name) for name in order)
    assert all(step(smoke, name)["if"] == "always()" for name in order[1:])
    assert 'opsverify status --history "$history" --out "reports/$OPSVERIFY_ENV/status"' in step(smoke, "Status page")["run"]


def _paths(node: dict[str, Any], above: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    children = node.get("children")
    here = (*above, node["name"]) if "name" in node else above
    if children is None:
        return [here]
    return [path for child in children for path in _paths(child, here)]
