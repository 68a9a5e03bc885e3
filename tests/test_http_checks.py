"""HTTP checks against the real demo service: healthy, and each fault they exist to catch."""

from __future__ import annotations

import time

STATUS = "test_endpoint_returns_expected_status"
LATENCY = "test_endpoint_answers_within_latency_budget"
BODY = "test_endpoint_body_contains_expected_text"
JSON = "test_endpoint_json_fields_have_expected_values"
HEADERS = "test_endpoint_sends_required_headers"
REDIRECT = "test_endpoint_does_not_redirect_unexpectedly"


def test_http_checks_pass_on_healthy_and_fail_on_each_fault(run_suite, demo):
    env = {"http": [
        {"name": "healthy", "url": demo.url("/healthz"), "max_latency_ms": {"warn": 500, "critical": 1000},
         "body_contains": '"status": "ok"', "json": {"status": "ok", "checks[0].healthy": True},
         "headers": {"content-type": "application/json", "x-request-id": None}},
        {"name": "err500", "url": demo.url("/status/500")},
        {"name": "slow", "url": demo.url("/slow?ms=700"), "max_latency_ms": {"warn": 100, "critical": 300}},
        {"name": "sluggish", "url": demo.url("/slow?ms=150"), "max_latency_ms": {"warn": 50, "critical": 2000}},
        {"name": "wrongbody", "url": demo.url("/status/200"), "body_contains": "all systems go"},
        {"name": "wrongjson", "url": demo.url("/healthz"), "json": {"status": "ok", "version": "9.9.9", "missing.key": 1}},
        {"name": "noheader", "url": demo.url("/healthz"), "headers": {"x-frame-options": "DENY"}},
        {"name": "redirect", "url": demo.url("/redirect")},
        {"name": "anyof", "url": demo.url("/status/204"), "status": [200, 204]},
    ]}
    run = run_suite(env)
    assert run.ret == 1, run.stdout
    for check in (STATUS, LATENCY, BODY, JSON, HEADERS, REDIRECT):
        assert run.outcome(check, "healthy") == "passed", run.stdout

    assert run.outcome(STATUS, "err500") == "failed"
    assert "expected HTTP 200 from GET" in run.message(STATUS, "err500")
    assert "got HTTP 500" in run.message(STATUS, "err500")
    assert "[runbook platform#http-status]" in run.message(STATUS, "err500")
    assert run.outcome(STATUS, "anyof") == "passed"

    assert run.outcome(LATENCY, "slow") == "failed"
    assert "expected response time <= 300 ms" in run.message(LATENCY, "slow")
    sluggish = run.record(LATENCY, "sluggish")
    assert sluggish["outcome"] == "passed"
    assert sluggish["warnings"] and "past the warning level 50 ms" in sluggish["warnings"][0]
    assert sluggish["measured"][0]["critical"] == 2000 and sluggish["measured"][0]["value"] >= 150

    assert run.outcome(BODY, "wrongbody") == "failed"
    assert "body containing 'all systems go'" in run.message(BODY, "wrongbody")
    assert run.outcome(JSON, "wrongjson") == "failed"
    assert "version='1.4.2' (want '9.9.9')" in run.message(JSON, "wrongjson")
    assert "missing.key: missing" in run.message(JSON, "wrongjson")
    assert run.outcome(HEADERS, "noheader") == "failed"
    assert "x-frame-options missing" in run.message(HEADERS, "noheader")
    assert run.outcome(REDIRECT, "redirect") == "failed"
    assert "HTTP 302 redirect to /healthz" in run.message(REDIRECT, "redirect")
    assert run.outcome(STATUS, "redirect") == "failed"
    # the failure text is on the console, without a traceback wall
    assert "got HTTP 500" in run.stdout and "Traceback" not in run.stdout


def test_refused_and_stalled_endpoints_are_errors_within_their_timeout(run_suite, demo):
    env = {"http": [
        {"name": "refused", "url": f"http://127.0.0.1:{demo.closed}/healthz"},
        {"name": "stalled", "url": f"http://127.0.0.1:{demo.blackhole}/healthz", "timeout_s": 1},
        {"name": "stalled-tls", "url": f"https://127.0.0.1:{demo.blackhole}/healthz", "timeout_s": 1},
    ]}
    started = time.monotonic()
    run = run_suite(env, "-k", "status")
    elapsed = time.monotonic() - started
    assert run.ret == 1
    assert run.outcome(STATUS, "refused") == "error"
    assert "connection refused" in run.message(STATUS, "refused")
    assert run.outcome(STATUS, "stalled") == "error"
    assert "sent no response within 1 s" in run.message(STATUS, "stalled")
    assert run.outcome(STATUS, "stalled-tls") == "error"
    assert "(TLS handshake) timed out after 1 s" in run.message(STATUS, "stalled-tls")
    assert elapsed < 30  # generous: the point is that it ends; per-probe bound is in the engine tests
    assert "Traceback" not in run.stdout


def test_unknown_dns_name_is_an_error_not_a_failure(run_suite):
    """Runs in its own network namespace so the lookup never leaves the machine."""
    env = {"http": [{"name": "nowhere", "url": "http://no-such-service.opsverify.invalid/healthz", "timeout_s": 2}]}
    run = run_suite(env, "-k", "status", netns=True)
    assert run.outcome(STATUS, "nowhere") == "error"
    message = run.message(STATUS, "nowhere")
    assert message.startswith("Unreachable: cannot connect to no-such-service.opsverify.invalid")
    assert "name resolution" in message or "not known" in message


def test_missing_secret_errors_only_the_checks_that_need_it(run_suite, demo):
    env = {"http": [
        {"name": "needs-token", "url": demo.url("/healthz"),
         "request_headers": {"authorization": {"env": "OPSVERIFY_SELFTEST_UNSET_TOKEN", "prefix": "Bearer "}}},
        {"name": "public", "url": demo.url("/healthz")},
    ]}
    run = run_suite(env, "-k", "status")
    assert run.outcome(STATUS, "needs-token") == "error"
    assert run.cause(STATUS, "needs-token") == "SecretMissing: secret OPSVERIFY_SELFTEST_UNSET_TOKEN is not set"
    assert run.outcome(STATUS, "public") == "passed"
