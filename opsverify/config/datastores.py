"""``redis:``, ``postgres:`` and ``backups:`` sections: the data stores and their backup artifacts.

Durations (``max_ttl``, ``min_ttl``, ``max_age``, ``max_oldest_age``) are written like the Vault
section's: ``45s``, ``30m``, ``24h``, ``7d``, ``1h30m`` or a plain number of **days**, alone or as
``{warn: ..., critical: ...}``. Sizes are bytes or ``10KB``, ``5MiB``, ``1.5GB``.

Its keys: ``docs/environment/reference.md`` (#redis, #postgres, #backups);
an example and its checks: ``docs/environment/datastores.md``.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import NAME_MAX, NAME_PATTERN, Strict, Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.tls import ClientCertificate
from opsverify.config.thresholds import Threshold
from opsverify.config.vault import MaxDuration, MinDuration
from opsverify.config.values import Port, check_host, check_url

DEFAULT_BACKUP_MAX_AGE = Threshold(critical=26 * 3600.0)  # nightly dumps: a day plus the job's own run
DEFAULT_TABLES = {
    "prisma": "_prisma_migrations",
    "alembic": "alembic_version",
    "flyway": "flyway_schema_history",
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(value: Any) -> int:
    """Bytes in ``value``: ``512``, ``"10KB"``, ``"5MiB"``, ``"1.5GB"``."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a text like 10KB, 5MiB")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = match.group(2).lower().removesuffix("b")
            if unit in _SIZE_UNITS:
                return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"{value!r} is not a size (use bytes or e.g. 10KB, 5MiB, 1.5GB)")


class _Named(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)


# -- Redis -----------------------------------------------------------------------------------------
class RedisKeys(_Named):
    """Keys matching ``pattern`` (sampled with SCAN) and the TTLs they must carry."""

    pattern: str = Field(min_length=1, description="SCAN MATCH pattern, e.g. idem:*")
    max_ttl: MaxDuration = Field(default=None, description="every sampled key expires, within this")
    min_ttl: MinDuration = Field(default=None, description="no sampled key expires sooner than this")
    sample: int = Field(default=200, ge=1, le=100_000, description="at most this many keys are examined")
    min_keys: int = Field(
        default=1, ge=0, le=100_000,
        description="keys that must match for their TTLs to be judged (0: an empty match is healthy)",
    )

    @model_validator(mode="after")
    def _something_to_check(self) -> RedisKeys:
        if self.max_ttl is None and self.min_ttl is None:
            raise ValueError("a keys entry needs max_ttl and/or min_ttl")
        if self.min_keys > self.sample:
            raise ValueError(f"min_keys {self.min_keys} is more than the {self.sample} keys sampled (raise sample)")
        return self


class RedisTarget(Target, ClientCertificate):
    """A Redis server (one db index) and how it must answer."""

    url: str = Field(description="redis://host:port/db or rediss://host:port/db (TLS)")
    username: str | SecretRef | None = Field(default=None, description="ACL user (default: 'default')")
    password: SecretRef | None = None
    retired_password: SecretRef | None = Field(
        default=None, description="a rotated-out password that must no longer be accepted"
    )
    require_auth: bool | None = Field(
        default=None,
        description="a PING without credentials must be refused (default: true when a password is set; "
        "false: do not check)",
    )
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    min_db_keys: int | None = Field(default=None, ge=0, description="keys the db index must hold (DBSIZE)")
    keys: list[RedisKeys] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
            raise ValueError("use redis://host:port/db or rediss://host:port/db")
        check_url(value, ("redis", "rediss"))
        if parts.password or parts.username:
            raise ValueError("no credentials in the url: use username / password: {env: ...}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError("the port is not a number between 0 and 65535") from None
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"the path is the db index, a number (got {db!r})")
        if parts.query or parts.fragment:
            raise ValueError("no query or fragment in the url: use the section's fields")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RedisTarget:
        names = [k.name for k in self.keys]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"keys: duplicate name {dupes[0]!r}")
        if self.ca_bundle and not self.tls:
            raise ValueError("ca_bundle needs a rediss:// url")
        if self.client_cert and not self.tls:
            raise ValueError("client_cert needs a rediss:// url")
        return self

    @property
    def tls(self) -> bool:
        return self.url.startswith("rediss://")

    @property
    def host(self) -> str:
        return unquote(urlsplit(self.url).hostname or "")

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 6379

    @property
    def db(self) -> int:
        path = urlsplit(self.url).path.strip("/")
        return int(path) if path else 0

    @property
    def where(self) -> str:
        """``host:port/db`` for messages."""
        return f"{self.host}:{self.port}/{self.db}"

    @property
    def user_label(self) -> str:
        """The ACL user as messages show it (a secret reference by its label)."""
        if self.username is None:
            return "default"
        return self.username if isinstance(self.username, str) else f"from {self.username.label}"

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        if self.require_auth is None and self.password is not None:
            self.require_auth = True
        elif self.require_auth is False:
            self.require_auth = None  # explicitly not checked: the check is skipped as not configured


# -- backups (also the postgres ``backup:`` key) ------------------------------------------------------
class BackupSpec(Strict):
    """Backup artifacts on a file system: the newest must be recent and non-empty."""

    path: str = Field(min_length=1, description="file path or glob (** recurses); ${VAR} expanded")
    max_age: MaxDuration = Field(default=None, description="age of the newest artifact (default 26h)")
    min_size: int = Field(default=1, ge=1, description="bytes the newest artifact must have at least (1: not empty)")

    @field_validator("min_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    def fill_backup_defaults(self) -> None:
        if self.max_age is None:
            self.max_age = DEFAULT_BACKUP_MAX_AGE


class BackupsTarget(Target, BackupSpec):
    """A set of backup artifacts (``path`` glob) with freshness, size and retention expectations."""

    min_count: int | None = Field(default=None, ge=1, description="retention keeps at least this many")
    max_oldest_age: MaxDuration = Field(
        default=None, description="no artifact older than this (retention prunes old ones)"
    )

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.fill_backup_defaults()


# -- PostgreSQL ------------------------------------------------------------------------------------
class PostgresMigrations(Strict):
    """The migrations table of one tool, and what "applied, nothing pending" means for it.

    ``expected``: migration names (Prisma) or versions (Flyway) that must all be applied;
    ``count``: how many must be applied (not more, not fewer); ``head``: the newest applied
    migration (Prisma name, Flyway version) or the Alembic head revision(s).
    """

    tool: Literal["prisma", "alembic", "flyway"]
    table: str | None = Field(default=None, description="default: the tool's own table; schema.table works")
    expected: list[str] | None = None
    count: int | None = Field(default=None, ge=0)
    head: str | list[str] | None = None

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?", value):
            raise ValueError("a table name, optionally schema-qualified (schema.table)")
        return value

    @model_validator(mode="after")
    def _fits_tool(self) -> PostgresMigrations:
        if self.tool == "alembic" and (self.expected is not None or self.count is not None):
            raise ValueError("alembic_version holds only the head revision(s): use head")
        if isinstance(self.head, list) and self.tool != "alembic":
            raise ValueError("a list of heads is for alembic (merged branches); give one head")
        return self

    @property
    def table_name(self) -> str:
        return self.table or DEFAULT_TABLES[self.tool]

    @property
    def heads(self) -> list[str]:
        if self.head is None:
            return []
        return self.head if isinstance(self.head, list) else [self.head]

    @property
    def has_baseline(self) -> bool:
        """True when the file says what "nothing pending" means (expected, count or head)."""
        return self.expected is not None or self.count is not None or self.head is not None


class PostgresTarget(Target, ClientCertificate):
    """A PostgreSQL database reached with a login role, its migrations and its backups."""

    host: str = Field(min_length=1, description="host name or address, or a unix socket directory (/run/postgresql)")
    port: Port = 5432
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    password: SecretRef | None = None
    retired_password: SecretRef | None = Field(
        default=None, description="the password being rotated out (accepted before/overlap, refused after)"
    )
    retired_user: str | None = Field(
        default=None, min_length=1,
        description="the role the retired password belongs to, when the rotation moves to a new role "
        "(PostgreSQL keeps one password per role: an overlap needs two roles); default: user",
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    ca_bundle: str | None = Field(default=None, description="sslrootcert for verify-ca / verify-full")
    migrations: PostgresMigrations | None = None
    backup: BackupSpec | None = None
    role: Literal["primary", "replica"] | None = Field(
        default=None, description="what the server must be: primary (not in recovery) or replica (in recovery)"
    )
    max_replication_lag: MaxDuration = Field(
        default=None,
        description="a replica's lag: time since its last replayed transaction, 0 when it has replayed all "
        "it received from a streaming primary",
    )

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        return value if value.startswith("/") and "\x00" not in value else check_host(value)

    @model_validator(mode="after")
    def _retired_needs_password(self) -> PostgresTarget:
        if self.retired_user is not None and self.retired_password is None:
            raise ValueError("retired_user needs retired_password")
        if self.max_replication_lag is not None and self.role == "primary":
            raise ValueError("max_replication_lag is measured on a replica: set role: replica (or drop it)")
        return self

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"

    @property
    def retired_login_user(self) -> str:
        """The role the retired password is tried with (``retired_user``, else ``user``)."""
        return self.retired_user or self.user

    @property
    def migrations_baseline(self) -> PostgresMigrations | None:
        """``migrations`` when it says what "nothing pending" means (for ``configured``)."""
        return self.migrations if self.migrations is not None and self.migrations.has_baseline else None

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        if self.backup is not None:
            self.backup.fill_backup_defaults()


section("redis", RedisTarget, system="datastores",
        doc="Redis: authenticated PING, auth enforced, retired password rejected, keyspace, key TTLs")
section("postgres", PostgresTarget, system="datastores",
        doc="PostgreSQL: login, role (primary/replica), replication lag, retired password rejected, "
        "migrations failed/pending, newest backup")
section("backups", BackupsTarget, system="datastores",
        doc="Backup artifacts on a file system: newest recent and non-empty, retention count and pruning")
