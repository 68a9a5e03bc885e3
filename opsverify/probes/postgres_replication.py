"""PostgreSQL replication probe: is the server a primary or a replica, and how far behind is a replica.

One read-only query as the target's login role (no privilege beyond LOGIN is needed):

* ``pg_is_in_recovery()``: true on a replica (a standby replaying WAL), false on a primary;
* ``pg_last_wal_receive_lsn()`` / ``pg_last_wal_replay_lsn()``: WAL received from the primary and
  WAL replayed (their difference in bytes is recorded);
* ``now() - pg_last_xact_replay_timestamp()``: the age of the last replayed transaction;
* a row in ``pg_stat_wal_receiver``: a WAL receiver is running (the pid is visible to every role).

The lag is a time, decided here: when the replica has replayed everything it received and a WAL
receiver is streaming, it is 0 (an idle primary writes nothing, so the age of the last replayed
transaction would grow without any lag); otherwise it is the age of the last replayed transaction.
Without a WAL receiver the replica is not following any primary and no lag is claimed
(``streaming`` is false: the check fails on that, not on a number).

Example::

    state = await replication(ctx)      # ctx.target is a PostgresTarget
    state.in_recovery, state.streaming, state.lag_s, state.pending_bytes
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from opsverify.config.datastores import PostgresTarget
from opsverify.engine import ProbeContext
from opsverify.errors import PostgresLoginRejected
from opsverify.probes.postgres import _close, _connect, _query_error

QUERY = """
SELECT pg_is_in_recovery(),
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()),
       extract(epoch FROM now() - pg_last_xact_replay_timestamp()),
       (SELECT count(*) FROM pg_stat_wal_receiver)
"""


@dataclass
class ReplicationState:
    """What the server says about its place in replication."""

    where: str
    in_recovery: bool
    streaming: bool = False
    receive_lsn: str | None = None
    replay_lsn: str | None = None
    pending_bytes: int | None = None
    replay_age_s: float | None = None

    @property
    def role(self) -> str:
        return "replica" if self.in_recovery else "primary"

    @property
    def caught_up(self) -> bool:
        """Everything received has been replayed, from a streaming primary."""
        return self.streaming and self.pending_bytes is not None and self.pending_bytes <= 0

    @property
    def lag_s(self) -> float | None:
        """Seconds behind the primary (0 when caught up); None when it cannot be said."""
        if not self.in_recovery or not self.streaming:
            return None
        if self.caught_up:
            return 0.0
        return self.replay_age_s


async def replication(ctx: ProbeContext[PostgresTarget]) -> ReplicationState:
    """Read the server's recovery state, WAL positions and WAL receiver."""
    target = ctx.target
    password = target.password.reveal().strip() if target.password else None
    conn = await _connect(ctx, target, password)
    if isinstance(conn, str):
        raise PostgresLoginRejected(f"cannot read the replication state of {target.where}: login as "
                                    f"{target.user} refused ({conn})")
    try:
        ctx.phase = "reading the replication state"
        cur = await asyncio.wait_for(conn.execute(QUERY), ctx.timeout)
        row = await cur.fetchone()
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise _query_error(ctx, target, exc) from None
    finally:
        await _close(conn)
    assert row is not None
    in_recovery, receive, replay, pending, age, receivers = row
    return ReplicationState(
        where=target.where,
        in_recovery=bool(in_recovery),
        streaming=bool(receivers),
        receive_lsn=receive,
        replay_lsn=replay,
        pending_bytes=int(pending) if pending is not None else None,
        replay_age_s=max(0.0, float(age)) if age is not None else None,
    )
