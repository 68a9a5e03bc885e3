"""How a failed HTTP exchange reads: httpx's and the socket's errors translated into opsverify's
(:class:`~opsverify.errors.Unreachable`, :class:`~opsverify.errors.ProbeTimeout`), with the TLS alert or the
connect failure named, and a stalled exchange's phase read from its httpcore trace (:class:`_Trace`).
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import httpx

from opsverify.errors import ClientCertRefused, CouldNotVerify, ProbeTimeout, Unreachable, UnexpectedResponse


class _Trace:
    """httpcore trace events of one request, timestamped: the phases and where a stall stopped."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.last = ""

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if name.endswith(".started"):
            self.at.setdefault(name, now)  # the first connect of a redirect chain starts the clock
        else:
            self.at[name] = now
        self.last = name

    def first(self, *names: str) -> float | None:
        return next((self.at[n] for n in names if n in self.at), None)

    def span(self, phase: str) -> float:
        begin, end = self.at.get(f"{phase}.started"), self.at.get(f"{phase}.complete")
        return (end - begin) * 1000 if begin is not None and end is not None else 0.0

    def stalled_in(self, tls: bool) -> str:
        """The phase a request that did not finish was in: tcp, tls, answer or body."""
        last = self.last
        if last in ("", "connection.connect_tcp.started"):
            return "tcp"
        if last == "connection.start_tls.started" or (tls and last == "connection.connect_tcp.complete"):
            return "tls"
        if "receive_response_body" in last or last.endswith("receive_response_headers.complete"):
            return "body"
        return "answer"


def _stall(trace: _Trace, where: str, url: str, what: str, limit: float) -> ProbeTimeout:
    tls = url.startswith("https")
    phase = trace.stalled_in(tls)
    if phase == "tcp":
        step = "TCP connect and TLS handshake" if tls else "TCP connect"
        return ProbeTimeout(f"connecting to {where} ({step}) timed out after {limit:.3g} s ({what})")
    if phase == "tls":
        return ProbeTimeout(f"connecting to {where} (TLS handshake) timed out after {limit:.3g} s ({what})")
    if phase == "body":
        return ProbeTimeout(f"{where} stopped sending its answer's body: not complete within {limit:.3g} s ({what})")
    return ProbeTimeout(f"{where} sent no response within {limit:.3g} s ({what})")


# -- the one error table ---------------------------------------------------------------------------
def short(exc: BaseException) -> str:
    """An exception's text on one line, at most 200 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    for _ in range(10):
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            break
        seen = nxt
    return seen


def tls_alert(exc: BaseException) -> str | None:
    """The TLS alert a server sent (``certificate expired``, ``unknown ca``), found along ``exc``'s causes."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        reason = str(getattr(seen, "reason", "") or "")
        if isinstance(seen, ssl.SSLError) and "ALERT" in reason.upper():
            return reason.lower().split("alert_", 1)[-1].replace("_", " ")
        seen = seen.__cause__ or seen.__context__
    return None


def connect_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (refused, TLS not trusted, DNS, ...)."""
    root = _root_cause(exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    text = short(exc) if not isinstance(root, OSError) or root is exc else f"{short(exc)} ({short(root)})"
    lowered = text.lower()
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        detail = text.split("certificate verify failed:")[-1].strip(" ()_")
        return f"TLS certificate not trusted ({detail.split('(')[0].strip()})"
    if "name or service not known" in lowered or "temporary failure in name resolution" in lowered:
        return f"DNS lookup failed ({text})"
    if "connection refused" in lowered:
        return "connection refused"
    return text


def translate(exc: httpx.HTTPError, *, where: str, what: str, limit: float, trace: _Trace | None = None) -> CouldNotVerify:
    """The probe error for a request to ``where`` that httpx could not complete (raise it ``from None``)."""
    if isinstance(exc, httpx.TimeoutException):
        return _stall(trace or _Trace(), where, str(exc.request.url) if _has_request(exc) else "", what, limit)
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(f"cannot connect to {where}: {connect_reason(exc)}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        alert = tls_alert(exc)
        if alert is not None:
            return certificate_refused(where, what, alert)
        return Unreachable(f"{where} closed the connection ({what}): {short(exc)}")
    if isinstance(exc, httpx.TooManyRedirects):
        return UnexpectedResponse(f"{where}: too many redirects ({what})")
    return Unreachable(f"{where} ({what}): {short(exc)}")


def certificate_refused(where: str, what: str, alert: str) -> ClientCertRefused:
    """The error for a server whose TLS alert ``alert`` refused the checker's client certificate."""
    return ClientCertRefused(f"{where} refused the TLS session with the alert '{alert}' ({what}): it demands a "
                             "client certificate it trusts; set client_cert / client_key to one that is current "
                             "and issued by its client CA")


def lost_tls_session(exc: httpx.HTTPError, url: str) -> bool:
    """An HTTPS exchange the server ended without a reason the client read (a TLS 1.3 refusal may look so)."""
    return (url.startswith("https://") and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))
            and tls_alert(exc) is None)


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True
