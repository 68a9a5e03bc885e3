"""PostgreSQL role and replication lag against a real primary and a real streaming replica.

The replica is made with ``pg_basebackup -R`` from the primary (:mod:`opsverify_sandbox.servers.postgres_replica`)
and streams from it. Faults are real: a role mismatch (the primary where a replica is expected, and
the reverse: what a failover leaves behind), a replica whose replay is paused while the primary
writes (``pg_wal_replay_pause()``: WAL received but not replayed, so it falls behind), and a
replica whose primary has stopped (no WAL receiver). The lag is a time, so it is not tested "exactly
at the limit": the paused replica is held until it is at least 2 s behind and judged against 1 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from opsverify_sandbox.process import ManagedProcess
from opsverify_sandbox.servers.postgres import PostgresServer, start_postgres
from opsverify_sandbox.servers.postgres_replica import start_replica
from tests.harness import SuiteRun, run_checks

ROLE = "test_postgres_has_expected_role"
LAG = "test_postgres_replica_lag_is_within_limit"
CHECKS = ["checks/test_datastores.py"]


@dataclass
class Pair:
    primary: PostgresServer
    replica: PostgresServer


def _wait(proc: ManagedProcess, ready: Any, what: str) -> None:
    proc.wait_until(ready, 30, what)


def _one(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("pg-replication")
    primary = start_postgres(base / "primary")
    try:
        with psycopg.connect(primary.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE marks (at timestamptz DEFAULT now())")
        replica = start_replica(primary, base / "replica")
        try:
            _wait(replica.process, lambda: _one(replica.superuser_dsn, "SELECT count(*) FROM pg_stat_wal_receiver") == 1,
                  "streaming from the primary")
            yield Pair(primary, replica)
        finally:
            replica.stop()
    finally:
        primary.stop()


def _target(pg: PostgresServer, name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": pg.port, "database": pg.database, "user": pg.user,
            "password": {"env": "SELFTEST_PG_PASSWORD"}, "sslmode": "disable", **fields}


def _run(pair: Pair, tmp: Path, targets: list[dict[str, Any]]) -> SuiteRun:
    return run_checks(tmp, {"postgres": targets}, "-k", "role or lag", paths=CHECKS,
                      env_vars={"SELFTEST_PG_PASSWORD": pair.primary.password})


def _caught_up(pair: Pair) -> None:
    """A fresh commit on the primary has been replayed by the replica."""
    with psycopg.connect(pair.primary.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO marks DEFAULT VALUES")
        lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
    _wait(pair.replica.process, lambda: _one(
        pair.replica.superuser_dsn, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"), "replaying the mark")


def test_roles_and_a_caught_up_replica_pass_and_a_failover_mismatch_fails(pair: Pair, tmp_path: Path) -> None:
    _caught_up(pair)
    run = _run(pair, tmp_path, [
        _target(pair.primary, "primary", role="primary"),
        _target(pair.replica, "replica", role="replica", max_replication_lag="1s"),
        _target(pair.primary, "expects-replica", role="replica"),
        _target(pair.replica, "expects-primary", role="primary"),
        _target(pair.primary, "lag-on-primary", max_replication_lag="1s"),
    ])
    assert run.outcome(ROLE, "primary") == "passed", run.message(ROLE, "primary")
    assert run.outcome(ROLE, "replica") == "passed", run.message(ROLE, "replica")
    assert run.outcome(LAG, "replica") == "passed", run.message(LAG, "replica")
    message = run.message(ROLE, "expects-replica")
    assert run.outcome(ROLE, "expects-replica") == "failed"
    assert "to be the replica, got a primary (pg_is_in_recovery() is false)" in message
    assert "[runbook datastores#postgres-role]" in message
    assert run.outcome(ROLE, "expects-primary") == "failed"
    assert "to be the primary, got a replica (pg_is_in_recovery() is true)" in run.message(ROLE, "expects-primary")
    assert run.outcome(LAG, "lag-on-primary") == "failed"
    assert "got a primary (pg_is_in_recovery() is false): it was promoted" in run.message(LAG, "lag-on-primary")


def test_a_replica_that_stops_replaying_fails_its_lag(pair: Pair, tmp_path: Path) -> None:
    _caught_up(pair)
    replica = pair.replica.superuser_dsn
    _one(replica, "SELECT pg_wal_replay_pause()")
    try:
        with psycopg.connect(pair.primary.dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO marks SELECT now() FROM generate_series(1, 1000)")
            lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
        _wait(pair.replica.process, lambda: _one(replica, f"SELECT pg_last_wal_receive_lsn() >= '{lsn}'::pg_lsn"),
              "receiving the writes")
        _wait(pair.replica.process, lambda: _one(
            replica, "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp()) > 2"), "falling 2 s behind")
        run = _run(pair, tmp_path, [_target(pair.replica, "paused", role="replica", max_replication_lag="1s"),
                                    _target(pair.replica, "tolerant", max_replication_lag="1h")])
    finally:
        _one(replica, "SELECT pg_wal_replay_resume()")
    message = run.message(LAG, "paused")
    assert run.outcome(LAG, "paused") == "failed", message
    assert f"expected replication lag of 127.0.0.1:{pair.replica.port}/{pair.replica.database} <= 1 s, got " in message
    assert "bytes received but not replayed" in message
    assert "[runbook datastores#postgres-replication-lag]" in message
    assert run.outcome(ROLE, "paused") == "passed"
    assert run.outcome(LAG, "tolerant") == "passed", run.message(LAG, "tolerant")


@pytest.mark.parametrize(("fields", "problem"), [
    ({"role": "leader"}, "postgres[0].role"),
    ({"role": "primary", "max_replication_lag": "10s"}, "max_replication_lag is measured on a replica"),
    ({"max_replication_lag": "soon"}, "postgres[0].max_replication_lag"),
])
def test_bad_role_or_lag_is_a_usage_error(tmp_path: Path, fields: dict[str, Any], problem: str) -> None:
    target = {"name": "db", "host": "127.0.0.1", "database": "d", "user": "u", **fields}
    run = run_checks(tmp_path, {"postgres": [target]}, paths=CHECKS)
    output = run.stdout + run.stderr
    assert run.ret == 4 and problem in output and "Traceback" not in output, output
