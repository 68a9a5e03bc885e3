"""The migrations tables of Prisma, Alembic and Flyway, as the tools create them on PostgreSQL.

Used by the sandbox (a healthy migrations history) and the self-tests (healthy and faulty ones).
The column sets are what each tool's own DDL creates; the checks read nothing else.

* Prisma (``prisma migrate``): ``_prisma_migrations``. Applied = ``finished_at`` set and
  ``rolled_back_at`` NULL; failed = both NULL, with the error in ``logs``; rolled back =
  ``rolled_back_at`` set (``prisma migrate resolve --rolled-back``).
* Alembic: ``alembic_version``, one row per current head revision - nothing about history.
* Flyway: ``flyway_schema_history``, one row per run (``success`` false = failed); rank 0 may be
  the ``SCHEMA`` marker row, repeatable migrations have no ``version``.

Example::

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        create_prisma(conn, "public", [("20240101000000_init", True), ("20240201000000_orders", False)])
        create_alembic(conn, "public", ["3f2a1b9c8d7e"])
        create_flyway(conn, "public", [("1", "init", True), ("2", "orders", False)])
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import sql

PRISMA_DDL = """
CREATE TABLE {table} (
    "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"            VARCHAR(64) NOT NULL,
    "finished_at"         TIMESTAMPTZ,
    "migration_name"      VARCHAR(255) NOT NULL,
    "logs"                TEXT,
    "rolled_back_at"      TIMESTAMPTZ,
    "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)
"""

ALEMBIC_DDL = """
CREATE TABLE {table} (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)
"""

FLYWAY_DDL = """
CREATE TABLE {table} (
    "installed_rank" INT NOT NULL PRIMARY KEY,
    "version"        VARCHAR(50),
    "description"    VARCHAR(200) NOT NULL,
    "type"           VARCHAR(20) NOT NULL,
    "script"         VARCHAR(1000) NOT NULL,
    "checksum"       INT,
    "installed_by"   VARCHAR(100) NOT NULL,
    "installed_on"   TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INT NOT NULL,
    "success"        BOOLEAN NOT NULL
)
"""

PrismaRow = tuple[str, bool] | tuple[str, bool, bool]
"""``(migration_name, finished[, rolled_back])``; unfinished and not rolled back = failed."""


def _create(conn: Any, ddl: str, schema: str, table: str) -> sql.Identifier:
    ident = sql.Identifier(schema, table)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL(ddl).format(table=ident))
    return ident


def create_prisma(conn: Any, schema: str, rows: Sequence[PrismaRow]) -> None:
    """``<schema>._prisma_migrations`` with ``rows`` started one second apart, in order."""
    table = _create(conn, PRISMA_DDL, schema, "_prisma_migrations")
    for index, row in enumerate(rows):
        name, finished = row[0], row[1]
        rolled_back = len(row) > 2 and bool(row[2])  # type: ignore[misc]
        started = sql.SQL("now() - make_interval(secs => {})").format(sql.Literal(len(rows) - index))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, checksum, started_at, finished_at, migration_name, logs, rolled_back_at,"
                " applied_steps_count) VALUES ({}, {}, {}, {}, {}, {}, {}, {})"
            ).format(
                table,
                sql.Literal(str(uuid.uuid4())),
                sql.Literal("0" * 64),
                started,
                sql.SQL("now()") if finished else sql.NULL,
                sql.Literal(name),
                sql.Literal(None if finished else f'ERROR: relation "{name.split("_", 1)[-1]}" already exists'),
                sql.SQL("now()") if rolled_back else sql.NULL,
                sql.Literal(1 if finished else 0),
            )
        )


def create_alembic(conn: Any, schema: str, heads: Sequence[str]) -> None:
    """``<schema>.alembic_version`` holding ``heads`` (one row each; merged branches have several)."""
    table = _create(conn, ALEMBIC_DDL, schema, "alembic_version")
    for head in heads:
        conn.execute(sql.SQL("INSERT INTO {} (version_num) VALUES ({})").format(table, sql.Literal(head)))


def create_flyway(conn: Any, schema: str, rows: Sequence[tuple[str | None, str, bool]]) -> None:
    """``<schema>.flyway_schema_history``: the ``SCHEMA`` marker, then ``(version, description, success)``.

    A ``None`` version is a repeatable migration (``R__<description>.sql``).
    """
    table = _create(conn, FLYWAY_DDL, schema, "flyway_schema_history")
    insert = sql.SQL(
        "INSERT INTO {} (installed_rank, version, description, type, script, checksum, installed_by,"
        " execution_time, success) VALUES ({}, {}, {}, {}, {}, {}, 'opsverify', {}, {})"
    )
    conn.execute(insert.format(table, sql.Literal(0), sql.NULL, sql.Literal("<< Flyway Schema Creation >>"),
                               sql.Literal("SCHEMA"), sql.Literal(f'"{schema}"'), sql.NULL, sql.Literal(0),
                               sql.Literal(True)))
    for rank, (version, description, success) in enumerate(rows, start=1):
        script = f"V{version}__{description}.sql" if version is not None else f"R__{description}.sql"
        conn.execute(insert.format(
            table, sql.Literal(rank), sql.Literal(version), sql.Literal(description.replace("_", " ")),
            sql.Literal("SQL"), sql.Literal(script), sql.Literal(rank * 7919), sql.Literal(12),
            sql.Literal(success),
        ))
