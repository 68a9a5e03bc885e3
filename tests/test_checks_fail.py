"""Checks that no other self-test made fail, each given its real fault against a real server, with
its healthy twin passing:

* ``test_kafka_cluster_answers_metadata``: a broker (tansu) that advertises a port nothing listens
  on: the bootstrap answers, every produce and fetch would fail;
* ``test_current_api_key_is_accepted``: the platform demo rolled back to before the key rotation
  (only the previous key works), so the key the environment file names is refused;
* ``test_host_runs_commands``: testinfra's ``local://`` host whose PATH holds no ``uname`` (a broken
  PATH or a stripped image): the shell answers "not found";
* ``test_vault_has_a_leader``: a real two-voter OpenBao raft cluster whose second voter was
  stopped: the survivor has no quorum, steps down, and reports no leader.

(``test_restate_tunnel_health_answers_ok`` fails in ``tests/test_restate_checks.py``: a tunnel whose
Restate server is gone answers 502; ``test_kubernetes_api_answers`` in
``tests/test_kubernetes_api_fails.py``.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opsverify.config.kafka import KafkaTarget
from opsverify.engine import Engine, ProbeKey, ProbeRequest
from opsverify.probes.kafka import topics as kafka_topics
from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.kafka import start_kafka
from opsverify_sandbox.servers.vault import VaultServer, start_vault_raft
from tests.harness import run_checks
from tests.platform_support import Demo, start_demo

METADATA = "test_kafka_cluster_answers_metadata"
KEY = "test_current_api_key_is_accepted"
REACH = "test_host_runs_commands"
LEADER = "test_vault_has_a_leader"


def test_kafka_metadata_advertising_an_unreachable_broker_fails(tmp_path: Path) -> None:
    advertised = free_port()
    with start_kafka(tmp_path / "healthy") as healthy, \
            start_kafka(tmp_path / "misadvertised", advertised_port=advertised) as wrong:
        env = {"kafka": [{"name": "healthy", "bootstrap": healthy.bootstrap, "timeout_s": 5},
                         {"name": "misadvertised", "bootstrap": wrong.bootstrap, "timeout_s": 5}]}
        (tmp_path / "run").mkdir()
        run = run_checks(tmp_path / "run", env, "-k", "answers_metadata", paths=["checks/test_kafka.py"])
    assert run.outcome(METADATA, "healthy") == "passed", run.stdout[-3000:]
    assert run.outcome(METADATA, "misadvertised") == "failed", run.stdout[-3000:]
    message = run.message(METADATA, "misadvertised")
    assert (f"selftest-misadvertised: expected every broker the metadata from {wrong.bootstrap} lists to accept "
            f"connections at its advertised address, got broker ") in message, message
    assert f"at 127.0.0.1:{advertised}: connection refused — clients bootstrap, then cannot reach" in message
    assert "[runbook kafka#metadata]" in message


def test_kafka_metadata_of_a_client_that_already_learned_a_misadvertised_broker_still_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka drops its bootstrap brokers once it has learned the advertised ones; when those
    refuse, it reports "connection refused" and "all brokers are down". That is not the bootstrap
    being unreachable: the metadata probe must still answer (and list the refusals), whichever of
    the client's own refresh and the probe's request got the first metadata. Reproduced here by
    asking twice on one client, the second time after the refusals were reported, in slices short
    enough that the first slices end before any metadata came back (as on a busy machine)."""
    monkeypatch.setattr(kafka_topics, "METADATA_SLICE_S", 0.002)
    advertised = free_port()
    engine = Engine()
    try:
        with start_kafka(tmp_path, advertised_port=advertised) as wrong:
            target = KafkaTarget(name="misadvertised", bootstrap=wrong.bootstrap, timeout_s=5)
            request = ProbeRequest(fn=kafka_topics.metadata, env=None, target=target, item=None, timeout=5)
            first = engine.result(ProbeKey("kafka_metadata", "selftest", "misadvertised"), request)
            time.sleep(1.5)  # the client reconnects to the advertised broker, is refused, says so
            second = engine.result(ProbeKey("kafka_metadata#again", "selftest", "misadvertised"), request)
    finally:
        engine.shutdown()
    for meta in (first, second):
        assert meta.bootstrap == wrong.bootstrap
        assert list(meta.refused.values()) == ["connection refused"], meta.refused
        assert set(meta.brokers.values()) == {f"127.0.0.1:{advertised}"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(tmp_path_factory.mktemp("platform"), {"rotated": "", "rolled-back": "apikey-phase=before"})
    yield running
    running.stop()


def test_current_api_key_refused_after_a_rollback_fails(platform: Demo, tmp_path: Path) -> None:
    def target(name: str, listener: str) -> dict[str, object]:
        return {"name": name, "base_url": platform.base(listener),
                "api_key": {"path": "/v1/keys/check", "key": platform.ref("api-key-current")}}

    env = {"auth": [target("rotated", "rotated"), target("rolled-back", "rolled-back")]}
    (tmp_path / "run").mkdir()
    run = run_checks(tmp_path / "run", env, "-k", "current_api_key", paths=["checks/test_auth.py"])
    assert run.outcome(KEY, "rotated") == "passed", run.stdout[-3000:]
    assert run.outcome(KEY, "rolled-back") == "failed"
    message = run.message(KEY, "rolled-back")
    assert "expected the current API key (" in message and "accepted by /v1/keys/check, got HTTP 401" in message
    assert "[runbook auth#api-key-accepted]" in message
    assert platform.secret("api-key-current") not in run.stdout + message


def test_host_whose_shell_cannot_find_the_command_fails_and_its_dependents_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {"hosts": [{"name": "broken", "host": "local://", "files": [{"name": "/etc/hostname"}]}]}
    (tmp_path / "run").mkdir()
    run = run_checks(tmp_path / "run", env, paths=["checks/test_hosts.py"], env_vars={"PATH": str(empty)})
    assert run.outcome(REACH, "broken") == "failed", run.stdout[-3000:]
    message = run.message(REACH, "broken")
    assert message.startswith("selftest-broken: expected local:// to answer `uname -n`, got the command failed "
                              "there (exit 127: "), message
    assert "not found)" in message and "the host was reached but does not run commands" in message
    assert run.outcome("test_file_matches_expectations", "broken", item="/etc/hostname") == "error"
    assert "the host does not run commands (`uname -n`: exit 127" in run.message(
        "test_file_matches_expectations", "broken", item="/etc/hostname")
    healthy = run_checks(tmp_path / "run", {"hosts": [{"name": "ok", "host": "local://"}]},
                         "-k", "runs_commands", paths=["checks/test_hosts.py"])
    assert healthy.outcome(REACH, "ok") == "passed", healthy.stdout[-3000:]


def _leaderless(base: Path) -> tuple[VaultServer, VaultServer]:
    """Two raft voters, then the follower stopped: the survivor holds no quorum (1 of 2)."""
    leader = start_vault_raft(base / "a", shares=1, threshold=1)
    try:
        follower = start_vault_raft(base / "b", initialise=False, node_id="node2")
    except BaseException:
        leader.stop()
        raise
    try:
        follower.request("PUT", "sys/storage/raft/join", json={"leader_api_addr": leader.addr})
        follower.unseal_keys, follower.threshold = leader.unseal_keys, 1
        follower.unseal(wait=False)
        _wait_for(lambda: _voters(leader) == 2, 30, "node2 to become a voter")
    except BaseException:
        follower.stop()
        leader.stop()
        raise
    return leader, follower


def _voters(server: VaultServer) -> int:
    servers = server.data("GET", "sys/storage/raft/configuration")["config"]["servers"]
    return sum(1 for s in servers if s.get("voter"))


def _no_leader(server: VaultServer) -> bool:
    try:
        data = httpx.get(f"{server.addr}/v1/sys/leader", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(data.get("ha_enabled")) and not data.get("leader_address")


def _wait_for(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:g} s waiting for {what}")
        time.sleep(0.2)


def test_vault_without_a_quorum_has_no_leader_and_fails(tmp_path: Path) -> None:
    leader, follower = _leaderless(tmp_path)
    try:
        env_vars = {"SELFTEST_LEADERLESS_ROOT": leader.root_token}
        target = {"addr": leader.addr, "token": {"env": "SELFTEST_LEADERLESS_ROOT"}}
        (tmp_path / "healthy").mkdir()
        healthy = run_checks(tmp_path / "healthy", {"vault": [{"name": "quorate", **target}]}, "-k", "has_a_leader",
                             paths=["checks/test_vault.py"], env_vars=env_vars)
        follower.stop()
        _wait_for(lambda: _no_leader(leader), 60, "the survivor to lose its leadership")
        (tmp_path / "faulted").mkdir()
        run = run_checks(tmp_path / "faulted", {"vault": [{"name": "leaderless", **target}]}, "-k", "has_a_leader",
                         paths=["checks/test_vault.py"], env_vars=env_vars)
    finally:
        follower.stop()
        leader.stop()
    assert healthy.outcome(LEADER, "quorate") == "passed", healthy.stdout[-3000:]
    assert run.outcome(LEADER, "leaderless") == "failed", run.stdout[-3000:]
    assert ("selftest-leaderless: expected an elected leader (sys/leader), got no leader address: no leader is "
            "elected") in run.message(LEADER, "leaderless")
