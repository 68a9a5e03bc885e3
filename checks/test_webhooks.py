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
