"""PostgreSQL probes (psycopg 3, ``AsyncConnection``): login, a retired password, the migrations table.

Each probe opens its own connection (``connect_timeout`` and the whole probe bounded by
``ctx.timeout``; ``statement_timeout`` set; the session is read-only) and closes it.

A login the server refuses (wrong password, no ``pg_hba.conf`` entry, unknown database, a TLS alert
against our client certificate: expired, untrusted) is data: :attr:`PostgresLogin.rejection` holds
the server's reason, and the login check fails with it.
Errors are for "could not see": refused / DNS / TLS (:class:`~opsverify.errors.Unreachable`),
stalls (:class:`~opsverify.errors.ProbeTimeout`), a missing secret, a permission the checker's role
lacks on the migrations table (:class:`~opsverify.errors.UnexpectedResponse`), and
:class:`PostgresLoginRejected` for the migrations probe when it cannot log in.

Facts that bite (psycopg 3.3, PostgreSQL 18): a refused login raises ``OperationalError`` whose
``sqlstate`` is ``None`` (the SQLSTATE 28P01 is not carried on connection failures): the text
after "FATAL:" is what tells an answering server from an unreachable one. A client certificate the
server's OpenSSL rejects ends the handshake with an alert and no FATAL line (``SSL error: ssl/tls
alert certificate expired``, ``tlsv1 alert unknown ca``); a missing one is a FATAL line
(``connection requires a valid client certificate``). libpq treats a
``connect_timeout`` below 2 s as 2 s, so the whole connect is also wrapped in ``wait_for``.

Migration tables read (the shapes the tools create):

* Prisma ``_prisma_migrations``: failed = ``finished_at IS NULL AND rolled_back_at IS NULL``
  (what ``prisma migrate status`` reports as failed; also a migration still running); applied =
  ``finished_at`` set and ``rolled_back_at`` NULL.
* Alembic ``alembic_version``: one row per head revision, nothing else (no failure state).
* Flyway ``flyway_schema_history``: failed = ``success = false``; applied = ``success`` and a
  ``version`` (repeatable migrations have none), schema-creation and deleted markers excluded.

Example::

    login = await login(ctx)                # ctx.target is a PostgresTarget
    login.accepted, login.rejection, login.server_version
    state = await migrations(ctx)
    state.failed, state.applied, state.heads
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsverify.client_certs import certificate_alert, expiry_hint
from opsverify.config.datastores import PostgresTarget
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, PostgresLoginRejected, ProbeTimeout, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module
from opsverify.net.tls import base_dir, key_file, resolve

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
else:
    psycopg = lazy_module("psycopg")
    sql = lazy_module("psycopg.sql")

APPLICATION_NAME = "opsverify"


# -- facts -----------------------------------------------------------------------------------------
@dataclass
class PostgresLogin:
    """One login with the target's credentials, and what the server says about itself."""

    where: str
    user: str
    accepted: bool
    rejection: str | None = None
    latency_ms: float = 0.0
    server_version: str | None = None
    in_recovery: bool | None = None


@dataclass
class PostgresRetired:
    """A login with the retired password: ``accepted`` or the server's refusal."""

    accepted: bool
    reply: str


@dataclass
class MigrationRow:
    """One applied, failed or rolled-back migration (name: Prisma name, Flyway version/script, Alembic revision)."""

    name: str
    detail: str = ""


@dataclass
class MigrationState:
    """The migrations table of one tool."""

    tool: str
    table: str
    exists: bool
    applied: list[str] = field(default_factory=list)  # in the order they were applied
    failed: list[MigrationRow] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)  # alembic: version_num rows; else the newest applied

    @property
    def newest(self) -> str | None:
        return self.heads[-1] if self.heads else None


# -- connections -----------------------------------------------------------------------------------
def _short(text: str) -> str:
    return " ".join(text.split())[:240]


def _server_reason(message: str) -> str | None:
    """The server's refusal (after ``FATAL:``), or ``None`` when no server answered."""
    match = re.search(r"FATAL:\s*(.+?)(?:\n|$)", message)
    return _short(match.group(1)) if match else None


def _certificate_refusal(ctx: ProbeContext[PostgresTarget], target: PostgresTarget, message: str) -> str | None:
    """The server's TLS alert against our client certificate (``certificate expired``, ``unknown ca``), as a refusal."""
    alert = certificate_alert(message) if "alert" in message.lower() else None
    if alert is None:
        return None
    shown = f"client certificate {target.client_cert}" if target.client_cert else "no client certificate"
    return f"the server refused the TLS handshake ({alert}) with {shown}{expiry_hint(target, base_dir(ctx.env))}"


def _network_reason(message: str) -> str:
    lowered = message.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "failed to resolve host" in lowered or "could not translate host name" in lowered:
        return "DNS lookup failed"
    if "certificate verify failed" in lowered or "certificate" in lowered and "verif" in lowered:
        tail = message.split("failed:")[-1]
        return f"TLS certificate not trusted ({_short(tail)})"
    first = message.strip().splitlines()[0] if message.strip() else message
    return _short(first.split("failed:")[-1]) or "connection failed"


def _params(ctx: ProbeContext[PostgresTarget], target: PostgresTarget, password: str | None,
            user: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "dbname": target.database,
        "user": user or target.user,
        "sslmode": target.sslmode,
        "connect_timeout": max(2, math.ceil(ctx.timeout)),
        "application_name": APPLICATION_NAME,
        "autocommit": True,
    }
    if password is not None:
        params["password"] = password
    if target.ca_bundle:
        path = Path(os.path.expandvars(target.ca_bundle))
        base = base_dir(ctx.env)
        if not path.is_absolute() and base:
            path = Path(base) / path
        params["sslrootcert"] = str(path)
    if target.client_cert:
        params["sslcert"] = str(resolve(target.client_cert, base_dir(ctx.env)))
    return params


async def _connect(ctx: ProbeContext[PostgresTarget], target: PostgresTarget,
                   password: str | None, user: str | None = None) -> psycopg.AsyncConnection[Any] | str:
    """A connection, or the server's refusal as text; raises for an unreachable server."""
    ctx.phase = f"connecting to {target.where}"
    try:
        params = _params(ctx, target, password, user)
        if target.client_key is not None:
            with key_file(target.client_key) as key:  # libpq reads the key while connecting
                params["sslkey"] = key
                conn = await asyncio.wait_for(psycopg.AsyncConnection.connect(**params), ctx.timeout)
        else:
            conn = await asyncio.wait_for(psycopg.AsyncConnection.connect(**params), ctx.timeout)
    except (asyncio.TimeoutError, TimeoutError, psycopg.errors.ConnectionTimeout):
        raise ProbeTimeout(f"connecting to {target.where} timed out after {ctx.timeout:g} s") from None
    except psycopg.OperationalError as exc:
        message = str(exc)
        reason = _server_reason(message) or _certificate_refusal(ctx, target, message)
        if reason is not None:
            return reason
        raise Unreachable(f"cannot connect to {target.where}: {_network_reason(message)}") from None
    except psycopg.Error as exc:
        raise Unreachable(f"cannot connect to {target.where}: {_short(str(exc))}") from None
    try:
        ms = max(1, int(ctx.timeout * 1000))
        await asyncio.wait_for(conn.execute(
            sql.SQL("SET statement_timeout = {}; SET default_transaction_read_only = on").format(sql.Literal(ms))
        ), ctx.timeout)
    except BaseException:
        await _close(conn)
        raise
    return conn


async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    try:
        await asyncio.wait_for(conn.close(), 1.0)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


def _query_error(ctx: ProbeContext[PostgresTarget], target: PostgresTarget, exc: BaseException) -> CouldNotVerify:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, psycopg.errors.QueryCanceled)):
        return ProbeTimeout(f"{target.where}: no answer within {ctx.timeout:g} s ({ctx.phase})")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return UnexpectedResponse(f"{target.where}: role {target.user} may not read ({ctx.phase}): "
                                  f"{_short(str(exc))}")
    if isinstance(exc, psycopg.OperationalError):
        return Unreachable(f"{target.where}: connection lost ({ctx.phase}): {_short(str(exc))}")
    if isinstance(exc, psycopg.Error):
        return UnexpectedResponse(f"{target.where}: {ctx.phase} failed: {_short(str(exc))}")
    return UnexpectedResponse(f"{target.where}: {type(exc).__name__}: {_short(str(exc))}")


# -- probes ----------------------------------------------------------------------------------------
async def login(ctx: ProbeContext[PostgresTarget]) -> PostgresLogin:
    """Log in with the target's credentials and read ``version()`` and ``pg_is_in_recovery()``."""
    target = ctx.target
    password = target.password.reveal().strip() if target.password else None
    facts = PostgresLogin(where=target.where, user=target.user, accepted=False)
    started = time.monotonic()
    conn = await _connect(ctx, target, password)
    if isinstance(conn, str):
        facts.rejection = conn
        return facts
    try:
        facts.latency_ms = (time.monotonic() - started) * 1000
        facts.accepted = True
        ctx.phase = "reading the server version"
        cur = await asyncio.wait_for(
            conn.execute("SELECT current_setting('server_version'), pg_is_in_recovery()"), ctx.timeout
        )
        row = await cur.fetchone()
        if row:
            facts.server_version, facts.in_recovery = str(row[0]), bool(row[1])
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise _query_error(ctx, target, exc) from None
    finally:
        await _close(conn)
    return facts


async def retired_password(ctx: ProbeContext[PostgresTarget]) -> PostgresRetired:
    """Log in with ``retired_password`` as ``retired_user`` (default: the target's user)."""
    target = ctx.target
    assert target.retired_password is not None
    conn = await _connect(ctx, target, target.retired_password.reveal().strip(), user=target.retired_login_user)
    if isinstance(conn, str):
        return PostgresRetired(accepted=False, reply=conn)
    await _close(conn)
    return PostgresRetired(accepted=True, reply="login accepted")


def _table_ident(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def _version_key(version: str) -> tuple[Any, ...]:
    """Flyway versions compare numerically part by part (1.10 > 1.9); odd parts as text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[._]", version))


async def _rows(conn: psycopg.AsyncConnection[Any], ctx: ProbeContext[PostgresTarget], query: sql.Composed) -> list[Any]:
    cur = await asyncio.wait_for(conn.execute(query), ctx.timeout)
    return list(await cur.fetchall())


async def migrations(ctx: ProbeContext[PostgresTarget]) -> MigrationState:
    """Read the migrations table the target's ``migrations.tool`` keeps."""
    target = ctx.target
    assert target.migrations is not None
    spec = target.migrations
    password = target.password.reveal().strip() if target.password else None
    conn = await _connect(ctx, target, password)
    if isinstance(conn, str):
        raise PostgresLoginRejected(f"cannot read {spec.table_name} on {target.where}: login as "
                                    f"{target.user} refused ({conn})")
    state = MigrationState(tool=spec.tool, table=spec.table_name, exists=False)
    table = _table_ident(spec.table_name)
    try:
        ctx.phase = f"looking for table {spec.table_name}"
        found = await _rows(conn, ctx, sql.SQL("SELECT to_regclass({})").format(sql.Literal(spec.table_name)))
        if not found or found[0][0] is None:
            return state
        state.exists = True
        ctx.phase = f"reading {spec.table_name}"
        if spec.tool == "prisma":
            rows = await _rows(conn, ctx, sql.SQL(
                "SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, logs "
                "FROM {} ORDER BY started_at, migration_name").format(table))
            for name, finished, rolled_back, logs in rows:
                if rolled_back:
                    state.rolled_back.append(name)
                elif finished:
                    state.applied.append(name)
                else:
                    first = next((ln for ln in (logs or "").splitlines() if ln.strip()), "")
                    state.failed.append(MigrationRow(name, _short(first)[:160]))
            state.heads = [max(state.applied)] if state.applied else []
        elif spec.tool == "alembic":
            rows = await _rows(conn, ctx, sql.SQL("SELECT version_num FROM {} ORDER BY version_num").format(table))
            state.heads = [str(r[0]) for r in rows]
            state.applied = list(state.heads)
        else:
            rows = await _rows(conn, ctx, sql.SQL(
                "SELECT version, description, script, success, type FROM {} "
                "WHERE type IS DISTINCT FROM 'SCHEMA' AND type IS DISTINCT FROM 'DELETE' "
                "ORDER BY installed_rank").format(table))
            versions: list[str] = []
            for version, description, script, success, kind in rows:
                label = str(version) if version is not None else str(script or description)
                if not success:
                    state.failed.append(MigrationRow(label, f"{kind} {script or description}".strip()))
                elif version is not None:
                    versions.append(str(version))
            state.applied = versions
            state.heads = [max(versions, key=_version_key)] if versions else []
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise _query_error(ctx, target, exc) from None
    finally:
        await _close(conn)
    return state
