"""Contracts: the Pact Broker answers, and the release under test is verified against what is deployed.

``test_contracts_can_i_deploy`` is the check a gate policy requires before promoting a release
(gates/production.yaml, item "Contracts verified"): it fails when the broker's matrix says the
version may not go to the target environment, and lists the failing and unverified pacts.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.predeploy]

MAX_LISTED = 8


@pytest.mark.smoke
@pytest.mark.runbook("contracts#broker-heartbeat")
@pytest.mark.severity("critical")
def test_pact_broker_heartbeat_is_ok(pact_heartbeat, target, expect):
    beat = pact_heartbeat
    expect.that(
        beat.ok,
        expected=f'HTTP 200 {{"ok": true}} from {beat.url}',
        actual=f"HTTP {beat.status}" + (f" {beat.body}" if beat.body else ""),
    )


@pytest.mark.smoke
@pytest.mark.runbook("contracts#broker-heartbeat")
def test_pact_broker_heartbeat_is_within_latency_budget(pact_heartbeat_latency, target, expect):
    expect.latency_at_most(pact_heartbeat_latency, target.max_latency_ms, what="Pact Broker heartbeat latency")


def _listed(pacts: list[str]) -> str:
    shown = ", ".join(pacts[:MAX_LISTED])
    return shown + (f" and {len(pacts) - MAX_LISTED} more" if len(pacts) > MAX_LISTED else "")


@pytest.mark.smoke
@pytest.mark.each("can_i_deploy")
@pytest.mark.runbook("contracts#can-i-deploy")
@pytest.mark.severity("critical")
def test_contracts_can_i_deploy(pact_can_i_deploy, target, target_item, expect):
    answer = pact_can_i_deploy
    expect.fact("pacticipant", answer.pacticipant)
    expect.fact("version", answer.version)
    expect.fact("to_environment", answer.environment)
    expect.fact("matrix", answer.counts)
    problems: list[str] = []
    if answer.failing:
        problems.append("failing pacts: " + _listed([r.pact for r in answer.failing]))
    if answer.unverified:
        problems.append("unverified pacts: " + _listed([r.pact for r in answer.unverified]))
    verdict = {False: "not deployable", None: "deployability unknown"}.get(answer.deployable, "deployable")
    reasons = "; ".join(answer.reasons) or "no reason given"
    expect.that(
        answer.deployable is True,
        expected=f"{answer.pacticipant} {answer.version} deployable to {answer.environment}",
        actual=f"{verdict}" + (f" - {'; '.join(problems)}" if problems else "") + f" (broker: {reasons})",
    )
