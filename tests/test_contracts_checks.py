"""Self-tests of checks/test_contracts.py against the Pact Broker EMULATOR (no real broker can run here).

The emulator (sandbox/opsverify_sandbox/servers/pact_broker.py) serves pact_broker's JSON shapes; the real
Pact broker client agrees with its verdicts (tests/servers/test_pact_broker_emulator.py). Faults:
a failed and a missing verification, an unknown version, a slow and a failing heartbeat, a wrong
broker token, an unset version variable, an unknown environment, a closed port.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.pact_broker import start_pact_broker
from tests.harness import SuiteRun, run_checks

CHECKS = ["checks/test_contracts.py"]
HEARTBEAT = "test_pact_broker_heartbeat_is_ok"
LATENCY = "test_pact_broker_heartbeat_is_within_latency_budget"
CAN_I_DEPLOY = "test_contracts_can_i_deploy"

DATA: dict[str, Any] = {
    "environments": ["production"],
    "pacts": [
        {"consumer": "web-console", "consumer_version": "7.1.0", "provider": "auth-edge-service",
         "verifications": [{"provider_version": "2.4.0", "success": True},
                           {"provider_version": "2.5.0-rc1", "success": False}]},
        {"consumer": "mobile-app", "consumer_version": "1.0.0", "provider": "auth-edge-service",
         "verifications": [{"provider_version": "2.4.0", "success": True}]},
        {"consumer": "auth-edge-service", "consumer_version": "2.6.0", "provider": "token-service",
         "verifications": []},
        {"consumer": "web-console", "consumer_version": "7.1.0", "provider": "billing",
         "verifications": [{"provider_version": "9.0.0", "success": True}]},
    ],
    "deployed": {"production": {"web-console": "7.1.0", "mobile-app": "1.0.0", "token-service": "3.0.2",
                                "billing": "9.0.0"}},
}


@dataclass
class Brokers:
    healthy: int
    slow: int
    down: int
    token: str
    procs: list[ManagedProcess]


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    tmp = tmp_path_factory.mktemp("pact")
    token = secrets.token_urlsafe(24)
    ports = {name: free_port() for name in ("healthy", "slow", "down")}
    procs = [
        start_pact_broker(tmp, DATA, port=ports["healthy"], token=token, name="healthy"),
        start_pact_broker(tmp, DATA, port=ports["slow"], heartbeat_delay_ms=700, name="slow"),
        start_pact_broker(tmp, DATA, port=ports["down"], heartbeat_status=503, name="down"),
    ]
    try:
        yield Brokers(ports["healthy"], ports["slow"], ports["down"], token, procs)
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="module")
def suite(brokers: Brokers, blackhole: int, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    url = f"http://127.0.0.1:{brokers.healthy}"
    releases = [
        {"pacticipant": "auth-edge-service", "version_env": "SELFTEST_GIT_SHA", "to_environment": "production"},
        {"name": "rc", "pacticipant": "auth-edge-service", "version": "2.5.0-rc1", "to_environment": "production"},
        {"name": "unverified", "pacticipant": "auth-edge-service", "version": "2.6.0",
         "to_environment": "production"},
        {"name": "unknown-version", "pacticipant": "auth-edge-service", "version": "0.0.1",
         "to_environment": "production"},
        {"name": "consumer", "pacticipant": "web-console", "version": "7.1.0", "to_environment": "production"},
        {"name": "no-sha", "pacticipant": "auth-edge-service", "version_env": "SELFTEST_UNSET_SHA",
         "to_environment": "production"},
        {"name": "no-env", "pacticipant": "auth-edge-service", "version": "2.4.0", "to_environment": "qa"},
    ]
    one = [{"pacticipant": "auth-edge-service", "version": "2.4.0", "to_environment": "production"}]
    env = {"pact": [
        {"name": "healthy", "url": url, "token": {"env": "SELFTEST_PACT_TOKEN"},
         "max_latency_ms": {"warn": 4000, "critical": 5000}, "can_i_deploy": releases},
        {"name": "slow", "url": f"http://127.0.0.1:{brokers.slow}", "max_latency_ms": {"critical": 300},
         "can_i_deploy": one},
        {"name": "down", "url": f"http://127.0.0.1:{brokers.down}"},
        {"name": "wrong-token", "url": url, "token": {"env": "SELFTEST_PACT_WRONG"}, "can_i_deploy": one},
        {"name": "refused", "url": f"http://127.0.0.1:{free_port()}", "can_i_deploy": one},
        {"name": "stalled", "url": f"http://127.0.0.1:{blackhole}", "timeout_s": 1},
    ]}
    env_vars = {"SELFTEST_PACT_TOKEN": brokers.token, "SELFTEST_PACT_WRONG": "not-the-token",
                "SELFTEST_GIT_SHA": "2.4.0"}
    return run_checks(tmp_path_factory.mktemp("suite"), env, paths=CHECKS, env_vars=env_vars)


def test_healthy_broker_passes_heartbeat_latency_and_a_verified_release(suite: SuiteRun) -> None:
    for check in (HEARTBEAT, LATENCY):
        assert suite.outcome(check, "healthy") == "passed", suite.stdout[-3000:]
    assert suite.outcome(CAN_I_DEPLOY, "healthy", item="auth-edge-service") == "passed"
    assert suite.outcome(CAN_I_DEPLOY, "healthy", item="consumer") == "passed"
    record = suite.record(CAN_I_DEPLOY, "healthy", item="auth-edge-service")
    assert "Traceback" not in suite.stdout and "ProbeCrashed" not in suite.stdout
    assert record["runbook"]["id"] == "contracts#can-i-deploy"


def test_failed_verification_fails_can_i_deploy_and_lists_the_failing_and_unverified_pacts(suite: SuiteRun) -> None:
    assert suite.outcome(CAN_I_DEPLOY, "healthy", item="rc") == "failed"
    assert suite.message(CAN_I_DEPLOY, "healthy", item="rc") == (
        "selftest-healthy-rc: expected auth-edge-service 2.5.0-rc1 deployable to production, got not deployable - "
        "failing pacts: web-console (7.1.0) -> auth-edge-service (2.5.0-rc1); "
        "unverified pacts: mobile-app (1.0.0) -> auth-edge-service (2.5.0-rc1) "
        "(broker: The verification for the pact between version 7.1.0 of web-console and version 2.5.0-rc1 of "
        "auth-edge-service failed; There is no verified pact between version 1.0.0 of mobile-app and version "
        "2.5.0-rc1 of auth-edge-service) — Read the matrix for the version (`pact-broker matrix --pacticipant NAME "
        "--version $GIT_SHA --to-environment production`) and find the failing or unverified pacts. Fix the "
        "provider (or the consumer's expectation) and publish a new verification, or deploy the provider first "
        "when the consumer needs its new feature; re-run `pact-broker can-i-deploy` afterwards. Do not ignore a "
        "pacticipant to force the release through. [runbook contracts#can-i-deploy]"
    )


def test_missing_verifications_make_deployability_unknown_and_fail(suite: SuiteRun) -> None:
    assert suite.outcome(CAN_I_DEPLOY, "healthy", item="unverified") == "failed"
    message = suite.message(CAN_I_DEPLOY, "healthy", item="unverified")
    assert "got deployability unknown - unverified pacts: " in message
    assert "auth-edge-service (2.6.0) -> token-service (3.0.2)" in message
    assert "web-console (7.1.0) -> auth-edge-service (2.6.0)" in message


def test_a_version_the_broker_never_saw_is_not_deployable(suite: SuiteRun) -> None:
    assert suite.outcome(CAN_I_DEPLOY, "healthy", item="unknown-version") == "failed"
    assert ("got not deployable (broker: No pacts or verifications have been published for version 0.0.1 of "
            "auth-edge-service)" in suite.message(CAN_I_DEPLOY, "healthy", item="unknown-version"))


def test_unset_version_variable_and_unknown_environment_error(suite: SuiteRun) -> None:
    assert suite.outcome(CAN_I_DEPLOY, "healthy", item="no-sha") == "error"
    assert suite.cause(CAN_I_DEPLOY, "healthy", item="no-sha") == (
        "VersionUnknown: SELFTEST_UNSET_SHA is not set: cannot tell which version of auth-edge-service to ask about")
    assert suite.outcome(CAN_I_DEPLOY, "healthy", item="no-env") == "error"
    assert ("UnexpectedResponse: /matrix on 127.0.0.1:" in suite.message(CAN_I_DEPLOY, "healthy", item="no-env"))
    assert ("HTTP 400 (environment: Environment with name 'qa' does not exist): cannot ask whether"
            in suite.message(CAN_I_DEPLOY, "healthy", item="no-env"))


def test_slow_heartbeat_fails_the_latency_budget_only(suite: SuiteRun) -> None:
    assert suite.outcome(HEARTBEAT, "slow") == "passed"
    assert suite.outcome(LATENCY, "slow") == "failed"
    message = suite.message(LATENCY, "slow")
    assert message.startswith("selftest-slow: expected Pact Broker heartbeat latency <= 300 ms, got ")
    assert message.endswith("[runbook contracts#broker-heartbeat]")


def test_failing_heartbeat_fails_with_the_status(suite: SuiteRun, brokers: Brokers) -> None:
    assert suite.outcome(HEARTBEAT, "down") == "failed"
    assert suite.message(HEARTBEAT, "down").startswith(
        f'selftest-down: expected HTTP 200 {{"ok": true}} from http://127.0.0.1:{brokers.down}'
        "/diagnostic/status/heartbeat, got HTTP 503 upstream unavailable — Look at the broker's pods")


def test_wrong_token_fails_heartbeat_and_errors_can_i_deploy(suite: SuiteRun, brokers: Brokers) -> None:
    assert suite.outcome(HEARTBEAT, "wrong-token") == "failed"
    assert "got HTTP 401" in suite.message(HEARTBEAT, "wrong-token")
    assert suite.outcome(CAN_I_DEPLOY, "wrong-token", item="auth-edge-service") == "error"
    assert suite.cause(CAN_I_DEPLOY, "wrong-token", item="auth-edge-service") == (
        f"BrokerDenied: 127.0.0.1:{brokers.healthy} refused the checker's credentials (HTTP 401): cannot ask "
        "whether auth-edge-service 2.4.0 can be deployed to production; check the broker token the environment "
        "file references")


def test_unreachable_and_stalled_broker_error(suite: SuiteRun, blackhole: int) -> None:
    for check in (HEARTBEAT, LATENCY):
        assert suite.outcome(check, "refused") == "error"
        assert suite.message(check, "refused").startswith("Unreachable: cannot connect to 127.0.0.1:")
        assert suite.cause(check, "refused").endswith(": connection refused")
    assert suite.outcome(CAN_I_DEPLOY, "refused", item="auth-edge-service") == "error"
    assert suite.outcome(HEARTBEAT, "stalled") == "error"
    message = suite.message(HEARTBEAT, "stalled")
    assert message.startswith("ProbeTimeout: ") and f"127.0.0.1:{blackhole}" in message and "1 s" in message


def test_no_token_value_reaches_the_console_or_the_reports(suite: SuiteRun, brokers: Brokers) -> None:
    assert brokers.token not in suite.stdout
    assert brokers.token not in (suite.reports / "summary.json").read_text()
    assert brokers.token not in (suite.reports / "junit.xml").read_text()


def _load(tmp_path: Path, target: dict[str, Any]) -> Any:
    path = tmp_path / "env.yaml"
    import json

    path.write_text(json.dumps({"name": "cfg", "pact": [{"name": "b", "url": "http://127.0.0.1:1", **target}]}))
    return load_environment(path).pact[0]


def test_config_defaults_latency_from_the_tier_and_names_entries_by_pacticipant(tmp_path: Path) -> None:
    target = _load(tmp_path, {"can_i_deploy": [{"pacticipant": "a", "version_env": "GIT_SHA", "to_environment": "p"}]})
    assert (target.max_latency_ms.warn, target.max_latency_ms.critical) == (1000, 2000)  # dev tier
    assert target.can_i_deploy[0].name == "a" and target.can_i_deploy[0].version_label == "$GIT_SHA"


@pytest.mark.parametrize(("target", "problem"), [
    ({"can_i_deploy": [{"pacticipant": "a", "to_environment": "p"}]}, "exactly one of 'version' or 'version_env'"),
    ({"can_i_deploy": [{"pacticipant": "a", "version": "1", "to_environment": "p"},
                       {"pacticipant": "a", "version": "2", "to_environment": "p"}]}, "duplicate name 'a'"),
    ({"url": "pact-broker.example.com"}, "url"),
])
def test_config_errors_name_the_key(tmp_path: Path, target: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, target)
    assert problem in str(caught.value) and "pact[0]" in str(caught.value)
