"""The sandbox's data stores: Redis (16379) and PostgreSQL 18 (15432), with a migrations history and a backup.

Ports are fixed, as ``environments/local.yaml`` names them. Everything generated lives under
``<state>/datastores/`` (secrets mode 0600):

* ``redis-password`` - ``requirepass`` of the sandbox Redis (made once, kept across restarts);
  ``redis-retired-password`` - a "previous" password the server does not accept (the rotation is done).
  Redis keeps nothing on disk: every start writes five idempotency keys ``idem:<n>`` with a 24 h
  expiry and one ``ratelimit:config`` without expiry into db 3.
* ``postgres-password`` - the login role ``opsverify`` (new at every start: the cluster is made
  afresh by ``initdb``, ~0.7 s); ``postgres-retired-password`` - a previous password, refused.
  The database ``opsverify`` holds a Prisma ``_prisma_migrations`` history with every migration
  applied (and one attempt rolled back and re-applied, as ``prisma migrate resolve`` leaves it)
  and the tables those migrations made.
* ``backups/opsverify-<UTC time>.dump`` - a real ``pg_dump -Fc`` taken after every start of
  PostgreSQL; dumps older than 30 days are pruned then (the source platform's retention).

PostgreSQL refuses to run as root: as root the server runs as an unprivileged OS user (see
:mod:`opsverify_sandbox.servers.postgres`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from opsverify.errors import SandboxError
from opsverify_sandbox.files import write_private
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.migration_tables import create_prisma
from opsverify_sandbox.servers.postgres import PostgresServer, start_postgres
from opsverify_sandbox.servers.redis import start_redis

REDIS_PORT = 16379
POSTGRES_PORT = 15432
REDIS_DB = 3
IDEMPOTENCY_TTL_S = 24 * 3600
RETENTION_S = 30 * 86400
MIGRATIONS: list[tuple[str, bool] | tuple[str, bool, bool]] = [
    ("20240101000000_init", True),
    ("20240215000000_add_orders", True),
    ("20240301000000_add_orders_index", False, True),  # failed once, resolved as rolled back ...
    ("20240302000000_add_orders_index", True),  # ... and applied again
]
SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS orders (
    id BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    total_cents BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_customer_idx ON orders (customer_id);
INSERT INTO customers (email) VALUES ('ada@example.test'), ('grace@example.test') ON CONFLICT DO NOTHING;
INSERT INTO orders (customer_id, total_cents) SELECT id, 4200 FROM customers;
"""


def _secret_file(path: Path, value: str | None = None) -> str:
    """The secret in ``path``: ``value`` written there, or the one already there, or a new one."""
    if value is None and path.exists() and path.read_text().strip():
        return path.read_text().strip()
    value = value or secrets.token_urlsafe(18)
    write_private(path, value + "\n")
    return value


@service("redis", order=45)
def start_sandbox_redis(directory: Path) -> Started:
    """Redis with requirepass, idempotency keys (24 h TTL) in db 3."""
    workdir = directory / "datastores"
    password = _secret_file(workdir / "redis-password")
    _secret_file(workdir / "redis-retired-password")
    server = start_redis(workdir / "redis", password=password, port=REDIS_PORT)
    try:
        _seed_redis(server.port, password)
    except BaseException:
        server.stop()
        raise
    return Started([server.process], {"redis": REDIS_PORT}, {"url": f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"})


def _seed_redis(port: int, password: str) -> None:
    import redis

    try:
        with redis.Redis(host="127.0.0.1", port=port, db=REDIS_DB, password=password, socket_timeout=5) as client:
            pipe = client.pipeline()
            for n in range(5):
                pipe.set(f"idem:sandbox-{n}", "done", ex=IDEMPOTENCY_TTL_S)
            pipe.set("ratelimit:config", "100/min")
            pipe.execute()
    except redis.RedisError as exc:
        raise SandboxError(f"redis: writing the sandbox keys failed: {exc}") from exc


@service("postgres", order=46)
def start_sandbox_postgres(directory: Path) -> Started:
    """PostgreSQL 18 with a Prisma migrations history and a fresh pg_dump backup."""
    workdir = directory / "datastores"
    shutil.rmtree(workdir / "postgres" / "pg", ignore_errors=True)  # a fresh cluster at every start
    server = start_postgres(workdir / "postgres", port=POSTGRES_PORT)
    try:
        _secret_file(workdir / "postgres-password", server.password)
        _secret_file(workdir / "postgres-retired-password")
        _migrate(server)
        dump = _backup(server, workdir / "backups")
    except BaseException:
        server.stop()
        raise
    return Started([server.process], {"postgres": POSTGRES_PORT},
                   {"database": server.database, "user": server.user, "backup": str(dump)})


def _migrate(server: PostgresServer) -> None:
    import psycopg

    try:
        with psycopg.connect(server.dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(SCHEMA)
            create_prisma(conn, "public", MIGRATIONS)
    except psycopg.Error as exc:
        raise SandboxError(f"postgres: creating the sandbox schema failed: {exc}") from exc


def _backup(server: PostgresServer, backups: Path) -> Path:
    """A real ``pg_dump -Fc`` of the database into ``backups``; prune dumps past the retention."""
    backups.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = backups / f"{server.database}-{stamp}.dump"
    argv = [str(server.bin_dir / "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(server.port),
            "-U", server.user, "-d", server.database, "-f", str(target)]
    try:
        done = subprocess.run(argv, env={**os.environ, "PGPASSWORD": server.password, "PGCONNECT_TIMEOUT": "10"},
                              capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"postgres: pg_dump failed: {exc}") from exc
    if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        raise SandboxError(f"postgres: pg_dump exited {done.returncode}: {done.stderr.strip()[-500:]}")
    cutoff = time.time() - RETENTION_S
    for old in backups.glob("*.dump"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    return target
