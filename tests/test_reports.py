"""The reports of one real run: summary.md, Allure (results and a rendered HTML report), metrics.prom.

One run of the HTTP and TLS checks against the real demo service, with a target for each outcome:
a healthy endpoint past its latency warning, an endpoint answering 500 (failed), a closed port
(error), an expired certificate (failed), a good certificate (passed), unconfigured checks (skipped).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import ROOT, SuiteRun, run_checks

STATUS = "test_endpoint_returns_expected_status"
LATENCY = "test_endpoint_answers_within_latency_budget"
EXPIRY = "test_certificate_is_not_close_to_expiry"
CHAIN = "test_certificate_chain_is_trusted"
TOOLS = Path(os.environ.get("OPSVERIFY_TOOLS", ROOT / ".opsverify" / "tools"))
ALLURE = TOOLS / "allure" / "node_modules" / "allure-commandline" / "dist" / "bin" / "allure"
PROMTOOL = TOOLS / "usr" / "bin" / "promtool"


@pytest.fixture(scope="module")
def run(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRun]:
    env = {
        "tier": "staging",
        "http": [
            {"name": "api", "url": demo.url("/slow?ms=60"), "max_latency_ms": {"warn": 20, "critical": 60000}},
            {"name": "broken", "url": demo.url("/status/500")},
            {"name": "down", "url": f"http://127.0.0.1:{demo.closed}/healthz"},
        ],
        "tls": [demo.tls("good"), demo.tls("expired")],
    }
    done = run_checks(tmp_path_factory.mktemp("reports"), env, paths=["checks/test_http.py", "checks/test_tls.py"],
                      env_name="staging")
    assert done.summary is not None, done.stdout + done.stderr
    assert done.outcome(STATUS, "broken") == "failed"
    assert done.outcome(STATUS, "down") == "error"
    assert done.outcome(EXPIRY, "expired") == "failed"
    assert done.outcome(EXPIRY, "good") == "passed"
    assert done.outcome(LATENCY, "api") == "passed"
    yield done


# -- summary.md ---------------------------------------------------------------------------------------
def test_summary_md_reads_at_a_glance(run):
    text = (run.reports / "summary.md").read_text()
    totals = run.summary["totals"]
    row = (f"| {totals['passed']} | {totals['failed']} | {totals['error']} | {totals['skipped']} "
           f"| {totals['warnings']} | {totals['total']} |")
    assert row in text
    headings = ["| passed | failed |", "## ❌ Failed", "## ⚠️ Errors", "## Warnings", "## ⏭️ Skipped", "✅ Passed"]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions), text
    failed = text[text.index("## ❌ Failed"):text.index("## ⚠️ Errors")]
    assert failed.index("### http") < failed.index("### tls")  # grouped by system
    broken = next(ln for ln in failed.splitlines() if f"`{STATUS}` [staging-broken]" in ln)
    assert "**critical** · expected HTTP 200" in broken and "got HTTP 500" in broken
    assert "roll back to the previous image" in broken  # the runbook action
    assert "— runbook [platform#http-status](runbooks/platform.md#platformhttp-status" in broken
    expired = next(ln for ln in failed.splitlines() if f"`{EXPIRY}` [staging-expired]" in ln)
    assert "— runbook [certs#expiry](runbooks/certs.md#" in expired
    errors = text[text.index("## ⚠️ Errors"):text.index("## Warnings")]
    down = next(ln for ln in errors.splitlines() if f"`{STATUS}` [staging-down]" in ln)
    assert "Unreachable" in down and str(run.summary["checks"][0]["env"]) == "staging"
    assert "roll back to the previous image" not in down  # a failure's action: nobody saw that failure
    assert "could not see staging-down" in down and "— runbook [platform#http-status](" in down
    warnings = text[text.index("## Warnings"):text.index("## ⏭️ Skipped")]
    assert f"`{LATENCY}` [staging-api]: response time is" in warnings
    assert "past the warning level 20 ms" in warnings
    skipped = text[text.index("## ⏭️ Skipped"):]
    assert "`test_endpoint_body_contains_expected_text`: not configured: no http target sets body_contains" in skipped


# -- Allure -------------------------------------------------------------------------------------------
def _allure_results(run: SuiteRun) -> dict[str, dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    for path in (run.reports / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text())
        by_name[data["name"]] = data
    return by_name


def test_allure_results_carry_categories_runbook_links_severity_and_environment(run):
    results = _allure_results(run)
    broken = results[f"{STATUS}[staging-broken]"]
    down = results[f"{STATUS}[staging-down]"]
    assert broken["status"] == "failed"
    assert down["status"] == "broken"
    assert {"type": "link", "name": "runbook platform#http-status",
            "url": "runbooks/platform.md#platformhttp-status--the-health-endpoint-returns-the-expected-status"} in broken["links"]
    assert {"name": "severity", "value": "critical"} in broken["labels"]
    assert not any(label["name"] == "severity" for label in results[f"{LATENCY}[staging-api]"]["labels"])
    categories = json.loads((run.reports / "allure-results" / "categories.json").read_text())
    names = [c["name"] for c in categories]
    assert names == ["Could not verify", "System unhealthy", "Check crashed"]
    properties = (run.reports / "allure-results" / "environment.properties").read_text().splitlines()
    assert "environments=staging" in properties and "tier.staging=staging" in properties
    assert f"git.commit={run.summary['run']['git_commit']}" in properties
    # the plugin's own markers do not leak into the record's markers
    record = run.record(STATUS, "broken")
    assert record["markers"] == ["predeploy", "runbook", "severity", "smoke"]


def test_allure_keeps_only_the_fixture_containers_worth_reading(run):
    """allure-pytest writes a container file per fixture per check; opsverify's own fixtures (plumbing
    and probe hand-over) are dropped when they passed, and kept when their set-up broke."""
    ours = {"ov_case", "ov_session", "environment", "target", "target_item", "expect", "phase",
            "http_response", "tls_certificate"}
    kept: list[tuple[str, str | None]] = []
    for path in (run.reports / "allure-results").glob("*-container.json"):
        container = json.loads(path.read_text())
        steps = [(step["name"].split("::")[0], step.get("status"))
                 for step in [*container.get("befores", []), *container.get("afters", [])]]
        if steps and all(name in ours for name, _ in steps):
            kept += steps
            assert any(status not in (None, "passed") for _, status in steps), steps
    assert ("http_response", "broken") in kept  # the closed port's probe broke: its set-up stays visible
    assert not any(name == "http_response" and status == "passed" for name, status in kept)


def test_an_unknown_severity_is_a_usage_error(run_suite, demo, tmp_path):
    check = tmp_path / "test_severity_typo.py"
    check.write_text(
        "import pytest\n\n"
        "@pytest.mark.severity('urgent')\n@pytest.mark.runbook('platform#http-status')\n"
        "def test_typo(http_response):\n    assert http_response.status == 200\n"
    )
    done = run_suite({"http": [{"name": "api", "url": demo.url("/healthz")}]},
                     "-p", "opsverify.plugin", "-p", "fixtures.http", paths=[str(check)])
    assert done.ret == 4
    assert "test_typo[selftest-api]: unknown severity 'urgent' (known: blocker, critical, normal, minor, trivial)" \
        in done.stderr


@pytest.mark.skipif(shutil.which("java") is None,
                    reason="Java is not installed: allure-commandline needs a JRE (`java -version`) to render HTML")
def test_the_rendered_allure_report_contains_the_runs_checks_and_categories(run, tmp_path):
    assert ALLURE.exists(), f"{ALLURE} missing: run `bash scripts/tools/allure.sh` (npm allure-commandline)"
    out = tmp_path / "allure-report"
    proc = subprocess.run([str(ALLURE), "generate", str(run.reports / "allure-results"), "-o", str(out), "--clean"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "index.html").exists()
    cases = [json.loads(p.read_text()) for p in (out / "data" / "test-cases").glob("*.json")]
    rendered = {c["name"]: c for c in cases}
    expected = {f"{r['check']}[{r['env']}-{r['target']}]" for r in run.records if r["env"]}
    assert expected <= set(rendered), sorted(expected - set(rendered))
    broken = rendered[f"{STATUS}[staging-broken]"]
    assert broken["status"] == "failed" and broken["extra"]["severity"] == "critical"
    assert [c["name"] for c in broken["extra"]["categories"]] == ["System unhealthy"]
    down = rendered[f"{STATUS}[staging-down]"]
    assert down["status"] == "broken"
    assert [c["name"] for c in down["extra"]["categories"]] == ["Could not verify"]
    assert any(link["url"].startswith("runbooks/platform.md#platformhttp-status") for link in broken["links"])
    tree = json.loads((out / "data" / "categories.json").read_text())
    groups = {g["name"]: _leaves(g) for g in tree["children"]}  # category -> message -> test cases
    assert f"{STATUS}[staging-down]" in groups["Could not verify"]
    assert f"{STATUS}[staging-broken]" in groups["System unhealthy"]
    assert f"{EXPIRY}[staging-expired]" in groups["System unhealthy"]
    assert not groups["System unhealthy"] & groups["Could not verify"]
    env_widget = json.loads((out / "widgets" / "environment.json").read_text())
    assert {"name": "environments", "values": ["staging"]} in env_widget


def _leaves(node: dict[str, Any]) -> set[str]:
    children = node.get("children")
    if children is None:
        return {node["name"]}
    return set().union(*(_leaves(child) for child in children)) if children else set()


# -- metrics.prom -------------------------------------------------------------------------------------
def _samples(text: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def _one(samples: list[Any], **labels: str) -> Any:
    hits = [s for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (labels, hits)
    return hits[0]


def test_metrics_textfile_has_success_duration_values_and_thresholds(run):
    text = (run.reports / "metrics.prom").read_text()
    samples = _samples(text)
    success = samples["opsverify_check_success"]
    assert _one(success, check=STATUS, target="api").value == 1
    assert _one(success, check=STATUS, target="broken").value == 0
    assert _one(success, check=STATUS, target="down").value == 0
    assert _one(samples["opsverify_check_error"], check=STATUS, target="down").value == 1
    assert _one(samples["opsverify_check_error"], check=STATUS, target="broken").value == 0
    first = _one(success, check=EXPIRY, target="expired")
    assert first.value == 0
    assert {k: first.labels[k] for k in ("env", "system", "check", "target")} == {
        "env": "staging", "system": "tls", "check": EXPIRY, "target": "expired"}
    assert _one(samples["opsverify_check_duration_seconds"], check=STATUS, target="api").value >= 0
    days = _one(samples["opsverify_check_measured_value"], check=EXPIRY, target="good")
    assert days.labels["unit"] == "d" and 88 < days.value <= 90
    assert days.labels["measure"] == "days_until_the_certificate_for_localhost_expires"
    assert _one(samples["opsverify_check_measured_value"], check=EXPIRY, target="expired").value < 0
    thresholds = samples["opsverify_check_threshold"]
    assert _one(thresholds, check=EXPIRY, target="good", level="critical").value == 14
    assert _one(thresholds, check=EXPIRY, target="good", level="warn").value == 30
    assert _one(thresholds, check=EXPIRY, target="good", level="warn").labels["direction"] == "at_least"
    assert _one(thresholds, check=LATENCY, target="api", level="warn").value == 20
    assert _one(samples["opsverify_check_measured_level"], check=LATENCY, target="api").value == 1
    assert _one(samples["opsverify_check_warnings"], check=LATENCY, target="api").value == 1
    # skipped checks are not exported; run-level metrics are
    assert not any(s.labels["check"] == "test_endpoint_body_contains_expected_text" for s in success)
    counts = samples["opsverify_run_checks"]
    assert _one(counts, env="staging", outcome="failed").value == run.summary["totals"]["failed"]
    assert _one(counts, env="staging", outcome="error").value == run.summary["totals"]["error"]
    info = _one(samples["opsverify_run_info"], env="staging")
    assert info.labels["commit"] == run.summary["run"]["git_commit"]
    assert _one(samples["opsverify_run_timestamp_seconds"], env="staging").value > 1.7e9


@pytest.mark.skipif(not PROMTOOL.exists(), reason="promtool not installed (bash scripts/tools/prometheus.sh)")
def test_promtool_accepts_the_metrics_textfile(run):
    text = (run.reports / "metrics.prom").read_text()
    proc = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""


# -- summary.json: the parts of a failure and of an error -------------------------------------------------
def test_summary_json_carries_the_parts_of_a_failure_beside_its_message(run, demo):
    broken = run.record(STATUS, "broken")
    failure = broken["failure"]
    assert failure == {"target": "staging-broken", "expected": f"HTTP 200 from GET {demo.url('/status/500')}",
                       "actual": "HTTP 500", "step": "platform#http-status"}
    # the message people read is still the one line made of those parts
    assert broken["message"].startswith(f"staging-broken: expected {failure['expected']}, got HTTP 500")
    assert broken["message"].endswith("[runbook platform#http-status]")
    assert broken["error"] is None
    expired = run.record(EXPIRY, "expired")["failure"]
    assert expired["target"] == "staging-expired" and expired["step"] and expired["expected"] and expired["actual"]
    assert run.record(STATUS, "api")["failure"] is None and run.record(STATUS, "api")["error"] is None


def test_summary_json_carries_where_and_in_what_phase_an_error_could_not_see(run, demo):
    down = run.record(STATUS, "down")
    assert down["outcome"] == "error" and down["failure"] is None
    assert down["error"] == {"type": "Unreachable", "where": f"http://127.0.0.1:{demo.closed}/healthz",
                             "phase": f"request to http://127.0.0.1:{demo.closed}/healthz on 127.0.0.1:{demo.closed}"}
    assert down["message"].startswith(f"Unreachable: cannot connect to 127.0.0.1:{demo.closed}: connection refused")


def test_a_records_summary_form_is_a_full_copy_of_every_field():
    """``CheckRecord.to_dict`` gives what ``dataclasses.asdict`` would, as a copy at every depth:
    changing the summary's data never changes the record the other writers read."""
    import dataclasses

    from opsverify.results import CheckRecord

    record = CheckRecord(
        nodeid="checks/test_http.py::test_x[staging-api]", check="test_x", outcome="failed", env="staging",
        target="api", markers=["smoke"], runbook={"id": "platform#http-latency"},
        measured=[{"name": "latency", "value": 512.0, "detail": {"samples_ms": [510.0, 512.0, 530.0],
                                                                  "phases": ("connect", "ttfb")}}],
        facts={"redirects": [{"status": 301, "to": "/v2"}]}, window={"samples": 3, "outcomes": ["passed"]},
        failure={"expected": "at most 400 ms", "actual": "512 ms"})
    copy = record.to_dict()
    assert copy == dataclasses.asdict(record)
    assert list(copy) == [f.name for f in dataclasses.fields(CheckRecord)]
    copy["measured"][0]["detail"]["samples_ms"].append(1.0)
    copy["facts"]["redirects"][0]["status"] = 200
    copy["markers"].clear()
    assert record.measured[0]["detail"]["samples_ms"] == [510.0, 512.0, 530.0]
    assert record.facts["redirects"][0]["status"] == 301 and record.markers == ["smoke"]
