"""Third-party API tokens (Cloudflare and the like): active at the provider, and far enough from expiry."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.rotation]


@pytest.mark.smoke
@pytest.mark.runbook("tokens#active")
@pytest.mark.severity("critical")
def test_api_token_is_active(api_token, target, expect):
    token = api_token
    expect.fact("token_status", token.status)
    if token.token_id:
        expect.fact("token_id", token.token_id)
    expect.that(
        token.active,
        expected=f"token {target.token.label} active at {token.url}",
        actual=f"{token.status} ({token.reason})",
    )


@pytest.mark.smoke
@pytest.mark.configured("expires_path")
@pytest.mark.runbook("tokens#expiry")
def test_api_token_expiry_is_far_enough(api_token, target, expect):
    token = api_token
    expect.that(token.active, expected=f"token {target.token.label} active (its expiry is only read then)",
                actual=f"{token.status} ({token.reason})", action="see tokens#active first [runbook tokens#active]")
    expect.that(token.expiry_problem is None, expected=f"an expiry time at {target.expires_path}",
                actual=str(token.expiry_problem),
                action="fix expires_path in the environment file to point at the answer's expiry field")
    if token.expires_at is None:
        expect.fact("token_expires", "never")
        return
    expect.fact("token_expires", token.expires_at.isoformat())
    days = token.days_left
    assert days is not None
    expect.at_least(round(days, 2), target.min_days,
                    what=f"days until token {target.token.label} expires ({token.expires_at:%Y-%m-%d %H:%M} UTC)",
                    unit="d")
