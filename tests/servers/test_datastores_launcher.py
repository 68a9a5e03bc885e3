"""Self-test of the Redis and PostgreSQL launchers against the real servers.

Redis: PING with the right password, the wrong one rejected
(``redis.exceptions.AuthenticationError``, a subclass of ``ConnectionError``), password rotation, key TTLs.
PostgreSQL: password login with psycopg, wrong password rejected (``psycopg.OperationalError``,
SQLSTATE 28P01), and the two migration tables checks read: Prisma's ``_prisma_migrations`` (the
columns Prisma's migrate engine creates) and Alembic's ``alembic_version``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from opsverify_sandbox.servers.migration_tables import create_prisma
from opsverify_sandbox.servers.postgres import PostgresServer, start_postgres
from opsverify_sandbox.servers.redis import RedisServer, start_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with start_redis(tmp_path_factory.mktemp("redis"), password="first-pw") as server:
        yield server


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with start_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


def _client(server: RedisServer, password: str | None) -> redis.Redis:
    # No retries: redis-py 8 retries an AuthenticationError (a ConnectionError) ~4 s by default.
    return redis.Redis(
        host=server.host,
        port=server.port,
        password=password,
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )


# -- Redis ----------------------------------------------------------------------------------------


def test_redis_ping_with_right_password(redis_server: RedisServer) -> None:
    assert _client(redis_server, redis_server.password).ping() is True


def test_redis_wrong_password_is_authentication_error(redis_server: RedisServer) -> None:
    with pytest.raises(redis.exceptions.AuthenticationError, match="invalid username-password"):
        _client(redis_server, "wrong").ping()


def test_redis_authentication_error_is_a_connection_error() -> None:
    assert issubclass(redis.exceptions.AuthenticationError, redis.exceptions.ConnectionError)


def test_redis_missing_password_is_authentication_error(redis_server: RedisServer) -> None:
    with pytest.raises(redis.exceptions.AuthenticationError):
        _client(redis_server, None).ping()


def test_redis_key_ttls(redis_server: RedisServer) -> None:
    client = _client(redis_server, redis_server.password)
    client.set("session:1", "x", ex=30)
    client.set("config:1", "y")
    ttls = (0 < client.ttl("session:1") <= 30, client.ttl("config:1"), client.ttl("missing"))
    assert ttls == (True, -1, -2)


def test_redis_password_rotation(tmp_path: Path) -> None:
    with start_redis(tmp_path, password="old-pw") as server:
        server.set_password("new-pw")
        with pytest.raises(redis.exceptions.AuthenticationError):
            _client(server, "old-pw").ping()
        assert _client(server, "new-pw").ping() is True


# -- PostgreSQL -----------------------------------------------------------------------------------


def test_postgres_login_with_password(pg: PostgresServer) -> None:
    with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
        row = conn.execute("select current_user, current_database(), version()").fetchone()
    assert row is not None and row[:2] == (pg.user, pg.database) and "PostgreSQL 18" in row[2]


def test_postgres_wrong_password_is_rejected(pg: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed") as err:
        psycopg.connect(pg.dsn_for(pg.user, "wrong"), connect_timeout=5)
    assert err.value.sqlstate in (None, "28P01")


def test_postgres_server_does_not_run_as_root(pg: PostgresServer) -> None:
    assert os.stat(f"/proc/{pg.process.pid}").st_uid != 0


def test_prisma_migrations_finished_and_failed(pg: PostgresServer) -> None:
    with psycopg.connect(pg.dsn, connect_timeout=5, autocommit=True) as conn:
        # The table as `prisma migrate` creates it; a failed migration: finished_at and rolled_back_at NULL.
        create_prisma(conn, "public", [("20240101000000_init", True), ("20240201000000_add_orders", False)])
        failed = conn.execute(
            "SELECT migration_name FROM _prisma_migrations"
            " WHERE finished_at IS NULL AND rolled_back_at IS NULL"
        ).fetchall()
        applied = conn.execute(
            "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL"
        ).fetchone()
    assert (failed, applied) == ([("20240201000000_add_orders",)], (1,))


def test_alembic_version_table(pg: PostgresServer) -> None:
    with psycopg.connect(pg.dsn, connect_timeout=5, autocommit=True) as conn:
        # What Alembic creates: one row, the current head revision.
        conn.execute(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,"
            " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        conn.execute("INSERT INTO alembic_version (version_num) VALUES ('3f2a1b9c8d7e')")
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [("3f2a1b9c8d7e",)]


def test_redis_acl_overlap_then_old_password_removed(tmp_path: Path) -> None:
    with start_redis(tmp_path, password="old-pw") as server:
        server.add_password("new-pw")  # ACL SETUSER default >new-pw
        overlap = (_client(server, "old-pw").ping(), _client(server, "new-pw").ping())
        server.remove_password("old-pw")  # ACL SETUSER default <old-pw
        with pytest.raises(redis.exceptions.AuthenticationError):
            _client(server, "old-pw").ping()
        assert overlap == (True, True) and _client(server, "new-pw").ping() is True


def test_redis_named_acl_user(redis_server: RedisServer) -> None:
    redis_server.add_user("reader", "reader-pw", "~* +@read +ping")
    client = redis.Redis(host=redis_server.host, port=redis_server.port, username="reader", password="reader-pw",
                         socket_timeout=2, retry=Retry(NoBackoff(), 0))
    assert client.ping() is True
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("k", "v")


def test_redis_auth_against_a_server_without_password_is_refused(tmp_path: Path) -> None:
    with start_redis(tmp_path) as server:
        with pytest.raises(redis.exceptions.AuthenticationError, match="without any password configured"):
            redis.Redis(host=server.host, port=server.port, password="x", protocol=2,
                        retry=Retry(NoBackoff(), 0), socket_timeout=2).ping()


def test_postgres_socket_moves_out_of_a_too_deep_workdir(tmp_path: Path) -> None:
    # As root (server run as nobody) the cluster already lives in a /tmp/opsverify-pg-* dir; as an
    # ordinary user (or in a user namespace) it lives in the deep workdir and the socket must move.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with start_postgres(deep) as server:
        socket = server.socket_dir / f".s.PGSQL.{server.port}"
        assert len(str(socket)) <= 107 and socket.is_socket()
        with psycopg.connect(host=str(server.socket_dir), port=server.port, user="postgres", dbname="postgres",
                             connect_timeout=5) as conn:  # trust on the private unix socket
            assert conn.execute("select current_user").fetchone() == ("postgres",)
    assert not server.socket_dir.exists()
