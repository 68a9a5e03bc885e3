"""NATS checks against real nats-servers: config-file users with permissions (password, nkey,
token over TLS), an operator/account/user JWT chain made at run time (valid, expiring, expired,
over-age creds), JetStream with a real backlog, and a lone cluster node whose /healthz is 503.

All targets go into one environment and one pytest run (about 3 s); each assertion names the
fault a check exists to catch and the text its message must carry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.nats import (
    JwtTrust,
    NatsServer,
    Permissions,
    make_jwt_trust,
    nkey_user,
    password_user,
    start_nats,
    token_user,
)
from opsverify_sandbox.tools import find_tool
from tests.harness import SuiteRun

CONNECT = "test_nats_accepts_credential"
REQUEST = "test_nats_service_replies_within_latency_budget"
CANARY = "test_nats_canary_message_round_trips_within_latency_budget"
PUB_ALLOWED = "test_credential_may_publish_to_allowed_subjects"
PUB_DENIED = "test_credential_is_denied_publish_to_forbidden_subjects"
SUB_ALLOWED = "test_credential_may_subscribe_to_allowed_subjects"
SUB_DENIED = "test_credential_is_denied_subscribe_to_forbidden_subjects"
EXPIRY = "test_credential_is_not_close_to_expiry"
AGE = "test_credential_was_issued_within_max_age"
ACCOUNT = "test_credential_belongs_to_expected_account"
JETSTREAM = "test_jetstream_is_enabled"
STREAM = "test_stream_exists_as_configured"
CONSUMER = "test_consumer_exists"
PENDING = "test_consumer_pending_within_limit"
ACK_PENDING = "test_consumer_ack_pending_within_limit"
HEALTH = "test_nats_server_reports_healthy"

UTC = dt.UTC
RESTRICTED = Permissions(
    publish_allow=("orders.>", "$JS.API.>", "$SYS.REQ.USER.INFO"),
    publish_deny=("orders.secret",),
    subscribe_allow=("orders.>", "_INBOX.>"),
    subscribe_deny=("orders.audit.>",),
)
# the restricted user's real matrix, as an environment file states it
RESTRICTED_MATRIX = {
    "allow_publish": ["orders.new", "orders.*.created"],
    "deny_publish": ["orders.secret", "billing.>"],
    "allow_subscribe": ["orders.>", "_INBOX.>"],
    "deny_subscribe": ["orders.audit.log", "billing.>"],
}


@dataclass
class NatsWorld:
    """The servers of one module, and secret files for their credentials."""

    users: NatsServer
    tls: NatsServer
    jwt: NatsServer
    trust: JwtTrust
    lonely_url: str
    lonely_monitoring: str
    secrets: Path
    closed_port: int
    blackhole_port: int

    def secret(self, name: str, value: str) -> dict[str, str]:
        path = self.secrets / name
        path.write_text(value)
        path.chmod(0o600)
        return {"file": str(path)}

    def password_target(self, name: str, user: str, password: str | None = None, **extra: Any) -> dict[str, Any]:
        secret = password if password is not None else self.users.user(user).secret
        return {"name": name, "url": self.users.url, "user": user,
                "password": self.secret(f"{name}.password", secret), **extra}

    def creds_target(self, name: str, creds: Path, **extra: Any) -> dict[str, Any]:
        return {"name": name, "url": self.jwt.url, "creds": {"file": str(creds)}, **extra}


async def _provision_jetstream(server: NatsServer) -> None:
    """Stream ORDERS with consumer ``proc``: 5 messages, 2 delivered but not acknowledged."""
    nc = await nats.connect(**server.connect_options("alice"))
    try:
        js = nc.jetstream(timeout=2)
        await js.add_stream(name="ORDERS", subjects=["orders.>"], storage="file")
        await js.add_consumer("ORDERS", durable_name="proc", ack_policy="explicit")
        for number in range(5):
            await js.publish(f"orders.{number}.created", b"order")
        sub = await js.pull_subscribe_bind("proc", stream="ORDERS")
        await sub.fetch(2, timeout=2)  # delivered, never acked -> ack pending 2, pending 3
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsWorld]:
    tmp = tmp_path_factory.mktemp("nats-checks")
    users = [
        password_user("alice"),
        password_user("restricted", permissions=RESTRICTED),
        nkey_user("nkeyed"),
    ]
    trust = make_jwt_trust(tmp / "trust", account_name="APP")
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir()
    lonely_dir = tmp / "lonely"
    lonely_dir.mkdir()
    port, monitoring = free_port(), free_port()
    (lonely_dir / "lonely.conf").write_text(
        f'server_name: lonely\nlisten: "127.0.0.1:{port}"\nhttp: "127.0.0.1:{monitoring}"\n'
        f'jetstream {{ store_dir: "{lonely_dir}" }}\n'
        f'cluster {{ name: c1, listen: "127.0.0.1:{free_port()}", '
        f'routes: ["nats://127.0.0.1:{free_port()}", "nats://127.0.0.1:{free_port()}"] }}\n'
    )
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(8)  # accepts TCP, never speaks NATS
    with (
        start_nats(tmp / "users", users=users) as users_server,
        start_nats(tmp / "tls", users=[token_user("svc")], tls=True, jetstream=False) as tls_server,
        start_nats(tmp / "jwt", jwt_trust=trust) as jwt_server,
    ):
        lonely = ManagedProcess.start(
            [find_tool("nats-server"), "-c", str(lonely_dir / "lonely.conf")],
            log_path=lonely_dir / "lonely.log", name="nats-lonely",
        )
        try:
            lonely.wait_for_port("127.0.0.1", monitoring, timeout_s=10)
            asyncio.run(asyncio.wait_for(_provision_jetstream(users_server), 10))
            yield NatsWorld(
                users_server, tls_server, jwt_server, trust, f"nats://127.0.0.1:{port}",
                f"http://127.0.0.1:{monitoring}", secrets_dir, free_port(), blackhole.getsockname()[1],
            )
        finally:
            lonely.stop()
            blackhole.close()


def _environment(world: NatsWorld) -> dict[str, Any]:
    trust, now = world.trust, dt.datetime.now(UTC)
    days = dt.timedelta(days=1)
    user_info = Permissions(publish_allow=("app.>", "$SYS.REQ.USER.INFO"), subscribe_allow=("app.>", "_INBOX.>"))
    creds = {
        "valid": trust.write_user_creds("valid", expires_at=now + 60 * days, permissions=user_info),
        "warn": trust.write_user_creds("warn", expires_at=now + 10 * days),
        "soon": trust.write_user_creds("soon", expires_at=now + 2 * days),
        "expired": trust.write_user_creds("expired", expires_at=now - dt.timedelta(hours=1)),
        "old": trust.write_user_creds("old", issued_at=now - 120 * days),
        "noinfo": trust.write_user_creds("noinfo", permissions=Permissions(publish_allow=("app.>",))),
    }
    stranger = trust.write_user_creds("stranger").read_text()
    mismatched = world.secrets / "mismatched.creds"  # valid's JWT with another user's seed
    mismatched.write_text(creds["valid"].read_text().split("-----BEGIN USER NKEY SEED")[0]
                          + "-----BEGIN USER NKEY SEED" + stranger.split("-----BEGIN USER NKEY SEED")[1])
    garbage = world.secrets / "garbage.creds"
    garbage.write_text("this is not a creds file\nsecond line\n")
    users = world.users
    js_ok = {
        "streams": [{"name": "ORDERS", "subjects": ["orders.>"], "min_replicas": 1, "storage": "file"}],
        "consumers": [{"stream": "ORDERS", "consumer": "proc", "max_pending": 10, "max_ack_pending": 10}],
    }
    return {"nats": [
        # -- config-file users -----------------------------------------------------------------------
        world.password_target(
            "healthy", "alice", monitoring_url=users.monitoring_url, canary_subject="canary.ping",
            request={"subject": "$JS.API.INFO", "reply_contains": "account_info_response"}, **js_ok,
        ),
        world.password_target("restricted", "restricted", **RESTRICTED_MATRIX, account="$G"),
        world.password_target(
            "matrix-wrong", "restricted",
            allow_publish=["orders.new", "orders.secret", "billing.charge"],
            deny_publish=["orders.*.created", "billing.>"],
            allow_subscribe=["orders.>", "orders.audit.log"],
            deny_subscribe=["orders.new", "billing.>"],
        ),
        world.password_target("bad-password", "alice", password="not-the-password",
                              allow_subscribe=["orders.>"], account="$G"),
        {"name": "nkey", "url": users.url, "nkey_seed": world.secret("nkey.seed", users.user("nkeyed").secret)},
        world.password_target("no-responders", "alice", request={"subject": "svc.nobody.home"}),
        world.password_target("over-budget", "alice", request={"subject": "$JS.API.INFO"},
                              max_round_trip_ms=0.001),
        world.password_target("canary-denied", "restricted", canary_subject="orders.secret"),
        world.password_target(
            "js-drift", "alice", monitoring_url=users.monitoring_url,
            streams=[{"name": "ORDERS", "subjects": ["orders.>", "invoices.>"], "min_replicas": 3, "storage": "memory"},
                     {"name": "MISSING"}],
            consumers=[{"stream": "ORDERS", "consumer": "proc", "max_pending": 2, "max_ack_pending": {"warn": 1, "critical": 5}},
                       {"stream": "ORDERS", "consumer": "ghost"},
                       {"stream": "NOSTREAM", "consumer": "proc"}],
        ),
        # the stream's replica count exactly at the minimum, and one past it
        world.password_target("js-replicas-one-past", "alice",
                              streams=[{"name": "ORDERS", "subjects": ["orders.>"], "min_replicas": 2}]),
        # -- token over TLS, JetStream off ---------------------------------------------------------------
        {"name": "tls-token", "url": world.tls.tls_url, "ca_bundle": str(world.tls.ca_path),
         "token": world.secret("tls.token", world.tls.user("svc").secret),
         "jetstream": True, "monitoring_url": world.tls.monitoring_url},
        {"name": "tls-untrusted", "url": world.tls.tls_url,
         "token": world.secret("tls2.token", world.tls.user("svc").secret)},
        {"name": "tls-bad-token", "url": world.tls.tls_url, "ca_bundle": str(world.tls.ca_path),
         "token": world.secret("tls3.token", "wrong-token")},
        # -- unreachable, stalled, missing secret ------------------------------------------------------
        {"name": "refused", "url": f"nats://127.0.0.1:{world.closed_port}", "user": "alice",
         "password": {"env": "OPSVERIFY_SELFTEST_NATS_PASSWORD"}, "monitoring_url": f"http://127.0.0.1:{world.closed_port}"},
        {"name": "stalled", "url": f"nats://127.0.0.1:{world.blackhole_port}", "timeout_s": 1},
        {"name": "no-secret", "url": users.url, "user": "alice",
         "password": {"env": "OPSVERIFY_SELFTEST_NATS_UNSET"}},
        # -- a cluster node without its peers: /healthz 503 --------------------------------------------
        {"name": "lonely", "url": world.lonely_url, "monitoring_url": world.lonely_monitoring},
        # -- JWT (operator mode) -----------------------------------------------------------------------
        world.creds_target("jwt-valid", creds["valid"], account="APP"),
        world.creds_target("jwt-key", creds["valid"], account=trust.account_public),
        world.creds_target("jwt-other-account", creds["valid"], account="OTHER"),
        world.creds_target("jwt-warn", creds["warn"]),
        world.creds_target("jwt-soon", creds["soon"]),
        world.creds_target("jwt-expired", creds["expired"]),
        world.creds_target("jwt-old", creds["old"]),
        world.creds_target("jwt-noinfo", creds["noinfo"], account="APP"),
        {"name": "jwt-path-in-env", "url": world.jwt.url, "creds": {"env": "OPSVERIFY_SELFTEST_NATS_CREDS_PATH"}},
        world.creds_target("jwt-garbage", garbage),
        world.creds_target("jwt-mismatched-seed", mismatched),
    ]}


@pytest.fixture(scope="module")
def run(world: NatsWorld, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    from tests.harness import run_checks

    env_vars = {
        "OPSVERIFY_SELFTEST_NATS_PASSWORD": world.users.user("alice").secret,
        "OPSVERIFY_SELFTEST_NATS_CREDS_PATH": str(world.trust.directory / "valid.creds"),
    }
    return run_checks(tmp_path_factory.mktemp("nats-run"), _environment(world),
                      paths=["checks/test_nats.py"], env_vars=env_vars)


# -- connecting --------------------------------------------------------------------------------------


def test_every_auth_mode_connects_when_the_credential_is_right(run: SuiteRun) -> None:
    for target in ("healthy", "restricted", "nkey", "tls-token", "jwt-valid", "jwt-old", "jwt-path-in-env"):
        assert run.outcome(CONNECT, target) == "passed", (target, run.stdout[-3000:])


def test_wrong_or_expired_credentials_fail_with_authorization_violation(run: SuiteRun, world: NatsWorld) -> None:
    assert run.outcome(CONNECT, "bad-password") == "failed"
    assert f"got authorization violation for user alice on {world.users.url}" in run.message(CONNECT, "bad-password")
    assert "[runbook nats#connect]" in run.message(CONNECT, "bad-password")
    assert run.outcome(CONNECT, "tls-bad-token") == "failed"
    assert "authorization violation for token user" in run.message(CONNECT, "tls-bad-token")
    expired = run.message(CONNECT, "jwt-expired")
    assert run.outcome(CONNECT, "jwt-expired") == "failed"
    assert "got authorization violation for user expired (U" in expired and f"on {world.jwt.url}" in expired
    assert "its user JWT expired" in expired
    assert run.outcome(CONNECT, "jwt-mismatched-seed") == "failed"
    assert "(the nkey seed does not belong to the JWT's user)" in run.message(CONNECT, "jwt-mismatched-seed")


def test_checks_behind_a_rejected_credential_error_with_the_same_cause(run: SuiteRun) -> None:
    for check in (SUB_ALLOWED, ACCOUNT):
        assert run.outcome(check, "bad-password") == "error"
        assert run.message(check, "bad-password").startswith(
            "Unreachable: not connected: authorization violation for user alice on")


def test_unreachable_stalled_untrusted_and_missing_secret_are_errors(run: SuiteRun, world: NatsWorld) -> None:
    assert run.outcome(CONNECT, "refused") == "error"
    assert run.cause(CONNECT, "refused") == (
        f"Unreachable: cannot connect to nats://127.0.0.1:{world.closed_port}: connection refused")
    assert run.outcome(HEALTH, "refused") == "error"
    assert "connection refused" in run.message(HEALTH, "refused")
    assert run.outcome(CONNECT, "stalled") == "error"
    stalled = run.message(CONNECT, "stalled")
    assert stalled.startswith("ProbeTimeout:") and f"connecting to nats://127.0.0.1:{world.blackhole_port}" in stalled
    assert run.outcome(CONNECT, "tls-untrusted") == "error"
    assert "TLS certificate not trusted (unable to get local issuer certificate)" in run.message(CONNECT, "tls-untrusted")
    assert run.outcome(CONNECT, "no-secret") == "error"
    assert run.cause(CONNECT, "no-secret") == "SecretMissing: secret OPSVERIFY_SELFTEST_NATS_UNSET is not set"
    assert run.outcome(CONNECT, "jwt-garbage") == "error"
    assert "is not a .creds file" in run.message(CONNECT, "jwt-garbage")
    assert "Traceback" not in run.stdout


# -- round trips -------------------------------------------------------------------------------------


def test_request_reply_passes_and_fails_on_no_responders_or_budget(run: SuiteRun) -> None:
    healthy = run.record(REQUEST, "healthy")
    assert healthy["outcome"] == "passed" and healthy["measured"][0]["name"] == "request round trip"
    assert run.outcome(REQUEST, "no-responders") == "failed"
    assert "expected a reply on svc.nobody.home, got no responders on svc.nobody.home" in run.message(REQUEST, "no-responders")
    assert run.outcome(REQUEST, "over-budget") == "failed"
    assert "expected request round trip <= 0.001 ms" in run.message(REQUEST, "over-budget")


def test_canary_round_trips_and_fails_when_publish_is_denied(run: SuiteRun) -> None:
    assert run.outcome(CANARY, "healthy") == "passed"
    assert run.record(CANARY, "healthy")["safety"] == "mutating"
    assert run.outcome(CANARY, "canary-denied") == "failed"
    assert 'permissions violation for publish to "orders.secret"' in run.message(CANARY, "canary-denied")


# -- permission matrix -------------------------------------------------------------------------------


def test_permission_matrix_passes_when_the_server_enforces_it(run: SuiteRun) -> None:
    for check in (PUB_ALLOWED, PUB_DENIED, SUB_ALLOWED, SUB_DENIED):
        assert run.outcome(check, "restricted") == "passed", run.message(check, "restricted")


def test_permission_matrix_names_each_subject_the_server_treats_differently(run: SuiteRun) -> None:
    message = run.message(PUB_ALLOWED, "matrix-wrong")
    assert run.outcome(PUB_ALLOWED, "matrix-wrong") == "failed"
    assert "got the server denied publish to orders.secret, billing.charge" in message
    message = run.message(PUB_DENIED, "matrix-wrong")
    assert run.outcome(PUB_DENIED, "matrix-wrong") == "failed"
    assert "got the server accepted publish to orders.*.created (as orders.opsverify.created)" in message
    assert "billing" not in message.split("got")[1]
    assert run.outcome(SUB_ALLOWED, "matrix-wrong") == "failed"
    assert "got the server denied subscribing to orders.audit.log" in run.message(SUB_ALLOWED, "matrix-wrong")
    assert run.outcome(SUB_DENIED, "matrix-wrong") == "failed"
    assert "got the server accepted subscriptions to orders.new (" in run.message(SUB_DENIED, "matrix-wrong")
    assert "[runbook nats#permissions]" in run.message(SUB_DENIED, "matrix-wrong")


# -- credential lifetime and account -------------------------------------------------------------------


def test_credential_expiry_passes_warns_and_fails(run: SuiteRun) -> None:
    assert run.outcome(EXPIRY, "jwt-valid") == "passed"
    warn = run.record(EXPIRY, "jwt-warn")
    assert warn["outcome"] == "passed" and "past the warning level 14 d" in warn["warnings"][0]
    assert run.outcome(EXPIRY, "jwt-soon") == "failed"
    soon = run.message(EXPIRY, "jwt-soon")
    assert "expected days until the JWT of user soon (U" in soon and ">= 3 d, got 2 d" in soon
    assert "[runbook nats#creds-expiry]" in soon
    assert run.outcome(EXPIRY, "jwt-expired") == "failed"
    assert ">= 3 d, got -0.04" in run.message(EXPIRY, "jwt-expired")


def test_credential_age_fails_past_the_rotation_limit(run: SuiteRun) -> None:
    assert run.outcome(AGE, "jwt-valid") == "passed"
    assert run.outcome(AGE, "jwt-old") == "failed"
    assert "expected age of the JWT of user old (U" in run.message(AGE, "jwt-old")
    assert "<= 90 d, got 120 d" in run.message(AGE, "jwt-old")


def test_account_matches_by_name_or_key_and_fails_otherwise(run: SuiteRun, world: NatsWorld) -> None:
    assert run.outcome(ACCOUNT, "jwt-valid") == "passed"
    assert run.outcome(ACCOUNT, "jwt-key") == "passed"
    assert run.outcome(ACCOUNT, "restricted") == "passed"  # config-file users live in $G
    assert run.outcome(ACCOUNT, "jwt-other-account") == "failed"
    assert (f"expected account OTHER, got account APP / {world.trust.account_public} "
            "(from the server ($SYS.REQ.USER.INFO))") in run.message(ACCOUNT, "jwt-other-account")
    assert run.outcome(ACCOUNT, "jwt-noinfo") == "error"
    assert "cannot read the account of user noinfo" in run.message(ACCOUNT, "jwt-noinfo")


# -- JetStream and server health -----------------------------------------------------------------------


def test_jetstream_checks_pass_on_the_provisioned_stream_and_consumer(run: SuiteRun) -> None:
    assert run.outcome(JETSTREAM, "healthy") == "passed"
    assert run.outcome(STREAM, "healthy", item="ORDERS") == "passed"
    for check in (CONSUMER, PENDING, ACK_PENDING):
        assert run.outcome(check, "healthy", item="ORDERS/proc") == "passed"
    assert run.record(PENDING, "healthy", item="ORDERS/proc")["measured"][0]["value"] == 3


def test_jetstream_disabled_fails(run: SuiteRun) -> None:
    assert run.outcome(JETSTREAM, "tls-token") == "failed"
    message = run.message(JETSTREAM, "tls-token")
    assert "expected JetStream enabled for this account, got JetStream is disabled on the server" in message
    assert "/varz has no jetstream config" in message


def test_stream_replicas_exactly_at_the_minimum_pass_and_one_below_it_fail(run: SuiteRun) -> None:
    # the server is one node: its streams have 1 replica; "healthy" asks for at least 1
    assert run.outcome(STREAM, "healthy", item="ORDERS") == "passed", run.stdout[-3000:]
    assert run.outcome(STREAM, "js-replicas-one-past", item="ORDERS") == "failed"
    message = run.message(STREAM, "js-replicas-one-past", item="ORDERS")
    assert "1 replica(s) (want at least 2)" in message, message


def test_stream_drift_and_missing_streams_fail(run: SuiteRun) -> None:
    drift = run.message(STREAM, "js-drift", item="ORDERS")
    assert run.outcome(STREAM, "js-drift", item="ORDERS") == "failed"
    assert "subjects invoices.> not captured (stream has orders.>)" in drift
    assert "1 replica(s) (want at least 3)" in drift and "file storage (want memory)" in drift
    assert run.outcome(STREAM, "js-drift", item="MISSING") == "failed"
    assert "got stream MISSING does not exist" in run.message(STREAM, "js-drift", item="MISSING")


def test_consumer_missing_and_backlog_fail(run: SuiteRun) -> None:
    assert run.outcome(CONSUMER, "js-drift", item="ORDERS/ghost") == "failed"
    assert "got consumer ORDERS/ghost does not exist" in run.message(CONSUMER, "js-drift", item="ORDERS/ghost")
    assert run.outcome(CONSUMER, "js-drift", item="NOSTREAM/proc") == "failed"
    assert "got stream NOSTREAM does not exist" in run.message(CONSUMER, "js-drift", item="NOSTREAM/proc")
    assert run.outcome(PENDING, "js-drift", item="ORDERS/proc") == "failed"
    assert ("expected messages pending for consumer ORDERS/proc <= 2, got 3"
            in run.message(PENDING, "js-drift", item="ORDERS/proc"))
    ack = run.record(ACK_PENDING, "js-drift", item="ORDERS/proc")
    assert ack["outcome"] == "passed" and "is 2, past the warning level 1" in ack["warnings"][0]


def test_monitoring_healthz_passes_and_fails_on_a_node_without_its_cluster(run: SuiteRun) -> None:
    assert run.outcome(HEALTH, "healthy") == "passed"
    assert run.outcome(HEALTH, "lonely") == "failed"
    message = run.message(HEALTH, "lonely")
    assert "got HTTP 503 status='unavailable' error=" in message and "JetStream" in message
    assert "[runbook nats#server-health]" in message


def test_no_secret_value_reaches_the_reports(run: SuiteRun, world: NatsWorld) -> None:
    text = run.stdout + json.dumps(run.summary) + (run.reports / "junit.xml").read_text()
    assert world.users.user("alice").secret not in text
    assert world.tls.user("svc").secret not in text
    seed = (world.trust.directory / "valid.creds").read_text().split("BEGIN USER NKEY SEED-----\n")[1][:20]
    assert seed not in text


# -- the environment file ------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "problem"), [
    ({"creds": {"env": "X"}, "token": {"env": "Y"}}, "choose one way to authenticate, not creds and token"),
    ({"user": "app"}, "'user' and 'password' go together"),
    ({"allow_publish": ["a.b"], "deny_publish": ["a.b"]}, "a.b: both allowed and denied for publish"),
    ({"deny_subscribe": ["a.>.b"]}, "wildcards are whole tokens"),
    ({"canary_subject": "canary.*"}, "the canary subject is published to: no wildcards"),
    ({"url": "http://nats:4222"}, "NATS URLs look like nats://host:4222"),
    ({"consumers": [{"stream": "S", "consumer": "c"}, {"stream": "S", "consumer": "c"}]}, "consumer S/c is listed twice"),
])
def test_bad_nats_sections_are_config_errors_naming_the_key(tmp_path: Path, entry: dict[str, Any], problem: str) -> None:
    from opsverify.config.model import load_environment
    from opsverify.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"name": "bad", "nats": [{"name": "t", "url": "nats://127.0.0.1:4222", **entry}]}))
    with pytest.raises(ConfigError) as raised:
        load_environment(path)
    assert "nats[0]" in str(raised.value) and problem in str(raised.value)
