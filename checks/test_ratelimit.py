"""Rate-limit checks (runbook edge.md: handling 429 responses). All read one bounded burst (``disruptive``)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from opsverify.expect import Expect


def _retry_after_seconds(value: str) -> float | None:
    """Seconds in a ``Retry-After`` value (delta-seconds or an HTTP date); ``None`` when unreadable."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        from datetime import datetime, timezone

        return (parsedate_to_datetime(text) - datetime.now(timezone.utc)).total_seconds()
    except (TypeError, ValueError, IndexError):
        return None


@pytest.mark.disruptive
@pytest.mark.runbook("ratelimit#below-limit")
def test_requests_below_the_limit_are_accepted(rate_limit_burst, target, expect):
    burst = rate_limit_burst
    rejected = burst.first_rejection
    expect.fact("answers", burst.tally())
    expect.that(
        rejected is None or rejected[0] > target.limit,
        expected=f"the first {target.limit} requests accepted (limit {target.limit})",
        actual=f"request {rejected[0]} answered HTTP {rejected[1]} ({burst.tally(rejected[0])})" if rejected else "",
    )


@pytest.mark.disruptive
@pytest.mark.runbook("ratelimit#limit-enforced")
@pytest.mark.severity("critical")
def test_burst_above_the_limit_is_rejected_with_429(rate_limit_burst, target, expect):
    burst = rate_limit_burst
    if burst.first_429 is not None:
        expect.record("requests until 429", burst.first_429)
    expect.that(
        burst.first_429 is not None,
        expected=f"HTTP 429 within {burst.max_requests} requests (limit {target.limit})",
        actual=f"no 429 in {burst.sent} requests ({burst.tally()})",
    )


@pytest.mark.disruptive
@pytest.mark.runbook("ratelimit#retry-after")
def test_rate_limited_answer_carries_retry_after(rate_limit_burst, target, expect: Expect):
    burst = rate_limit_burst
    expect.that(burst.first_429 is not None, expected="a 429 whose Retry-After can be read",
                actual=f"no 429 in {burst.sent} requests", action="see runbook ratelimit#limit-enforced")
    expect.that(burst.retry_after is not None, expected="a Retry-After header on the 429",
                actual=f"none (headers seen: {', '.join(sorted(burst.limit_headers)) or 'no rate-limit headers'})")
    seconds = _retry_after_seconds(burst.retry_after)
    if seconds is None:
        expect.fail(expected="Retry-After in seconds or as an HTTP date", actual=repr(burst.retry_after))
    expect.fact("retry_after", burst.retry_after)
    expect.that(0 <= seconds <= target.retry_after_max_s,
                expected=f"Retry-After between 0 and {target.retry_after_max_s:g} s",
                actual=f"{seconds:g} s")
