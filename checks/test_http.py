"""HTTP endpoints answer as the runbooks expect (health endpoints, admin health, readiness)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]


@pytest.mark.runbook("platform#http-status")
@pytest.mark.severity("critical")
def test_endpoint_returns_expected_status(http_response, target, expect):
    expected = " or ".join(str(code) for code in target.expected_statuses)
    expect.that(
        http_response.status in target.expected_statuses,
        expected=f"HTTP {expected} from {target.method} {target.url}",
        actual=f"HTTP {http_response.status}",
    )


@pytest.mark.runbook("platform#http-latency")
def test_endpoint_answers_within_latency_budget(http_latency, target, expect):
    expect.latency_at_most(http_latency, target.max_latency_ms, what="response time")


@pytest.mark.configured("body_contains")
@pytest.mark.runbook("platform#http-content")
def test_endpoint_body_contains_expected_text(http_response, target, expect):
    snippet = " ".join(http_response.body[:120].split())
    expect.that(
        http_response.contains(target.body_contains),
        expected=f"body containing {target.body_contains!r}",
        actual=f"body {snippet!r}",
    )


@pytest.mark.configured("body_not_contains")
@pytest.mark.runbook("platform#http-content-absent")
def test_endpoint_body_does_not_contain_forbidden_text(http_response, target, expect):
    body = http_response.body
    found = [f"{text!r} at offset {body.index(text)}" for text in target.body_not_contains if text in body]
    expect.that(
        not found,
        expected="a body without " + ", ".join(repr(t) for t in target.body_not_contains),
        actual="; ".join(found) + f" (body starts {' '.join(body[:80].split())!r})",
    )


@pytest.mark.configured("json_fields")
@pytest.mark.runbook("platform#http-content")
def test_endpoint_json_fields_have_expected_values(http_response, target, expect):
    from opsverify.errors import JsonPathError
    from opsverify.jsonpath import judge

    wanted_fields = "JSON fields " + ", ".join(f"{p}={v!r}" for p, v in target.json_fields.items())
    not_json = http_response.not_json()
    expect.that(not_json is None, expected=f"{wanted_fields} from {target.method} {target.url}", actual=str(not_json),
                action="something other than the service answers for it (a maintenance page, a proxy or load "
                       "balancer error page): find what serves that address and why, then the service's own health")
    document = http_response.json
    wrong = []
    for path, wanted in target.json_fields.items():
        try:
            problem = judge(document, path, wanted)
        except JsonPathError as missing:
            wrong.append(f"{path}: missing ({missing})")
            continue
        if problem is not None:
            wrong.append(f"{problem} (want {wanted!r})")
    expect.that(not wrong, expected=wanted_fields, actual="; ".join(wrong))


@pytest.mark.configured("json_absent")
@pytest.mark.runbook("platform#http-content-absent")
def test_endpoint_json_fields_are_absent(http_response, target, expect):
    from opsverify.errors import JsonPathError
    from opsverify.jsonpath import present

    document = http_response.json
    found = []
    for path in target.json_absent:
        try:
            found += [f"{where}={http_response.json_at(where)!r}" for where in present(document, path)]
        except JsonPathError as missing:
            found.append(f"{path}: cannot tell ({missing})")
    expect.that(not found, expected="no JSON field " + ", ".join(target.json_absent), actual="; ".join(found))


@pytest.mark.configured("headers")
@pytest.mark.runbook("platform#http-headers")
def test_endpoint_sends_required_headers(http_response, target, expect):
    problems = []
    for name, wanted in target.headers.items():
        seen = http_response.headers.get(name.lower())
        if seen is None:
            problems.append(f"{name} missing")
        elif wanted is not None and wanted not in seen:
            problems.append(f"{name}: {seen!r} (want {wanted!r})")
    expect.that(not problems, expected="headers " + ", ".join(target.headers), actual="; ".join(problems))


@pytest.mark.runbook("platform#http-redirects")
def test_endpoint_does_not_redirect_unexpectedly(http_response, target, expect):
    redirected = 300 <= http_response.status < 400 and http_response.status not in target.expected_statuses
    expect.that(
        not redirected,
        expected="a direct answer (redirects are not followed unless follow_redirects: true)",
        actual=f"HTTP {http_response.status} redirect to {http_response.redirect_location}",
    )
