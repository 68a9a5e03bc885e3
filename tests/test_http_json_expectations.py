"""JSON wildcards and negative expectations against a real HTTP server serving healthy and faulted payloads.

``checks[*].healthy: true`` holds only when every component is healthy (and there is at least one),
``checks[any].role: primary`` when one is; ``body_not_contains`` and ``json_absent`` fail when a
maintenance page or an error member is served with HTTP 200.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.payload_server import PayloadServer

JSON = "test_endpoint_json_fields_have_expected_values"
NOT_CONTAINS = "test_endpoint_body_does_not_contain_forbidden_text"
ABSENT = "test_endpoint_json_fields_are_absent"

HEALTHY = {"status": "ok", "checks": [{"name": "database", "healthy": True, "role": "replica"},
                                      {"name": "cache", "healthy": True, "role": "primary"}]}
ONE_DOWN = {"status": "ok", "checks": [{"name": "database", "healthy": True, "role": "replica"},
                                       {"name": "cache", "healthy": False, "role": "replica", "error": "timeout"}]}
EMPTY = {"status": "ok", "checks": []}
MISSING_FIELD = {"status": "ok", "checks": [{"name": "database", "healthy": True}, {"name": "cache"}]}
WITH_ERROR = {"status": "ok", "error": "degraded mode", "checks": [{"name": "database", "healthy": True}]}
MAINTENANCE = "<html><body><h1>Down for maintenance</h1></body></html>"


def _json(document: object) -> tuple[int, str, str]:
    return 200, "application/json", json.dumps(document)


@pytest.fixture(scope="module")
def server() -> Iterator[PayloadServer]:
    routes = {
        "/healthy": _json(HEALTHY), "/one-down": _json(ONE_DOWN), "/empty": _json(EMPTY),
        "/missing-field": _json(MISSING_FIELD), "/with-error": _json(WITH_ERROR),
        "/maintenance": (200, "text/html", MAINTENANCE),
    }
    with PayloadServer(routes) as running:
        yield running


def _target(server: PayloadServer, name: str, path: str, **fields: object) -> dict[str, object]:
    return {"name": name, "url": server.url(path), **fields}


def test_wildcards_need_every_or_any_element_and_an_empty_list_is_no_evidence(run_suite, server) -> None:
    every = {"checks[*].healthy": True}
    some = {"checks[any].role": "primary"}
    env = {"http": [
        _target(server, "healthy", "/healthy", json={**every, **some, "checks[0].name": "database"}),
        _target(server, "one-down", "/one-down", json=every),
        _target(server, "no-primary", "/one-down", json=some),
        _target(server, "empty", "/empty", json=every),
        _target(server, "empty-any", "/empty", json=some),
        _target(server, "missing-field", "/missing-field", json=every),
    ]}
    run = run_suite(env, "-k", "json_fields")
    assert run.outcome(JSON, "healthy") == "passed", run.message(JSON, "healthy")
    assert run.outcome(JSON, "one-down") == "failed"
    assert "got checks[1].healthy=False (want True)" in run.message(JSON, "one-down")
    assert run.outcome(JSON, "no-primary") == "failed"
    assert ("no element of checks as expected: checks[0].role='replica'; checks[1].role='replica'"
            in run.message(JSON, "no-primary"))
    for name in ("empty", "empty-any"):
        assert run.outcome(JSON, name) == "failed"
        assert "checks is an empty list: no element to judge" in run.message(JSON, name)
    assert run.outcome(JSON, "missing-field") == "failed"
    assert "checks[1] has no key 'healthy'" in run.message(JSON, "missing-field")
    assert "[runbook platform#http-content]" in run.message(JSON, "one-down")


def test_negative_expectations_fail_on_an_error_page_or_member(run_suite, server) -> None:
    absent = ["error", "checks[*].error"]
    env = {"http": [
        _target(server, "healthy", "/healthy", body_not_contains=["maintenance", "<html"], json_absent=absent),
        _target(server, "maintenance", "/maintenance", body_not_contains="maintenance"),
        _target(server, "with-error", "/with-error", json_absent=absent),
        _target(server, "element-error", "/one-down", json_absent=absent),
        _target(server, "empty", "/empty", json_absent=["checks[*].error"]),
    ]}
    run = run_suite(env, "-k", "forbidden or absent")
    assert run.outcome(NOT_CONTAINS, "healthy") == "passed", run.message(NOT_CONTAINS, "healthy")
    assert run.outcome(ABSENT, "healthy") == "passed", run.message(ABSENT, "healthy")
    message = run.message(NOT_CONTAINS, "maintenance")
    assert run.outcome(NOT_CONTAINS, "maintenance") == "failed"
    assert "expected a body without 'maintenance', got 'maintenance' at offset 25 (body starts '<html><body><h1>Down for maintenance" in message
    assert "[runbook platform#http-content-absent]" in message
    assert run.outcome(ABSENT, "with-error") == "failed"
    assert "expected no JSON field error, checks[*].error, got error='degraded mode'" in run.message(ABSENT, "with-error")
    assert run.outcome(ABSENT, "element-error") == "failed"
    assert "got checks[1].error='timeout'" in run.message(ABSENT, "element-error")
    assert run.outcome(ABSENT, "empty") == "failed"  # nothing to look into is not evidence of absence
    assert "checks is an empty list: no element to judge" in run.message(ABSENT, "empty")


@pytest.mark.parametrize(("fields", "key", "problem"), [
    ({"json": {"checks[*": True}}, "http[0].json", "invalid path 'checks[*' at position 6"),
    ({"json_absent": ["checks[*]"]}, "http[0].json_absent", "an absent path must end in a key or an index"),
    ({"json_absent": []}, "http[0].json_absent", "list at least one JSON path"),
    ({"body_not_contains": [""]}, "http[0].body_not_contains", "an empty text is in every body"),
])
def test_bad_json_expectations_are_usage_errors(run_suite, fields, key, problem) -> None:
    run = run_suite({"http": [{"name": "x", "url": "http://127.0.0.1:9/healthz", **fields}]})
    assert run.ret == 4, run.stdout + run.stderr
    output = run.stdout + run.stderr
    assert key in output and problem in output, output
    assert "Traceback" not in output
