"""Restate: admin, ingress and tunnel health within budget, a recent enough server, the expected
services registered and their deployments reachable by Restate, a smoke invocation, and the bearer
token in front of it all - accepted, enforced, the previous one removed, not older than allowed."""

from __future__ import annotations

import json

import pytest

from opsverify.config.restate import SemVer

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]
REJECTED = (401, 403)


# -- health -----------------------------------------------------------------------------------------


@pytest.mark.configured("admin_health")
@pytest.mark.runbook("restate#admin-health")
@pytest.mark.severity("critical")
def test_restate_admin_health_answers_ok(restate_admin_health, target, expect):
    health = restate_admin_health
    expect.that(health.ok, expected=f"HTTP 200 from GET {health.url}", actual=health.answer.shown)


@pytest.mark.configured("admin_health")
@pytest.mark.runbook("restate#health-latency")
def test_restate_admin_health_answers_within_latency_budget(restate_admin_health_latency, target, expect):
    expect.latency_at_most(restate_admin_health_latency, target.max_latency_ms,
                           what=f"response time of {target.admin_health}")


@pytest.mark.configured("ingress_health")
@pytest.mark.runbook("restate#ingress-health")
@pytest.mark.severity("critical")
def test_restate_ingress_health_answers_ok(restate_ingress_health, target, expect):
    health = restate_ingress_health
    if health.services is not None:
        expect.fact("ingress_services", health.services)
    expect.that(health.ok, expected=f"HTTP 200 from GET {health.url}", actual=health.answer.shown)


@pytest.mark.configured("ingress_health")
@pytest.mark.runbook("restate#health-latency")
def test_restate_ingress_health_answers_within_latency_budget(restate_ingress_health_latency, target, expect):
    expect.latency_at_most(restate_ingress_health_latency, target.max_latency_ms,
                           what=f"response time of {target.ingress_health}")


@pytest.mark.configured("tunnel_health_url")
@pytest.mark.runbook("restate#tunnel-health")
@pytest.mark.severity("critical")
def test_restate_tunnel_health_answers_ok(restate_tunnel_health, target, expect):
    health = restate_tunnel_health
    expect.record("tunnel health response time", health.latency_ms, unit="ms")
    expect.that(health.ok, expected=f"HTTP 200 from GET {health.url}", actual=health.answer.shown)


@pytest.mark.configured("min_version")
@pytest.mark.runbook("restate#version")
def test_restate_version_is_at_least_minimum(restate_version, target, expect):
    minimum = SemVer.parse(target.min_version)
    expect.fact("version", str(restate_version.version))
    expect.that(
        restate_version.version >= minimum,
        expected=f"Restate {minimum} or newer",
        actual=f"version {restate_version.version} (admin {target.admin_url}/version)",
    )


# -- services and deployments -------------------------------------------------------------------------


@pytest.mark.each("services")
@pytest.mark.runbook("restate#services")
@pytest.mark.severity("critical")
def test_restate_service_is_registered(restate_services, target, target_item, expect):
    want = target_item
    seen = restate_services.by_name.get(want.name)
    wanted = f"service {want.name}" + (f" ({want.type})" if want.type else "")
    if want.handlers:
        wanted += f" with handlers {', '.join(want.handlers)}"
    expect.that(
        seen is not None,
        expected=f"{wanted} registered",
        actual=f"not registered (registered: {', '.join(restate_services.names) or 'none'})",
    )
    problems = []
    missing = [h for h in want.handlers if h not in seen.handlers]
    if missing:
        problems.append(f"handlers {', '.join(missing)} missing (it has {', '.join(seen.handlers) or 'none'})")
    if want.type and seen.type != want.type:
        problems.append(f"type {seen.type} (want {want.type})")
    expect.fact("deployment", seen.deployment_id)
    expect.that(not problems, expected=wanted, actual="; ".join(problems))


@pytest.mark.each("services")
@pytest.mark.runbook("restate#deployments")
@pytest.mark.severity("critical")
def test_restate_service_deployment_is_reachable(restate_services, restate_deployments, target, target_item,
                                                 expect):
    name = target_item.name
    seen = restate_services.by_name.get(name)
    expected = f"Restate able to reach the deployment serving {name}"
    expect.that(seen is not None, expected=expected, actual=f"{name} is not registered, so no deployment serves it",
                action="Register the service's deployment first [see runbook restate#services]")
    deployment = restate_deployments.by_id.get(seen.deployment_id)
    expect.that(
        deployment is not None,
        expected=expected,
        actual=f"its deployment {seen.deployment_id or '(none)'} is not listed by {target.admin_url}/deployments",
    )
    expect.fact("deployment", f"{deployment.id} {deployment.address}")
    expect.that(
        bool(deployment.reachable),
        expected=expected,
        actual=f"Restate's discovery of {deployment.id} at {deployment.address} failed: {deployment.problem}",
    )
    if deployment.note:
        expect.warn(f"deployment {deployment.id}: {deployment.note}")
    expect.that(
        name in deployment.offers,
        expected=f"deployment {deployment.id} still offering {name}",
        actual=f"it now offers {', '.join(deployment.offers) or 'no services'} (re-register it, or fix the deploy)",
    )


@pytest.mark.mutating
@pytest.mark.each("invocations")
@pytest.mark.runbook("restate#invocation")
@pytest.mark.severity("critical")
def test_restate_handler_returns_expected_response(restate_invocation, target, target_item, expect):
    item, result = target_item, restate_invocation
    expect.record(f"{item.name} response time", result.answer.latency_ms, unit="ms")
    wanted = [f"HTTP {item.status}"]
    problems = []
    if item.expects_json:
        wanted.append(f"the JSON value {json.dumps(item.expect)}")
        is_json, value = result.value
        if not is_json:
            problems.append(f"a body that is not JSON: {' '.join(result.answer.body[:160].split())!r}")
        elif value != item.expect:
            problems.append(f"the value {json.dumps(value)[:160]}")
    if item.expect_contains is not None:
        wanted.append(f"a body containing {item.expect_contains!r}")
        if item.expect_contains not in result.answer.body:
            problems.append(f"the body {' '.join(result.answer.body[:160].split())!r}")
    if result.status != item.status:
        actual = result.answer.shown
    else:
        actual = f"HTTP {result.status} with {' and '.join(dict.fromkeys(problems))}"
    expect.that(
        result.status == item.status and not problems,
        expected=f"{item.call} to answer {' and '.join(wanted)}",
        actual=actual,
    )


# -- bearer token -------------------------------------------------------------------------------------


@pytest.mark.rotation
@pytest.mark.configured("token")
@pytest.mark.runbook("restate#token-secret")
def test_restate_token_secret_holds_the_new_token(restate_token_secret, target, phase, expect):
    secret = restate_token_secret
    expect.that(not secret.problem, expected=f"one bearer token in {secret.label}", actual=secret.problem)
    if phase != "before":  # before the rotation, previous_token may still name the current token
        expect.that(
            not secret.same_as_previous,
            expected=f"{secret.label} to hold the new token",
            actual=f"the same token as previous_token ({secret.previous_label}): the secret was not updated",
        )


@pytest.mark.rotation
@pytest.mark.configured("token")
@pytest.mark.runbook("restate#token-accepted")
@pytest.mark.severity("critical")
def test_restate_accepts_the_configured_token(restate_auth, target, expect):
    refused = [f"{e.endpoint} {e.url} answered HTTP {e.with_token.status}"
               for e in restate_auth.endpoints if e.with_token.status in REJECTED]
    where = " and ".join(e.endpoint for e in restate_auth.endpoints)
    expect.that(
        not refused,
        expected=f"the token from {restate_auth.token_label} accepted by {where}",
        actual="rejected: " + "; ".join(refused),
    )


@pytest.mark.configured("token")
@pytest.mark.runbook("restate#token-enforced")
@pytest.mark.severity("critical")
def test_restate_rejects_requests_without_a_valid_token(restate_auth, target, expect):
    tokenless = [f"{e.endpoint} {e.url} answered HTTP {e.without_token.status} without a token"
                 for e in restate_auth.endpoints if e.without_token.status not in REJECTED]
    wrong = [f"{e.endpoint} {e.url} answered HTTP {e.wrong_token.status} to a wrong token"
             for e in restate_auth.endpoints if e.wrong_token.status not in REJECTED]
    cause = ("nothing in front of Restate checks the token" if tokenless
             else "the gateway wants a bearer token but lets any token through")
    expect.that(
        not (tokenless or wrong),
        expected="HTTP 401 or 403 for requests without a token or with a wrong one",
        actual="; ".join(tokenless + wrong) + f" ({cause})",
    )


@pytest.mark.rotation
@pytest.mark.configured("previous_token")
@pytest.mark.runbook("restate#token-old-removed")
def test_restate_previous_token_is_accepted_only_during_overlap(restate_previous_token, target, phase, expect):
    previous = restate_previous_token
    if phase == "before":
        pytest.skip("--phase before: the rotation has not started, the previous token is still the current one")
    if phase == "overlap":
        expect.that(
            not previous.rejected_at,
            expected=f"the previous token ({previous.label}) still accepted during the overlap",
            actual="rejected at " + "; ".join(previous.rejected_at),
            action="The old token was removed before every client moved to the new one: re-create it (or finish "
            "the rollout of the new token first), then remove it again [see runbook restate#token-accepted]",
        )
        return
    expect.that(
        not previous.accepted_at,
        expected=f"the previous token ({previous.label}) rejected everywhere",
        actual="still accepted at " + "; ".join(previous.accepted_at),
    )


@pytest.mark.rotation
@pytest.mark.configured("token_issued_at")
@pytest.mark.runbook("restate#token-age")
def test_restate_token_is_within_max_age(restate_token_age, target, expect):
    age = restate_token_age
    expect.fact("token_issued_at", age.issued_at.isoformat())
    expect.that(
        age.age_days > -1,
        expected="token_issued_at in the past",
        actual=f"{age.issued_at:%Y-%m-%d} lies in the future",
        action="Correct token_issued_at in the environment file (the date the current token was created)",
    )
    expect.at_most(
        round(age.age_days, 2),
        target.max_token_age_days,
        what=f"age of the bearer token {age.label} (issued {age.issued_at:%Y-%m-%d})",
        unit="d",
    )
