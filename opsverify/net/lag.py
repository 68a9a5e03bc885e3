"""How late the engine's event loop runs: the checker's own delay, kept apart from the network's.

Every probe of a run shares one event loop, which is also the stopwatch of every latency and the clock
of every timeout. When the loop is busy (other probes parsing answers, a library thread holding the
GIL, another process on the same core), a timer fires late, and a request that finished on time is
seen finished late. :class:`LoopLag` measures that: a timer due every ``INTERVAL`` seconds records
how late it ran.

Four uses (all in :mod:`opsverify.engine` and :mod:`opsverify.net.sampling`):

- ``worst_between(t0, t1)``: the worst lateness seen while one sample was taken; a latency sample
  taken while the loop lagged is not trusted.
- ``debt()``: the loop's lag summed since it started; a probe's deadline moves by the debt accrued
  during the probe, so a timeout bills time spent waiting on the peer, not on the checker.
- ``busy()``: the share of the recent past the loop's thread spent on the CPU; a latency sample
  starts only while the loop has time to spare, so samples do not stretch each other.
- ``admit()``: new probes wait while the loop is lagging, so the engine never starts more probes at
  once than it can serve without starving the ones in flight.

Example::

    lag = LoopLag(in_flight=lambda: engine.stats.running)
    lag.start(loop)
    t0 = time.monotonic(); await do_request(); t1 = time.monotonic()
    await lag.covered(t1)
    trusted = lag.worst_between(t0, t1) <= TRUST_S
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

INTERVAL = 0.002  # a tick every 2 ms: ~500 wake-ups a second while probes are in flight, ~1 % of a core
NOISE_S = 0.001  # epoll rounds timeouts up to whole milliseconds: up to 1 ms late is the timer, not lag
ADMIT_LAG_S = 0.010  # new probes wait while the loop runs more than 10 ms late ...
MIN_IN_FLIGHT = 16  # ... unless fewer than this many are in flight (progress is always made)
ADMIT_PER_TICK = 16
BUSY_WINDOW_S = 0.020  # the loop's recent CPU share is read over the last 20 ms of ticks
HISTORY = 30_000  # ticks kept (a minute of a busy loop)


class LoopLag:
    """Measures the lateness of a timer on one event loop while probes are in flight."""

    def __init__(self, in_flight: Callable[[], int]) -> None:
        self._in_flight = in_flight
        self._times: deque[float] = deque(maxlen=HISTORY)
        self._cpu: deque[float] = deque(maxlen=HISTORY)  # the loop thread's CPU time at each tick
        self._lates: deque[float] = deque(maxlen=HISTORY)
        self._debt = 0.0
        self._expected: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy: asyncio.Event | None = None
        self._tick_waiters: list[asyncio.Future[None]] = []
        self._admission: deque[asyncio.Future[None]] = deque()
        self._watched = 0  # exchanges being timed right now (see watch())

    # -- lifecycle (on the loop) ------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start ticking on ``loop`` (call from inside the loop)."""
        self._loop = loop
        self._busy = asyncio.Event()
        self._task = loop.create_task(self._run(), name="opsverify-loop-lag")

    def wake(self) -> None:
        """A probe started: tick (the monitor sleeps while nothing is in flight).

        The next tick is due from now, not from when the monitor next runs: a probe that holds the loop
        right after waking it (a sample spinning on an instant answer) makes that tick late, and the
        lag read meanwhile (:meth:`pending`) shows it."""
        if self._busy is not None:
            if self._expected is None:
                self._expected = time.monotonic() + INTERVAL
            self._busy.set()

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Tick for as long as the block runs, whatever is in flight: an exchange is being timed.

        A probe taking latency samples hands its concurrency slot back (:mod:`opsverify.net.sampling`),
        so at times no probe counts as in flight while samples are on the wire; a monitor asleep then
        would see no lag, and a sample the checker's own work stretched would be trusted."""
        self._watched += 1
        self.wake()
        try:
            yield
        finally:
            self._watched -= 1

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        assert self._busy is not None
        while True:
            if self._in_flight() <= 0 and not self._watched and not self._tick_waiters and not self._admission:
                self._expected = None
                self._busy.clear()
                await self._busy.wait()
            if self._expected is None:  # (wake() set it when it woke the monitor)
                self._expected = time.monotonic() + INTERVAL
            await asyncio.sleep(max(0.0, self._expected - time.monotonic()))
            now = time.monotonic()
            late = max(0.0, now - self._expected - NOISE_S)
            self._expected = None
            self._times.append(now)
            self._cpu.append(time.thread_time())
            self._lates.append(late)
            self._debt += late
            self._release(late)

    def _release(self, late: float) -> None:
        waiters, self._tick_waiters = self._tick_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        budget = ADMIT_PER_TICK if late <= ADMIT_LAG_S else 0
        while self._admission and (budget > 0 or self._in_flight() < MIN_IN_FLIGHT):
            fut = self._admission.popleft()
            if not fut.done():
                fut.set_result(None)
                budget -= 1

    # -- readings (any thread) ------------------------------------------------------------------
    def pending(self) -> float:
        """How late the tick that is due right now already is (0 when none is overdue)."""
        expected = self._expected
        return max(0.0, time.monotonic() - expected - NOISE_S) if expected is not None else 0.0

    def current(self) -> float:
        """The loop's lag right now: the last tick's lateness, or the overdue one's if larger."""
        last = self._lates[-1] if self._lates else 0.0
        return max(last, self.pending())

    def debt(self) -> float:
        """Seconds the loop has run late in all, counting the tick overdue right now."""
        return self._debt + self.pending()

    def busy(self, window: float = BUSY_WINDOW_S) -> float:
        """The share of the last ``window`` seconds the loop's thread spent on the CPU (0 to 1), as its
        ticks saw it; 0 before two ticks have run. Read on the loop, where the monitor ticks."""
        if len(self._times) < 2:
            return 0.0
        t1, c1 = self._times[-1], self._cpu[-1]
        i = len(self._times) - 2
        while i > 0 and self._times[i] > t1 - window:
            i -= 1
        elapsed = t1 - self._times[i]
        return min(1.0, (c1 - self._cpu[i]) / elapsed) if elapsed > 0 else 0.0

    def worst_between(self, t0: float, t1: float) -> float:
        """The worst lateness of the ticks that ran from ``t0`` up to the first one after ``t1``."""
        return self._window(t0, t1)[0]

    def total_between(self, t0: float, t1: float) -> float:
        """All the lateness of those ticks (a late one counted with the timer's noise): how long the
        loop was held, as its timer saw it, while something between ``t0`` and ``t1`` waited on it."""
        return self._window(t0, t1)[1]

    def _window(self, t0: float, t1: float) -> tuple[float, float]:
        worst = total = 0.0
        after: float | None = None  # the lateness of the first tick after t1
        for at, late in zip(reversed(self._times), reversed(self._lates)):  # recent ones first
            if at > t1:
                after = late
                continue
            if at < t0:
                break
            worst = max(worst, late)
            total += late + NOISE_S if late > 0 else 0.0
        last = after if after is not None else self.pending()
        return max(worst, last), total + (last + NOISE_S if last > 0 else 0.0)

    # -- waiting (on the loop) ------------------------------------------------------------------
    async def next_tick(self) -> None:
        """Wait for the next tick."""
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._tick_waiters.append(fut)
        self.wake()
        await fut

    async def covered(self, t: float) -> None:
        """Wait until a tick after ``t`` has run, so :meth:`worst_between` covers ``t``."""
        while not self._times or self._times[-1] <= t:
            await self.next_tick()

    async def quiet(self, bound: float, until: float) -> bool:
        """Wait until the loop runs at most ``bound`` late (the last tick, recent and on time, or two new
        ones in a row); ``False`` if ``until`` passed first."""
        if self._times and self.current() <= bound and time.monotonic() - self._times[-1] <= 2 * INTERVAL:
            return True
        calm = 0
        while calm < 2:
            if time.monotonic() >= until:
                return False
            await self.next_tick()
            calm = calm + 1 if self.current() <= bound else 0
        return True

    async def admit(self) -> None:
        """Wait for a turn to start a probe while the loop is lagging (first come, first served)."""
        if not self._admission and (self._in_flight() < MIN_IN_FLIGHT or self.current() <= ADMIT_LAG_S):
            return
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._admission.append(fut)
        self.wake()
        await fut
