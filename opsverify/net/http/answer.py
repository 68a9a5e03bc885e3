"""What one HTTP exchange gave a probe: :class:`HttpAnswer` (status, headers, a bounded body) and
its :class:`Timing` on the wire, and the request headers with their secrets revealed only for sending.
"""

from __future__ import annotations

import base64
import json as jsonlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from opsverify.config.secrets import REDACTOR
from opsverify.errors import UnexpectedResponse


MAX_BODY = 256 * 1024


@dataclass
class Timing:
    """Where one request's time went, in milliseconds, and when it was on the wire (monotonic s)."""

    start: float = 0.0
    end: float = 0.0
    connect_ms: float = 0.0
    tls_ms: float = 0.0
    processing_ms: float = 0.0
    transfer_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Connect start to last byte."""
        return (self.end - self.start) * 1000

    def phases(self) -> dict[str, float]:
        """The phases, rounded, for ``measured`` records."""
        return {
            "connect_ms": round(self.connect_ms, 2),
            "tls_ms": round(self.tls_ms, 2),
            "processing_ms": round(self.processing_ms, 2),
            "transfer_ms": round(self.transfer_ms, 2),
        }


@dataclass
class HttpAnswer:
    """What one request saw. ``headers`` keys are lower-case; ``body`` is cut at ``MAX_BODY`` bytes
    (``truncated`` says it was)."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    timing: Timing
    http_version: str = "HTTP/1.1"
    encoding: str = "utf-8"
    truncated: bool = False  # the body went on past ``max_body`` bytes: only its start was read

    @property
    def latency_ms(self) -> float:
        """Connect start to last byte, in milliseconds."""
        return self.timing.total_ms

    @cached_property
    def text(self) -> str:
        return self.body.decode(self.encoding or "utf-8", errors="replace")

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`UnexpectedResponse` when it is not JSON."""
        try:
            return jsonlib.loads(self.text)
        except ValueError:
            snippet = " ".join(self.text[:80].split())
            raise UnexpectedResponse(f"body is not JSON (starts with {snippet!r})") from None

    def json_or_none(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is empty or not JSON."""
        try:
            return jsonlib.loads(self.text) if self.body else None
        except ValueError:
            return None

    def snippet(self, limit: int = 120) -> str:
        """The start of the body, on one line (for messages)."""
        text = " ".join(self.text[: limit * 2].split())
        return text[:limit] + ("…" if len(text) > limit else "")


def reveal_headers(headers: dict[str, Any]) -> dict[str, str]:
    """Request headers with their secret references (``HeaderValue``) revealed after their prefix;
    revealed values are registered for redaction."""
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(value, str):
            shown[name] = value
            continue
        secret = value.reveal().strip()
        user = getattr(value, "basic_user", None)
        if user is not None:
            pair = f"{user}:{secret}"
            REDACTOR.add(pair)  # and its base64: the header itself
            shown[name] = (value.prefix or "Basic ") + base64.b64encode(pair.encode()).decode()
        else:
            shown[name] = value.prefix + secret
        REDACTOR.add(shown[name])  # the whole header value too ("Bearer <token>") and its encodings
    return shown
