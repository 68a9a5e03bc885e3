"""Self-tests of checks/test_telemetry.py against the project's OTLP/HTTP receiver (real protocol decoding
with opentelemetry-proto; no OpenTelemetry Collector is installable here), which enforces a key header.

Receivers: "after" accepts only the current key (rotation finished), "overlap" accepts the current
and the retired key, "open" also ingests requests without a key (enforcement switched off).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsverify.config.model import load_environment
from opsverify.probes.telemetry import CANARY_BODY
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.otlp_receiver import decode, start_otlp_receiver
from tests.harness import SuiteRun, run_checks

CHECKS = ["checks/test_telemetry.py"]
ACCEPTED = "test_telemetry_accepts_the_configured_key"
REQUIRED = "test_telemetry_refuses_requests_without_a_key"
RETIRED = "test_telemetry_retired_key_is_refused_after_rotation"
HEADER = "signoz-ingestion-key"


@dataclass
class Receivers:
    ports: dict[str, int]
    current: str
    retired: str
    procs: list[ManagedProcess]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def records(self, name: str) -> dict[str, Any]:
        return dict(httpx.get(self.url(name) + "/_receiver/records", timeout=10).json())


@pytest.fixture(scope="module")
def receivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receivers]:
    tmp = tmp_path_factory.mktemp("otlp")
    current, retired = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    ports = {name: free_port() for name in ("after", "overlap", "open", "drop")}
    procs = [
        start_otlp_receiver(tmp, [current], port=ports["after"], key_header=HEADER, name="after")[0],
        start_otlp_receiver(tmp, [current, retired], port=ports["overlap"], key_header=HEADER, name="overlap")[0],
        start_otlp_receiver(tmp, [current], port=ports["open"], key_header=HEADER, name="open", open_=True)[0],
        start_otlp_receiver(tmp, [current], port=ports["drop"], key_header=HEADER, name="drop", drop=True)[0],
    ]
    try:
        yield Receivers(ports, current, retired, procs)
    finally:
        for proc in procs:
            proc.stop()


def _env(receivers: Receivers, **overrides: Any) -> dict[str, Any]:
    base = {"key_header": HEADER, "key": {"env": "SELFTEST_OTLP_KEY"}, "retired_key": {"env": "SELFTEST_OTLP_OLD"}}
    return {**overrides, "telemetry": [
        {"name": "after", "endpoint": receivers.url("after"), **base},
        {"name": "after-traces", "endpoint": receivers.url("after"), "signal": "traces", **base},
        {"name": "overlap", "endpoint": receivers.url("overlap"), **base},
        {"name": "open", "endpoint": receivers.url("open"), **base},
        {"name": "drop", "endpoint": receivers.url("drop"), **base},
        {"name": "wrong-key", "endpoint": receivers.url("after"), "key_header": HEADER,
         "key": {"env": "SELFTEST_OTLP_WRONG"}},
        {"name": "refused", "endpoint": f"http://127.0.0.1:{free_port()}", "key_header": HEADER,
         "key": {"env": "SELFTEST_OTLP_KEY"}},
    ]}


def _vars(receivers: Receivers) -> dict[str, str]:
    return {"SELFTEST_OTLP_KEY": receivers.current, "SELFTEST_OTLP_OLD": receivers.retired,
            "SELFTEST_OTLP_WRONG": "wrong-" + secrets.token_hex(8)}


@pytest.fixture(scope="module")
def after_run(receivers: Receivers, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return run_checks(tmp_path_factory.mktemp("after"), _env(receivers), "--phase", "after", paths=CHECKS,
                      env_vars=_vars(receivers))


@pytest.fixture(scope="module")
def overlap_run(receivers: Receivers, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return run_checks(tmp_path_factory.mktemp("overlap"), _env(receivers), "--phase", "overlap", "-k", "retired",
                      paths=CHECKS, env_vars=_vars(receivers))


def test_the_key_is_accepted_and_the_record_really_arrives(after_run: SuiteRun, receivers: Receivers) -> None:
    for name in ("after", "after-traces", "overlap"):
        assert after_run.outcome(ACCEPTED, name) == "passed", after_run.stdout[-3000:]
    kept = receivers.records("after")["records"]
    assert {"signal": "logs", "service": "opsverify-canary", "body": CANARY_BODY} in kept
    assert {"signal": "traces", "service": "opsverify-canary", "body": CANARY_BODY} in kept
    assert after_run.record(ACCEPTED, "after")["safety"] == "mutating"
    assert "Traceback" not in after_run.stdout


def test_records_rejected_by_a_partial_success_fail_the_key_check(after_run: SuiteRun) -> None:
    assert after_run.outcome(ACCEPTED, "drop") == "failed"
    assert ("(2xx), got HTTP 200 with 1 record(s) rejected (ingestion quota exceeded) — The backend refuses"
            in after_run.message(ACCEPTED, "drop"))


def test_requests_without_a_key_are_refused_unless_enforcement_is_off(after_run: SuiteRun, receivers: Receivers) -> None:
    assert after_run.outcome(REQUIRED, "after") == "passed"
    assert after_run.outcome(REQUIRED, "open") == "failed"
    assert after_run.message(REQUIRED, "open") == (
        f"selftest-open: expected {receivers.url('open')}/v1/logs to refuse a record sent with no key "
        "(HTTP 401 or HTTP 403), got HTTP 200 — The ingestion endpoint accepts unauthenticated data: anyone can "
        "write into the tenant. Turn key enforcement back on in the backend or the collector in front of it (its "
        "auth extension), then re-run this check. [runbook telemetry#key-required]"
    )


def test_a_wrong_key_fails_with_the_receivers_reason(after_run: SuiteRun, receivers: Receivers) -> None:
    assert after_run.outcome(ACCEPTED, "wrong-key") == "failed"
    assert after_run.message(ACCEPTED, "wrong-key").startswith(
        f"selftest-wrong-key: expected {receivers.url('after')}/v1/logs to ingest a record sent with the key "
        "($SELFTEST_OTLP_WRONG) (2xx), got HTTP 403 (invalid ingestion key) — The backend refuses the key")


def test_retired_key_after_rotation_passes_when_refused_and_fails_when_still_accepted(after_run: SuiteRun) -> None:
    assert after_run.outcome(RETIRED, "after") == "passed"
    assert after_run.outcome(RETIRED, "overlap") == "failed"
    assert after_run.message(RETIRED, "overlap") == (
        "selftest-overlap: expected the retired key ($SELFTEST_OTLP_OLD) refused (HTTP 401 or HTTP 403), got HTTP "
        "200 — After the rotation the old key still ingests data: remove (revoke) it in the backend; during the "
        "overlap phase it must still be accepted, so only remove it once every workload sends the new one. "
        "[runbook telemetry#retired-key-rejected]"
    )


def test_retired_key_during_the_overlap_must_still_be_accepted(overlap_run: SuiteRun) -> None:
    assert overlap_run.outcome(RETIRED, "overlap") == "passed", overlap_run.stdout[-3000:]
    assert overlap_run.outcome(RETIRED, "after") == "failed"
    assert overlap_run.message(RETIRED, "after").startswith(
        "selftest-after: expected the retired key ($SELFTEST_OTLP_OLD) still accepted during the overlap (2xx), "
        "got HTTP 403 (invalid ingestion key) — The old key was removed before every workload moved")


def test_unreachable_receiver_errors(after_run: SuiteRun) -> None:
    for check in (ACCEPTED, REQUIRED):
        assert after_run.outcome(check, "refused") == "error"
        assert after_run.cause(check, "refused").endswith(": connection refused")


def test_production_does_not_allow_the_mutating_checks(receivers: Receivers, tmp_path: Path) -> None:
    run = run_checks(tmp_path, _env(receivers, tier="production"), "-k", "after", paths=CHECKS,
                     env_vars=_vars(receivers))
    assert run.outcome(ACCEPTED, "after") == "skipped"
    assert "mutating checks are not allowed in selftest" in run.message(ACCEPTED, "after")


def test_no_key_value_reaches_the_console_or_the_reports(after_run: SuiteRun, receivers: Receivers) -> None:
    reports = (after_run.reports / "summary.json").read_text() + (after_run.reports / "junit.xml").read_text()
    for value in (receivers.current, receivers.retired):
        assert value not in after_run.stdout and value not in reports


def test_receiver_decodes_otlp_json_and_refuses_garbage(receivers: Receivers) -> None:
    good = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
                                                           "spanId": "eee19b7ec3c1b174", "name": "x"}]}]}]}
    message: Any = decode("traces", "application/json", json.dumps(good).encode())
    assert message.resource_spans[0].scope_spans[0].spans[0].span_id.hex() == "eee19b7ec3c1b174"
    answer = httpx.post(receivers.url("after") + "/v1/logs", content=b'{"resourceLogs": 7}',
                        headers={HEADER: receivers.current, "content-type": "application/json"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["code"] == 3


def test_config_defaults(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(json.dumps({"name": "cfg", "telemetry": [
        {"name": "t", "endpoint": "https://ingest.example.com/", "key": {"env": "K"}}]}))
    target = load_environment(path).telemetry[0]
    assert (target.url, target.key_header, target.rejected_statuses) == (
        "https://ingest.example.com/v1/logs", "authorization", [401, 403])
