"""Vault / OpenBao facts: health, seal status, leader, Raft peers and autopilot, a token, leases,
a KV secret's metadata and the audit devices, as the checks read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
