"""Signed inbound webhook checks (runbook edge.md: signed inbound webhooks).

Each delivery is ``mutating`` (the receiver records it) unless the target is a dry-run verifier
(``dry_run: true``, which makes the target ``read_only``).
"""

from __future__ import annotations

import pytest

REFUSED = range(400, 500)


def _refused(delivery, expect, *, what: str):
    __tracebackhide__ = True
    crashed = " - the receiver crashed instead of refusing" if delivery.status >= 500 else ""
    expect.that(delivery.status in REFUSED, expected=f"{what} refused (HTTP 4xx)",
                actual=f"{delivery.shown}{crashed}")


@pytest.mark.smoke
@pytest.mark.mutating
@pytest.mark.runbook("webhooks#signed-accepted")
@pytest.mark.severity("critical")
def test_signed_webhook_is_accepted(webhook_signed, target, expect):
    expect.that(
        webhook_signed.status in target.accepted_status,
        expected=f"a delivery signed with {target.algorithm} in {target.signature_header} accepted "
        f"(HTTP {'/'.join(map(str, target.accepted_status))})",
        actual=webhook_signed.shown,
    )


@pytest.mark.smoke
@pytest.mark.mutating
@pytest.mark.runbook("webhooks#bad-signature")
@pytest.mark.severity("critical")
def test_webhook_with_wrong_signature_is_refused(webhook_wrong_signature, target, expect):
    _refused(webhook_wrong_signature, expect, what="a delivery signed with the wrong secret")


@pytest.mark.smoke
@pytest.mark.mutating
@pytest.mark.runbook("webhooks#missing-signature")
@pytest.mark.severity("critical")
def test_webhook_without_signature_is_refused(webhook_unsigned, target, expect):
    _refused(webhook_unsigned, expect, what=f"a delivery without {target.signature_header}")


@pytest.mark.smoke
@pytest.mark.mutating
@pytest.mark.configured("tenant_header")
@pytest.mark.runbook("webhooks#missing-tenant")
def test_webhook_without_tenant_header_is_refused(webhook_without_tenant, target, expect):
    _refused(webhook_without_tenant, expect, what=f"a signed delivery without {target.tenant_header}")


@pytest.mark.smoke
@pytest.mark.mutating
@pytest.mark.configured("timestamp_header")
@pytest.mark.runbook("webhooks#replay-refused")
@pytest.mark.severity("critical")
def test_replayed_webhook_is_refused(webhook_replayed, target, expect):
    _refused(webhook_replayed, expect,
             what=f"a correctly signed delivery dated {target.replay_age_s} s ago in {target.timestamp_header} (a replay)")


@pytest.mark.mutating
@pytest.mark.rotation
@pytest.mark.configured("retired_secret")
@pytest.mark.runbook("webhooks#retired-secret")
def test_webhook_signed_with_retired_secret_fits_rotation_phase(webhook_retired_secret, target, phase, expect):
    seen, label = webhook_retired_secret, target.retired_secret.label
    expect.fact("phase", phase or "after")
    if phase in ("before", "overlap"):
        expect.that(
            seen.status in target.accepted_status,
            expected=f"a delivery signed with the retired secret {label} still accepted (rotation phase {phase})",
            actual=f"{seen.shown}: senders not yet on the new secret are being refused",
            action="during the overlap the receiver must verify with both secrets until every sender signs "
            "with the new one, or run with the phase the rotation is really in",
        )
        return
    when = f"rotation phase {phase}" if phase else "no rotation phase: the rotation counts as done"
    _refused(seen, expect, what=f"a delivery signed with the retired secret {label} ({when})")
