"""Vault / OpenBao is initialised, unsealed, led, fully peered, audited, and its credentials are fresh.

Sealed is a *failure* of the seal and health checks (the system is not as expected); the checks that
need to read behind the seal then *error* (``VaultSealed``: they could not look), like every check
of an unreachable server (``Unreachable``).
"""

from __future__ import annotations

import pytest

from opsverify.config.thresholds import Threshold
from opsverify.durations import judge_duration

pytestmark = [pytest.mark.predeploy]

SERVING_ROLES = {"active", "standby", "performance standby", "DR secondary"}
ROLE_ACCEPTS = {
    "any": SERVING_ROLES,
    "active": {"active"},
    "standby": {"standby", "performance standby"},
}
ROLE_EXPECTED = {
    "any": "an unsealed node that is active or standby",
    "active": "the active node",
    "standby": "a standby node (standby or performance standby)",
}


def _expiry_note(expire_time, renewable: bool) -> str:
    when = f"expires {expire_time:%Y-%m-%d %H:%M:%S} UTC, " if expire_time else ""
    return f" ({when}{'renewable' if renewable else 'not renewable'})"


# -- sealed Vault -------------------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.runbook("vault#initialized")
@pytest.mark.severity("critical")
def test_vault_is_initialized(vault_health, target, expect):
    expect.that(
        vault_health.initialized,
        expected=f"an initialized Vault at {target.addr}",
        actual=f"not initialized (sys/health HTTP {vault_health.status})",
    )


@pytest.mark.smoke
@pytest.mark.runbook("vault#sealed")
@pytest.mark.severity("critical")
def test_vault_is_unsealed(vault_seal_status, target, expect):
    seal = vault_seal_status
    expect.fact("seal", f"{seal.type} {seal.threshold}/{seal.shares}, progress {seal.progress}")
    if not seal.initialized:
        actual = "sealed and not initialized (no key shares exist yet)"
        action = "find out why the node has empty storage before initializing anything [see runbook vault#initialized]"
    elif seal.recovery_seal or seal.type != "shamir":
        actual = f"sealed ({seal.type} auto-unseal seal)"
        action = (f"the {seal.type} seal did not unseal it: check that the node can reach its KMS/HSM and "
                  "restart it (recovery keys do not unseal a node)")
    else:
        actual = f"sealed (unseal progress {seal.progress}/{seal.threshold})"
        action = (f"unseal with {seal.threshold} of {seal.shares} key shares ({seal.remaining} more needed): "
                  "each key holder runs `vault operator unseal`, then confirm the services reconnect")
    expect.that(not seal.sealed, expected="unsealed", actual=actual, action=action)


@pytest.mark.smoke
@pytest.mark.configured("seal")
@pytest.mark.runbook("vault#seal-config")
def test_vault_seal_has_expected_type_and_threshold(vault_seal_status, target, expect):
    seal, want = vault_seal_status, target.seal
    wrong = []
    if want.type is not None and seal.type != want.type:
        wrong.append(f"type {seal.type} (want {want.type})")
    if want.threshold is not None and seal.threshold != want.threshold:
        wrong.append(f"threshold {seal.threshold} (want {want.threshold})")
    if want.shares is not None and seal.shares != want.shares:
        wrong.append(f"shares {seal.shares} (want {want.shares})")
    expected = ", ".join(f"{k} {v}" for k, v in want.model_dump(exclude_none=True).items())
    expect.that(not wrong, expected=f"a seal with {expected}", actual="; ".join(wrong))


# -- Vault unavailable ----------------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.runbook("vault#ha-role")
@pytest.mark.severity("critical")
def test_vault_node_is_active_or_standby_as_expected(vault_health, target, expect):
    role = vault_health.role
    expect.fact("role", role)
    expect.that(
        role in ROLE_ACCEPTS[target.role],
        expected=ROLE_EXPECTED[target.role],
        actual=f"{role} (sys/health HTTP {vault_health.status})",
    )


@pytest.mark.smoke
@pytest.mark.configured("replication")
@pytest.mark.runbook("vault#replication")
def test_vault_replication_is_in_expected_mode(vault_health, target, expect):
    want = target.replication
    seen = {"performance": vault_health.replication_performance_mode, "dr": vault_health.replication_dr_mode}
    wanted = want.model_dump(exclude_none=True)
    wrong = [f"{kind} replication {seen[kind]} (want {mode})" for kind, mode in wanted.items() if seen[kind] != mode]
    expect.that(
        not wrong,
        expected=", ".join(f"{kind} replication {mode}" for kind, mode in wanted.items()),
        actual="; ".join(wrong),
    )


@pytest.mark.smoke
@pytest.mark.runbook("vault#raft-leader")
@pytest.mark.severity("critical")
def test_vault_has_a_leader(vault_leader, target, expect):
    if not vault_leader.ha_enabled:
        expect.fact("leader", "HA not enabled: the node serves on its own")
        return
    expect.fact("leader", vault_leader.leader_address)
    expect.that(
        bool(vault_leader.leader_address),
        expected="an elected leader (sys/leader)",
        actual="no leader address: no leader is elected",
    )


def _require_raft(vault_raft, expect):
    __tracebackhide__ = True
    expect.that(
        vault_raft.is_raft,
        expected="integrated (raft) storage",
        actual=f"storage {vault_raft.storage_type}",
        action="the file expects raft: check that it points at the right cluster, or remove its raft: block",
    )


@pytest.mark.smoke
@pytest.mark.configured("raft")
@pytest.mark.runbook("vault#raft-peers")
def test_vault_raft_has_enough_peers(vault_raft, target, expect):
    _require_raft(vault_raft, expect)
    seen = ", ".join(f"{p.node_id}{' (leader)' if p.leader else ''}" for p in vault_raft.peers)
    expect.that(
        len(vault_raft.peers) >= target.raft.expected_peers,
        expected=f"at least {target.raft.expected_peers} raft peers",
        actual=f"{len(vault_raft.peers)}: {seen or 'none'}",
    )


@pytest.mark.smoke
@pytest.mark.configured("raft")
@pytest.mark.runbook("vault#raft-peers")
@pytest.mark.severity("critical")
def test_vault_raft_voters_form_a_quorum(vault_raft, target, expect):
    _require_raft(vault_raft, expect)
    cluster = max(target.raft.expected_peers, len(vault_raft.peers))
    quorum = cluster // 2 + 1
    voters = vault_raft.voters
    expect.record("raft voters", len(voters), threshold=Threshold(critical=quorum), direction="at_least",
                  level="ok" if len(voters) >= quorum else "critical")
    expect.that(
        len(voters) >= quorum,
        expected=f"at least {quorum} voters (a majority of {cluster} peers)",
        actual=f"{len(voters)} voter{'s' if len(voters) != 1 else ''}: {', '.join(voters) or 'none'}",
    )


@pytest.mark.smoke
@pytest.mark.configured("raft")
@pytest.mark.runbook("vault#raft-peers")
def test_vault_raft_expected_peers_are_present(vault_raft, target, expect):
    if not target.raft.peers:
        pytest.skip("raft.peers lists no node ids for this target")
    _require_raft(vault_raft, expect)
    present = {p.node_id for p in vault_raft.peers}
    missing = [p for p in target.raft.peers if p not in present]
    expect.that(
        not missing,
        expected=f"peers {', '.join(target.raft.peers)}",
        actual=f"missing {', '.join(missing)} (present: {', '.join(sorted(present)) or 'none'})",
    )


@pytest.mark.smoke
@pytest.mark.configured("raft")
@pytest.mark.runbook("vault#raft-peers")
def test_vault_raft_has_no_unknown_peers(vault_raft, target, expect):
    if not target.raft.peers:
        pytest.skip("raft.peers lists no node ids for this target")
    _require_raft(vault_raft, expect)
    unknown = [f"{p.node_id} ({p.address})" for p in vault_raft.peers if p.node_id not in target.raft.peers]
    expect.that(
        not unknown,
        expected=f"only the listed peers {', '.join(target.raft.peers)}",
        actual=f"unknown peer{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
    )


@pytest.mark.smoke
@pytest.mark.configured("raft")
@pytest.mark.runbook("vault#autopilot")
def test_vault_autopilot_reports_healthy(vault_raft, target, expect):
    _require_raft(vault_raft, expect)
    pilot = vault_raft.autopilot
    if pilot is None:
        pytest.skip(f"autopilot state is not available on this server ({vault_raft.autopilot_note})")
    expect.fact("failure_tolerance", pilot.failure_tolerance)
    expect.that(
        pilot.healthy,
        expected="autopilot healthy",
        actual=f"unhealthy: {', '.join(pilot.unhealthy) or 'no server named'} "
        f"(failure tolerance {pilot.failure_tolerance})",
    )


# -- lease and token renewal -----------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.rotation
@pytest.mark.configured("token")
@pytest.mark.runbook("vault#token-ttl")
@pytest.mark.severity("critical")
def test_vault_checker_token_has_enough_ttl_left(vault_checker_token, target, expect):
    token = vault_checker_token
    expect.that(token.found, expected=f"the checker's token ({target.token.label}) accepted", actual=token.problem)
    if token.never_expires:
        expect.fact("checker_token", "never expires")
        return
    judge_duration(expect, token.ttl_s, target.token_min_ttl, metric="checker token TTL left",
                   what="TTL left on the checker's token",
                   at_least=True, note=_expiry_note(token.expire_time, token.renewable))


@pytest.mark.smoke
@pytest.mark.rotation
@pytest.mark.configured("token_renewable")
@pytest.mark.runbook("vault#token-renewable")
def test_vault_checker_token_is_renewable_as_expected(vault_checker_token, target, expect):
    token = vault_checker_token
    expect.that(token.found, expected=f"the checker's token ({target.token.label}) accepted", actual=token.problem)
    if token.never_expires:
        expect.fact("checker_token", "never expires: renewal does not apply")
        return
    want = target.token_renewable
    expect.that(
        token.renewable == want,
        expected=f"the checker's token {'renewable' if want else 'not renewable'}",
        actual="renewable" if token.renewable else "not renewable",
    )


@pytest.mark.smoke
@pytest.mark.rotation
@pytest.mark.each("tokens")
@pytest.mark.runbook("vault#token-ttl")
def test_vault_token_has_enough_ttl_left(vault_token, target, target_item, expect):
    token = vault_token
    expect.that(token.found, expected=f"token {target_item.name} accepted", actual=token.problem)
    if token.never_expires:
        expect.fact("token", "never expires")
        return
    judge_duration(expect, token.ttl_s, target_item.min_ttl, metric="token TTL left",
                   what=f"TTL left on token {target_item.name}",
                   at_least=True, note=_expiry_note(token.expire_time, token.renewable))


@pytest.mark.rotation
@pytest.mark.each("tokens")
@pytest.mark.runbook("vault#token-renewable")
def test_vault_token_is_renewable_as_expected(vault_token, target, target_item, expect):
    if target_item.renewable is None:
        pytest.skip(f"token {target_item.name} does not say whether it should be renewable")
    token = vault_token
    expect.that(token.found, expected=f"token {target_item.name} accepted", actual=token.problem)
    if token.never_expires:
        expect.fact("token", "never expires: renewal does not apply")
        return
    want = target_item.renewable
    expect.that(
        token.renewable == want,
        expected=f"token {target_item.name} {'renewable' if want else 'not renewable'}",
        actual="renewable" if token.renewable else "not renewable",
    )


@pytest.mark.smoke
@pytest.mark.rotation
@pytest.mark.each("leases")
@pytest.mark.runbook("vault#lease-ttl")
def test_vault_lease_has_enough_ttl_left(vault_lease, target, target_item, expect):
    lease = vault_lease
    expect.that(lease.found, expected=f"{target_item.label} present", actual=lease.problem)
    expect.fact("lease", lease.lease_id)
    counted = f", the shortest of {lease.count}: {lease.lease_id}" if target_item.prefix else ""
    note = _expiry_note(lease.expire_time, lease.renewable)[:-1] + counted + ")"
    judge_duration(expect, lease.ttl_s, target_item.min_ttl, metric="lease TTL left",
                   what=f"TTL left on {target_item.label}",
                   at_least=True, note=note)


@pytest.mark.rotation
@pytest.mark.each("leases")
@pytest.mark.runbook("vault#lease-ttl")
def test_vault_lease_is_renewable_as_expected(vault_lease, target, target_item, expect):
    if target_item.renewable is None:
        pytest.skip(f"lease {target_item.name} does not say whether it should be renewable")
    lease = vault_lease
    expect.that(lease.found, expected=f"{target_item.label} present", actual=lease.problem)
    want = target_item.renewable
    expect.that(
        lease.renewable == want,
        expected=f"{target_item.label} {'renewable' if want else 'not renewable'}",
        actual=("renewable" if lease.renewable else "not renewable")
        + (f" ({lease.lease_id}, the shortest-lived of {lease.count})" if target_item.prefix else ""),
    )


# -- token rotation: the phase comes from --phase or the environment file's rotation: block ------------
@pytest.mark.rotation
@pytest.mark.each("tokens")
@pytest.mark.configured("previous")
@pytest.mark.runbook("vault#token-rotation")
@pytest.mark.severity("critical")
def test_vault_previous_token_is_valid_only_until_the_rotation_ends(vault_previous_token, target, target_item,
                                                                    phase, expect):
    old = vault_previous_token
    label = f"the previous token of {target_item.name} ({target_item.previous.label})"
    if phase in ("before", "overlap"):
        expect.that(
            old.found,
            expected=f"{label} still valid (rotation phase {phase})",
            actual=f"{old.problem}: services not yet moved to the new token lose access to their secrets",
            action="Re-issue a token for the services still on the old one (or finish the rollout of the new "
            "token) before revoking; the overlap must last until every replica reads the new token "
            "[see runbook vault#token-rotation]",
        )
        return
    ttl = "never expires" if old.never_expires else f"{old.ttl_s / 3600:.1f} h TTL left"
    expect.that(
        not old.found,
        expected=f"{label} revoked (rotation phase {phase or 'after, no phase declared'})",
        actual=f"still valid ({ttl})",
    )


# -- emergency rotation and audit ----------------------------------------------------------------------------
@pytest.mark.rotation
@pytest.mark.each("secrets")
@pytest.mark.runbook("vault#rotation-drift")
def test_vault_secret_was_rotated_within_max_age(vault_kv_secret, target, target_item, expect):
    secret = vault_kv_secret
    expect.that(secret.found, expected=f"secret {secret.path} present", actual=secret.problem)
    note = f" (version {secret.current_version} written {secret.written:%Y-%m-%d %H:%M:%S} UTC)"
    judge_duration(expect, secret.age_s, target_item.max_age, metric="secret age", what=f"age of {secret.path}",
                   at_least=False,
                   note=note)


@pytest.mark.smoke
@pytest.mark.configured("token")
@pytest.mark.runbook("vault#audit")
@pytest.mark.severity("critical")
def test_vault_has_an_audit_device_enabled(vault_audit, target, expect):
    devices = vault_audit.devices
    expect.fact("audit_devices", sorted(devices))
    expect.that(
        bool(devices),
        expected="at least one audit device enabled",
        actual="no audit device (sys/audit lists none)",
    )
