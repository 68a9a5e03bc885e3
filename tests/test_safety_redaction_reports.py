"""Safety classes, secret redaction, reports, and the no-network guarantee of --collect-only."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

STATUS = "test_endpoint_returns_expected_status"
BODY = "test_endpoint_body_contains_expected_text"

SECRET = "tok-3f9c1e7a-never-print-me"


def _all_report_text(reports):
    texts = {}
    for path in reports.rglob("*"):
        if path.is_file():
            texts[str(path.relative_to(reports))] = path.read_text(errors="replace")
    return texts


def test_secret_values_appear_in_no_report_and_not_on_the_console(run_suite, demo, tmp_path):
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET + "-file\n")
    env = {"http": [
        # the echo endpoint puts the Authorization header into the body; the body check then fails
        # and its message quotes the body: the secret must come out masked everywhere.
        {"name": "echo-env", "url": demo.url("/echo"), "body_contains": "never-there",
         "request_headers": {"authorization": {"env": "SELFTEST_TOKEN", "prefix": "Bearer "}}},
        {"name": "echo-file", "url": demo.url("/echo"), "body_contains": "never-there",
         "request_headers": {"x-api-key": {"file": str(secret_file)}}},
    ]}
    run = run_suite(env, "-v", "-rA", env_vars={"SELFTEST_TOKEN": SECRET})
    assert run.outcome(BODY, "echo-env") == "failed"
    assert "••••••" in run.message(BODY, "echo-env")
    assert "••••••" in run.message(BODY, "echo-file")
    texts = _all_report_text(run.reports)
    assert {"summary.json", "summary.md", "junit.xml"} <= set(texts)
    assert any(name.startswith("allure-results/") for name in texts)
    for name, text in texts.items():
        assert SECRET not in text, f"secret leaked into {name}"
    assert SECRET not in run.stdout and SECRET not in run.stderr


def test_production_skips_mutating_and_disruptive_checks_unless_allowed(run_suite, demo, tmp_path):
    check = tmp_path / "test_safety_probe.py"
    check.write_text(
        "import pytest\n\n"
        "@pytest.mark.mutating\n@pytest.mark.runbook('platform#http-status')\n"
        "def test_writes_something(http_response):\n    assert http_response.status == 200\n\n"
        "@pytest.mark.disruptive\n@pytest.mark.runbook('platform#http-status')\n"
        "def test_bursts(http_response):\n    assert http_response.status == 200\n\n"
        "@pytest.mark.runbook('platform#http-status')\n"
        "def test_reads(http_response):\n    assert http_response.status == 200\n"
    )
    plugins = ["-p", "opsverify.plugin", "-p", "fixtures.http"]
    target = {"http": [{"name": "api", "url": demo.url("/healthz")}]}
    prod = run_suite({"tier": "production", **target}, *plugins, paths=[str(check)], env_name="prod")
    assert prod.outcome("test_reads", "api") == "passed"
    assert prod.outcome("test_writes_something", "api") == "skipped"
    assert prod.message("test_writes_something", "api") == (
        "mutating checks are not allowed in prod (production tier allows: read_only)"
    )
    assert prod.outcome("test_bursts", "api") == "skipped"
    allowed = run_suite({"tier": "production", "allow": ["read_only", "mutating"], **target}, *plugins,
                        paths=[str(check)], env_name="prod")
    assert allowed.outcome("test_writes_something", "api") == "passed"
    assert allowed.outcome("test_bursts", "api") == "skipped"
    raised = run_suite({"tier": "production", "allow": ["read_only", "mutating"],
                        "http": [{"name": "api", "url": demo.url("/healthz"), "safety": "disruptive"}]},
                       *plugins, paths=[str(check)], env_name="prod")
    assert raised.outcome("test_reads", "api") == "skipped"  # a target's safety raises every check of it
    assert raised.message("test_reads", "api").endswith(": the target declares safety: disruptive")
    lowered = run_suite({"tier": "production", "http": [{"name": "api", "url": demo.url("/healthz"),
                                                         "safety": "read_only"}]},
                        *plugins, paths=[str(check)], env_name="prod")
    assert lowered.ret == 4, lowered.stdout[-2000:]
    assert "http[0].safety" in lowered.stderr and "read_only cannot lower what this target's checks send" in lowered.stderr


def test_collect_only_touches_no_network(run_suite, fresh_recorder):
    env = {"http": [{"name": f"t{i}", "url": fresh_recorder.url(f"/t{i}")} for i in range(5)]}
    run = run_suite(env, "--collect-only", "-q")
    assert run.ret == 0, run.stdout
    assert "collected" in run.stdout or "tests collected" in run.stdout
    assert fresh_recorder.stats()["count"] == 0


def test_summary_json_has_the_fields_the_gate_reads(run_suite, demo):
    run = run_suite({"tier": "staging", "http": [{"name": "api", "url": demo.url("/healthz")},
                                                 {"name": "down", "url": demo.url("/status/503")}]},
                    "-k", "status")
    summary = run.summary
    assert summary["schema"] == "opsverify.summary/2"
    assert summary["run"]["ended"] == {"exit_status": 1, "status": "completed", "checks": 2, "stopped_early": None}
    assert summary["integrity"]["algorithm"] == "sha256" and len(summary["integrity"]["digest"]) == 64
    assert summary["run"]["environments"] == ["selftest"]
    assert summary["run"]["started_at"].endswith("Z") and summary["run"]["finished_at"].endswith("Z")
    assert summary["run"]["opsverify_version"]
    assert summary["totals"]["passed"] == 1 and summary["totals"]["failed"] == 1
    record = run.record(STATUS, "down")
    for key in ("nodeid", "check", "env", "target", "outcome", "message", "duration_s", "markers", "runbook",
                "measured", "warnings"):
        assert key in record
    assert record["runbook"]["id"] == "platform#http-status" and record["runbook"]["action"]
    assert set(record["markers"]) >= {"smoke", "predeploy", "runbook", "severity"}
    junit = ET.parse(run.reports / "junit.xml").getroot()
    assert junit.find(".//testcase") is not None
    properties = (run.reports / "allure-results" / "environment.properties").read_text()
    assert "environments=selftest" in properties and "tier.selftest=staging" in properties
    markdown = (run.reports / "summary.md").read_text()
    assert markdown.index("Failed") < markdown.index("Passed")
    assert "got HTTP 503" in markdown
    json.dumps(summary)  # serialisable round trip


def test_the_allure_writer_masks_a_secret_wherever_a_result_holds_it(tmp_path):
    """opsverify's Allure writer redacts the JSON it writes: a secret that reached a result's fields
    (by a path the plugin's own redaction missed) is masked, also where JSON escapes it."""
    import secrets

    import allure_commons
    from allure_commons.logger import AllureFileLogger
    from allure_commons.model2 import Parameter, StatusDetails, TestResult

    from opsverify.config.secrets import MASK, REDACTOR
    from opsverify.writers import allure_results

    secret = 'pw"with\\quote-' + secrets.token_hex(8)  # JSON writes it escaped: \" and \\
    REDACTOR.add(secret)
    logger = AllureFileLogger(str(tmp_path))
    allure_commons.plugin_manager.register(logger)
    try:
        assert allure_results.install() >= 1
        logger.report_result(TestResult(
            uuid="u1", name=f"check with {secret}", parameters=[Parameter(name="token", value=secret)],
            statusDetails=StatusDetails(message=f"got 401 for {secret}")))
    finally:
        allure_commons.plugin_manager.unregister(logger)
    [written] = tmp_path.glob("*-result.json")
    text = written.read_text(encoding="utf8")
    assert secret not in text and json.dumps(secret)[1:-1] not in text
    result = json.loads(text)
    assert result["name"] == f"check with {MASK}"
    assert result["parameters"] == [{"name": "token", "value": MASK}]
    assert result["statusDetails"]["message"] == f"got 401 for {MASK}"
    assert not list(tmp_path.glob("*.tmp"))
