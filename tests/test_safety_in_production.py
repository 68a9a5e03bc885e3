"""A production environment with every sending section configured receives nothing but reads.

Real servers on 127.0.0.1 count what arrives: the recording HTTP server (``tests/recorder.py``)
every request with its method, a real ``nats-server`` every message (a subscriber on ``>``), and a
real tansu broker the canary topic's high watermark. Under every marker selection, the production
run sends 0 requests other than GET/HEAD/OPTIONS, 0 publishes and 0 produced records, and each check
that would have sent one is skipped with the reason naming what it would have sent. The same
environment at the dev tier (everything allowed) makes every counter move: the counters can see.

A second proof covers a probe whose declaration is wrong (it says it reads, and POSTs): the HTTP
request function refuses to send it, the check errors with what it would have sent.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from opsverify.errors import UnsafeSend
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.kafka import KafkaServer, create_topic, start_kafka
from opsverify_sandbox.servers.nats import NatsServer, start_nats
from tests.conftest import Recorder
from tests.harness import SuiteRun, run_checks

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [str(ROOT / "checks")]
CANARY_TOPIC = "opsverify.canary"
SAFE = ("GET ", "HEAD ", "OPTIONS ")
SECRETS = {"SELFTEST_SAFETY_SECRET": "safety-selftest-secret"}
# the server API (reads), its advisories, reply inboxes, and the services protocol's discovery (reads)
PROTOCOL_SUBJECTS = ("$JS.API.", "$JS.EVENT.", "$SYS.", "_INBOX.", "$SRV.PING", "$SRV.INFO", "$SRV.STATS")
SELECTIONS = [[], ["-m", "smoke"], ["-m", "predeploy"], ["-m", "mutating"], ["-m", "disruptive"],
              ["-m", "not smoke"], ["-m", "mutating or disruptive"]]

MUTATING = ["DELETE http://", "POST http://", "a signed delivery (POST", "a request published to orders.ping",
            "a canary published to opsverify.canary.nats", "a canary record produced to opsverify.canary",
            "/restate/Greeter/greet (a handler invocation)", "a login and a revocation (POST)",
            "an empty message published to each allow_publish"]
DISRUPTIVE = ["a burst of up to 6 GET requests", "connections opened up to the server's cap"]


class Subjects:
    """A subscriber on ``>`` of a real nats-server, in a thread of its own: every subject published."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the counting subscriber did not connect"

    def _run(self) -> None:
        import nats

        async def main() -> None:
            client = await nats.connect(self.url)

            async def record(msg: Any) -> None:
                self.seen.append(msg.subject)

            await client.subscribe(">", cb=record)
            await client.flush()
            self._ready.set()
            self._stop = asyncio.Event()
            await self._stop.wait()
            await client.close()

        self._loop.run_until_complete(main())

    def application(self) -> list[str]:
        """Subjects published to, other than the server API requests, its own advisories and reply inboxes."""
        return [s for s in self.seen if not s.startswith(PROTOCOL_SUBJECTS)]

    def clear(self) -> None:
        self.seen.clear()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class Servers:
    def __init__(self, recorder: Recorder, nats_server: NatsServer, kafka: KafkaServer, subjects: Subjects) -> None:
        self.recorder, self.nats, self.kafka, self.subjects = recorder, nats_server, kafka, subjects

    def requests(self) -> list[str]:
        return list(self.recorder.stats()["requests"])

    def canary_records(self) -> int:
        consumer = Consumer({"bootstrap.servers": self.kafka.bootstrap, "group.id": "opsverify-selftest-watch",
                             "enable.auto.commit": False})
        try:
            _, high = consumer.get_watermark_offsets(TopicPartition(CANARY_TOPIC, 0), timeout=10)
            return int(high)
        finally:
            consumer.close()

    def reset(self) -> None:
        self.recorder.reset()
        self.subjects.clear()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("safety")
    port = free_port()
    proc = ManagedProcess.start([sys.executable, "-m", "tests.recorder", "--port", str(port)],
                                log_path=tmp / "recorder.log", name="recorder", cwd=ROOT)
    proc.wait_for_port("127.0.0.1", port)
    with start_nats(tmp / "nats") as nats_server, start_kafka(tmp / "kafka") as kafka:
        create_topic(kafka.bootstrap, CANARY_TOPIC, 1)
        subjects = Subjects(f"nats://127.0.0.1:{nats_server.port}")
        try:
            yield Servers(Recorder(port, proc), nats_server, kafka, subjects)
        finally:
            subjects.close()
            proc.stop()


def environment(s: Servers) -> dict[str, Any]:
    """Every section that can send something, pointed at the counting servers."""
    base = s.recorder.url("")
    secret = {"env": "SELFTEST_SAFETY_SECRET"}
    return {
        "defaults": {"timeout_s": 3},
        "http": [{"name": "get", "url": f"{base}/http/get"},
                 {"name": "delete", "url": f"{base}/http/delete", "method": "DELETE"},
                 {"name": "post", "url": f"{base}/http/post", "method": "POST", "body": "{}"}],
        "auth": [{"name": "auth", "base_url": base,
                  "client": {"client_id": "opsverify", "client_secret": secret},
                  "refresh_path": "/auth/refresh", "me_path": "/auth/me",
                  "revoke": {"admin_token": secret},
                  "admin_paths": ["/admin/tokens", {"path": "/admin/tokens/revoke", "method": "POST"},
                                  {"path": "/admin/users/1", "method": "DELETE"}]}],
        "api_tokens": [{"name": "introspect", "verify_url": f"{base}/token/introspect", "method": "POST",
                        "token": secret, "expires_path": "exp"}],
        "ratelimit": [{"name": "burst", "url": f"{base}/ratelimit", "limit": 3}],
        "webhooks": [{"name": "hook", "url": f"{base}/hooks/approval", "secret": secret}],
        "telemetry": [{"name": "otlp", "endpoint": f"{base}/otlp", "key": secret}],
        "restate": [{"name": "restate", "admin_url": f"{base}/restate-admin", "ingress_url": f"{base}/restate",
                     "invocations": [{"service": "Greeter", "handler": "greet", "input": "Ada"}]}],
        "websocket": [{"name": "ws", "url": f"ws://127.0.0.1:{s.recorder.port}/ws", "connection_cap": 2,
                       "reply_contains": "pong"}],
        "nats": [{"name": "nats", "url": f"nats://127.0.0.1:{s.nats.port}",
                  "request": {"subject": "orders.ping"}, "canary_subject": "opsverify.canary.nats",
                  "allow_publish": ["orders.>"], "deny_publish": ["$SYS.>"], "allow_subscribe": ["orders.>"],
                  "jetstream": True},
                 {"name": "nats-ping", "url": f"nats://127.0.0.1:{s.nats.port}", "request": {"subject": "$SRV.PING.orders"}}],
        "kafka": [{"name": "kafka", "bootstrap": s.kafka.bootstrap, "canary": {"topic": CANARY_TOPIC}}],
        "vault": [{"name": "vault", "addr": base, "token": secret,
                   "leases": [{"name": "db", "lease_id": "database/creds/app/abc"}]}],
    }


def _run(tmp: Path, s: Servers, tier: str, *args: str) -> SuiteRun:
    s.reset()
    return run_checks(tmp, {"tier": tier, **environment(s)}, *args, paths=CHECKS, env_vars=SECRETS,
                      env_name="prod", timeout=300)


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda sel: " ".join(sel) or "all")
def test_production_sends_nothing_but_reads(servers: Servers, tmp_path: Path, selection: list[str]) -> None:
    before = servers.canary_records()
    run = _run(tmp_path, servers, "production", *selection)
    assert run.ret in (0, 1, 5), run.stdout[-3000:] + run.stderr[-2000:]
    writes = [r for r in servers.requests() if not r.startswith(SAFE)]
    assert writes == [], writes
    assert servers.subjects.application() == []
    assert servers.canary_records() == before
    for record in run.records:
        assert "UnsafeSend" not in (record["message"] or ""), record  # classified before the wire guard
        if record["outcome"] == "skipped":
            assert record["message"], record  # every skip says why
    if not selection:
        ping = run.record("test_nats_service_replies_within_latency_budget", "nats-ping")
        assert ping["safety"] == "read_only" and ping["outcome"] != "skipped", ping  # a discovery request reads
    expected = {(): MUTATING + DISRUPTIVE, ("-m", "mutating"): MUTATING, ("-m", "disruptive"): DISRUPTIVE}
    if tuple(selection) in expected:
        reasons = " | ".join(r["message"] for r in run.records if r["outcome"] == "skipped")
        for sent in expected[tuple(selection)]:
            assert sent in reasons, sent
    if tuple(selection) in ((), ("-m", "mutating")):
        assert "mutating checks are not allowed in prod (production tier allows: read_only): it sends POST" in reasons
        delete = run.record("test_endpoint_returns_expected_status", "delete")
        assert delete["outcome"] == "skipped" and "mutating" in delete["markers"], delete


def test_the_counters_see_what_a_dev_environment_sends(servers: Servers, tmp_path: Path) -> None:
    before = servers.canary_records()
    _run(tmp_path, servers, "dev")
    writes = [r for r in servers.requests() if not r.startswith(SAFE)]
    for expected in ("DELETE /http/delete", "POST /http/post", "POST /admin/tokens/revoke", "DELETE /admin/users/1",
                     "POST /hooks/approval", "POST /token/introspect", "POST /restate/Greeter/greet"):
        assert expected in writes, (expected, writes)
    assert {"orders.ping", "opsverify.canary.nats"} <= set(servers.subjects.application())
    assert servers.canary_records() > before
    assert sum(r.startswith("GET /ratelimit") for r in servers.requests()) >= 4  # the burst went out


def test_not_mutating_selects_only_reads_where_writes_are_allowed(servers: Servers, tmp_path: Path) -> None:
    """The class decided from what is sent is a marker too: ``-m "not mutating"`` leaves a DELETE out."""
    before = servers.canary_records()
    run = _run(tmp_path, servers, "dev", "-m", "not mutating and not disruptive")
    assert run.records, run.stdout[-2000:]
    assert [r for r in servers.requests() if not r.startswith(SAFE)] == []
    assert servers.subjects.application() == []
    assert servers.canary_records() == before
    assert not any(r.startswith("GET /ratelimit") for r in servers.requests())


MISLABELLED = '''
import pytest
from opsverify.net.http import request
from opsverify.probe_api import probe_fixture


@probe_fixture("http", name="mislabelled_post")
async def mislabelled_post(ctx):
    """Declared as a read (the default), yet it POSTs."""
    return await request(ctx, "POST", ctx.target.url, content=b"{}")


@pytest.mark.runbook("platform#http-status")
def test_mislabelled_probe(mislabelled_post):
    assert mislabelled_post.status == 200
'''


def test_a_mislabelled_probe_is_stopped_on_the_wire(servers: Servers, tmp_path: Path) -> None:
    check = tmp_path / "test_mislabelled.py"
    check.write_text(MISLABELLED)
    plugins = ["-p", "opsverify.plugin"]
    target = {"http": [{"name": "api", "url": servers.recorder.url("/mislabelled")}]}
    servers.reset()
    (tmp_path / "prod").mkdir()
    (tmp_path / "dev").mkdir()
    prod = run_checks(tmp_path / "prod", {"tier": "production", **target}, *plugins, paths=[str(check)],
                      env_name="prod")
    assert prod.outcome("test_mislabelled_probe", "api") == "error"
    assert prod.cause("test_mislabelled_probe", "api") == (
        f"UnsafeSend: opsverify refused to send POST {servers.recorder.url('/mislabelled')} to prod: it is mutating "
        "and the environment allows only read_only (production tier); nothing was sent — add mutating to its "
        "allow: list to let such checks run")
    told = prod.message("test_mislabelled_probe", "api")
    assert told.endswith(f" — could not see prod-api: {UnsafeSend.remedy}")
    assert servers.requests() == []
    dev = run_checks(tmp_path / "dev", {"tier": "dev", **target}, *plugins, paths=[str(check)], env_name="dev")
    assert dev.outcome("test_mislabelled_probe", "api") == "passed"
    assert servers.requests() == ["POST /mislabelled"]


def test_vaults_lease_lookup_is_a_read_that_production_allows(tmp_path: Path) -> None:
    """``PUT sys/leases/lookup`` is how Vault's API reads a lease: the wire guard lets it through."""
    from opsverify_sandbox.servers.vault import start_vault_dev

    with start_vault_dev(tmp_path / "bao", root_token="selftest-safety-root") as bao:
        lease = bao.create_lease(ttl="3h")
        env = {"tier": "production", "vault": [{"name": "bao", "addr": bao.addr, "token": {"env": "SELFTEST_BAO"},
                                                "leases": [{"name": "pki", "lease_id": lease}]}]}
        (tmp_path / "run").mkdir()
        run = run_checks(tmp_path / "run", env, "-k", "lease", paths=CHECKS, env_name="prod",
                         env_vars={"SELFTEST_BAO": bao.root_token})
    record = run.record("test_vault_lease_has_enough_ttl_left", "bao", item="pki")
    assert (record["outcome"], record["safety"]) == ("passed", "read_only"), record
