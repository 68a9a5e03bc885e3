"""Self-test of the NATS launcher: every capability against the real ``nats-server``.

Each test drives nats-py through :func:`run` (``asyncio.run`` with a hard deadline), so the file
needs no async plugin. Servers are module-scoped where tests do not change them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nats
import nats.errors
import pytest
from nats.aio.client import Client

from opsverify.errors import SandboxError
from opsverify_sandbox.servers.nats import (
    JwtTrust,
    NatsServer,
    Permissions,
    make_jwt_trust,
    nkey_user,
    password_user,
    read_creds_claims,
    start_nats,
    token_user,
)

T = TypeVar("T")
UTC = dt.UTC
RESTRICTED = Permissions(
    publish_allow=("orders.>", "_INBOX.>"),
    publish_deny=("orders.secret",),
    subscribe_deny=("audit.>",),
)


def run(coro: Coroutine[Any, Any, T], timeout_s: float = 5.0) -> T:
    """Run ``coro`` with a deadline, so no test can hang."""
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


class ErrorLog:
    """An ``error_cb`` that remembers what it was given."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    async def callback(self, err: Exception) -> None:
        """Pass as ``error_cb``: nats-py wants a coroutine *function*, not an async callable."""
        self.errors.append(err)

    async def wait_for(self, text: str, timeout_s: float = 1.0) -> Exception | None:
        """The first error containing ``text`` (case-insensitive), waiting up to ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for err in self.errors:
                if text.lower() in str(err).lower():
                    return err
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.01)


async def quiet_error_cb(err: Exception) -> None:
    """Swallow errors (stops nats-py logging tracebacks for expected auth failures)."""


async def connect_error(**options: Any) -> str:
    """The text of the exception ``nats.connect`` raises, or ``"connected"``."""
    options.setdefault("error_cb", quiet_error_cb)
    try:
        nc = await nats.connect(**options)
    except nats.errors.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    await nc.close()
    return "connected"


async def with_connection(
    options: dict[str, Any], body: Callable[[Client, ErrorLog], Awaitable[T]]
) -> T:
    errors = ErrorLog()
    nc = await nats.connect(**options, error_cb=errors.callback)
    try:
        return await body(nc, errors)
    finally:
        await nc.close()


# -- servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    users = [
        password_user("alice"),
        password_user("restricted", permissions=RESTRICTED),
        nkey_user("nkeyed", permissions=Permissions(publish_deny=(">",))),
    ]
    with start_nats(tmp_path_factory.mktemp("nats-users"), users=users) as server:
        yield server


@pytest.fixture(scope="module")
def token_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with start_nats(
        tmp_path_factory.mktemp("nats-tls"), users=[token_user("svc")], tls=True, jetstream=False
    ) as server:
        yield server


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> JwtTrust:
    return make_jwt_trust(tmp_path_factory.mktemp("nats-trust"))


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory, trust: JwtTrust) -> Iterator[NatsServer]:
    with start_nats(tmp_path_factory.mktemp("nats-jwt"), jwt_trust=trust) as server:
        yield server


# -- config-file users --------------------------------------------------------------------------


def test_password_user_connects(users_server: NatsServer) -> None:
    assert run(connect_error(**users_server.connect_options("alice"))) == "connected"


def test_wrong_password_is_rejected_with_authorization_violation(users_server: NatsServer) -> None:
    options = users_server.connect_options() | {"user": "alice", "password": "wrong"}
    assert run(connect_error(**options)) == "Error: nats: 'Authorization Violation'"


def test_unknown_user_is_rejected(users_server: NatsServer) -> None:
    options = users_server.connect_options() | {"user": "mallory", "password": "x"}
    assert "Authorization Violation" in run(connect_error(**options))


def test_no_credentials_are_rejected(users_server: NatsServer) -> None:
    assert "Authorization Violation" in run(connect_error(**users_server.connect_options()))


def test_nkey_user_connects(users_server: NatsServer) -> None:
    assert users_server.user("nkeyed").public_key.startswith("U")
    assert run(connect_error(**users_server.connect_options("nkeyed"))) == "connected"


def test_denied_publish_surfaces_only_via_error_cb(users_server: NatsServer) -> None:
    async def body(nc: Client, errors: ErrorLog) -> tuple[Exception | None, bool]:
        await nc.publish("orders.secret", b"x")  # raises nothing
        await nc.flush()
        return await errors.wait_for("permissions violation"), nc.is_connected

    err, connected = run(with_connection(users_server.connect_options("restricted"), body))
    assert type(err) is nats.errors.Error
    assert str(err) == 'nats: permissions violation for publish to "orders.secret"'
    assert connected


def test_allowed_publish_raises_no_error(users_server: NatsServer) -> None:
    async def body(nc: Client, errors: ErrorLog) -> Exception | None:
        await nc.publish("orders.new", b"x")
        await nc.flush()
        return await errors.wait_for("violation", timeout_s=0.2)

    assert run(with_connection(users_server.connect_options("restricted"), body)) is None


def test_denied_subscribe_surfaces_via_error_cb_and_last_error(users_server: NatsServer) -> None:
    async def body(nc: Client, errors: ErrorLog) -> tuple[Exception | None, Exception | None]:
        await nc.subscribe("audit.log")  # returns a Subscription as if it worked
        await nc.flush()
        return await errors.wait_for("permissions violation"), nc.last_error

    err, last = run(with_connection(users_server.connect_options("restricted"), body))
    assert str(err) == 'nats: permissions violation for subscription to "audit.log"'
    assert last is err


def test_denied_subscription_receives_nothing(users_server: NatsServer) -> None:
    async def body(nc: Client, errors: ErrorLog) -> int:
        sub = await nc.subscribe("audit.log")
        await nc.flush()
        async with await nats.connect(**users_server.connect_options("alice")) as other:
            await other.publish("audit.log", b"x")
            await other.flush()
        await asyncio.sleep(0.2)
        return sub.pending_msgs

    assert run(with_connection(users_server.connect_options("restricted"), body)) == 0


def test_request_on_denied_subject_times_out(users_server: NatsServer) -> None:
    async def body(nc: Client, errors: ErrorLog) -> tuple[str, Exception | None]:
        try:
            await nc.request("orders.secret", b"", timeout=0.3)
        except nats.errors.TimeoutError as exc:
            return type(exc).__name__, await errors.wait_for("permissions violation")
        return "answered", None

    name, err = run(with_connection(users_server.connect_options("restricted"), body))
    assert name == "TimeoutError"
    assert err is not None


def test_nkey_user_permissions_are_enforced(users_server: NatsServer) -> None:
    async def body(nc: Client, errors: ErrorLog) -> Exception | None:
        await nc.publish("anything", b"x")
        await nc.flush()
        return await errors.wait_for("permissions violation")

    assert run(with_connection(users_server.connect_options("nkeyed"), body)) is not None


def test_token_user_must_be_alone(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="only user"):
        start_nats(tmp_path, users=[token_user("t"), password_user("p")])


# -- JetStream and monitoring -------------------------------------------------------------------


def test_jetstream_healthz_is_ok(users_server: NatsServer) -> None:
    assert users_server.monitor("/healthz?js-enabled-only=true") == (200, {"status": "ok"})


def test_jsz_shows_jetstream_config(users_server: NatsServer) -> None:
    status, body = users_server.monitor("/jsz")
    assert status == 200
    assert body["config"]["store_dir"] == str(users_server.workdir / "jetstream")


def test_varz_names_the_server(users_server: NatsServer) -> None:
    status, body = users_server.monitor("/varz")
    assert (status, body["server_name"], body["port"]) == (200, "opsverify-nats", users_server.port)


def test_healthz_js_enabled_only_is_ok_even_without_jetstream(token_tls_server: NatsServer) -> None:
    """A fact that bites: this endpoint cannot tell that JetStream is off; /varz can."""
    assert token_tls_server.monitor("/healthz?js-enabled-only=true")[0] == 200
    assert token_tls_server.monitor("/varz")[1]["jetstream"] == {}


def test_varz_shows_jetstream_config_when_on(users_server: NatsServer) -> None:
    assert "config" in users_server.monitor("/varz")[1]["jetstream"]


def test_jetstream_works_for_users(users_server: NatsServer) -> None:
    async def body(nc: Client, errors: ErrorLog) -> int:
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["jsorders.>"])
        await js.publish("jsorders.1", b"x")
        return (await js.stream_info("ORDERS")).state.messages

    assert run(with_connection(users_server.connect_options("alice"), body)) == 1


# -- TLS and token ------------------------------------------------------------------------------


def test_tls_token_user_connects_with_the_ca(token_tls_server: NatsServer) -> None:
    assert token_tls_server.ca_path is not None and token_tls_server.ca_path.is_file()
    assert run(connect_error(**token_tls_server.connect_options("svc"))) == "connected"


def test_wrong_token_is_rejected(token_tls_server: NatsServer) -> None:
    options = token_tls_server.connect_options("svc") | {"token": "wrong"}
    assert "Authorization Violation" in run(connect_error(**options))


def test_tls_without_the_ca_fails_verification(token_tls_server: NatsServer) -> None:
    import ssl

    options = token_tls_server.connect_options("svc") | {"tls": ssl.create_default_context()}
    with pytest.raises(ssl.SSLCertVerificationError):
        run(nats.connect(**options, error_cb=quiet_error_cb))


# -- reload -------------------------------------------------------------------------------------


def test_reload_changes_who_can_connect(tmp_path: Path) -> None:
    with start_nats(tmp_path, users=[password_user("rot")], jetstream=False) as server:
        old = server.user("rot")

        async def scenario() -> tuple[str, str, bool]:
            errors = ErrorLog()
            held = await nats.connect(**server.connect_options("rot"), error_cb=errors.callback)
            server.reload(users=[old.with_new_secret()])
            old_result = await connect_error(**server.connect_options(), **old.connect_options())
            new_result = await connect_error(**server.connect_options("rot"))
            for _ in range(100):  # the held connection is dropped by the reload
                if held.is_closed:
                    break
                await asyncio.sleep(0.01)
            closed = held.is_closed
            await held.close()
            return old_result, new_result, closed

        old_result, new_result, held_closed = run(scenario())
    assert "Authorization Violation" in old_result
    assert new_result == "connected"
    assert held_closed


def test_reload_rejecting_bad_config_raises(tmp_path: Path) -> None:
    with start_nats(tmp_path, users=[password_user("a")], jetstream=False) as server:
        with pytest.raises(SandboxError, match="only user"):
            server.reload(users=[token_user("t"), password_user("b")])


# -- JWT mode -----------------------------------------------------------------------------------


def _jwt_options(server: NatsServer, creds: Path) -> dict[str, Any]:
    return server.connect_options() | {"user_credentials": str(creds)}


def test_jwt_valid_creds_connect(jwt_server: NatsServer, trust: JwtTrust) -> None:
    creds = trust.write_user_creds("valid", expires_at=dt.datetime.now(UTC) + dt.timedelta(hours=1))
    assert run(connect_error(**_jwt_options(jwt_server, creds))) == "connected"


def test_jwt_expired_creds_are_rejected(jwt_server: NatsServer, trust: JwtTrust) -> None:
    expired = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    creds = trust.write_user_creds("expired", expires_at=expired)
    result = run(connect_error(**_jwt_options(jwt_server, creds)))
    assert result == "Error: nats: 'Authorization Violation'"


def test_jwt_over_age_creds_still_connect(jwt_server: NatsServer, trust: JwtTrust) -> None:
    issued = dt.datetime.now(UTC) - dt.timedelta(days=120)
    creds = trust.write_user_creds("old", issued_at=issued)
    assert read_creds_claims(creds)["iat"] == int(issued.timestamp())
    assert run(connect_error(**_jwt_options(jwt_server, creds))) == "connected"


def test_jwt_creds_file_is_private_and_decorated(trust: JwtTrust) -> None:
    creds = trust.write_user_creds("fmt")
    text = creds.read_text()
    assert creds.stat().st_mode & 0o777 == 0o600
    assert "-----BEGIN NATS USER JWT-----" in text and "-----BEGIN USER NKEY SEED-----" in text


def test_jwt_permissions_are_enforced(jwt_server: NatsServer, trust: JwtTrust) -> None:
    creds = trust.write_user_creds("perm", permissions=Permissions(publish_allow=("ok.>",)))

    async def body(nc: Client, errors: ErrorLog) -> tuple[Exception | None, Exception | None]:
        await nc.publish("ok.1", b"x")
        await nc.flush()
        allowed = await errors.wait_for("violation", timeout_s=0.2)
        await nc.publish("forbidden", b"x")
        await nc.flush()
        return allowed, await errors.wait_for("permissions violation")

    allowed, denied = run(with_connection(_jwt_options(jwt_server, creds), body))
    assert allowed is None
    assert str(denied) == 'nats: permissions violation for publish to "forbidden"'


def test_jwt_account_has_jetstream(jwt_server: NatsServer, trust: JwtTrust) -> None:
    creds = trust.write_user_creds("js")

    async def body(nc: Client, errors: ErrorLog) -> str:
        info = await nc.jetstream().add_stream(name="JWTS", subjects=["jwts.>"])
        return info.config.name or ""

    assert run(with_connection(_jwt_options(jwt_server, creds), body)) == "JWTS"


def test_jwt_mode_refuses_config_users(tmp_path: Path, trust: JwtTrust) -> None:
    with pytest.raises(SandboxError, match="operator"):
        start_nats(tmp_path, users=[password_user("x")], jwt_trust=trust)
