"""The Vault / OpenBao HTTP API of a probe: ``/v1/...`` calls through the one network layer, a sealed
server or a refused token translated (:class:`~opsverify.errors.VaultSealed`,
:class:`~opsverify.errors.VaultDenied`), and the readers of its times and durations.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from opsverify.config.base import Safety
from opsverify.config.vault import VaultTarget
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, UnexpectedResponse, VaultDenied, VaultSealed
from opsverify.net.http import request
from opsverify.net.tls import TlsSettings


DEPEND_SLACK_S = 0.15  # below the engine's grace, so this probe's own message wins


# -- HTTP plumbing --------------------------------------------------------------------------------
def _where(target: VaultTarget) -> str:
    return urlsplit(target.addr).netloc or target.addr


class _Api:
    """Requests of one probe, all within the probe's own deadline, through the network layer."""

    def __init__(self, ctx: ProbeContext[VaultTarget]) -> None:
        self.ctx = ctx
        self.target = ctx.target
        self.where = _where(self.target)
        self.tls = TlsSettings.of(self.target, ctx.env)

    def checker_token(self) -> str:
        assert self.target.token is not None  # the config requires it wherever it is used
        return self.target.token.reveal().strip()

    async def call(
        self, method: str, path: str, *, token: str | None = None, body: dict[str, Any] | None = None,
        lookup: bool = False,
    ) -> tuple[int, Any]:
        """``method /v1/path``; returns the status and the JSON body (``None`` when not JSON).

        ``lookup``: a read that Vault's API takes as PUT (``sys/leases/lookup``), so it is read_only.
        """
        headers = {"X-Vault-Request": "true"}
        if token:
            headers["X-Vault-Token"] = token
        if self.target.namespace:
            headers["X-Vault-Namespace"] = self.target.namespace
        answer = await request(self.ctx, method, f"{self.target.addr}/v1/{path}", tls=self.tls, headers=headers,
                               json=body, what=f"{method} {path}", safety=Safety.read_only if lookup else None)
        return answer.status, answer.json_or_none()

    def refuse(self, status: int, body: Any, path: str, doing: str) -> CouldNotVerify:
        """The error for an answer other than success (sealed, denied, anything else)."""
        text = _errors(body)
        if status == 503 and "sealed" in text.lower():
            return VaultSealed(f"{self.target.addr} is sealed: cannot {doing} until it is unsealed")
        if status == 403:
            return VaultDenied(
                f"the checker's token was refused on {path} ({text or 'permission denied'}): "
                f"cannot {doing}; check that token and its policy"
            )
        return UnexpectedResponse(f"{path} on {self.where}: HTTP {status}" + (f" ({text})" if text else ""))

    async def data(
        self, method: str, path: str, doing: str, *, token: str | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ``data`` member of a successful answer; anything else raises (see :meth:`refuse`)."""
        status, parsed = await self.call(method, path, token=token, body=body)
        if status != 200:
            raise self.refuse(status, parsed, path, doing)
        payload = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(payload, dict):
            raise UnexpectedResponse(f"{path} on {self.where}: answer has no data object")
        return payload


def _errors(body: Any) -> str:
    """Vault's ``errors`` list as one short line (``"1 error occurred: * x"`` -> ``"x"``)."""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors") or []
    lines: list[str] = []
    for error in errors if isinstance(errors, list) else [errors]:
        for line in str(error).splitlines():
            line = line.strip().lstrip("*").strip()
            if line and not line.endswith("error occurred:") and not line.endswith("errors occurred:"):
                lines.append(line)
    return "; ".join(lines)[:200]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.year <= 1:  # Go's zero time
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _seconds(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0
