"""Requests of one probe against one web API's base URL, on the one network layer.

Shared by the probes of the ``pact:``, ``api_tokens:`` and ``telemetry:`` sections: every call is
:func:`opsverify.net.http.request` (bounded by the probe's deadline, timed on the wire, errors in one
table); an answer of *any* HTTP status is returned as data - the caller decides whether 401 is the
fault its check exists to catch or a sign it could not look.

Example::

    api = WebApi(ctx, base_url="https://pact-broker.example.com", ca_bundle=None, verify_tls=True)
    answer = await api.call("GET", "/diagnostic/status/heartbeat", headers={"accept": "application/hal+json"})
    answer.status, answer.json, answer.elapsed_ms
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opsverify.engine import ProbeContext
from opsverify.net.http import HttpAnswer, Timing, request
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.net.tls import TlsSettings, base_dir


@dataclass
class Answer:
    """What the API answered: status, headers (lower-case names), raw body, parsed JSON, timing."""

    status: int
    headers: dict[str, str]
    body: bytes
    json: Any
    timing: Timing

    @property
    def elapsed_ms(self) -> float:
        """Connect start to last byte, in milliseconds."""
        return self.timing.total_ms

    @property
    def text(self) -> str:
        """The body as text, cut to one short line (for messages)."""
        return " ".join(self.body.decode("utf-8", "replace").split())[:200]

    @classmethod
    def of(cls, answer: HttpAnswer) -> Answer:
        return cls(answer.status, answer.headers, answer.body, answer.json_or_none(), answer.timing)


def where(url: str) -> str:
    """``host:port`` of a URL, as messages name the system."""
    return urlsplit(url).netloc or url


class WebApi:
    """Requests of one probe against one base URL, all within the probe's deadline."""

    def __init__(
        self, ctx: ProbeContext[Any], *, base_url: str, ca_bundle: str | None = None, verify_tls: bool = True
    ) -> None:
        self.ctx = ctx
        self.base_url = base_url.rstrip("/")
        self.where = where(self.base_url)
        self.tls = TlsSettings(ca_bundle, verify_tls, base_dir(ctx.env))

    async def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: Any = None,
        content: bytes | None = None,
    ) -> Answer:
        """``method base_url+path``; any HTTP status is returned, network failures raise."""
        answer = await request(self.ctx, method, self.base_url + path, tls=self.tls, headers=headers,
                               params=params, content=content, what=f"{method} {path}")
        return Answer.of(answer)

    async def latency(self, method: str, path: str, *, headers: dict[str, str] | None = None) -> LatencyReading:
        """The latency of ``method base_url+path`` in samples the engine vouches for (any status counts)."""

        async def one() -> Timed:
            answer = await request(self.ctx, method, self.base_url + path, tls=self.tls, headers=headers,
                                   what=f"{method} {path}")
            return Timed(answer.timing.start, answer.timing.end, answer.timing.phases())

        return await sample_latency(self.ctx, one, host=self.where, what=f"{method} {self.base_url}{path}")
