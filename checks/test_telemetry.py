"""Telemetry ingestion keys: OTLP/HTTP data is ingested with the key, and refused without it or with the
retired one. Each check sends one small log record (or span), so they are ``mutating``.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.mutating]


def _answer(sent) -> str:
    text = f"HTTP {sent.status}"
    if sent.rejected_records:
        text += f" with {sent.rejected_records} record(s) rejected"
    return text + (f" ({sent.reason})" if sent.reason else "")


@pytest.mark.smoke
@pytest.mark.runbook("telemetry#key-accepted")
@pytest.mark.severity("critical")
def test_telemetry_accepts_the_configured_key(telemetry_with_key, target, expect):
    sent = telemetry_with_key
    expect.that(sent.accepted, expected=f"{sent.url} to ingest a record sent with {sent.key_used} (2xx)",
                actual=_answer(sent))


@pytest.mark.smoke
@pytest.mark.runbook("telemetry#key-required")
def test_telemetry_refuses_requests_without_a_key(telemetry_without_key, target, expect):
    sent = telemetry_without_key
    wanted = " or ".join(f"HTTP {s}" for s in target.rejected_statuses)
    expect.that(sent.status in target.rejected_statuses,
                expected=f"{sent.url} to refuse a record sent with no key ({wanted})", actual=_answer(sent))


@pytest.mark.rotation
@pytest.mark.configured("retired_key")
@pytest.mark.runbook("telemetry#retired-key-rejected")
def test_telemetry_retired_key_is_refused_after_rotation(telemetry_with_retired_key, target, phase, expect):
    sent = telemetry_with_retired_key
    if phase == "before":
        pytest.skip("--phase before: the rotation has not started, the retired key is still the current one")
    expect.fact("rotation_phase", phase or "after")
    if phase == "overlap":
        expect.that(
            sent.accepted,
            expected=f"{sent.key_used} still accepted during the overlap (2xx)",
            actual=_answer(sent),
            action="The old key was removed before every workload moved to the new one: re-create it in the "
            "backend (or finish rolling out the new key first), then remove it again [see runbook telemetry#key-accepted]",
        )
        return
    wanted = " or ".join(f"HTTP {s}" for s in target.rejected_statuses)
    expect.that(sent.status in target.rejected_statuses,
                expected=f"{sent.key_used} refused ({wanted})", actual=_answer(sent))
