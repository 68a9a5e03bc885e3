"""NATS round trips: a request to the target's service subject and the canary publish/receive,
timed in samples the engine vouches for.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from opsverify.config.base import Safety
from opsverify.config.nats import NatsTarget
from opsverify.engine import ProbeContext
from opsverify.errors import NatsPublishDenied, ProbeTimeout
from opsverify.lazy import lazy_module
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.safety import permit
from opsverify.probes.nats.connect import _probe_headers, _where, CLOSE_S, connected, guarded, NatsConnection

if TYPE_CHECKING:
    import nats
    import nats.errors
    import nats.js.errors
else:
    nats = lazy_module("nats")  # nats.errors and nats.js.errors are imported by the package itself


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------


@dataclass
class RoundTrip:
    """One request/reply or canary publish/receive: the time it took, or what went wrong."""

    subject: str
    latency_ms: float | None
    reply: str = ""
    problem: str | None = None
    started: float = 0.0
    ended: float = 0.0
    reading: LatencyReading | None = None  # the latency in samples, when the first round trip worked

    @property
    def ok(self) -> bool:
        return self.problem is None and self.latency_ms is not None


async def probe_request(ctx: ProbeContext[NatsTarget]) -> RoundTrip:
    """Send the target's ``request`` to its service subject and time the reply (in samples)."""
    target = ctx.target
    assert target.request is not None
    permit(ctx, Safety.read_only if target.request.reads_only else Safety.mutating, f"a request to {target.request.subject}")
    conn = await connected(ctx)
    try:
        payload = target.request.payload.encode()
        first = await _request_once(ctx, conn, target.request.subject, payload)
        if first.ok:
            first.reading = await _sampled(ctx, first, lambda: _request_once(ctx, conn, first.subject, payload),
                                           f"request on {first.subject}")
        return first
    finally:
        await conn.close()


async def _request_once(ctx: ProbeContext[NatsTarget], conn: NatsConnection, subject: str, payload: bytes) -> RoundTrip:
    ctx.phase = f"request on {subject}"
    wait = ctx.left(reserve=CLOSE_S / 4)
    started = time.monotonic()
    try:
        msg = await guarded(conn, conn.client.request(subject, payload, timeout=wait), subject)
    except NatsPublishDenied as denied:
        return RoundTrip(subject, None, problem=str(denied))
    except nats.errors.NoRespondersError:
        return RoundTrip(subject, None, problem=f"no responders on {subject}")
    except nats.errors.TimeoutError:
        return RoundTrip(subject, None, problem=f"no reply on {subject} within {wait:.2g} s")
    ended = time.monotonic()
    return RoundTrip(subject, (ended - started) * 1000, msg.data[:2048].decode(errors="replace"),
                     started=started, ended=ended)


async def _sampled(
    ctx: ProbeContext[NatsTarget], first: RoundTrip, again: Callable[[], Awaitable[RoundTrip]], what: str
) -> LatencyReading:
    """The round trip's latency in samples the engine vouches for, ``first`` counting as one."""

    async def one() -> Timed:
        trip = await again()
        if not trip.ok:
            raise ProbeTimeout(f"{what}: {trip.problem or 'no round trip'}")
        return Timed(trip.started, trip.ended)

    return await sample_latency(ctx, one, host=_where(ctx.target), what=what, seed=Timed(first.started, first.ended))


async def probe_canary(ctx: ProbeContext[NatsTarget]) -> RoundTrip:
    """Subscribe to the canary subject, publish unique messages, time until each comes back (in samples)."""
    target = ctx.target
    assert target.canary_subject is not None
    subject = target.canary_subject
    permit(ctx, Safety.mutating, f"a canary publish to {subject}")
    conn = await connected(ctx)
    try:
        ctx.phase = f"subscribing to canary subject {subject}"
        sub = await conn.client.subscribe(subject)
        await conn.client.flush(timeout=max(1, int(ctx.left())))
        first = await _canary_once(ctx, conn, sub, subject)
        if first.ok:
            first.reading = await _sampled(ctx, first, lambda: _canary_once(ctx, conn, sub, subject),
                                           f"canary round trip on {subject}")
        return first
    finally:
        await conn.close()


async def _canary_once(ctx: ProbeContext[NatsTarget], conn: NatsConnection, sub: Any, subject: str) -> RoundTrip:
    marker = f"opsverify-canary-{uuid.uuid4()}".encode()
    ctx.phase = f"waiting for the canary on {subject}"
    started = time.monotonic()
    await conn.client.publish(subject, marker, headers=_probe_headers(conn, "canary"))
    await conn.client.flush(timeout=max(1, int(ctx.left())))
    while True:
        denied = conn.errors.violation("subscribe", subject) or conn.errors.violation("publish", subject)
        if denied:
            return RoundTrip(subject, None, problem=denied)
        left = ctx.left(reserve=CLOSE_S / 4, floor=0.0)
        if left <= 0:
            return RoundTrip(subject, None, problem=f"the canary did not come back within {ctx.timeout:g} s")
        try:
            msg = await sub.next_msg(timeout=min(0.1, left))
        except nats.errors.TimeoutError:
            continue
        if msg.data == marker:
            ended = time.monotonic()
            return RoundTrip(subject, (ended - started) * 1000, msg.data.decode(), started=started, ended=ended)
