"""The Restate HTTP client of a probe: one bounded request to the admin or ingress API, and the
:class:`Answer` (status, body, latency) every Restate fact keeps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from opsverify.config.restate import RestateTarget
from opsverify.engine import ProbeContext
from opsverify.errors import UnexpectedResponse
from opsverify.net.http import Timing, request
from opsverify.net.tls import TlsSettings


MAX_BODY = 64 * 1024
Endpoint = Literal["admin", "ingress", "tunnel"]
REJECTED = (401, 403)
_NO_BODY: Any = object()


@dataclass
class Answer:
    """One HTTP exchange: status, latency and (the start of) the body."""

    url: str
    status: int
    latency_ms: float
    body: str

    def json(self) -> Any:
        """The body as JSON; raises :class:`UnexpectedResponse` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise UnexpectedResponse(f"{self.url} answered HTTP {self.status} with a body that is not JSON "
                                     f"({self.summary!r})") from None

    @property
    def summary(self) -> str:
        """The body in one short line: Restate's (or the proxy's) ``message`` when it sends JSON."""
        return summarize(self.body)

    @property
    def shown(self) -> str:
        """``HTTP 401 (missing or invalid bearer token)`` - status and summary, for messages."""
        text = f"HTTP {self.status}"
        if self.summary:
            text += f" ({self.summary})"
        if self.status in REJECTED:
            text += ": the bearer token was rejected or is missing"
        return text


# -- HTTP ------------------------------------------------------------------------------------------
def summarize(body: str, limit: int = 160) -> str:
    """A body in one short line; the ``message`` of a JSON error body when there is one."""
    text = body
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        text = data["message"]
        # Restate repeats its error code: "[META0003] [META0003] error when ..."
        first, _, rest = text.partition(" ")
        if first.startswith("[") and rest.startswith(first + " "):
            text = rest
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


class _Client:
    """The requests of one probe against a Restate target, with its TLS settings and bearer token."""

    def __init__(self, ctx: ProbeContext[RestateTarget]) -> None:
        self.ctx = ctx
        self.target = ctx.target
        self.tls = TlsSettings.of(self.target, ctx.env)
        self._token: str | None = None
        self.last_timing = Timing()

    async def __aenter__(self) -> _Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    @property
    def token(self) -> str | None:
        """The configured token (revealed on first use), or ``None``."""
        if self.target.token is None:
            return None
        if self._token is None:
            self._token = self.target.token.reveal().strip()
        return self._token

    async def send(
        self,
        method: str,
        url: str,
        *,
        bearer: str | None | Literal["configured"] = "configured",
        json_body: Any = _NO_BODY,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Send one request; ``bearer`` is the configured token, another token, or ``None`` (no header)."""
        token = self.token if bearer == "configured" else bearer
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        content = None
        if json_body is not _NO_BODY:
            content = json.dumps(json_body).encode()
            sent.setdefault("content-type", "application/json")
        answer = await request(self.ctx, method, url, tls=self.tls, headers=sent, content=content,
                               what=f"{method} {url}", budget=timeout, max_body=MAX_BODY)
        self.last_timing = answer.timing
        return Answer(url=url, status=answer.status, latency_ms=answer.latency_ms, body=answer.text)

    async def admin_json(self, path: str, doing: str) -> Any:
        """``GET <admin_url>/<path>`` that must answer 200 with JSON; anything else is an error."""
        url = self.target.admin(path)
        self.ctx.phase = f"{doing} (GET {url})"
        answer = await self.send("GET", url)
        if answer.status != 200:
            raise UnexpectedResponse(f"cannot {doing}: GET {url} answered {answer.shown}")
        return answer.json()


def _health_url(target: RestateTarget, endpoint: Endpoint) -> str:
    url = {"admin": target.admin_health, "ingress": target.ingress_health, "tunnel": target.tunnel_health_url}[endpoint]
    if url is None:
        raise UnexpectedResponse(f"no {endpoint} health URL configured")  # the checks ask only when set
    return url
