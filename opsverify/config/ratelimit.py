"""``ratelimit:`` section: a rate-limited endpoint, burst-tested (``disruptive``).

The checker sends one bounded burst of requests, one after another, and stops at the first 429 (or
after ``max_requests``). Three checks read that burst: the first ``limit`` requests were all accepted,
a 429 came within ``max_requests``, and the 429 carried a usable ``Retry-After``. The burst uses up
the checker's own quota, so give it a client identity of its own: ``client_id_header`` sends a fresh
id per run (for limiters keyed by a client header), or a dedicated API key in ``headers``.

Its keys: ``docs/environment/reference.md#ratelimit``;
an example and its checks: ``docs/environment/ratelimit.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from opsverify.config.base import Target, section
from opsverify.config.http import HeaderValue
from opsverify.config.values import HttpUrl


class RateLimitTarget(Target):
    """An endpoint behind a rate limiter, and the limit it should enforce."""

    url: HttpUrl = Field(pattern=r"^https?://")
    method: str = Field(default="GET", pattern=r"^(GET|HEAD|POST|PUT|PATCH|DELETE)$")
    body: str | None = None
    headers: dict[str, str | HeaderValue] = Field(default_factory=dict)
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    limit: int = Field(ge=1, le=10_000, description="requests the limiter must accept in one burst")
    max_requests: int | None = Field(default=None, ge=2, le=20_000,
                                     description="the burst's bound: a 429 must come by then (default 2 x limit)")
    client_id_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$")
    retry_after_max_s: float = Field(default=3600, gt=0)

    @model_validator(mode="after")
    def _bound_above_limit(self) -> RateLimitTarget:
        if self.max_requests is None:
            self.max_requests = 2 * self.limit
        if self.max_requests <= self.limit:
            raise ValueError(f"max_requests ({self.max_requests}) must be above limit ({self.limit})")
        return self

    @property
    def burst(self) -> int:
        """How many requests the burst may send at most."""
        return int(self.max_requests or 2 * self.limit)

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)


section(
    "ratelimit",
    RateLimitTarget,
    system="ratelimit",
    doc="rate-limited endpoints: a bounded burst is answered 429 with Retry-After, below the limit nothing is",
)
