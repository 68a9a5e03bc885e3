"""Rate-limit probe: one bounded burst, sequential, stopping at the first 429.

Sequential requests make "the n-th request" meaningful (a token bucket refills between them, so
the first 429 may come a little after ``limit``; that is why the bound ``max_requests`` is above it).
With ``client_id_header`` every run sends a fresh client id, so the burst drains only the checker's
own bucket. Connection problems raise (``error``); the answers themselves are data.

Example::

    burst = await burst(ctx)          # ctx.target is a RateLimitTarget
    burst.first_429, burst.accepted_before_429, burst.retry_after
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from opsverify.config.base import Safety
from opsverify.config.ratelimit import RateLimitTarget
from opsverify.engine import ProbeContext
from opsverify.net.http import reveal_headers
from opsverify.probes.api_client import call, client
from opsverify.safety import permit


@dataclass
class Burst:
    """What a burst saw: every status in order, and the first 429's headers."""

    url: str
    limit: int
    max_requests: int
    statuses: list[int] = field(default_factory=list)
    first_429: int | None = None  # 1-based index of the first 429
    retry_after: str | None = None
    limit_headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return len(self.statuses)

    @property
    def first_rejection(self) -> tuple[int, int] | None:
        """(1-based index, status) of the first answer that was not 2xx/3xx, if any."""
        for index, status in enumerate(self.statuses, start=1):
            if status >= 400:
                return index, status
        return None

    def tally(self, upto: int | None = None) -> str:
        """``"20 x HTTP 200, 1 x HTTP 429"`` for the first ``upto`` answers."""
        counts = Counter(self.statuses[:upto])
        return ", ".join(f"{n} x HTTP {code}" for code, n in sorted(counts.items())) or "no answers"


async def burst(ctx: ProbeContext[RateLimitTarget]) -> Burst:
    """Send up to ``max_requests`` requests one after another; stop at the first 429."""
    target = ctx.target
    permit(ctx, Safety.disruptive, f"a burst of up to {target.burst} requests to {target.url}")
    headers = reveal_headers(target.headers)
    if target.client_id_header:
        headers[target.client_id_header] = f"opsverify-{uuid.uuid4().hex[:12]}"
    result = Burst(target.url, target.limit, target.burst)
    started = time.monotonic()
    async with client(ctx, target) as http:
        for index in range(1, target.burst + 1):
            response = await call(ctx, http, target.method, target.url, headers=headers, content=target.body,
                                  what=f"burst request {index} of at most {target.burst}")
            result.statuses.append(response.status)
            if response.status == 429:
                result.first_429 = index
                result.retry_after = response.headers.get("retry-after")
                result.limit_headers = {k.lower(): v for k, v in response.headers.items()
                                        if k.lower().startswith(("x-ratelimit", "ratelimit"))}
                break
    result.seconds = time.monotonic() - started
    return result
