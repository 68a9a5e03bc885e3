"""Data stores: Redis answers and fails closed, PostgreSQL accepts its login with every migration
applied and none failed, and backups are fresh, non-empty and retained.

A login the server refuses *fails* the login checks (the store is not as expected); checks that
must read behind that login (key TTLs, DBSIZE, migrations) then *error*: they could not look.
"""

from __future__ import annotations

import pytest

from opsverify.config.thresholds import Threshold
from opsverify.durations import human_duration, judge_duration
from opsverify.probes.backups import BackupArtifacts

pytestmark = [pytest.mark.predeploy]


CLIENT_CERT_ACTION = ("the server logs this role in by client certificate: set client_cert / client_key to one that "
                      "is current, issued by the CA of its ssl_ca_file, with the role's name as its CN "
                      "[see runbook certs#client-certificate]")


def _size(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes" if n != 1 else "1 byte"


def _retired_should_work(phase):
    """Whether the retired credential must still be accepted in this rotation phase.

    ``before``: the rotation has not started, the old credential is the one in use; ``overlap``: old
    and new both work while clients move; ``after`` (and no ``--phase``): the old one is refused.
    """
    return phase in ("before", "overlap")


def _phase_name(phase):
    return f"rotation phase {phase}" if phase else "no rotation phase: the rotation counts as done"


# -- Redis -------------------------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.severity("critical")
@pytest.mark.runbook("datastores#redis-ping")
def test_redis_answers_ping_with_its_credentials(redis_ping, target, expect):
    ping = redis_ping
    if ping.version:
        expect.fact("redis_version", ping.version)
    if ping.role:
        expect.fact("role", ping.role)
    if ping.authenticated:
        expect.record("PING round trip", ping.latency_ms, unit="ms")
    if ping.certificate_refused:
        expect.fail(
            expected=f"PONG from {ping.where} over mutual TLS as user {ping.user}",
            actual=ping.certificate_refused,
            action="present a client certificate the server trusts and that has not expired (client_cert / "
            "client_key) [see runbook certs#client-certificate]",
        )
    if ping.server_has_no_password:
        expect.fail(
            expected=f"PONG from {ping.where} as user {ping.user}",
            actual="AUTH refused because the server has no password configured: authentication is off, "
            "and clients that send their password fail",
            action="set the password again (requirepass / ACL SETUSER default on >...) and find the change that "
            "removed it [see runbook datastores#redis-fail-closed]",
        )
    expect.that(
        ping.authenticated,
        expected=f"PONG from {ping.where} as user {ping.user}",
        actual=f"authentication failed for user {ping.user} ({ping.rejection})",
    )


@pytest.mark.smoke
@pytest.mark.severity("critical")
@pytest.mark.configured("require_auth")
@pytest.mark.runbook("datastores#redis-fail-closed")
def test_redis_refuses_unauthenticated_clients(redis_unauthenticated, target, expect):
    expect.that(
        redis_unauthenticated.refused,
        expected=f"{target.where} to refuse a PING without credentials",
        actual=f"it answered {redis_unauthenticated.reply}: anyone who reaches the port can read and write",
    )


@pytest.mark.rotation
@pytest.mark.configured("retired_password")
@pytest.mark.runbook("datastores#credential-rotation")
def test_redis_retired_password_fits_rotation_phase(redis_retired_password, target, phase, expect):
    seen, label = redis_retired_password, target.retired_password.label
    expect.fact("phase", phase or "after")
    if _retired_should_work(phase):
        expect.that(
            seen.accepted and not seen.server_has_no_password,
            expected=f"the retired password ({label}) still accepted for user {target.user_label} "
            f"({_phase_name(phase)})",
            actual=f"rejected ({seen.reply}): clients still on the old password are failing",
            action="put the old password back next to the new one (ACL SETUSER <user> >old) until every "
            "client runs with the new one, or run with the phase the rotation is really in",
        )
        return
    actual = ("no password is needed at all (the server has none configured)" if seen.server_has_no_password
              else "accepted")
    expect.that(
        not seen.accepted,
        expected=f"the retired password ({label}) rejected for user {target.user_label} ({_phase_name(phase)})",
        actual=actual,
    )


@pytest.mark.smoke
@pytest.mark.configured("min_db_keys")
@pytest.mark.runbook("datastores#redis-keyspace")
def test_redis_db_holds_its_keys(redis_keyspace, target, expect):
    expect.record(f"keys in db {target.db}", redis_keyspace, threshold=Threshold(critical=target.min_db_keys),
                  direction="at_least", level="ok" if redis_keyspace >= target.min_db_keys else "critical")
    expect.that(
        redis_keyspace >= target.min_db_keys,
        expected=f"at least {target.min_db_keys} keys in db {target.db} of {target.host}:{target.port}",
        actual=f"{redis_keyspace} keys",
    )


def _enough_keys(sample, target_item, scope, expect) -> bool:
    """Whether enough keys matched to judge their TTLs; fails the check when too few did.

    An empty match is no evidence that keys expire as they should: it passes only when the
    environment says so (``min_keys: 0``).
    """
    if sample.sampled == 0 and target_item.min_keys == 0:
        expect.fact("matched", f"no {scope} (min_keys 0: an empty match is healthy here)")
        return False
    expect.that(
        sample.sampled >= target_item.min_keys,
        expected=f"at least {target_item.min_keys} of the {scope} to judge their TTLs",
        actual=f"{sample.sampled} matched",
        action="check the pattern and the db index; set min_keys: 0 where having no such key is healthy",
    )
    return True


@pytest.mark.each("keys")
@pytest.mark.configured("max_ttl")
@pytest.mark.runbook("datastores#redis-key-ttl")
def test_redis_keys_expire_within_max_ttl(redis_keys, target, target_item, expect):
    sample = redis_keys
    scope = f"keys matching {sample.pattern!r} in db {target.db}"
    expect.fact("sampled", f"{sample.sampled} keys" + (f" ({sample.cut_reason})" if sample.cut_reason else ""))
    if not _enough_keys(sample, target_item, scope, expect):
        return
    expect.that(
        sample.without_ttl == 0,
        expected=f"every one of the {scope} to expire (TTL <= {human_duration(target_item.max_ttl.critical)})",
        actual=f"{sample.without_ttl} of {sample.sampled} sampled keys have no TTL and never expire",
    )
    judge_duration(expect, sample.longest_ttl_s, target_item.max_ttl,
                   what=f"longest TTL of the {scope}", note=f" ({sample.sampled} keys sampled)")


@pytest.mark.each("keys")
@pytest.mark.configured("min_ttl")
@pytest.mark.runbook("datastores#redis-key-ttl")
def test_redis_keys_keep_min_ttl(redis_keys, target, target_item, expect):
    sample = redis_keys
    scope = f"keys matching {sample.pattern!r} in db {target.db}"
    if not _enough_keys(sample, target_item, scope, expect):
        return
    if sample.shortest_ttl_s is None:
        expect.fact("sampled", f"{sample.sampled} keys, none with a TTL (none expires at all)")
        return
    judge_duration(expect, sample.shortest_ttl_s, target_item.min_ttl, at_least=True,
                   what=f"shortest TTL of the {scope}", note=f" ({sample.sampled} keys sampled)")


# -- PostgreSQL ----------------------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.severity("critical")
@pytest.mark.runbook("datastores#postgres-login")
def test_postgres_accepts_login(postgres_login, target, expect):
    login = postgres_login
    if login.server_version:
        expect.fact("server_version", login.server_version)
    if login.in_recovery is not None:
        expect.fact("role", "replica (in recovery)" if login.in_recovery else "primary")
    if login.accepted:
        expect.record("login time", login.latency_ms, unit="ms")
    certificate = login.rejection is not None and "certificate" in login.rejection
    expect.that(
        login.accepted,
        expected=f"a login as {login.user} to {login.where}",
        actual=f"login refused: {login.rejection}",
        action=CLIENT_CERT_ACTION if certificate else None,
    )


@pytest.mark.rotation
@pytest.mark.configured("retired_password")
@pytest.mark.runbook("datastores#credential-rotation")
def test_postgres_retired_password_fits_rotation_phase(postgres_retired_password, target, phase, expect):
    seen, label = postgres_retired_password, target.retired_password.label
    who = f"{target.retired_login_user} at {target.where}"
    expect.fact("phase", phase or "after")
    if _retired_should_work(phase):
        expect.that(
            seen.accepted,
            expected=f"the retired password ({label}) still accepted for {who} ({_phase_name(phase)})",
            actual=f"login refused ({seen.reply}): clients still on the old credentials are failing",
            action="during the overlap both credentials must work: keep the old role (or password) until every "
            "client uses the new one, or run with the phase the rotation is really in",
        )
        return
    expect.that(
        not seen.accepted,
        expected=f"the retired password ({label}) refused for {who} ({_phase_name(phase)})",
        actual="login accepted",
    )


@pytest.mark.smoke
@pytest.mark.severity("critical")
@pytest.mark.configured("role")
@pytest.mark.runbook("datastores#postgres-role")
def test_postgres_has_expected_role(postgres_replication, target, expect):
    seen = postgres_replication
    expect.fact("role", seen.role)
    expect.that(
        seen.role == target.role,
        expected=f"{target.where} to be the {target.role}",
        actual=f"a {seen.role} (pg_is_in_recovery() is {str(seen.in_recovery).lower()})",
    )


@pytest.mark.smoke
@pytest.mark.configured("max_replication_lag")
@pytest.mark.runbook("datastores#postgres-replication-lag")
def test_postgres_replica_lag_is_within_limit(postgres_replication, target, expect):
    from opsverify.durations import judge_duration

    seen = postgres_replication
    expect.that(seen.in_recovery, expected=f"{target.where} to be a replica whose lag can be measured",
                actual="a primary (pg_is_in_recovery() is false): it was promoted, or the file names the wrong host")
    expect.that(seen.streaming, expected=f"{target.where} streaming WAL from a primary",
                actual="no WAL receiver: the replica follows no primary (it cannot reach it, or primary_conninfo is wrong)")
    expect.fact("pending_bytes", seen.pending_bytes)
    expect.that(seen.lag_s is not None, expected=f"{target.where} with a replayed transaction to date its lag by",
                actual=f"{seen.pending_bytes} bytes received but no transaction replayed yet")
    judge_duration(expect, seen.lag_s, target.max_replication_lag, what=f"replication lag of {target.where}",
                   note=f" ({seen.pending_bytes} bytes received but not replayed)" if seen.pending_bytes else "")


def _missing_table(state, target):
    return (f"no table {state.table} in {target.database}: migrations never ran against this database "
            "(or the file names the wrong database, schema or table)")


@pytest.mark.smoke
@pytest.mark.severity("critical")
@pytest.mark.configured("migrations")
@pytest.mark.runbook("datastores#migrations-failed")
def test_postgres_has_no_failed_migrations(postgres_migrations, target, expect):
    state = postgres_migrations
    expect.that(state.exists, expected=f"the {state.tool} migrations table {state.table}",
                actual=_missing_table(state, target))
    if state.tool == "alembic":
        pytest.skip("alembic keeps no per-migration state: a failed upgrade leaves the old head "
                    "(test_postgres_has_no_pending_migrations)")
    expect.record("failed migrations", len(state.failed))
    shown = "; ".join(f"{row.name}" + (f" ({row.detail})" if row.detail else "") for row in state.failed[:3])
    more = f" and {len(state.failed) - 3} more" if len(state.failed) > 3 else ""
    expect.that(
        not state.failed,
        expected=f"no failed migration in {state.table}",
        actual=f"{len(state.failed)} failed: {shown}{more}",
    )


@pytest.mark.smoke
@pytest.mark.configured("migrations_baseline")
@pytest.mark.runbook("datastores#migrations-pending")
def test_postgres_has_no_pending_migrations(postgres_migrations, target, expect):
    state, want = postgres_migrations, target.migrations
    expect.that(state.exists, expected=f"the {state.tool} migrations table {state.table}",
                actual=_missing_table(state, target))
    expect.fact("applied", len(state.applied))
    expect.fact("head", ", ".join(state.heads) or "none")
    problems = []
    if want.expected is not None:
        pending = [name for name in want.expected if name not in state.applied]
        if pending:
            shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
            problems.append(f"{len(pending)} pending: {shown}")
    if want.count is not None and len(state.applied) != want.count:
        if len(state.applied) < want.count:
            problems.append(f"{len(state.applied)} applied of {want.count} ({want.count - len(state.applied)} pending)")
        else:
            problems.append(f"{len(state.applied)} applied, more than the {want.count} expected "
                            "(the database is ahead of this release)")
    if want.heads:
        if state.tool == "alembic":
            if sorted(state.heads) != sorted(want.heads):
                problems.append(f"at revision {', '.join(state.heads) or 'none'}, not head {', '.join(want.heads)}")
        elif state.newest != want.heads[0]:
            problems.append(f"newest applied is {state.newest or 'none'}, not {want.heads[0]}")
    expected = []
    if want.expected is not None:
        expected.append(f"{len(want.expected)} listed migrations applied")
    if want.count is not None:
        expected.append(f"{want.count} applied")
    if want.heads:
        expected.append(f"head {', '.join(want.heads)}")
    expect.that(not problems, expected=f"{state.table}: " + ", ".join(expected), actual="; ".join(problems))


def _judge_newest_age(expect, found, spec, what):
    __tracebackhide__ = True
    expect.that(found.count > 0, expected=f"a {what} matching {found.pattern}", actual=_nothing_found(found))
    expect.fact("newest", found.newest_name)
    _require_past(expect, found.newest_age_s, f"the newest {what} ({found.newest_name})")
    judge_duration(expect, max(0.0, found.newest_age_s), spec.max_age, what=f"age of the newest {what}",
                   note=f" ({found.newest_name})")


def _require_past(expect, age_s, what):
    __tracebackhide__ = True
    expect.that(
        not BackupArtifacts.from_the_future(age_s),
        expected=f"{what} modified in the past",
        actual=f"modified {human_duration(-age_s)} in the future (a wrong clock or timestamp: its age is no "
               "evidence of when it was written)",
        action="check the clock of the host that writes the backups and the timestamps its copy keeps "
               "(cp -p, rsync -t), then when the last backup really ran",
    )


def _judge_newest_size(expect, found, spec, what):
    __tracebackhide__ = True
    expect.that(found.count > 0, expected=f"a {what} matching {found.pattern}", actual=_nothing_found(found))
    expect.record(f"size of the newest {what}", found.newest_size, unit="bytes")
    expect.that(
        found.newest_size >= spec.min_size,
        expected=f"the newest {what} ({found.newest_name}) at least {_size(spec.min_size)}",
        actual=f"{_size(found.newest_size)}",
    )


def _nothing_found(found):
    if found.missing_dir:
        return f"no such directory {found.missing_dir}"
    return "no file matches"


@pytest.mark.configured("backup")
@pytest.mark.runbook("datastores#backup-recent")
@pytest.mark.severity("critical")
def test_postgres_newest_backup_is_recent(postgres_backup, target, expect):
    _judge_newest_age(expect, postgres_backup, target.backup, "backup")


@pytest.mark.configured("backup")
@pytest.mark.runbook("datastores#backup-size")
def test_postgres_newest_backup_is_not_empty(postgres_backup, target, expect):
    _judge_newest_size(expect, postgres_backup, target.backup, "backup")


# -- backups -------------------------------------------------------------------------------------------
@pytest.mark.runbook("datastores#backup-recent")
@pytest.mark.severity("critical")
def test_newest_backup_is_recent(backup_artifacts, target, expect):
    _judge_newest_age(expect, backup_artifacts, target, "backup")


@pytest.mark.runbook("datastores#backup-size")
def test_newest_backup_is_not_empty(backup_artifacts, target, expect):
    _judge_newest_size(expect, backup_artifacts, target, "backup")


@pytest.mark.configured("min_count")
@pytest.mark.runbook("datastores#backup-retention")
def test_backups_are_retained(backup_artifacts, target, expect):
    kept = backup_artifacts.count
    expect.record("backups kept", kept, threshold=Threshold(critical=target.min_count), direction="at_least",
                  level="ok" if kept >= target.min_count else "critical")
    expect.that(
        backup_artifacts.count >= target.min_count,
        expected=f"at least {target.min_count} backups matching {backup_artifacts.pattern}",
        actual=f"{backup_artifacts.count}",
    )


@pytest.mark.configured("max_oldest_age")
@pytest.mark.runbook("datastores#backup-retention")
def test_old_backups_are_pruned(backup_artifacts, target, expect):
    found = backup_artifacts
    if found.count == 0:
        expect.fact("oldest", "no backups: nothing to prune")
        return
    oldest = found.oldest.rsplit("/", 1)[-1] if found.oldest else "?"
    _require_past(expect, found.oldest_age_s, f"the oldest backup ({oldest})")
    judge_duration(expect, max(0.0, found.oldest_age_s), target.max_oldest_age, what="age of the oldest backup",
                   note=f" ({oldest}: retention does not prune)")
