"""Latency readings the engine can vouch for: several samples, each taken while the loop was quiet.

A latency check is judged on a :class:`LatencyReading`, not on the request the other checks of the
target share. The reading is a short second pass, for the latency-judged targets only:

- samples to one host are taken a few at a time (``per_host``, default 4), so 300 targets behind one
  load balancer are measured under their normal load, not under a flood the checker made;
- whatever the hosts, each sample goes on the wire only while the loop has CPU to spare and its timer
  runs on time (``_Spare``): samples of instant endpoints, nearly all CPU, are taken one after
  another, while samples of slow endpoints, nearly all waiting, overlap (up to ``TIMED_AT_ONCE``);
- before each sample the sampler waits until the engine's loop runs on time; each sample records the
  worst loop lag seen while it was taken (:mod:`opsverify.net.lag`), and one taken while the loop ran
  more than ``trust_ms`` late is not trusted and is taken again (up to ``count`` more attempts);
- the reading is the median of the trusted samples (``count`` of them, default 3), with every sample,
  the spread and the phases of the median one kept for the reports.

Lag only ever adds to a measured time, so an untrusted sample still bounds the truth: it took at most
its measured time and at least that time less the loop's lag. Without a trusted sample the checks pass
when even the upper bound is within budget, fail when even the lower bound is past it, and otherwise
report the checker as overloaded (an error naming the lag), never a failure that blames the service.

Example::

    reading = await sample_latency(ctx, lambda: request(ctx, "GET", url).timing_only(), host=where, what="GET /healthz")
    reading.value_ms, reading.trusted, reading.samples
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opsverify.errors import CouldNotVerify
from opsverify.net.lag import LoopLag

DEFAULT_COUNT = 3
DEFAULT_PER_HOST = 4
DEFAULT_TRUST_MS = 3.0
TIMED_AT_ONCE = 16  # latency samples in flight at once, whatever the hosts ...
SPARE_BUSY = 0.3  # ... started only while the loop's thread was on the CPU at most 30 % of the recent past
SPARE_LAG_S = 0.0  # ... and its timer ran on time (no lateness beyond the timer's own noise)
START_GAP_S = 0.002  # ... and at most one every 2 ms (a tick of the lag monitor)


@dataclass(frozen=True)
class SamplingSettings:
    """How latency samples are taken (``--latency-samples``, ``--latency-per-host``)."""

    count: int = DEFAULT_COUNT
    per_host: int = DEFAULT_PER_HOST
    trust_ms: float = DEFAULT_TRUST_MS


@dataclass
class Sample:
    """One timed exchange: its duration, its phases, and how late the checker's loop ran meanwhile."""

    ms: float
    lag_ms: float  # the worst lateness of the loop while it was taken
    trusted: bool
    phases: dict[str, float] = field(default_factory=dict)
    held_ms: float = 0.0  # all the time the loop was held meanwhile (what may be the checker's, not the peer's)


@dataclass
class LatencyReading:
    """A latency judged on several samples; ``value_ms`` is the median of the trusted ones."""

    what: str
    wanted: int
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> list[Sample]:
        return [s for s in self.samples if s.trusted]

    @property
    def vouched(self) -> bool:
        """At least one sample was taken while the loop ran on time."""
        return bool(self.trusted)

    def _used(self) -> list[Sample]:
        return self.trusted or self.samples

    @property
    def value_ms(self) -> float:
        """Median of the trusted samples; without any, the median of all (an upper bound)."""
        return float(statistics.median(s.ms for s in self._used()))

    @property
    def lower_ms(self) -> float:
        """Median of what each sample took at least: its time less all the loop's lag while it ran."""
        return float(statistics.median(max(0.0, s.ms - s.held_ms) for s in self.samples))

    @property
    def spread_ms(self) -> float:
        used = [s.ms for s in self._used()]
        return max(used) - min(used)

    @property
    def worst_held_ms(self) -> float:
        return max((s.held_ms for s in self.samples), default=0.0)

    @property
    def worst_lag_ms(self) -> float:
        return max((s.lag_ms for s in self.samples), default=0.0)

    def detail(self) -> dict[str, Any]:
        """What the reports keep of the reading (``measured[].detail`` in summary.json)."""
        used = self._used()
        middle = sorted(used, key=lambda s: s.ms)[len(used) // 2]
        return {
            "samples_ms": [round(s.ms, 2) for s in self.samples],
            "trusted": len(self.trusted),
            "count": len(self.samples),
            "spread_ms": round(self.spread_ms, 2),
            "checker_lag_ms": [round(s.lag_ms, 2) for s in self.samples],
            "checker_held_ms": [round(s.held_ms, 2) for s in self.samples],
            "phases": middle.phases,
            **({"problems": self.problems} if self.problems else {}),
        }


@dataclass
class Timed:
    """What one sample function returns: when the exchange was on the wire and its phases."""

    start: float
    end: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


class _Limits:
    """Per-host and overall limits of latency samples in flight (one set per engine)."""

    def __init__(self, per_host: int, lag: LoopLag) -> None:
        self.per_host = per_host
        self.hosts: dict[str, asyncio.Semaphore] = {}
        self.sampling = asyncio.Semaphore(TIMED_AT_ONCE)  # probes taking samples at once
        self.wire = _Spare(lag)

    def host(self, host: str) -> asyncio.Semaphore:
        if host not in self.hosts:
            self.hosts[host] = asyncio.Semaphore(self.per_host)
        return self.hosts[host]


class _Spare:
    """Lets a latency sample go on the wire while the loop has CPU to spare.

    A sample is billed every turn of the loop it spans, and each turn carries whatever CPU work the
    other samples in flight do then. Samples of slow endpoints spend their time waiting and cost the
    loop little, so many can overlap; samples of instant ones are nearly all CPU, and overlapping
    them only stretches each. So a sample goes on the wire only while the loop's thread was on the
    CPU at most ``SPARE_BUSY`` of the last few milliseconds and its timer runs on time, one start per
    tick of the lag monitor, at most ``TIMED_AT_ONCE`` at once, and always when none is on the wire
    (progress is always made).

    The thread's CPU share alone does not say the loop has time to spare: while another process holds
    the core, the thread is off the CPU and its share reads low, though every turn of the loop comes
    late. The timer's lateness says that, and it also sees a sample that is spinning right now, which
    the CPU share, read at the last tick, has not seen yet.
    """

    def __init__(self, lag: LoopLag) -> None:
        self.lag = lag
        self.on_wire = 0
        self.last_start = -1.0

    async def wait_turn(self) -> None:
        """Wait until one more sample may go on the wire (then enter :meth:`on_wire_now` at once)."""
        while self.on_wire and not self._spare():
            await self.lag.next_tick()

    @contextmanager
    def on_wire_now(self) -> Iterator[None]:
        """Count a sample on the wire for the block."""
        self.on_wire += 1
        self.last_start = time.monotonic()
        try:
            yield
        finally:
            self.on_wire -= 1

    def _spare(self) -> bool:
        return (self.on_wire < TIMED_AT_ONCE and time.monotonic() - self.last_start >= START_GAP_S
                and self.lag.current() <= SPARE_LAG_S and self.lag.busy() <= SPARE_BUSY)


async def sample_latency(
    ctx: Any, take: Callable[[], Awaitable[Timed]], *, host: str, what: str, count: int | None = None,
    seed: Timed | None = None,
) -> LatencyReading:
    """Take ``count`` trusted samples of ``take()`` against ``host`` (see the module's docstring).

    ``seed`` is an exchange the probe already timed (its functional one): it counts as a sample,
    trusted or not by the loop's lag at the time like any other. The first sample's error (refused,
    timeout) is raised; a later one ends the sampling, and the reading keeps it in ``problems``.
    """
    settings: SamplingSettings = getattr(ctx.engine, "sampling", SamplingSettings())
    wanted = count or settings.count
    reading = LatencyReading(what=what, wanted=wanted)
    limits: _Limits = ctx.engine.resource("net.sampling.limits", lambda: _Limits(settings.per_host, ctx.engine.lag))
    lag = ctx.engine.lag
    bound = settings.trust_ms / 1000
    if seed is not None:
        await _judge(lag, [seed], reading, settings.trust_ms)
    async with ctx.engine.slot_released():  # waiting for quiet is not network work: let the wave run
        ctx.hold()
        async with limits.host(host), limits.sampling:
            ctx.restart_clock()  # the wait for a turn was the checker's rationing, not the peer's time
            attempts = 0
            while len(reading.trusted) < wanted and attempts < 2 * wanted:
                if reading.samples and ctx.remaining() <= 0:
                    break
                share = ctx.hard_remaining() / (2 * wanted - attempts + 1)  # every attempt gets its turn
                await lag.quiet(bound, until=time.monotonic() + max(min(ctx.timeout, share), 0.05))
                attempts += 1
                ctx.phase = f"latency sample {attempts} of {what}"
                try:
                    with ctx.paused():  # the wait for a turn on the wire is the checker's rationing too
                        await limits.wire.wait_turn()
                    with limits.wire.on_wire_now(), lag.watch():
                        timed = await take()
                except CouldNotVerify as exc:
                    if not reading.samples:
                        raise
                    reading.problems.append(str(exc))
                    break
                await _judge(lag, [timed], reading, settings.trust_ms)
    return reading


async def _judge(lag: Any, pending: list[Timed], reading: LatencyReading, trust_ms: float) -> None:
    """Record the samples in ``pending`` with the loop's worst lag while each was taken."""
    if pending:
        await lag.covered(max(t.end for t in pending))
    for timed in pending:
        worst = lag.worst_between(timed.start, timed.end) * 1000
        held = lag.total_between(timed.start, timed.end) * 1000
        reading.samples.append(Sample(timed.ms, worst, worst <= trust_ms, timed.phases, held))
    pending.clear()
