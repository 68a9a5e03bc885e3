"""Restate checks against real restate-server instances: healthy, and each fault they catch.

restate-server phones GitHub at every start, so it only ever runs inside its own network namespace
(``unshare -rn``, see :mod:`opsverify_sandbox.servers.restate`); the checks reach it through
host-side proxies on 127.0.0.1 that forward to its unix sockets. The demo ``Greeter`` service is a
real ``restate-sdk`` service, running in the same namespace and registered through the admin API.

Servers (module-scoped, free ports, started in parallel, torn down by PID):

* ``main`` - server + Greeter, behind the token-checking proxy (accepts only ``NEW``). More proxies
  in front of the same server: ``overlap`` (accepts ``OLD`` and ``NEW``: the old token was never
  removed), ``open`` (checks no token at all) and ``lax`` (wants a bearer token, takes any value).
* ``orphan`` - server whose Greeter deployment was registered and then stopped: registered, but
  Restate can no longer reach it.
* ``moved`` - server whose registered Greeter URI now serves a ``Billing`` service instead (a deploy
  replaced it without a re-registration): reachable, but no longer offering Greeter.
* ``slow`` - a proxy in front of ``main`` that holds every answer ``SLOW_MS`` (a congested gateway): far
  enough past the latency budget of its target that no lag of the checker's own loop can hide it.
* ``gone`` - a server that was started and stopped again: its ports refuse connections, and a proxy
  left in front of its (removed) sockets answers 502.

A suite run costs a few seconds of pytest start-up, so all targets go into one run (``suite``,
no rotation declared: judged as after a finished one); an overlap declared per target in the
environment file's ``rotation:`` block and a production-tier run with ``--phase before`` are one more
small run each.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from opsverify_sandbox.servers.restate import RestateProxy, RestateServer, start_proxy, start_restate
from opsverify_sandbox.servers.restate_demo_service import greeting_for
from tests.harness import SuiteRun, run_checks, start_in_parallel

CHECKS = ["checks/test_restate.py"]
ADMIN_HEALTH = "test_restate_admin_health_answers_ok"
ADMIN_LATENCY = "test_restate_admin_health_answers_within_latency_budget"
INGRESS_HEALTH = "test_restate_ingress_health_answers_ok"
INGRESS_LATENCY = "test_restate_ingress_health_answers_within_latency_budget"
TUNNEL = "test_restate_tunnel_health_answers_ok"
VERSION = "test_restate_version_is_at_least_minimum"
REGISTERED = "test_restate_service_is_registered"
DEPLOYMENT = "test_restate_service_deployment_is_reachable"
INVOCATION = "test_restate_handler_returns_expected_response"
ACCEPTED = "test_restate_accepts_the_configured_token"
ENFORCED = "test_restate_rejects_requests_without_a_valid_token"
PREVIOUS = "test_restate_previous_token_is_accepted_only_during_overlap"
AGE = "test_restate_token_is_within_max_age"
SECRET = "test_restate_token_secret_holds_the_new_token"

# made up per run; never printed (the redaction test proves it)
NEW = "selftest-new-" + secrets.token_urlsafe(16)
OLD = "selftest-old-" + secrets.token_urlsafe(16)
WRONG = "selftest-wrong-" + secrets.token_urlsafe(16)
SECRETS = {"SELFTEST_RESTATE_TOKEN": NEW, "SELFTEST_RESTATE_OLD": OLD, "SELFTEST_RESTATE_WRONG": WRONG,
           "SELFTEST_RESTATE_SAME": NEW, "SELFTEST_RESTATE_PREFIXED": f"Bearer {NEW}",
           "SELFTEST_RESTATE_TWO_LINES": f"{OLD}\n{NEW}\n"}
TIMEOUT_S = 20  # generous: up to seven engineers share two cores
SLOW_MS = 400  # what the slow proxy adds to every answer
SLOW_BUDGET_MS = 150  # the slow target's budget: even a reading less 250 ms of checker lag is past it


@dataclass
class Servers:
    """Every Restate server and proxy of this module."""

    main: RestateServer
    orphan: RestateServer
    moved: RestateServer
    overlap: RestateProxy
    open: RestateProxy
    lax: RestateProxy
    dead: RestateProxy
    slow: RestateProxy
    gone_admin: str
    gone_ingress: str


def _start_orphan(base: Path) -> RestateServer:
    """Greeter registered, then its deployment stopped: Restate can no longer reach it."""
    server = start_restate(base, auth_token=None)
    assert server.demo is not None
    server.demo.stop(grace_s=3.0)
    return server


def _start_moved(base: Path) -> RestateServer:
    """Greeter registered, then another service put behind the same URI."""
    server = start_restate(base, auth_token=None)
    server.replace_demo("Billing")
    return server


def _start_and_stop(base: Path) -> RestateServer:
    server = start_restate(base, with_demo_service=False, auth_token=None)
    server.stop()
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    base = tmp_path_factory.mktemp("restate")
    with ExitStack() as stack:
        starters: dict[str, Callable[[], RestateServer]] = {
            "main": lambda: start_restate(base / "main", auth_token=NEW),
            "orphan": lambda: _start_orphan(base / "orphan"),
            "moved": lambda: _start_moved(base / "moved"),
            "gone": lambda: _start_and_stop(base / "gone"),
        }
        started = start_in_parallel(stack, starters)
        main, gone = started["main"], started["gone"]
        sockets = {"admin_socket": main.admin_socket, "ingress_socket": main.ingress_socket}
        overlap = stack.enter_context(start_proxy(base / "proxies", auth_token=NEW, **sockets))
        overlap.set_tokens(OLD, NEW)
        open_proxy = stack.enter_context(start_proxy(base / "proxies", **sockets))
        lax = stack.enter_context(start_proxy(base / "proxies", auth_token=NEW, accept_any_token=True, **sockets))
        dead = stack.enter_context(start_proxy(base / "proxies", auth_token=NEW, admin_socket=gone.admin_socket,
                                               ingress_socket=gone.ingress_socket))
        slow = stack.enter_context(start_proxy(base / "proxies", auth_token=NEW, delay_ms=SLOW_MS, **sockets))
        yield Servers(main=main, orphan=started["orphan"], moved=started["moved"], overlap=overlap, open=open_proxy, lax=lax, dead=dead,
                      slow=slow, gone_admin=gone.admin_url, gone_ingress=gone.ingress_url)


def _days_ago(days: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _urls(proxy: RestateServer | RestateProxy) -> dict[str, str]:
    return {"admin_url": proxy.admin_url, "ingress_url": proxy.ingress_url}


GREETER = {"name": "Greeter", "handlers": ["greet"], "type": "Service"}
TOKEN = {"env": "SELFTEST_RESTATE_TOKEN"}
PREVIOUS_TOKEN = {"env": "SELFTEST_RESTATE_OLD"}


def _healthy(servers: Servers, **extra: Any) -> dict[str, Any]:
    return {
        "name": "healthy", **_urls(servers.main), "timeout_s": TIMEOUT_S,
        "tunnel_health_url": f"{servers.main.admin_url}/health",  # the token-checking proxy stands in for a tunnel
        "token": TOKEN, "previous_token": PREVIOUS_TOKEN, "token_issued_at": _days_ago(10),
        "max_token_age_days": {"warn": 75, "critical": 90},
        "max_latency_ms": {"warn": 20000, "critical": 30000},
        "min_version": "1.7.0",
        "services": [GREETER],
        "invocations": [{"service": "Greeter", "handler": "greet", "input": "Ada", "expect": greeting_for("Ada")},
                        {"name": "greet-contains", "service": "Greeter", "handler": "greet", "input": "Bob",
                         "expect_contains": "Hello, Bob"}],
        **extra,
    }


@pytest.fixture(scope="module")
def suite(servers: Servers, blackhole: int, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run of every Restate check against every healthy and faulty target (no rotation declared)."""
    main = servers.main
    running = str(httpx.get(f"{main.admin_url}/version", headers={"authorization": f"Bearer {NEW}"},
                            timeout=10).json()["version"])
    major, minor, patch = (int(part) for part in running.split("-")[0].split(".")[:3])
    env = {"restate": [
        _healthy(servers),
        {"name": "version-at-min", "admin_url": main.admin_url, "token": TOKEN, "timeout_s": TIMEOUT_S,
         "min_version": running},
        {"name": "version-one-past", "admin_url": main.admin_url, "token": TOKEN, "timeout_s": TIMEOUT_S,
         "min_version": f"{major}.{minor}.{patch + 1}"},
        {"name": "slow", **_urls(servers.slow), "timeout_s": TIMEOUT_S, "token": TOKEN,
         "max_latency_ms": SLOW_BUDGET_MS},
        {"name": "expectations", **_urls(main), "timeout_s": TIMEOUT_S, "token": TOKEN, "min_version": "99.1.0",
         "services": [{"name": "Cart", "type": "VirtualObject"},
                      {"name": "Greeter", "handlers": ["greet", "farewell"], "type": "Workflow"}],
         "invocations": [
             {"name": "wrong-answer", "service": "Greeter", "handler": "greet", "input": "Ada",
              "expect": "Hello, Bob!"},
             {"name": "wrong-text", "service": "Greeter", "handler": "greet", "input": "Ada",
              "expect_contains": "Goodbye"},
             {"name": "no-handler", "service": "Greeter", "handler": "farewell", "input": "Ada"},
         ]},
        {"name": "old-token-kept", **_urls(servers.overlap), "timeout_s": TIMEOUT_S,
         "token": TOKEN, "previous_token": PREVIOUS_TOKEN},
        {"name": "open", **_urls(servers.open), "timeout_s": TIMEOUT_S, "token": TOKEN},
        {"name": "lax", **_urls(servers.lax), "timeout_s": TIMEOUT_S, "token": TOKEN},
        {"name": "wrong-token", **_urls(main), "timeout_s": TIMEOUT_S, "token": {"env": "SELFTEST_RESTATE_WRONG"},
         "min_version": "1.7.0", "services": [GREETER]},
        {"name": "no-secret", **_urls(main), "timeout_s": TIMEOUT_S, "token": {"env": "SELFTEST_RESTATE_UNSET"},
         "min_version": "1.7.0"},
        {"name": "stale-token", "admin_url": main.admin_url, "token": TOKEN, "timeout_s": TIMEOUT_S,
         "token_issued_at": _days_ago(200), "max_token_age_days": {"warn": 75, "critical": 90}},
        {"name": "aging-token", "admin_url": main.admin_url, "token": TOKEN, "timeout_s": TIMEOUT_S,
         "token_issued_at": _days_ago(80), "max_token_age_days": {"warn": 75, "critical": 90}},
        {"name": "future-token", "admin_url": main.admin_url, "token": TOKEN, "timeout_s": TIMEOUT_S,
         "token_issued_at": _days_ago(-30)},
        {"name": "unrotated-secret", "admin_url": main.admin_url, "timeout_s": TIMEOUT_S, "token": TOKEN,
         "previous_token": {"env": "SELFTEST_RESTATE_SAME"}},
        {"name": "prefixed-token", "admin_url": main.admin_url, "timeout_s": TIMEOUT_S,
         "token": {"env": "SELFTEST_RESTATE_PREFIXED"}},
        {"name": "two-tokens", "admin_url": main.admin_url, "timeout_s": TIMEOUT_S,
         "token": {"env": "SELFTEST_RESTATE_TWO_LINES"}},
        {"name": "orphan", **_urls(servers.orphan), "timeout_s": TIMEOUT_S, "services": [GREETER]},
        {"name": "moved", **_urls(servers.moved), "timeout_s": TIMEOUT_S, "services": [GREETER]},
        {"name": "orphan-call", "ingress_url": servers.orphan.ingress_url, "timeout_s": 2,
         "invocations": [{"service": "Greeter", "handler": "greet", "input": "Ada", "expect": greeting_for("Ada")}]},
        {"name": "gateway-502", **_urls(servers.dead), "timeout_s": TIMEOUT_S, "token": TOKEN,
         "tunnel_health_url": f"{servers.dead.admin_url}/health",  # a tunnel whose server behind it is gone
         "min_version": "1.7.0", "services": [GREETER]},
        {"name": "down", "admin_url": servers.gone_admin, "ingress_url": servers.gone_ingress,
         "timeout_s": TIMEOUT_S, "token": TOKEN, "previous_token": PREVIOUS_TOKEN, "min_version": "1.7.0",
         "services": [GREETER], "invocations": [{"service": "Greeter", "handler": "greet", "input": "Ada"}]},
        {"name": "stalled", "admin_url": f"http://127.0.0.1:{blackhole}", "timeout_s": 1, "min_version": "1.7.0"},
    ]}
    result = run_checks(tmp_path_factory.mktemp("suite"), env, paths=CHECKS, env_vars=SECRETS, timeout=300)
    result.running_version = running  # type: ignore[attr-defined]
    return result


@pytest.fixture(scope="module")
def overlap_suite(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """The previous-token check during the rotation overlap, declared per target in the environment
    file's ``rotation:`` block (no ``--phase``)."""
    env = {
        "rotation": {"change": "CHG-1", "credentials": [{"target": "restate/healthy", "phase": "overlap"},
                                                        {"target": "restate/old-token-kept", "phase": "overlap"}]},
        "restate": [
            _healthy(servers),
            {"name": "old-token-kept", **_urls(servers.overlap), "timeout_s": TIMEOUT_S,
             "token": TOKEN, "previous_token": PREVIOUS_TOKEN},
            {"name": "not-rotating", **_urls(servers.overlap), "timeout_s": TIMEOUT_S,
             "token": TOKEN, "previous_token": PREVIOUS_TOKEN},
        ]}
    return run_checks(tmp_path_factory.mktemp("overlap"), env, "-k", "previous_token",
                      paths=CHECKS, env_vars=SECRETS, timeout=300)


@pytest.fixture(scope="module")
def production_suite(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """A production-tier environment (read_only only) before the rotation (``--phase before``)."""
    env = {"tier": "production", "restate": [
        _healthy(servers),
        {"name": "unrotated-secret", "admin_url": servers.main.admin_url, "timeout_s": TIMEOUT_S, "token": TOKEN,
         "previous_token": {"env": "SELFTEST_RESTATE_SAME"}},
    ]}
    return run_checks(tmp_path_factory.mktemp("production"), env, "--phase", "before",
                      "-k", "previous_token or handler_returns or token_secret", paths=CHECKS, env_vars=SECRETS, timeout=300)


# -- healthy ----------------------------------------------------------------------------------------


def test_healthy_server_passes_every_check(suite: SuiteRun) -> None:
    checks = [r for r in suite.records if r["target"] == "healthy"]
    failing = {f"{r['check']}[{r['item']}]": f"{r['outcome']}: {r['message']}"
               for r in checks if r["outcome"] != "passed"}
    assert failing == {}, suite.stdout[-3000:]
    assert {r["check"] for r in checks} == {ADMIN_HEALTH, ADMIN_LATENCY, INGRESS_HEALTH, INGRESS_LATENCY, TUNNEL,
                                            VERSION, REGISTERED, DEPLOYMENT, INVOCATION, ACCEPTED, ENFORCED,
                                            PREVIOUS, AGE, SECRET}
    assert suite.record(INVOCATION, "healthy", item="greet-contains")["outcome"] == "passed"
    assert suite.ret == 1  # the faulty targets fail
    assert "Traceback" not in suite.stdout and "ProbeCrashed" not in suite.stdout


def test_healthy_run_records_the_measured_latencies(suite: SuiteRun) -> None:
    for check in (ADMIN_LATENCY, INGRESS_LATENCY):
        latency = suite.record(check, "healthy")["measured"][0]
        assert (latency["unit"], latency["critical"], latency["warn"]) == ("ms", 30000, 20000)
        assert latency["value"] > 0


# -- health, latency, version ---------------------------------------------------------------------------


def test_health_over_its_latency_budget_fails(suite: SuiteRun, servers: Servers) -> None:
    """Behind a gateway that holds every answer 400 ms, health answers ok but past its 150 ms budget."""
    for check, path in ((ADMIN_LATENCY, f"{servers.slow.admin_url}/health"),
                        (INGRESS_LATENCY, f"{servers.slow.ingress_url}/restate/health")):
        assert suite.outcome(check, "slow") == "failed", suite.message(check, "slow")
        message = suite.message(check, "slow")
        assert message.startswith(f"selftest-slow: expected response time of {path} <= {SLOW_BUDGET_MS} ms, got ")
        assert "[runbook restate#health-latency]" in message
        (latency,) = suite.record(check, "slow")["measured"]
        assert latency["value"] > SLOW_BUDGET_MS and min(latency["detail"]["samples_ms"]) >= SLOW_MS, latency
    assert suite.outcome(ADMIN_HEALTH, "slow") == "passed"
    assert suite.outcome(INGRESS_HEALTH, "slow") == "passed"


def test_version_below_the_minimum_fails(suite: SuiteRun) -> None:
    assert suite.outcome(VERSION, "expectations") == "failed"
    message = suite.message(VERSION, "expectations")
    assert "expected Restate 99.1.0 or newer, got version 1.7." in message
    assert "[runbook restate#version]" in message


def test_version_exactly_at_the_minimum_passes_and_one_patch_release_short_fails(suite: SuiteRun) -> None:
    assert suite.outcome(VERSION, "version-at-min") == "passed", suite.message(VERSION, "version-at-min")
    assert suite.outcome(VERSION, "version-one-past") == "failed"
    running = suite.running_version  # type: ignore[attr-defined]
    major, minor, patch = (int(part) for part in running.split("-")[0].split(".")[:3])
    assert (f"expected Restate {major}.{minor}.{patch + 1} or newer, got version {running} "
            in suite.message(VERSION, "version-one-past"))


def test_tunnel_whose_server_is_gone_fails_its_health_check(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(TUNNEL, "gateway-502") == "failed"
    message = suite.message(TUNNEL, "gateway-502")
    assert f"expected HTTP 200 from GET {servers.dead.admin_url}/health, got HTTP 502" in message, message
    assert "[runbook restate#tunnel-health]" in message


# -- services, deployments, invocations -----------------------------------------------------------------


def test_service_not_registered_fails_registration_and_deployment(suite: SuiteRun) -> None:
    assert suite.outcome(REGISTERED, "expectations", item="Cart") == "failed"
    assert ("expected service Cart (VirtualObject) registered, got not registered (registered: Greeter)"
            in suite.message(REGISTERED, "expectations", item="Cart"))
    assert suite.outcome(DEPLOYMENT, "expectations", item="Cart") == "failed"
    message = suite.message(DEPLOYMENT, "expectations", item="Cart")
    assert "expected Restate able to reach the deployment serving Cart, got Cart is not registered" in message
    assert "Register the service's deployment first [see runbook restate#services]" in message


def test_missing_handler_and_wrong_type_fail(suite: SuiteRun) -> None:
    assert suite.outcome(REGISTERED, "expectations", item="Greeter") == "failed"
    message = suite.message(REGISTERED, "expectations", item="Greeter")
    assert "expected service Greeter (Workflow) with handlers greet, farewell, got " in message
    assert "handlers farewell missing (it has greet); type Service (want Workflow)" in message
    assert "[runbook restate#services]" in message


def test_unreachable_deployment_fails(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(REGISTERED, "orphan", item="Greeter") == "passed"
    assert suite.outcome(DEPLOYMENT, "orphan", item="Greeter") == "failed"
    message = suite.message(DEPLOYMENT, "orphan", item="Greeter")
    deployment = servers.orphan.deployment_id
    assert (f"expected Restate able to reach the deployment serving Greeter, got Restate's discovery of "
            f"{deployment} at {servers.orphan.demo_uri} failed: HTTP 500" in message)
    assert "[runbook restate#deployments]" in message


def test_deployment_no_longer_offering_the_service_fails(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(REGISTERED, "moved", item="Greeter") == "passed"  # Restate's records still say so
    assert suite.outcome(DEPLOYMENT, "moved", item="Greeter") == "failed"
    message = suite.message(DEPLOYMENT, "moved", item="Greeter")
    assert (f"expected deployment {servers.moved.deployment_id} still offering Greeter, got it now offers Billing "
            "(re-register it, or fix the deploy)" in message)
    assert "[runbook restate#deployments]" in message


def test_invocation_of_an_unreachable_deployment_errors_with_a_timeout(suite: SuiteRun, servers: Servers) -> None:
    # Restate accepts the call and keeps retrying the deployment: the ingress never answers
    assert suite.outcome(INVOCATION, "orphan-call", item="Greeter.greet") == "error"
    message = suite.message(INVOCATION, "orphan-call", item="Greeter.greet")
    assert message.startswith("ProbeTimeout: ") and "within 2 s" in message, message
    assert f"{servers.orphan.ingress_url}/Greeter/greet" in message, message


def test_discovery_dry_run_registers_nothing(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(DEPLOYMENT, "healthy", item="Greeter") == "passed"
    listed = servers.main.admin("GET", "/deployments")["deployments"]
    assert [d["id"] for d in listed] == [servers.main.deployment_id]
    services = servers.main.admin("GET", "/services")["services"]
    assert [(s["name"], s["revision"]) for s in services] == [("Greeter", 1)]


def test_wrong_handler_response_fails(suite: SuiteRun) -> None:
    assert suite.outcome(INVOCATION, "expectations", item="wrong-answer") == "failed"
    assert ('expected Greeter/greet("Ada") to answer HTTP 200 and the JSON value "Hello, Bob!", '
            'got HTTP 200 with the value "Hello, Ada!"' in suite.message(INVOCATION, "expectations", item="wrong-answer"))
    assert suite.outcome(INVOCATION, "expectations", item="wrong-text") == "failed"
    assert ("""a body containing 'Goodbye', got HTTP 200 with the body '"Hello, Ada!"'"""
            in suite.message(INVOCATION, "expectations", item="wrong-text"))
    assert suite.outcome(INVOCATION, "expectations", item="no-handler") == "failed"
    message = suite.message(INVOCATION, "expectations", item="no-handler")
    assert 'expected Greeter/farewell("Ada") to answer HTTP 200, got HTTP 404' in message
    assert "[runbook restate#invocation]" in message


# -- bearer token ---------------------------------------------------------------------------------------


def test_wrong_configured_token_fails_the_token_check_and_errors_the_checks_behind_it(
    suite: SuiteRun, servers: Servers
) -> None:
    admin = servers.main.admin_url
    assert suite.outcome(ACCEPTED, "wrong-token") == "failed"
    message = suite.message(ACCEPTED, "wrong-token")
    assert ("expected the token from $SELFTEST_RESTATE_WRONG accepted by admin and ingress, got rejected: "
            f"admin {admin}/version answered HTTP 401" in message)
    assert "[runbook restate#token-accepted]" in message
    assert suite.outcome(ENFORCED, "wrong-token") == "passed"
    assert suite.outcome(ADMIN_HEALTH, "wrong-token") == "error"
    assert suite.cause(ADMIN_HEALTH, "wrong-token") == (
        f"UnexpectedResponse: cannot see the admin health: GET {admin}/health answered HTTP 401 "
        "(missing or invalid bearer token): the bearer token was rejected or is missing")
    assert suite.outcome(INGRESS_HEALTH, "wrong-token") == "error"
    assert suite.outcome(VERSION, "wrong-token") == "error"
    assert suite.message(VERSION, "wrong-token").startswith(
        f"UnexpectedResponse: cannot read the server version: GET {admin}/version answered HTTP 401")


def test_token_not_enforced_fails(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(ACCEPTED, "open") == "passed"
    assert suite.outcome(ENFORCED, "open") == "failed"
    message = suite.message(ENFORCED, "open")
    assert ("expected HTTP 401 or 403 for requests without a token or with a wrong one, got "
            f"admin {servers.open.admin_url}/version answered HTTP 200 without a token" in message)
    assert "nothing in front of Restate checks the token" in message
    assert "[runbook restate#token-enforced]" in message


def test_wrong_token_accepted_fails(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(ACCEPTED, "lax") == "passed"
    assert suite.outcome(ENFORCED, "lax") == "failed"
    message = suite.message(ENFORCED, "lax")
    assert f"got admin {servers.lax.admin_url}/version answered HTTP 200 to a wrong token" in message
    assert "answered HTTP 200 without a token" not in message
    assert "(the gateway wants a bearer token but lets any token through)" in message


def test_old_token_still_accepted_after_rotation_fails(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(PREVIOUS, "healthy") == "passed"
    assert suite.outcome(PREVIOUS, "old-token-kept") == "failed"
    message = suite.message(PREVIOUS, "old-token-kept")
    assert ("expected the previous token ($SELFTEST_RESTATE_OLD) rejected everywhere, got still accepted at "
            f"admin {servers.overlap.admin_url}/version (HTTP 200)" in message)
    assert "[runbook restate#token-old-removed]" in message


def test_old_token_removed_during_overlap_fails(overlap_suite: SuiteRun, servers: Servers) -> None:
    run = overlap_suite
    assert run.outcome(PREVIOUS, "old-token-kept") == "passed", run.stdout[-3000:]
    assert run.outcome(PREVIOUS, "healthy") == "failed"
    message = run.message(PREVIOUS, "healthy")
    assert ("expected the previous token ($SELFTEST_RESTATE_OLD) still accepted during the overlap, got "
            f"rejected at admin {servers.main.admin_url}/version (HTTP 401)" in message)
    assert "re-create it (or finish the rollout of the new token first)" in message
    # a target the rotation block does not list is judged as after a finished rotation
    assert run.outcome(PREVIOUS, "not-rotating") == "failed"
    assert "rejected everywhere, got still accepted at admin" in run.message(PREVIOUS, "not-rotating")


def test_before_the_rotation_the_previous_token_is_not_checked(production_suite: SuiteRun) -> None:
    record = production_suite.record(PREVIOUS, "healthy")
    assert record["outcome"] == "skipped"
    assert "--phase before" in record["message"]
    # before the rotation, previous_token may still name the current token
    assert production_suite.outcome(SECRET, "unrotated-secret") == "passed"


def test_secret_still_holding_the_old_token_fails(suite: SuiteRun) -> None:
    assert suite.outcome(SECRET, "healthy") == "passed"
    assert suite.outcome(SECRET, "unrotated-secret") == "failed"
    message = suite.message(SECRET, "unrotated-secret")
    assert ("expected $SELFTEST_RESTATE_TOKEN to hold the new token, got the same token as previous_token "
            "($SELFTEST_RESTATE_SAME): the secret was not updated" in message)
    assert "[runbook restate#token-secret]" in message


def test_secret_holding_more_than_one_bearer_token_fails(suite: SuiteRun) -> None:
    assert suite.outcome(SECRET, "prefixed-token") == "failed"
    assert ("expected one bearer token in $SELFTEST_RESTATE_PREFIXED, got a value that starts with 'Bearer' "
            "(store the token alone" in suite.message(SECRET, "prefixed-token"))
    assert suite.outcome(SECRET, "two-tokens") == "failed"
    assert ("expected one bearer token in $SELFTEST_RESTATE_TWO_LINES, got a value with whitespace inside"
            in suite.message(SECRET, "two-tokens"))


def test_token_older_than_max_age_fails_and_past_warn_warns(suite: SuiteRun) -> None:
    assert suite.outcome(AGE, "stale-token") == "failed"
    message = suite.message(AGE, "stale-token")
    assert "expected age of the bearer token $SELFTEST_RESTATE_TOKEN (issued " in message
    assert ") <= 90 d, got 200 d" in message and "[runbook restate#token-age]" in message
    aging = suite.record(AGE, "aging-token")
    assert aging["outcome"] == "passed"
    assert "past the warning level 75 d" in aging["warnings"][0]
    assert suite.outcome(AGE, "future-token") == "failed"
    assert "expected token_issued_at in the past, got " in suite.message(AGE, "future-token")


def test_missing_token_secret_errors_the_checks_that_send_it(suite: SuiteRun) -> None:
    for check in (ACCEPTED, ENFORCED, ADMIN_HEALTH, VERSION, SECRET):
        assert suite.outcome(check, "no-secret") == "error", check
        assert suite.cause(check, "no-secret") == "SecretMissing: secret SELFTEST_RESTATE_UNSET is not set"


def test_no_token_value_reaches_the_console_or_the_reports(suite: SuiteRun, overlap_suite: SuiteRun) -> None:
    for run in (suite, overlap_suite):
        reports = json.dumps(run.summary) + (run.reports / "junit.xml").read_text()
        for value in SECRETS.values():
            assert value not in run.stdout and value not in reports


# -- server down, gateway without a server, stalls ------------------------------------------------------


def test_server_down_errors_every_check_with_one_cause(suite: SuiteRun, servers: Servers) -> None:
    admin = servers.gone_admin.removeprefix("http://")
    ingress = servers.gone_ingress.removeprefix("http://")
    records = [r for r in suite.records if r["target"] == "down" and r["check"] not in (AGE, SECRET)]  # no network
    assert {r["check"] for r in records} >= {ADMIN_HEALTH, INGRESS_HEALTH, VERSION, REGISTERED, DEPLOYMENT,
                                             INVOCATION, ACCEPTED, ENFORCED, PREVIOUS}
    for record in records:
        assert record["outcome"] == "error", record
        cause = record["message"].split(" — could not see ", 1)[0]
        assert cause in (f"Unreachable: cannot connect to {admin}: connection refused",
                         f"Unreachable: cannot connect to {ingress}: connection refused"), record


def test_gateway_without_a_server_fails_health_and_errors_the_admin_reads(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(ADMIN_HEALTH, "gateway-502") == "failed"
    assert "got HTTP 502 (restate admin unreachable: " in suite.message(ADMIN_HEALTH, "gateway-502")
    assert "[runbook restate#admin-health]" in suite.message(ADMIN_HEALTH, "gateway-502")
    assert suite.outcome(INGRESS_HEALTH, "gateway-502") == "failed"
    for check in (VERSION, REGISTERED, DEPLOYMENT):
        assert suite.outcome(check, "gateway-502", item="Greeter" if check != VERSION else None) == "error"
    assert suite.message(VERSION, "gateway-502").startswith(
        f"UnexpectedResponse: cannot read the server version: GET {servers.dead.admin_url}/version answered "
        "HTTP 502 (restate admin unreachable: ")


def test_stalled_server_errors_with_a_timeout(suite: SuiteRun, blackhole: int) -> None:
    for check in (ADMIN_HEALTH, VERSION):
        message = suite.message(check, "stalled")
        assert suite.outcome(check, "stalled") == "error"
        assert message.startswith("ProbeTimeout: ") and f"127.0.0.1:{blackhole}" in message, message
        assert "within 1 s" in message, message


# -- safety class of the invocation -----------------------------------------------------------------------


def test_invocation_is_mutating_and_skipped_in_production(production_suite: SuiteRun) -> None:
    run = production_suite
    skipped = run.record(INVOCATION, "healthy", item="Greeter.greet")
    assert skipped["outcome"] == "skipped"
    assert "mutating checks are not allowed in selftest" in skipped["message"]
    assert skipped["message"].endswith("/Greeter/greet (a handler invocation)"), skipped["message"]


# -- configuration ----------------------------------------------------------------------------------------


def _load(tmp_path: Path, target: dict[str, Any]) -> Any:
    path = tmp_path / "env.yaml"
    path.write_text(json.dumps({"name": "cfg", "restate": [{"name": "r", **target}]}))
    return load_environment(path).restate[0]


def test_config_fills_defaults_and_derives_urls(tmp_path: Path) -> None:
    target = _load(tmp_path, {"admin_url": "http://restate:9070/", "ingress_url": "http://restate:8080",
                              "token": {"env": "T"}, "token_issued_at": "2026-01-02",
                              "invocations": [{"service": "Cart", "key": "a/b", "handler": "ping"}]})
    assert (target.admin_health, target.ingress_health) == ("http://restate:9070/health",
                                                            "http://restate:8080/restate/health")
    assert target.auth_urls == {"admin": "http://restate:9070/version", "ingress": "http://restate:8080/restate/health"}
    assert target.issued_at == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    assert target.max_token_age_days.critical == 90
    assert target.invocations[0].name == "Cart.ping" and target.invocations[0].path == "Cart/a%2Fb/ping"


@pytest.mark.parametrize(("target", "problem"), [
    ({"token": {"env": "T"}}, "give at least one of admin_url"),
    ({"ingress_url": "http://r:8080", "min_version": "1.7.0"}, "min_version need admin_url"),
    ({"admin_url": "http://r:9070", "invocations": [{"service": "S", "handler": "h"}]},
     "invocations need ingress_url"),
    ({"admin_url": "http://r:9070", "previous_token": {"env": "OLD"}}, "previous_token needs token"),
    ({"admin_url": "http://r:9070", "min_version": "one.seven"}, "is not a version"),
    ({"admin_url": "restate:9070"}, "admin_url"),
    ({"admin_url": "http://r:9070", "services": [{"name": "S", "type": "Actor"}]}, "type"),
    ({"ingress_url": "http://r:8080", "safety": "read_only",
      "invocations": [{"service": "S", "handler": "h"}]}, "read_only cannot lower what this target's checks send"),
])
def test_config_errors_name_the_key(tmp_path: Path, target: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, target)
    assert problem in str(caught.value) and "restate[0]" in str(caught.value)
