"""Vault / OpenBao server probes: health, seal status, the leader and the Raft cluster.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opsverify.config.vault import VaultTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, UnexpectedResponse, VaultSealed
from opsverify.probes.vault.api import _Api, _errors, _where, DEPEND_SLACK_S
from opsverify.probes.vault.facts import (
    RaftPeer,
    VaultAutopilot,
    VaultHealth,
    VaultLeader,
    VaultRaft,
    VaultSealStatus,
)


HEALTH_CODES = {200, 429, 472, 473, 501, 503}


async def _health_of(ctx: ProbeContext[VaultTarget], probe: str = "vault_health") -> Any:
    """Another probe's result of this target, waited for within this probe's own timeout.

    The wait is shielded: when this probe gives up first, the shared probe must go on for the
    other checks that wait for it (cancelling ``ctx.depend`` would cancel the shared run itself).
    Giving up says the same as the health probe itself would.
    """
    target = ctx.target
    ctx.phase = f"waiting for {'sys/health' if probe == 'vault_health' else 'sys/seal-status'} of {_where(target)}"
    shared = asyncio.ensure_future(ctx.depend(probe))
    try:
        return await asyncio.wait_for(asyncio.shield(shared), ctx.timeout + DEPEND_SLACK_S)
    except (asyncio.TimeoutError, TimeoutError):
        path = "sys/health" if probe == "vault_health" else "sys/seal-status"
        raise ProbeTimeout(f"{_where(target)} did not answer {path} within {ctx.timeout:g} s") from None


async def _ready(ctx: ProbeContext[VaultTarget], doing: str) -> VaultHealth:
    """The target's (shared) health; raises when there is nothing behind the seal to read."""
    health: VaultHealth = await _health_of(ctx)
    if not health.initialized:
        raise VaultSealed(f"{health.addr} is not initialized: cannot {doing}")
    if health.sealed:
        raise VaultSealed(f"{health.addr} is sealed: cannot {doing} until it is unsealed")
    return health


# -- probes ----------------------------------------------------------------------------------------
async def health(ctx: ProbeContext[VaultTarget]) -> VaultHealth:
    """``GET sys/health`` (unauthenticated): read the body whatever the status code says."""
    api = _Api(ctx)
    status, body = await api.call("GET", "sys/health")
    if status not in HEALTH_CODES or not isinstance(body, dict) or "initialized" not in body:
        raise UnexpectedResponse(
            f"no Vault health answer at {api.target.addr}/v1/sys/health (HTTP {status}"
            + (f", {_errors(body)}" if _errors(body) else "")
            + ")"
        )
    return VaultHealth(
        addr=api.target.addr,
        status=status,
        initialized=bool(body.get("initialized")),
        sealed=bool(body.get("sealed")),
        standby=bool(body.get("standby")),
        performance_standby=bool(body.get("performance_standby")),
        replication_performance_mode=str(body.get("replication_performance_mode") or "unknown"),
        replication_dr_mode=str(body.get("replication_dr_mode") or "unknown"),
        version=str(body.get("version") or ""),
        cluster_name=body.get("cluster_name"),
    )


async def seal_status(ctx: ProbeContext[VaultTarget]) -> VaultSealStatus:
    """``GET sys/seal-status`` (unauthenticated; answers 200 even when sealed)."""
    api = _Api(ctx)
    status, body = await api.call("GET", "sys/seal-status")
    if status != 200 or not isinstance(body, dict) or "sealed" not in body:
        raise UnexpectedResponse(f"no seal status at {api.target.addr}/v1/sys/seal-status (HTTP {status})")
    return VaultSealStatus(
        type=str(body.get("type") or "unknown"),
        initialized=bool(body.get("initialized")),
        sealed=bool(body.get("sealed")),
        threshold=int(body.get("t") or 0),
        shares=int(body.get("n") or 0),
        progress=int(body.get("progress") or 0),
        recovery_seal=bool(body.get("recovery_seal")),
        storage_type=body.get("storage_type"),
        version=str(body.get("version") or ""),
    )


async def leader(ctx: ProbeContext[VaultTarget]) -> VaultLeader:
    """``GET sys/leader`` (unauthenticated) on an unsealed node."""
    api = _Api(ctx)
    await _ready(ctx, "tell who the leader is")
    status, body = await api.call("GET", "sys/leader")
    if status != 200 or not isinstance(body, dict):
        raise api.refuse(status, body, "sys/leader", "tell who the leader is")
    return VaultLeader(
        ha_enabled=bool(body.get("ha_enabled")),
        is_self=bool(body.get("is_self")),
        leader_address=str(body.get("leader_address") or ""),
        leader_cluster_address=str(body.get("leader_cluster_address") or ""),
        active_time=body.get("active_time"),
    )


async def raft(ctx: ProbeContext[VaultTarget]) -> VaultRaft:
    """Raft peers (``sys/storage/raft/configuration``) and autopilot state, where storage is raft."""
    doing = "read the raft configuration"
    api = _Api(ctx)
    await _ready(ctx, doing)
    seal: VaultSealStatus = await _health_of(ctx, "vault_seal_status")
    if seal.storage_type and seal.storage_type != "raft":
        return VaultRaft(storage_type=seal.storage_type)
    token = api.checker_token()
    (status, body), (ap_status, ap_body) = await asyncio.gather(
        api.call("GET", "sys/storage/raft/configuration", token=token),
        api.call("GET", "sys/storage/raft/autopilot/state", token=token),
    )
    if status == 404 and "unsupported path" in _errors(body):
        return VaultRaft(storage_type=seal.storage_type or "not raft")
    if status != 200:
        raise api.refuse(status, body, "sys/storage/raft/configuration", doing)
    servers = (((body or {}).get("data") or {}).get("config") or {}).get("servers")
    if not isinstance(servers, list):
        raise UnexpectedResponse(f"sys/storage/raft/configuration on {api.where}: no servers list")
    peers = [
        RaftPeer(
            node_id=str(s.get("node_id", "?")),
            address=str(s.get("address", "")),
            leader=bool(s.get("leader")),
            voter=bool(s.get("voter")),
        )
        for s in servers
        if isinstance(s, dict)
    ]
    result = VaultRaft(storage_type="raft", peers=peers)
    state = (ap_body or {}).get("data") if isinstance(ap_body, dict) else None
    if ap_status == 200 and isinstance(state, dict):
        members = state.get("servers") or {}
        result.autopilot = VaultAutopilot(
            healthy=bool(state.get("healthy")),
            failure_tolerance=int(state.get("failure_tolerance") or 0),
            leader=str(state.get("leader") or ""),
            voters=[str(v) for v in state.get("voters") or []],
            unhealthy=sorted(
                f"{sid} ({(info or {}).get('status', '?')}, last contact {(info or {}).get('last_contact', '?')})"
                for sid, info in members.items()
                if not (info or {}).get("healthy", False)
            ),
        )
    else:
        result.autopilot_note = f"HTTP {ap_status}" + (f" {_errors(ap_body)}" if _errors(ap_body) else "")
    return result
