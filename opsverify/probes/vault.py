"""Vault / OpenBao probes over the HTTP API (``/v1/...``), through the one network layer (:mod:`opsverify.net.http`).

Every probe except :func:`health` and :func:`seal_status` first awaits the target's ``sys/health``
result through ``ctx.depend``: an unreachable server then errors every Vault check with the same
one-line cause (and only one connection attempt), and a sealed or uninitialised server makes the
checks behind the seal error with :class:`VaultSealed` instead of a cryptic HTTP 503. The seal and
health checks themselves see the sealed state as data and *fail*.

Faults a check exists to catch are returned as data, not raised: a token the server refuses, a
lease that is gone, a KV secret that does not exist. Errors are only for "could not see":
refused / timed out (:class:`~opsverify.errors.Unreachable`, :class:`~opsverify.errors.ProbeTimeout`),
the checker's token lacking a permission (:class:`VaultDenied`), a sealed server (:class:`VaultSealed`).

Shapes relied on (OpenBao 2.7 / Vault 1.x, see tests/servers/test_vault_launcher.py): ``sys/health``,
``sys/seal-status`` and ``sys/leader`` answer without the ``data`` envelope; ``sys/health`` answers
200 active, 429 standby, 473 performance standby, 472 DR secondary, 503 sealed, 501 not initialised,
always with a JSON body.

Example::

    health = await health(ctx)            # ctx.target is a VaultTarget
    health.role                           # "active", "standby", "sealed" ...
    token = await checker_token(ctx)      # auth/token/lookup-self with the checker's token
    token.ttl_s, token.renewable
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit


from opsverify.config.base import Safety
from opsverify.config.vault import VaultLease, VaultSecret, VaultTarget, VaultToken
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, ProbeTimeout, UnexpectedResponse, VaultDenied, VaultSealed
from opsverify.net.http import request
from opsverify.net.tls import TlsSettings

HEALTH_CODES = {200, 429, 472, 473, 501, 503}
DEPEND_SLACK_S = 0.15  # below the engine's grace, so this probe's own message wins
MAX_LEASES = 100  # leases looked up under one prefix (the shortest TTL among them is reported)


# -- facts -----------------------------------------------------------------------------------------
@dataclass
class VaultHealth:
    """``sys/health``: HTTP status and body."""

    addr: str
    status: int
    initialized: bool
    sealed: bool
    standby: bool
    performance_standby: bool
    replication_performance_mode: str
    replication_dr_mode: str
    version: str
    cluster_name: str | None = None

    @property
    def role(self) -> str:
        """``not initialized``, ``sealed``, ``DR secondary``, ``performance standby``, ``standby``, ``active``."""
        if not self.initialized:
            return "not initialized"
        if self.sealed:
            return "sealed"
        if self.status == 472:
            return "DR secondary"
        if self.performance_standby or self.status == 473:
            return "performance standby"
        if self.standby:
            return "standby"
        return "active"


@dataclass
class VaultSealStatus:
    """``sys/seal-status``: seal type, threshold ``t`` of ``n`` key shares, unseal progress."""

    type: str
    initialized: bool
    sealed: bool
    threshold: int
    shares: int
    progress: int
    recovery_seal: bool
    storage_type: str | None
    version: str

    @property
    def remaining(self) -> int:
        """Key shares still to submit before the node unseals."""
        return max(self.threshold - self.progress, 0)


@dataclass
class VaultLeader:
    """``sys/leader``: whether HA is on and who leads."""

    ha_enabled: bool
    is_self: bool
    leader_address: str
    leader_cluster_address: str
    active_time: str | None


@dataclass
class RaftPeer:
    """One server of ``sys/storage/raft/configuration``."""

    node_id: str
    address: str
    leader: bool
    voter: bool


@dataclass
class VaultAutopilot:
    """``sys/storage/raft/autopilot/state``."""

    healthy: bool
    failure_tolerance: int
    leader: str
    voters: list[str]
    unhealthy: list[str]


@dataclass
class VaultRaft:
    """Integrated storage: the peers, and autopilot's view (``None`` where not available)."""

    storage_type: str
    peers: list[RaftPeer] = field(default_factory=list)
    autopilot: VaultAutopilot | None = None
    autopilot_note: str = ""

    @property
    def is_raft(self) -> bool:
        return self.storage_type == "raft"

    @property
    def voters(self) -> list[str]:
        return [p.node_id for p in self.peers if p.voter]

    @property
    def leader(self) -> str | None:
        return next((p.node_id for p in self.peers if p.leader), None)


@dataclass
class VaultTokenInfo:
    """A token's lookup: TTL left, renewability. ``found`` is false when the server refused it."""

    name: str
    found: bool
    problem: str = ""
    ttl_s: float = 0.0
    creation_ttl_s: float = 0.0
    expire_time: datetime | None = None
    renewable: bool = False
    policies: list[str] = field(default_factory=list)
    display_name: str = ""
    type: str = ""

    @property
    def never_expires(self) -> bool:
        """True for tokens without a TTL (root tokens, tokens created with no TTL)."""
        return self.found and self.ttl_s == 0 and self.expire_time is None


@dataclass
class VaultLeaseInfo:
    """A lease lookup (or the lease with the least TTL under a prefix); ``found`` false when gone."""

    label: str
    found: bool
    problem: str = ""
    lease_id: str | None = None
    ttl_s: float = 0.0
    renewable: bool = False
    expire_time: datetime | None = None
    count: int = 1


@dataclass
class VaultKvSecret:
    """A KV v2 secret's metadata: when its current version was written."""

    path: str
    found: bool
    problem: str = ""
    current_version: int = 0
    written: datetime | None = None
    metadata_updated: datetime | None = None
    age_s: float = 0.0
    current_deleted: bool = False


@dataclass
class VaultAudit:
    """``sys/audit``: enabled devices, path -> type."""

    devices: dict[str, str]


# -- HTTP plumbing --------------------------------------------------------------------------------
def _where(target: VaultTarget) -> str:
    return urlsplit(target.addr).netloc or target.addr


class _Api:
    """Requests of one probe, all within the probe's own deadline, through the network layer."""

    def __init__(self, ctx: ProbeContext[Any]) -> None:
        self.ctx = ctx
        self.target: VaultTarget = ctx.target
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


async def _health_of(ctx: ProbeContext[Any], probe: str = "vault_health") -> Any:
    """Another probe's result of this target, waited for within this probe's own timeout.

    The wait is shielded: when this probe gives up first, the shared probe must go on for the
    other checks that wait for it (cancelling ``ctx.depend`` would cancel the shared run itself).
    Giving up says the same as the health probe itself would.
    """
    target: VaultTarget = ctx.target
    ctx.phase = f"waiting for {'sys/health' if probe == 'vault_health' else 'sys/seal-status'} of {_where(target)}"
    shared = asyncio.ensure_future(ctx.depend(probe))
    try:
        return await asyncio.wait_for(asyncio.shield(shared), ctx.timeout + DEPEND_SLACK_S)
    except (asyncio.TimeoutError, TimeoutError):
        path = "sys/health" if probe == "vault_health" else "sys/seal-status"
        raise ProbeTimeout(f"{_where(target)} did not answer {path} within {ctx.timeout:g} s") from None


async def _ready(ctx: ProbeContext[Any], doing: str) -> VaultHealth:
    """The target's (shared) health; raises when there is nothing behind the seal to read."""
    health: VaultHealth = await _health_of(ctx)
    if not health.initialized:
        raise VaultSealed(f"{health.addr} is not initialized: cannot {doing}")
    if health.sealed:
        raise VaultSealed(f"{health.addr} is sealed: cannot {doing} until it is unsealed")
    return health


# -- probes ----------------------------------------------------------------------------------------
async def health(ctx: ProbeContext[Any]) -> VaultHealth:
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


async def seal_status(ctx: ProbeContext[Any]) -> VaultSealStatus:
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


async def leader(ctx: ProbeContext[Any]) -> VaultLeader:
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


async def raft(ctx: ProbeContext[Any]) -> VaultRaft:
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


async def _lookup_self(ctx: ProbeContext[Any], api: _Api, name: str, token: str) -> VaultTokenInfo:
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


async def checker_token(ctx: ProbeContext[Any]) -> VaultTokenInfo:
    """``auth/token/lookup-self`` with the checker's own token."""
    api = _Api(ctx)
    return await _lookup_self(ctx, api, "the checker's token", api.checker_token())


async def token(ctx: ProbeContext[Any]) -> VaultTokenInfo:
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


async def previous_token(ctx: ProbeContext[Any]) -> VaultTokenInfo:
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


async def lease(ctx: ProbeContext[Any]) -> VaultLeaseInfo:
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


async def kv_secret(ctx: ProbeContext[Any]) -> VaultKvSecret:
    """``<mount>/metadata/<path>``: when the current version of a KV v2 secret was written."""
    item: VaultSecret = ctx.item
    doing = f"read the metadata of {item.full_path}"
    api = _Api(ctx)
    await _ready(ctx, doing)
    path = f"{item.mount}/metadata/{item.path}"
    status, body = await api.call("GET", path, token=api.checker_token())
    if status == 404:
        return VaultKvSecret(
            item.full_path, False, f"no such secret (nothing at {path}; is {item.mount}/ a KV version 2 mount?)"
        )
    if status != 200 or not isinstance((body or {}).get("data"), dict):
        raise api.refuse(status, body, path, doing)
    data: dict[str, Any] = body["data"]
    current = int(data.get("current_version") or 0)
    version = (data.get("versions") or {}).get(str(current)) or {}
    # The current version's creation is the rotation time; updated_time also moves on metadata-only
    # edits (max_versions, custom_metadata), which would hide rotation drift.
    written = _time(version.get("created_time")) or _time(data.get("updated_time"))
    if written is None:
        raise UnexpectedResponse(f"{path} on {api.where}: metadata has no version timestamps")
    age = (datetime.now(timezone.utc) - written).total_seconds()
    return VaultKvSecret(
        path=item.full_path,
        found=True,
        current_version=current,
        written=written,
        metadata_updated=_time(data.get("updated_time")),
        age_s=max(age, 0.0),
        current_deleted=bool(_time(version.get("deletion_time"))) or bool(version.get("destroyed")),
    )


async def audit(ctx: ProbeContext[Any]) -> VaultAudit:
    """``GET sys/audit`` (needs ``sudo`` on sys/audit): the enabled audit devices."""
    doing = "list the audit devices"
    api = _Api(ctx)
    await _ready(ctx, doing)
    data = await api.data("GET", "sys/audit", doing, token=api.checker_token())
    devices = {
        str(path): str((info or {}).get("type", "?")) for path, info in data.items() if isinstance(info, dict)
    }
    return VaultAudit(devices=devices)
