"""Webhook replay protection and the retired secret after a rotation, against a real HTTP receiver.

The receiver (:mod:`tests.webhook_receiver`) implements the correct policy (a signed timestamp
within 300 s, the current secret only) and the faults: one that checks no timestamp age (a
captured delivery replayed 600 s later gets through) and one that still verifies with the retired
secret (right during the overlap, wrong after it). Secrets are generated here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import SuiteRun
from tests.webhook_receiver import TOLERANCE_S, WebhookReceiver

SIGNED = "test_signed_webhook_is_accepted"
REPLAY = "test_replayed_webhook_is_refused"
RETIRED = "test_webhook_signed_with_retired_secret_fits_rotation_phase"
CHECKS = ["checks/test_webhooks.py"]
CURRENT, OLD = secrets.token_hex(24), secrets.token_hex(24)
SECRETS = {"SELFTEST_HOOK_SECRET": CURRENT, "SELFTEST_HOOK_OLD_SECRET": OLD}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(CURRENT.encode(), OLD.encode()) as running:
        yield running


def _hook(receiver: WebhookReceiver, name: str, path: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "url": receiver.url(path), "secret": {"env": "SELFTEST_HOOK_SECRET"},
            "retired_secret": {"env": "SELFTEST_HOOK_OLD_SECRET"}, "timestamp_header": "x-omerta-timestamp",
            "accepted_status": [202], **fields}


def _run(run_suite: Any, env: dict[str, Any]) -> SuiteRun:
    return run_suite({"allow": ["read_only", "mutating"], **env}, "-k", "signed_webhook or replayed or retired",
                     paths=CHECKS, env_vars=SECRETS)


def test_a_replay_is_refused_by_a_correct_receiver_and_fails_against_one_without_an_age_check(
    run_suite: Any, receiver: WebhookReceiver
) -> None:
    run = _run(run_suite, {"webhooks": [
        _hook(receiver, "strict", "/strict"),
        _hook(receiver, "no-age-check", "/no-age-check"),
        _hook(receiver, "within-tolerance", "/strict", replay_age_s=TOLERANCE_S - 30),
    ]})
    assert run.outcome(SIGNED, "strict") == "passed", run.message(SIGNED, "strict")
    assert run.outcome(REPLAY, "strict") == "passed", run.message(REPLAY, "strict")
    assert run.outcome(SIGNED, "no-age-check") == "passed"
    message = run.message(REPLAY, "no-age-check")
    assert run.outcome(REPLAY, "no-age-check") == "failed"
    assert ("expected a correctly signed delivery dated 600 s ago in x-omerta-timestamp (a replay) refused "
            '(HTTP 4xx), got HTTP 202 ({"result": "accepted"})') in message
    assert "[runbook webhooks#replay-refused]" in message
    # a "replay" the receiver may rightly accept (inside its tolerance) is reported as accepted, not hidden
    assert run.outcome(REPLAY, "within-tolerance") == "failed"
    assert "dated 270 s ago" in run.message(REPLAY, "within-tolerance")
    assert CURRENT not in run.stdout + run.stderr and OLD not in run.stdout + run.stderr


def test_the_retired_secret_is_refused_after_a_rotation_and_accepted_during_the_overlap(
    run_suite: Any, receiver: WebhookReceiver
) -> None:
    overlap = {"credentials": [{"target": "webhooks/overlap-both", "phase": "overlap"},
                               {"target": "webhooks/overlap-strict", "phase": "overlap"},
                               {"target": "webhooks/after-strict", "phase": "after"},
                               {"target": "webhooks/after-both", "phase": "after"}]}
    run = _run(run_suite, {"rotation": overlap, "webhooks": [
        _hook(receiver, "after-strict", "/strict"),
        _hook(receiver, "after-both", "/both-secrets"),
        _hook(receiver, "overlap-both", "/both-secrets"),
        _hook(receiver, "overlap-strict", "/strict"),
    ]})
    assert run.outcome(RETIRED, "after-strict") == "passed", run.message(RETIRED, "after-strict")
    assert run.outcome(RETIRED, "overlap-both") == "passed", run.message(RETIRED, "overlap-both")
    message = run.message(RETIRED, "after-both")
    assert run.outcome(RETIRED, "after-both") == "failed"
    assert ("expected a delivery signed with the retired secret $SELFTEST_HOOK_OLD_SECRET (rotation phase after) "
            "refused (HTTP 4xx), got HTTP 202") in message
    assert "[runbook webhooks#retired-secret]" in message
    message = run.message(RETIRED, "overlap-strict")
    assert run.outcome(RETIRED, "overlap-strict") == "failed"
    assert ('still accepted (rotation phase overlap), got HTTP 401 ({"error": "signature mismatch"}): senders not '
            "yet on the new secret are being refused") in message


@pytest.mark.parametrize(("fields", "key", "problem"), [
    ({"signed_payload": "{body}"}, "webhooks[0].signed_payload", "must contain {timestamp} and {body}"),
    ({"replay_age_s": 0}, "webhooks[0].replay_age_s", "greater than or equal to 1"),
    ({"timestamp_header": "x bad"}, "webhooks[0].timestamp_header", "pattern"),
])
def test_bad_replay_settings_are_usage_errors(run_suite: Any, fields: dict[str, Any], key: str, problem: str) -> None:
    run = run_suite({"webhooks": [{"name": "x", "url": "http://127.0.0.1:9/hook", "secret": {"env": "X"}, **fields}]},
                    paths=CHECKS)
    output = run.stdout + run.stderr
    assert run.ret == 4 and key in output and problem in output and "Traceback" not in output, output
