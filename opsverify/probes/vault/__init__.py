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

from opsverify.probes.vault.facts import (
    VaultHealth, VaultSealStatus, VaultLeader, RaftPeer, VaultAutopilot, VaultRaft, VaultTokenInfo,
    VaultLeaseInfo, VaultKvSecret, VaultAudit,
)
from opsverify.probes.vault.api import (
    DEPEND_SLACK_S,
)
from opsverify.probes.vault.server import (
    HEALTH_CODES, health, seal_status, leader, raft,
)
from opsverify.probes.vault.tokens import (
    MAX_LEASES, checker_token, token, previous_token, lease,
)
from opsverify.probes.vault.kv_audit import (
    kv_secret, audit,
)

__all__ = [
    "HEALTH_CODES", "DEPEND_SLACK_S", "MAX_LEASES", "VaultHealth", "VaultSealStatus", "VaultLeader",
    "RaftPeer", "VaultAutopilot", "VaultRaft", "VaultTokenInfo", "VaultLeaseInfo", "VaultKvSecret",
    "VaultAudit", "health", "seal_status", "leader", "raft", "checker_token", "token", "previous_token",
    "lease", "kv_secret", "audit",
]
