"""The one HTTP request function of every HTTP-speaking probe: timed on the wire, errors in one table.

:func:`request` sends one request with httpx and returns an :class:`HttpAnswer` whatever its status
(a probe decides whether 401 is the fault it looks for or a sign it cannot look). It

- builds nothing inside the timed region: TLS contexts and clients are shared per run and setting
  (:mod:`opsverify.net.tls`, :class:`Clients`), built before the wave by :func:`prepare`;
- times the network only, from the start of the TCP connect to the last byte of the answer, with the
  phases blackbox_exporter reports as ``probe_http_duration_seconds``: ``connect`` (DNS + TCP),
  ``tls``, ``processing`` (request sent → first byte of the answer) and ``transfer`` (first → last
  byte), from httpcore's trace events; every request opens a fresh connection, as a new client of the
  service would;
- bounds the request by the probe's deadline (``ctx.remaining()``, which does not count the time the
  checker's own loop ran late), and names the phase a stall was in;
- translates every httpx failure in one table, :func:`translate`.

Example::

    answer = await request(ctx, "GET", "https://gateway/healthz", tls=TlsSettings.of(target, ctx.env))
    answer.status, answer.timing.total_ms, answer.json
"""

from __future__ import annotations

from opsverify.net.http.answer import (
    MAX_BODY, Timing, HttpAnswer, reveal_headers,
)
from opsverify.net.http.transport import (
    PER_CLIENT, Clients, clients, request, Preparation, prepare,
)
from opsverify.net.http.failures import (
    short, tls_alert, connect_reason, translate,
)

__all__ = [
    "MAX_BODY", "PER_CLIENT", "Timing", "HttpAnswer", "reveal_headers", "Clients", "clients", "request",
    "short", "tls_alert", "connect_reason", "translate", "Preparation", "prepare",
]
