"""Self-test of the OpenBao launcher, and a record of the real JSON shapes OpenBao 2.7 answers.

The ``*_KEYS`` constants below are the members each endpoint really returns (checked here against a
live server), so probes can rely on them. Shapes, verified:

* ``GET sys/health`` (no ``data`` envelope): initialized, sealed, standby, server_time_utc, version,
  replication_performance_mode, replication_dr_mode (+ cluster_name, cluster_id once unsealed).
  HTTP 200 active, 503 sealed, 501 uninitialised (body still JSON); 429 standby (documented, needs a
  second node, not started here).
* ``GET sys/seal-status`` (no envelope): type "shamir", initialized, sealed, t, n, progress, nonce,
  version, storage_type "raft", ...
* ``GET sys/leader`` (no envelope): ha_enabled, is_self, leader_address, leader_cluster_address,
  active_time, raft_committed_index, raft_applied_index.
* ``GET sys/storage/raft/configuration``: data.config.servers[] = {node_id, address, leader,
  voter, protocol_version}, data.config.index.
* ``GET sys/storage/raft/autopilot/state``: data = {healthy, failure_tolerance, leader, voters[],
  servers: {<id>: {id, name, address, node_status, status "leader"/"voter", healthy, last_contact,
  last_term, last_index, stable_since, version, node_type}}}.
* ``GET auth/token/lookup-self`` / ``POST auth/token/lookup {"token"}``: data = {accessor, id,
  policies, ttl (s, 0 = never), creation_ttl, expire_time (RFC 3339 or null), renewable (absent
  for root), orphan, path, type "service", display_name, ...}.
* ``PUT sys/leases/lookup {"lease_id"}``: data = {id, issue_time, expire_time, ttl, renewable,
  last_renewal, path}.
* ``GET <kv>/metadata/<path>``: data = {current_version, oldest_version, created_time,
  updated_time, max_versions, versions: {"1": {created_time, deletion_time, destroyed}, ...}, ...}.
* ``GET sys/audit``: data = {"file/": {type, path, description, local, options: {file_path}}}.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsverify_sandbox.servers.vault import VaultServer, start_vault_dev, start_vault_raft

HEALTH_KEYS = {"initialized", "sealed", "standby", "server_time_utc", "version"}
SEAL_STATUS_KEYS = {"type", "initialized", "sealed", "t", "n", "progress", "nonce", "storage_type"}
LEADER_KEYS = {"ha_enabled", "is_self", "leader_address", "leader_cluster_address", "active_time"}
RAFT_SERVER_KEYS = {"node_id", "address", "leader", "voter", "protocol_version"}
AUTOPILOT_KEYS = {"healthy", "failure_tolerance", "leader", "voters", "servers"}
AUTOPILOT_SERVER_KEYS = {"id", "address", "node_status", "status", "healthy", "last_contact"}
TOKEN_KEYS = {"accessor", "policies", "ttl", "creation_ttl", "expire_time", "orphan", "type"}
LEASE_KEYS = {"id", "issue_time", "expire_time", "ttl", "renewable", "last_renewal"}
KV_METADATA_KEYS = {"current_version", "oldest_version", "created_time", "updated_time", "versions"}
AUDIT_DEVICE_KEYS = {"type", "path", "options"}


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    with start_vault_raft(tmp_path_factory.mktemp("bao-raft"), shares=5, threshold=3) as server:
        yield server


def test_dev_server_is_active_with_the_chosen_root_token(tmp_path: Path) -> None:
    with start_vault_dev(tmp_path, root_token="dev-root") as dev:
        lookup = dev.data("GET", "auth/token/lookup-self", token="dev-root")
        assert (dev.health()[0], lookup["policies"]) == (200, ["root"])


def test_uninitialised_server_health_is_501(tmp_path: Path) -> None:
    with start_vault_raft(tmp_path, initialise=False) as raw:
        status, body = raw.health()
        assert (status, body["initialized"], body["sealed"]) == (501, False, True)


def test_health_of_active_node(bao: VaultServer) -> None:
    status, body = bao.health()
    assert (status, HEALTH_KEYS <= body.keys(), body["standby"]) == (200, True, False)


def test_seal_status_shape(bao: VaultServer) -> None:
    status = bao.seal_status()
    assert SEAL_STATUS_KEYS <= status.keys()
    assert (status["sealed"], status["t"], status["n"], status["storage_type"]) == (
        False,
        3,
        5,
        "raft",
    )


def test_leader_shape(bao: VaultServer) -> None:
    leader = bao.request("GET", "sys/leader").json()
    assert LEADER_KEYS <= leader.keys() and leader["is_self"] is True
    assert leader["leader_address"] == bao.addr


def test_raft_configuration_lists_one_leader_voter(bao: VaultServer) -> None:
    servers = bao.data("GET", "sys/storage/raft/configuration")["config"]["servers"]
    assert [RAFT_SERVER_KEYS <= s.keys() for s in servers] == [True]
    only = servers[0]
    assert (only["node_id"], only["leader"], only["voter"]) == ("node1", True, True)


def test_autopilot_state_shape(bao: VaultServer) -> None:
    state = bao.data("GET", "sys/storage/raft/autopilot/state")
    assert AUTOPILOT_KEYS <= state.keys()
    node = state["servers"]["node1"]
    assert AUTOPILOT_SERVER_KEYS <= node.keys()
    assert (state["healthy"], state["voters"], node["status"]) == (True, ["node1"], "leader")


def test_root_token_lookup_self_never_expires(bao: VaultServer) -> None:
    me = bao.data("GET", "auth/token/lookup-self")
    assert TOKEN_KEYS <= me.keys()
    assert (me["ttl"], me["expire_time"], me["policies"]) == (0, None, ["root"])


@pytest.mark.parametrize("renewable", [True, False])
def test_created_token_has_ttl_and_renewable_flag(bao: VaultServer, renewable: bool) -> None:
    auth = bao.create_token(ttl="30m", renewable=renewable)
    looked = bao.data("POST", "auth/token/lookup", json={"token": auth["client_token"]})
    assert TOKEN_KEYS <= looked.keys()
    assert (looked["renewable"], looked["creation_ttl"], 1700 < looked["ttl"] <= 1800) == (
        renewable,
        1800,
        True,
    )


def test_pki_lease_lookup_shape(bao: VaultServer) -> None:
    lease_id = bao.create_lease(ttl="10m")
    lease = bao.data("PUT", "sys/leases/lookup", json={"lease_id": lease_id})
    assert LEASE_KEYS <= lease.keys()
    assert (lease["id"], 590 < lease["ttl"] <= 600, lease["renewable"]) == (lease_id, True, False)


def test_kv_v2_metadata_counts_versions(bao: VaultServer) -> None:
    bao.enable_kv_v2("kv")
    for password in ("one", "two"):
        written = bao.write_kv("app/db", {"password": password}, mount="kv")
    meta = bao.data("GET", "kv/metadata/app/db")
    assert KV_METADATA_KEYS <= meta.keys()
    assert (meta["current_version"], sorted(meta["versions"]), meta["updated_time"]) == (
        2,
        ["1", "2"],
        written["created_time"],
    )


def test_file_audit_device_is_listed_and_written(bao: VaultServer) -> None:
    log = bao.enable_file_audit("file")
    devices = bao.data("GET", "sys/audit")
    bao.data("GET", "auth/token/lookup-self")
    entry: dict[str, Any] = json.loads(log.read_text().splitlines()[-1])
    device = devices["file/"]
    assert AUDIT_DEVICE_KEYS <= device.keys()
    assert (device["type"], device["options"]["file_path"]) == ("file", str(log))
    assert entry["type"] in {"request", "response"}


def test_seal_then_partial_and_full_unseal(bao: VaultServer) -> None:
    bao.seal()
    try:
        sealed = bao.seal_status()
        code, _ = bao.health()
        partial = bao.unseal(2)
    finally:
        bao.unseal()
    assert (sealed["sealed"], sealed["progress"], sealed["t"], code) == (True, 0, 3, 503)
    assert (partial["sealed"], partial["progress"], partial["t"]) == (True, 2, 3)
    assert bao.health()[0] == 200


def test_sealed_server_refuses_secret_reads(bao: VaultServer) -> None:
    bao.seal()
    try:
        response = bao.request("GET", "auth/token/lookup-self", expect=())
    finally:
        bao.unseal()
    assert response.status_code == 503 and "sealed" in response.text.lower()


def test_wrong_token_is_403(bao: VaultServer) -> None:
    response = httpx.get(
        f"{bao.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": "s.nope"}, timeout=5
    )
    assert response.status_code == 403
