"""Third-party API token introspection: ask the provider's verify endpoint about the token.

Cloudflare's ``GET /client/v4/user/tokens/verify`` (the default shape) answers
``{"success": true, "errors": [], "messages": [...], "result": {"id", "status": "active",
"not_before"?, "expires_on"?}}`` for a live token, ``status`` ``disabled`` / ``expired`` for one that
was switched off, and HTTP 401 ``{"success": false, "errors": [{"code": 1000, "message": "Invalid
API Token"}], "result": null}`` for a wrong or deleted one.

A token the provider refuses or reports inactive is data (the check fails with the provider's own
reason); only "could not ask" is an error: refused connection, timeout, a 5xx, an unreadable answer.

Example::

    info = await introspect(ctx)       # ctx.target is an ApiTokenTarget
    info.active, info.reason, info.expires_at, info.days_left

The credential inventory (``opsverify credentials``, :mod:`opsverify.inventory`) lists these tokens
from this same probe's result: ``token_id``, ``expires_at``, ``expiry_problem``, ``active``/``reason``,
with the target's ``issued_at`` and ``min_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from opsverify.config.api_tokens import ApiTokenTarget
from opsverify.engine import ProbeContext
from opsverify.errors import JsonPathError, UnexpectedResponse
from opsverify.jsonpath import lookup
from opsverify.probes.webapi import WebApi, where

@dataclass
class TokenIntrospection:
    """What the provider said about the token."""

    url: str
    http_status: int
    active: bool
    status: str  # the value at active_path, as text ("active", "disabled" ...), or "HTTP 401"
    reason: str  # the provider's own words when it is not active ("Invalid API Token")
    token_id: str | None = None
    expires_at: datetime | None = None
    expiry_problem: str | None = None  # the expiry could not be read from the answer

    @property
    def days_left(self) -> float | None:
        """Days until ``expires_at`` (negative once past), ``None`` when the token never expires."""
        if self.expires_at is None:
            return None
        return (self.expires_at - datetime.now(timezone.utc)).total_seconds() / 86400


def _reason(body: Any, fallback: str) -> str:
    """The provider's reason: Cloudflare-style ``errors[].message``, else ``error``/``message``, else text."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts = []
            for error in errors:
                if isinstance(error, dict) and error.get("message"):
                    code = f" (code {error['code']})" if error.get("code") is not None else ""
                    parts.append(f"{error['message']}{code}")
                elif isinstance(error, str):
                    parts.append(error)
            if parts:
                return "; ".join(parts)[:300]
        for key in ("error_description", "error", "message"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])[:300]
    return fallback


def parse_time(value: Any) -> datetime:
    """RFC 3339 / ISO 8601 text, or Unix seconds (int/float) -> aware UTC datetime."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ValueError(f"{value!r} is not a time")


def _matches(seen: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(seen, bool):
        return seen is wanted
    return str(seen) == str(wanted)


async def introspect(ctx: ProbeContext[ApiTokenTarget]) -> TokenIntrospection:
    """Call the target's verify endpoint with its token and read activity and expiry from the answer."""
    target = ctx.target
    api = WebApi(ctx, base_url=target.verify_url, ca_bundle=target.ca_bundle, verify_tls=target.verify_tls)
    token = target.token.reveal().strip()
    answer = await api.call(target.method, "", headers={target.header: target.prefix + token,
                                                        "accept": "application/json"})
    body = answer.json
    if answer.status in (401, 403):
        return TokenIntrospection(target.verify_url, answer.status, False, f"HTTP {answer.status}",
                                  _reason(body, answer.text or "refused"))
    if answer.status >= 300 or not isinstance(body, dict):
        raise UnexpectedResponse(
            f"{where(target.verify_url)} answered the token verify call with HTTP {answer.status}"
            + (f" ({_reason(body, answer.text)})" if (body or answer.text) else "")
        )
    try:
        seen = lookup(body, target.active_path)
    except JsonPathError as exc:
        return TokenIntrospection(target.verify_url, answer.status, False, "no status",
                                  f"{_reason(body, 'the answer has no status')} ({exc})")
    active = _matches(seen, target.active_value)
    info = TokenIntrospection(
        url=target.verify_url, http_status=answer.status, active=active, status=str(seen),
        reason="" if active else _reason(body, f"status {seen}"),
    )
    if target.id_path:
        try:
            info.token_id = str(lookup(body, target.id_path))
        except JsonPathError:
            pass
    if target.expires_path:
        try:
            raw = lookup(body, target.expires_path)
        except JsonPathError:
            raw = None  # Cloudflare leaves expires_on out for a token without an expiry
        if raw is not None:
            try:
                info.expires_at = parse_time(raw)
            except ValueError as exc:
                info.expiry_problem = f"{target.expires_path} = {raw!r} is not a time ({exc})"
    return info
