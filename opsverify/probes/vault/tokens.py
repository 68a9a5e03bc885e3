"""Vault / OpenBao token probes: the checker's own token, the tokens the runbook names (and their
previous ones, during a rotation), and the leases under a prefix.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opsverify.config.vault import VaultLease, VaultTarget, VaultToken
from opsverify.engine import ProbeContext
from opsverify.probes.vault.api import _Api, _errors, _seconds, _time
from opsverify.probes.vault.facts import VaultLeaseInfo, VaultTokenInfo
from opsverify.probes.vault.server import _ready


MAX_LEASES = 100  # leases looked up under one prefix (the shortest TTL among them is reported)


def _token_info(name: str, data: dict[str, Any]) -> VaultTokenInfo:
    return VaultTokenInfo(
        name=name,
        found=True,
        ttl_s=_seconds(data.get("ttl")),
        creation_ttl_s=_seconds(data.get("creation_ttl")),
        expire_time=_time(data.get("expire_time")),
        renewable=bool(data.get("renewable")),
        policies=[str(p) for p in data.get("policies") or []],
        display_name=str(data.get("display_name") or ""),
        type=str(data.get("type") or ""),
    )


async def _lookup_self(ctx: ProbeContext[VaultTarget], api: _Api, name: str, token: str) -> VaultTokenInfo:
    doing = f"look up token {name}"
    await _ready(ctx, doing)
    status, body = await api.call("GET", "auth/token/lookup-self", token=token)
    if status in (400, 403):
        reason = _errors(body) or "permission denied"
        problem = (f"refused by the server ({reason}): expired, revoked or not a token of this cluster "
                   "(or its policies lack auth/token/lookup-self)")
        return VaultTokenInfo(name=name, found=False, problem=problem)
    if status != 200 or not isinstance((body or {}).get("data"), dict):
        raise api.refuse(status, body, "auth/token/lookup-self", doing)
    return _token_info(name, body["data"])


async def checker_token(ctx: ProbeContext[VaultTarget]) -> VaultTokenInfo:
    """``auth/token/lookup-self`` with the checker's own token."""
    api = _Api(ctx)
    return await _lookup_self(ctx, api, "the checker's token", api.checker_token())


async def token(ctx: ProbeContext[VaultTarget]) -> VaultTokenInfo:
    """One configured token: looks itself up, or is looked up by accessor with the checker's token."""
    item: VaultToken = ctx.item
    api = _Api(ctx)
    if item.token is not None:
        return await _lookup_self(ctx, api, item.name, item.token.reveal().strip())
    doing = f"look up token {item.name} by accessor"
    await _ready(ctx, doing)
    status, body = await api.call(
        "POST", "auth/token/lookup-accessor", token=api.checker_token(), body={"accessor": item.accessor}
    )
    if status == 400:
        reason = _errors(body) or "invalid accessor"
        return VaultTokenInfo(
            name=item.name, found=False, problem=f"no live token has this accessor ({reason}): expired or revoked"
        )
    if status != 200 or not isinstance((body or {}).get("data"), dict):
        raise api.refuse(status, body, "auth/token/lookup-accessor", doing)
    return _token_info(item.name, body["data"])


async def previous_token(ctx: ProbeContext[VaultTarget]) -> VaultTokenInfo:
    """``auth/token/lookup-self`` with the token a rotation replaces (``found`` false: revoked/expired)."""
    item: VaultToken = ctx.item
    assert item.previous is not None
    api = _Api(ctx)
    return await _lookup_self(ctx, api, f"{item.name} (previous)", item.previous.reveal().strip())


async def _lookup_lease(api: _Api, lease_id: str, token: str, doing: str) -> tuple[dict[str, Any] | None, str]:
    status, body = await api.call("PUT", "sys/leases/lookup", token=token, body={"lease_id": lease_id}, lookup=True)
    if status == 400:
        return None, _errors(body) or "invalid lease"
    if status != 200 or not isinstance((body or {}).get("data"), dict):
        raise api.refuse(status, body, "sys/leases/lookup", doing)
    data: dict[str, Any] = body["data"]
    return data, ""


async def lease(ctx: ProbeContext[VaultTarget]) -> VaultLeaseInfo:
    """``sys/leases/lookup`` of one lease, or of every lease under a prefix (the least TTL wins)."""
    item: VaultLease = ctx.item
    doing = f"look up {item.label}"
    api = _Api(ctx)
    await _ready(ctx, doing)
    token = api.checker_token()
    if item.lease_id is not None:
        data, problem = await _lookup_lease(api, item.lease_id, token, doing)
        if data is None:
            return VaultLeaseInfo(item.label, False, f"not found ({problem}): expired or revoked", item.lease_id)
        return _lease_info(item.label, item.lease_id, data, 1)
    prefix = item.prefix or ""
    status, body = await api.call("GET", f"sys/leases/lookup/{prefix}?list=true", token=token)
    if status == 404:
        return VaultLeaseInfo(item.label, False, "no leases under this prefix", count=0)
    if status != 200:
        raise api.refuse(status, body, f"sys/leases/lookup/{prefix}", doing)
    keys = [k for k in ((body or {}).get("data") or {}).get("keys") or [] if not str(k).endswith("/")]
    if not keys:
        return VaultLeaseInfo(item.label, False, "no leases under this prefix", count=0)
    ids = [f"{prefix}{k}" for k in keys[:MAX_LEASES]]
    found = await asyncio.gather(*(_lookup_lease(api, lease_id, token, doing) for lease_id in ids))
    live = [(lease_id, data) for lease_id, (data, _) in zip(ids, found) if data is not None]
    if not live:
        return VaultLeaseInfo(item.label, False, "every lease under this prefix ended while being looked up", count=0)
    lease_id, data = min(live, key=lambda pair: _seconds(pair[1].get("ttl")))
    return _lease_info(item.label, lease_id, data, len(keys))


def _lease_info(label: str, lease_id: str, data: dict[str, Any], count: int) -> VaultLeaseInfo:
    return VaultLeaseInfo(
        label=label,
        found=True,
        lease_id=lease_id,
        ttl_s=_seconds(data.get("ttl")),
        renewable=bool(data.get("renewable")),
        expire_time=_time(data.get("expire_time")),
        count=count,
    )
