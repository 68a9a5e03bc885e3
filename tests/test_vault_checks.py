"""Vault checks against real OpenBao servers (the Vault-API fork): healthy, and each fault they catch.

Servers (module-scoped, free ports, started in parallel, torn down by PID):

* ``dev`` - ``bao server -dev``: in-memory, unsealed, no audit device; holds the tokens, PKI leases
  and KV v2 secrets of the credential checks.
* ``bao`` - a raft node initialised with 5 key shares (threshold 3), with a file audit device.
* ``degraded`` - a raft leader plus a non-voter that joined and was then stopped: two peers, one
  voter, autopilot unhealthy.
* ``sealed`` / ``partial`` - raft nodes (5 shares, threshold 3) sealed through the API; ``partial``
  then gets one key share (progress 1/3). ``uninit`` - a raft node never initialised.
* ``tls`` - ``bao server -dev -dev-tls`` with its generated CA.

A suite run costs a few seconds of pytest start-up, so all healthy and faulty targets go into one
run (``suite``) and the sealed ones into a second (``sealed_suite``); each test asserts on one area.

KV v2 ``updated_time`` / version times cannot be backdated, so "older than its max age" is made by
letting a secret age a bounded few seconds past a tiny ``max_age`` (``0.00001`` days = 0.864 s, or
``3s``) - the servers' parallel start-up pays for that wait.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.vault import VaultServer, start_vault_dev, start_vault_raft
from opsverify_sandbox.tools import find_tool
from tests.harness import SuiteRun, run_checks, start_in_parallel

CHECKS = ["checks/test_vault.py"]
INITIALIZED = "test_vault_is_initialized"
UNSEALED = "test_vault_is_unsealed"
SEAL_CONFIG = "test_vault_seal_has_expected_type_and_threshold"
ROLE = "test_vault_node_is_active_or_standby_as_expected"
REPLICATION = "test_vault_replication_is_in_expected_mode"
LEADER = "test_vault_has_a_leader"
PEERS = "test_vault_raft_has_enough_peers"
QUORUM = "test_vault_raft_voters_form_a_quorum"
PRESENT = "test_vault_raft_expected_peers_are_present"
UNKNOWN = "test_vault_raft_has_no_unknown_peers"
AUTOPILOT = "test_vault_autopilot_reports_healthy"
CHECKER_TTL = "test_vault_checker_token_has_enough_ttl_left"
CHECKER_RENEWABLE = "test_vault_checker_token_is_renewable_as_expected"
TOKEN_TTL = "test_vault_token_has_enough_ttl_left"
TOKEN_RENEWABLE = "test_vault_token_is_renewable_as_expected"
LEASE_TTL = "test_vault_lease_has_enough_ttl_left"
LEASE_RENEWABLE = "test_vault_lease_is_renewable_as_expected"
ROTATION = "test_vault_secret_was_rotated_within_max_age"
AUDIT = "test_vault_has_an_audit_device_enabled"


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class TlsServer:
    addr: str
    ca: Path
    proc: ManagedProcess

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class Servers:
    """Every server of this module, and what was made on them (token values, lease ids)."""

    dev: VaultServer
    bao: VaultServer
    degraded: VaultServer
    sealed: VaultServer
    partial: VaultServer
    uninit: VaultServer
    tls: TlsServer
    made: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


def _start_degraded(base: Path) -> VaultServer:
    """A leader with a dead non-voter: 2 peers, 1 voter, autopilot unhealthy."""
    leader = start_vault_raft(base / "a", shares=1, threshold=1)
    try:
        leader.request("POST", "sys/storage/raft/autopilot/configuration",
                       json={"last_contact_threshold": "1s", "dead_server_last_contact_threshold": "24h"})
        with start_vault_raft(base / "b", initialise=False, node_id="node2") as follower:
            follower.request("PUT", "sys/storage/raft/join", json={"leader_api_addr": leader.addr, "non_voter": True})
            follower.unseal_keys, follower.threshold = leader.unseal_keys, 1
            follower.unseal(wait=False)
            _wait(lambda: len(leader.data("GET", "sys/storage/raft/configuration")["config"]["servers"]) == 2,
                  15, "node2 to join the raft configuration")
        _wait(lambda: not leader.data("GET", "sys/storage/raft/autopilot/state")["healthy"], 15,
              "autopilot to notice node2 is gone")
    except BaseException:
        leader.stop()
        raise
    return leader


def _start_sealed(base: Path, keys: int) -> VaultServer:
    server = start_vault_raft(base, shares=5, threshold=3)
    try:
        server.seal()
        if keys:
            status = server.unseal(keys)
            assert (status["sealed"], status["progress"]) == (True, keys)
    except BaseException:
        server.stop()
        raise
    return server


def _start_tls(base: Path) -> TlsServer:
    port = free_port()
    certs = base / "certs"
    certs.mkdir(parents=True)
    proc = ManagedProcess.start(
        [find_tool("bao"), "server", "-dev", "-dev-tls", f"-dev-tls-cert-dir={certs}",
         f"-dev-listen-address=127.0.0.1:{port}", "-dev-root-token-id=selftest-tls-root", "-dev-no-store-token"],
        log_path=base / "bao-tls.log", name="bao-tls",
        env={"HOME": str(base), "BAO_ADDR": "", "VAULT_ADDR": "", "BAO_TOKEN": "", "VAULT_TOKEN": ""},
    )
    ca = certs / "vault-ca.pem"
    url = f"https://127.0.0.1:{port}/v1/sys/health"
    proc.wait_until(lambda: httpx.get(url, verify=ssl.create_default_context(cafile=str(ca)), timeout=1).status_code
                    == 200, 15, "answering over TLS")
    return TlsServer(f"https://127.0.0.1:{port}", ca, proc)


def _make_credentials(dev: VaultServer) -> tuple[dict[str, Any], dict[str, str]]:
    """Tokens, leases and KV secrets on the dev server, made before the other servers start."""
    for path in ("app/fresh", "app/stale", "app/edited"):
        dev.write_kv(path, {"v": "1"})
    good = dev.create_token(ttl="2h", renewable=True)
    short = dev.create_token(ttl="2m", renewable=False)
    expired = dev.create_token(ttl="1s", renewable=False)
    made = {
        "written": time.monotonic(),
        "good_accessor": good["accessor"],
        "expired_accessor": expired["accessor"],
        "lease_ok": dev.create_lease(ttl="10m"),
        "lease_short": dev.create_lease(ttl="1m"),
        "lease_gone": dev.create_lease(ttl="10m"),
        "expired_token": expired["client_token"],
    }
    dev.request("PUT", "sys/leases/revoke", json={"lease_id": made["lease_gone"]})
    values = {"SELFTEST_VAULT_ROOT": dev.root_token, "SELFTEST_VAULT_GOOD": good["client_token"],
              "SELFTEST_VAULT_SHORT": short["client_token"], "SELFTEST_VAULT_EXPIRED": expired["client_token"]}
    return made, values


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    base = tmp_path_factory.mktemp("vault")
    with ExitStack() as stack:
        dev = start_vault_dev(base / "dev", root_token="selftest-dev-root")
        stack.callback(dev.stop)
        made, values = _make_credentials(dev)
        starters: dict[str, Callable[[], Any]] = {
            "bao": lambda: start_vault_raft(base / "raft", shares=5, threshold=3),
            "degraded": lambda: _start_degraded(base / "degraded"),
            "sealed": lambda: _start_sealed(base / "sealed", 0),
            "partial": lambda: _start_sealed(base / "partial", 1),
            "uninit": lambda: start_vault_raft(base / "uninit", initialise=False),
            "tls": lambda: _start_tls(base / "tls"),
        }
        started = start_in_parallel(stack, starters)
        started["bao"].enable_file_audit("file")
        expired = made.pop("expired_token")
        _wait(lambda: dev.request("GET", "auth/token/lookup-self", token=expired, expect=()).status_code == 403,
              10, "the 1 s token to expire")
        # app/edited: once its only version is older than 3 s, a metadata-only edit moves updated_time;
        # the rotation check must still count from when the value was written.
        time.sleep(max(0.0, made.pop("written") + 3.5 - time.monotonic()))
        dev.request("POST", "secret/metadata/app/edited", json={"max_versions": 3})
        values["SELFTEST_BAO_ROOT"] = started["bao"].root_token
        values["SELFTEST_DEGRADED_ROOT"] = started["degraded"].root_token
        values["SELFTEST_TLS_ROOT"] = "selftest-tls-root"
        yield Servers(dev=dev, made=made, secrets=values, **started)


@pytest.fixture(scope="module")
def suite(servers: Servers, blackhole: int, closed_port: int, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run of every Vault check against every healthy and faulty (but unsealed) target."""
    dev, made = servers.dev, servers.made
    base = {"addr": dev.addr, "token": {"env": "SELFTEST_VAULT_ROOT"}}
    env = {"vault": [
        {"name": "healthy", **base, "seal": {"type": "shamir", "threshold": 1, "shares": 1},
         "replication": {"performance": "disabled", "dr": "disabled"},
         "tokens": [
             {"name": "good", "token": {"env": "SELFTEST_VAULT_GOOD"}, "min_ttl": {"warn": "3h", "critical": "30m"},
              "renewable": True},
             {"name": "by-accessor", "accessor": made["good_accessor"], "min_ttl": "1h"},
             {"name": "short", "token": {"env": "SELFTEST_VAULT_SHORT"}, "min_ttl": "10m", "renewable": True},
             {"name": "expired", "token": {"env": "SELFTEST_VAULT_EXPIRED"}, "min_ttl": "10m"},
             {"name": "gone-accessor", "accessor": made["expired_accessor"]},
         ],
         "leases": [
             {"name": "lease-ok", "lease_id": made["lease_ok"], "min_ttl": "5m", "renewable": False},
             {"name": "lease-short", "lease_id": made["lease_short"], "min_ttl": "5m", "renewable": True},
             {"name": "lease-gone", "lease_id": made["lease_gone"]},
             {"name": "pki-prefix", "prefix": "pki/issue/lease", "min_ttl": "5m"},
             {"name": "empty-prefix", "prefix": "database/creds/nobody/"},
         ],
         "secrets": [
             {"name": "fresh", "path": "app/fresh", "max_age": "1d"},
             {"name": "stale", "path": "app/stale", "max_age": 0.00001},
             {"name": "edited", "path": "app/edited", "max_age": "3s"},
             {"name": "missing", "path": "app/missing"},
         ]},
        {"name": "want-standby", **base, "role": "standby", "seal": {"threshold": 3, "shares": 5},
         "replication": {"performance": "primary"}, "raft": {"min_peers": 3}},
        {"name": "short-checker", "addr": dev.addr, "token": {"env": "SELFTEST_VAULT_SHORT"},
         "token_min_ttl": "10m", "token_renewable": True},
        {"name": "dead-checker", "addr": dev.addr, "token": {"env": "SELFTEST_VAULT_EXPIRED"}},
        {"name": "no-secret", "addr": dev.addr, "token": {"env": "SELFTEST_VAULT_UNSET"}},
        {"name": "tokenless", "addr": dev.addr},
        {"name": "raft-ok", "addr": servers.bao.addr, "token": {"env": "SELFTEST_BAO_ROOT"}, "role": "active",
         "seal": {"type": "shamir", "threshold": 3, "shares": 5}, "raft": {"min_peers": 1, "peers": ["node1"]}},
        {"name": "want-three", "addr": servers.bao.addr, "token": {"env": "SELFTEST_BAO_ROOT"},
         "raft": {"min_peers": 3, "peers": ["node1", "node2", "node3"]}},
        {"name": "stranger", "addr": servers.bao.addr, "token": {"env": "SELFTEST_BAO_ROOT"},
         "raft": {"peers": ["node9"]}},
        {"name": "degraded", "addr": servers.degraded.addr, "token": {"env": "SELFTEST_DEGRADED_ROOT"},
         "raft": {"min_peers": 2, "peers": ["node1", "node2"]}},
        # peer counts exactly at the minimum (raft-ok: 1, degraded: 2) and one past it
        {"name": "one-past-one", "addr": servers.bao.addr, "token": {"env": "SELFTEST_BAO_ROOT"},
         "raft": {"min_peers": 2}},
        {"name": "one-past-two", "addr": servers.degraded.addr, "token": {"env": "SELFTEST_DEGRADED_ROOT"},
         "raft": {"min_peers": 3}},
        {"name": "tls-trusted", "addr": servers.tls.addr, "ca_bundle": str(servers.tls.ca),
         "token": {"env": "SELFTEST_TLS_ROOT"}},
        {"name": "tls-untrusted", "addr": servers.tls.addr},
        {"name": "tls-unverified", "addr": servers.tls.addr, "verify_tls": False},
        {"name": "refused", "addr": f"http://127.0.0.1:{closed_port}", "token": {"env": "SELFTEST_VAULT_ROOT"},
         "secrets": [{"name": "db", "path": "app/db"}]},
        {"name": "stalled", "addr": f"http://127.0.0.1:{blackhole}", "token": {"env": "SELFTEST_VAULT_ROOT"},
         "timeout_s": 1},
    ]}
    return run_checks(tmp_path_factory.mktemp("suite"), env, paths=CHECKS, env_vars=servers.secrets)


@pytest.fixture(scope="module")
def sealed_suite(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    env = {"vault": [
        {"name": "sealed", "addr": servers.sealed.addr, "token": {"env": "SELFTEST_SEALED_ROOT"},
         "raft": {"peers": ["node1"]}, "secrets": [{"name": "db", "path": "app/db"}]},
        {"name": "partial", "addr": servers.partial.addr},
        {"name": "uninit", "addr": servers.uninit.addr},
    ]}
    return run_checks(tmp_path_factory.mktemp("sealed"), env, paths=CHECKS,
                      env_vars={"SELFTEST_SEALED_ROOT": servers.sealed.root_token})


def test_healthy_dev_server_passes_and_nothing_crashes(suite: SuiteRun) -> None:
    assert suite.ret == 1, suite.stdout[-3000:]
    for check in (INITIALIZED, UNSEALED, SEAL_CONFIG, ROLE, REPLICATION, LEADER, CHECKER_TTL):
        assert suite.outcome(check, "healthy") == "passed", suite.stdout[-3000:]
    assert suite.outcome(INITIALIZED, "tokenless") == "passed"
    # checks that need the checker's token are not parametrized for a target without one
    assert not [r for r in suite.records if r["target"] == "tokenless" and r["check"] in (CHECKER_TTL, AUDIT)]
    assert "Traceback" not in suite.stdout and "ProbeCrashed" not in suite.stdout


def test_ha_role_replication_seal_and_storage_mismatches_fail(suite: SuiteRun) -> None:
    assert suite.outcome(ROLE, "want-standby") == "failed"
    assert ("expected a standby node (standby or performance standby), got active (sys/health HTTP 200)"
            in suite.message(ROLE, "want-standby"))
    assert "[runbook vault#ha-role]" in suite.message(ROLE, "want-standby")
    assert suite.outcome(REPLICATION, "want-standby") == "failed"
    assert "got performance replication disabled (want primary)" in suite.message(REPLICATION, "want-standby")
    assert suite.outcome(SEAL_CONFIG, "want-standby") == "failed"
    assert "got threshold 1 (want 3); shares 1 (want 5)" in suite.message(SEAL_CONFIG, "want-standby")
    assert suite.outcome(PEERS, "want-standby") == "failed"
    assert "expected integrated (raft) storage, got storage inmem" in suite.message(PEERS, "want-standby")


def test_checker_token_faults_fail_and_error_the_checks_that_need_it(suite: SuiteRun) -> None:
    assert suite.outcome(CHECKER_TTL, "short-checker") == "failed"
    message = suite.message(CHECKER_TTL, "short-checker")
    assert "expected TTL left on the checker's token >= 10 min, got 1 min" in message
    assert "not renewable)" in message and "[runbook vault#token-ttl]" in message
    assert suite.outcome(CHECKER_RENEWABLE, "short-checker") == "failed"
    assert ("expected the checker's token renewable, got not renewable"
            in suite.message(CHECKER_RENEWABLE, "short-checker"))
    assert suite.outcome(AUDIT, "short-checker") == "error"  # default policy: no sudo on sys/audit
    assert suite.message(AUDIT, "short-checker").startswith(
        "VaultDenied: the checker's token was refused on sys/audit (permission denied)")
    assert suite.outcome(CHECKER_TTL, "dead-checker") == "failed"
    dead = suite.message(CHECKER_TTL, "dead-checker")
    assert "got refused by the server (permission denied): expired, revoked" in dead
    assert suite.outcome(AUDIT, "dead-checker") == "error"
    assert suite.outcome(CHECKER_TTL, "no-secret") == "error"
    assert suite.cause(CHECKER_TTL, "no-secret") == "SecretMissing: secret SELFTEST_VAULT_UNSET is not set"
    assert suite.outcome(UNSEALED, "no-secret") == "passed"


def test_configured_tokens_pass_warn_and_fail_on_short_ttl_expiry_and_renewability(suite: SuiteRun) -> None:
    good = suite.record(TOKEN_TTL, "healthy", item="good")
    assert good["outcome"] == "passed"
    assert "past the warning level 3 h" in good["warnings"][0]
    assert good["measured"][0]["unit"] == "s" and 7000 < good["measured"][0]["value"] <= 7200
    assert suite.outcome(TOKEN_RENEWABLE, "healthy", item="good") == "passed"
    assert suite.outcome(TOKEN_TTL, "healthy", item="by-accessor") == "passed"
    assert suite.outcome(TOKEN_RENEWABLE, "healthy", item="by-accessor") == "skipped"
    assert suite.outcome(TOKEN_TTL, "healthy", item="short") == "failed"
    assert "expected TTL left on token short >= 10 min, got 1 min" in suite.message(TOKEN_TTL, "healthy", item="short")
    assert suite.outcome(TOKEN_RENEWABLE, "healthy", item="short") == "failed"
    assert ("expected token short renewable, got not renewable"
            in suite.message(TOKEN_RENEWABLE, "healthy", item="short"))
    assert suite.outcome(TOKEN_TTL, "healthy", item="expired") == "failed"
    assert ("expected token expired accepted, got refused by the server"
            in suite.message(TOKEN_TTL, "healthy", item="expired"))
    assert suite.outcome(TOKEN_TTL, "healthy", item="gone-accessor") == "failed"
    assert "no live token has this accessor" in suite.message(TOKEN_TTL, "healthy", item="gone-accessor")


def test_leases_pass_and_fail_on_short_ttl_revocation_and_renewability(suite: SuiteRun, servers: Servers) -> None:
    short = servers.made["lease_short"]
    assert suite.outcome(LEASE_TTL, "healthy", item="lease-ok") == "passed"
    assert suite.outcome(LEASE_RENEWABLE, "healthy", item="lease-ok") == "passed"
    assert suite.outcome(LEASE_TTL, "healthy", item="lease-short") == "failed"
    message = suite.message(LEASE_TTL, "healthy", item="lease-short")
    assert f"expected TTL left on lease {short} >= 5 min, got " in message and " s (expires " in message
    assert "[runbook vault#lease-ttl]" in message
    assert suite.outcome(LEASE_RENEWABLE, "healthy", item="lease-short") == "failed"
    assert (f"expected lease {short} renewable, got not renewable"
            in suite.message(LEASE_RENEWABLE, "healthy", item="lease-short"))
    assert suite.outcome(LEASE_TTL, "healthy", item="lease-gone") == "failed"
    assert ("got not found (invalid lease): expired or revoked"
            in suite.message(LEASE_TTL, "healthy", item="lease-gone"))
    prefix = suite.message(LEASE_TTL, "healthy", item="pki-prefix")
    assert suite.outcome(LEASE_TTL, "healthy", item="pki-prefix") == "failed"
    assert "expected TTL left on leases under pki/issue/lease/ >= 5 min" in prefix
    assert f"the shortest of 2: {short})" in prefix
    assert suite.outcome(LEASE_TTL, "healthy", item="empty-prefix") == "failed"
    assert "got no leases under this prefix" in suite.message(LEASE_TTL, "healthy", item="empty-prefix")


def test_kv_secrets_older_than_their_max_age_fail(suite: SuiteRun) -> None:
    assert suite.outcome(ROTATION, "healthy", item="fresh") == "passed"
    assert suite.outcome(ROTATION, "healthy", item="stale") == "failed"
    stale = suite.message(ROTATION, "healthy", item="stale")
    assert "expected age of secret/app/stale <= 0.8 s, got " in stale  # 0.00001 d = 0.864 s
    assert "(version 1 written " in stale and "[runbook vault#rotation-drift]" in stale
    # a metadata-only edit moved updated_time, but the value itself is older than 3 s
    assert suite.outcome(ROTATION, "healthy", item="edited") == "failed"
    assert "expected age of secret/app/edited <= 3 s, got " in suite.message(ROTATION, "healthy", item="edited")
    assert suite.outcome(ROTATION, "healthy", item="missing") == "failed"
    assert ("got no such secret (nothing at secret/metadata/app/missing"
            in suite.message(ROTATION, "healthy", item="missing"))


def test_audit_device_present_on_raft_and_missing_in_dev_mode(suite: SuiteRun) -> None:
    assert suite.outcome(AUDIT, "raft-ok") == "passed"
    assert suite.outcome(AUDIT, "healthy") == "failed"
    assert ("expected at least one audit device enabled, got no audit device"
            in suite.message(AUDIT, "healthy"))


def test_raft_checks_pass_on_a_healthy_node_and_fail_on_missing_voters_and_peers(suite: SuiteRun) -> None:
    for check in (INITIALIZED, UNSEALED, SEAL_CONFIG, ROLE, LEADER, PEERS, QUORUM, PRESENT, UNKNOWN, AUTOPILOT,
                  CHECKER_TTL):
        assert suite.outcome(check, "raft-ok") == "passed", check
    assert suite.outcome(PEERS, "want-three") == "failed"
    assert "expected at least 3 raft peers, got 1: node1 (leader)" in suite.message(PEERS, "want-three")
    assert suite.outcome(QUORUM, "want-three") == "failed"
    assert ("expected at least 2 voters (a majority of 3 peers), got 1 voter: node1"
            in suite.message(QUORUM, "want-three"))
    assert suite.outcome(PRESENT, "want-three") == "failed"
    assert "got missing node2, node3 (present: node1)" in suite.message(PRESENT, "want-three")
    assert suite.outcome(UNKNOWN, "want-three") == "passed"
    assert suite.outcome(UNKNOWN, "stranger") == "failed"
    assert "got unknown peer node1 (127.0.0.1:" in suite.message(UNKNOWN, "stranger")
    assert suite.outcome(PEERS, "stranger") == "passed"
    # a dead non-voter: the peer count is met, but not the quorum, and autopilot says so
    assert suite.outcome(PEERS, "degraded") == "passed"
    assert suite.outcome(PRESENT, "degraded") == "passed"
    assert suite.outcome(QUORUM, "degraded") == "failed"
    assert ("expected at least 2 voters (a majority of 2 peers), got 1 voter: node1"
            in suite.message(QUORUM, "degraded"))
    assert suite.outcome(AUTOPILOT, "degraded") == "failed"
    # one peer past the count each cluster has
    assert suite.outcome(PEERS, "one-past-one") == "failed"
    assert "expected at least 2 raft peers, got 1: node1 (leader)" in suite.message(PEERS, "one-past-one")
    assert suite.outcome(PEERS, "one-past-two") == "failed"
    assert "expected at least 3 raft peers, got 2: node1 (leader), node2" in suite.message(PEERS, "one-past-two")
    message = suite.message(AUTOPILOT, "degraded")
    assert "expected autopilot healthy, got unhealthy: node2 (non-voter, last contact" in message
    assert "[runbook vault#autopilot]" in message
    assert suite.outcome(AUTOPILOT, "want-standby") == "failed"  # dev mode: not raft at all


def test_tls_vault_is_verified_against_its_ca_bundle(suite: SuiteRun, servers: Servers) -> None:
    where = servers.tls.addr.removeprefix("https://")
    assert suite.outcome(INITIALIZED, "tls-trusted") == "passed"
    assert suite.outcome(CHECKER_TTL, "tls-trusted") == "passed"
    assert suite.outcome(INITIALIZED, "tls-untrusted") == "error"
    assert suite.message(INITIALIZED, "tls-untrusted").startswith(
        f"Unreachable: cannot connect to {where}: TLS certificate not trusted")
    assert suite.outcome(INITIALIZED, "tls-unverified") == "passed"


def test_unreachable_and_stalled_vault_error_every_check_with_one_cause(
    suite: SuiteRun, closed_port: int, blackhole: int
) -> None:
    refused = f"Unreachable: cannot connect to 127.0.0.1:{closed_port}: connection refused"
    for check in (INITIALIZED, UNSEALED, ROLE, LEADER, CHECKER_TTL, AUDIT):
        assert suite.outcome(check, "refused") == "error"
        assert suite.cause(check, "refused") == refused
    assert suite.cause(ROTATION, "refused", item="db") == refused
    # A stall is one ProbeTimeout naming the address and sys/health (the request itself, or the checks
    # waiting for it), bounded by the 1 s timeout. The exact words depend on which timer fires first on a
    # busy runner: the probe's own ("did not answer sys/health within 1 s") or the engine's backstop
    # ("no answer within 1 s (GET sys/health on ...)").
    for check in (INITIALIZED, ROLE, LEADER, CHECKER_TTL, AUDIT, UNSEALED):
        message = suite.message(check, "stalled")
        assert suite.outcome(check, "stalled") == "error"
        assert message.startswith("ProbeTimeout: ") and f"127.0.0.1:{blackhole}" in message, message
        assert "within 1 s" in message and ("sys/health" in message or "sys/seal-status" in message), message
    assert suite.record(INITIALIZED, "stalled")["duration_s"] < 5


def test_no_token_value_reaches_the_console_or_the_reports(suite: SuiteRun, servers: Servers) -> None:
    reports = json.dumps(suite.summary) + (suite.reports / "junit.xml").read_text()
    for value in servers.secrets.values():
        assert value not in suite.stdout and value not in reports


def test_sealed_vault_fails_the_seal_checks_and_errors_the_checks_behind_the_seal(
    sealed_suite: SuiteRun, servers: Servers
) -> None:
    run = sealed_suite
    assert run.outcome(UNSEALED, "sealed") == "failed"
    assert run.message(UNSEALED, "sealed") == (
        "selftest-sealed: expected unsealed, got sealed (unseal progress 0/3) — unseal with 3 of 5 key shares "
        "(3 more needed): each key holder runs `vault operator unseal`, then confirm the services reconnect "
        "[runbook vault#sealed]"
    )
    assert run.outcome(INITIALIZED, "sealed") == "passed"
    assert run.outcome(ROLE, "sealed") == "failed"
    assert "got sealed (sys/health HTTP 503)" in run.message(ROLE, "sealed")
    sealed_cause = f"VaultSealed: {servers.sealed.addr} is sealed: cannot"
    for check in (LEADER, PEERS, AUTOPILOT, CHECKER_TTL, AUDIT):
        assert run.outcome(check, "sealed") == "error", check
        assert run.message(check, "sealed").startswith(sealed_cause), run.message(check, "sealed")
    assert run.cause(AUDIT, "sealed") == f"{sealed_cause} list the audit devices until it is unsealed"
    assert run.outcome(ROTATION, "sealed", item="db") == "error"
    assert "Traceback" not in run.stdout


def test_partial_unseal_shows_progress_and_the_shares_still_needed(sealed_suite: SuiteRun) -> None:
    assert sealed_suite.outcome(UNSEALED, "partial") == "failed"
    assert ("got sealed (unseal progress 1/3) — unseal with 3 of 5 key shares (2 more needed)"
            in sealed_suite.message(UNSEALED, "partial"))


def test_uninitialised_vault_fails_initialized_and_unsealed(sealed_suite: SuiteRun) -> None:
    run = sealed_suite
    assert run.outcome(INITIALIZED, "uninit") == "failed"
    assert "expected an initialized Vault at http://127.0.0.1:" in run.message(INITIALIZED, "uninit")
    assert "got not initialized (sys/health HTTP 501)" in run.message(INITIALIZED, "uninit")
    assert run.outcome(UNSEALED, "uninit") == "failed"
    assert "got sealed and not initialized" in run.message(UNSEALED, "uninit")
    assert run.outcome(LEADER, "uninit") == "error"
    assert "is not initialized: cannot tell who the leader is" in run.message(LEADER, "uninit")


def _load(tmp_path: Path, target: dict[str, Any]) -> Any:
    path = tmp_path / "env.yaml"
    path.write_text(json.dumps({"name": "cfg", "vault": [{"name": "v", "addr": "http://127.0.0.1:1", **target}]}))
    return load_environment(path).vault[0]


def test_config_reads_durations_and_fills_defaults_from_the_environment(tmp_path: Path) -> None:
    target = _load(tmp_path, {
        "token": {"env": "T"},
        "tokens": [{"name": "a", "accessor": "x", "min_ttl": {"warn": "1d12h", "critical": 0.5}}],
        "leases": [{"name": "l", "prefix": "database/creds/app"}],
        "secrets": [{"name": "s", "path": "/app/db/"}],
    })
    assert (target.tokens[0].min_ttl.warn, target.tokens[0].min_ttl.critical) == (129600, 43200)
    assert (target.token_min_ttl.warn, target.token_min_ttl.critical) == (14 * 86400, 3 * 86400)  # dev tier
    assert target.leases[0].prefix == "database/creds/app/"
    assert (target.secrets[0].full_path, target.secrets[0].max_age.critical) == ("secret/app/db", 90 * 86400)


@pytest.mark.parametrize(("target", "problem"), [
    ({"secrets": [{"name": "s", "path": "x"}]}, "the checker's own 'token' is required for secrets"),
    ({"token": {"env": "T"}, "tokens": [{"name": "a"}]}, "exactly one of 'token' (a secret reference) or 'accessor'"),
    ({"token": {"env": "T"}, "leases": [{"name": "l", "lease_id": "a", "prefix": "b/"}]},
     "exactly one of 'lease_id' or 'prefix'"),
    ({"token_min_ttl": "3 days"}, "'3 days' is not a duration"),
    ({"role": "leader"}, "role"),
])
def test_config_errors_name_the_key(tmp_path: Path, target: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, target)
    assert problem in str(caught.value) and "vault[0]" in str(caught.value)
