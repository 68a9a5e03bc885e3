"""What a probe is given: its key, its context (target, deadline, phase) and how it is requested.

:class:`ProbeContext` carries the one deadline API every probe uses, HTTP or not: ``ctx.deadline``,
``ctx.remaining()``, ``ctx.left()``, ``ctx.expired()``, counted from the probe's start and moved by the
time the engine's own loop ran late meanwhile (:mod:`opsverify.net.lag`), so a timeout bills the peer.
The engine (:mod:`opsverify.engine`) creates one per probe run.

Example::

    async def probe(ctx: ProbeContext[HttpTarget]) -> int:
        ctx.phase = "asking for the version"
        return await client.version(timeout=ctx.left())
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from opsverify.engine import Engine

TargetT = TypeVar("TargetT")
R = TypeVar("R")

HARD_FACTOR = 3.0  # however late the loop runs, a probe ends by 3 x its timeout (+ HARD_EXTRA_S) in wall time
HARD_EXTRA_S = 2.0


@dataclass(frozen=True, order=True)
class ProbeKey:
    """Identity of one probe run: identical keys share one run and one result."""

    probe: str
    env: str
    target: str
    item: str | None = None

    def __str__(self) -> str:
        tail = f"/{self.item}" if self.item else ""
        return f"{self.probe}@{self.env}-{self.target}{tail}"


@dataclass
class ProbeContext(Generic[TargetT]):
    """What a probe gets: its key, the environment and target models, its deadline and the engine.

    It is generic over the target model: a probe takes ``ProbeContext[HttpTarget]`` and
    ``ctx.target`` is an :class:`~opsverify.config.http.HttpTarget` to the type checker.

    ``phase`` is what the probe is doing right now ("connecting", "TLS handshake"); a timeout
    message names it, so a stall says where it stalled.

    The deadline API is the one every probe uses, HTTP or not: ``ctx.remaining()`` is what is left of
    the probe's timeout (counted from its start, not counting time the checker's own loop ran late),
    ``ctx.expired()`` says whether nothing is left, ``ctx.checker_lag()`` how late the loop ran during
    this probe.
    """

    key: ProbeKey
    env: Any
    target: TargetT
    item: Any
    timeout: float
    engine: Engine
    phase: str = "waiting for an answer"
    started: float = field(default_factory=time.monotonic)
    _debt0: float = 0.0
    held: bool = False  # waiting for a turn the checker rations: its timeout is not running

    @property
    def deadline(self) -> float:
        """When the timeout ends on the ``time.monotonic()`` clock, with the loop's lag so far added."""
        return self.started + self.timeout + self.checker_lag()

    def remaining(self, reserve: float = 0.0) -> float:
        """Seconds left of the timeout (minus ``reserve``); may be negative once it has passed."""
        return self.deadline - time.monotonic() - reserve

    def left(self, reserve: float = 0.0, floor: float = 0.05) -> float:
        """:meth:`remaining`, never below ``floor``: a timeout to hand a library, which needs one > 0."""
        return max(floor, self.remaining(reserve))

    def expired(self) -> bool:
        """Whether the timeout has passed."""
        return self.remaining() <= 0

    def checker_lag(self) -> float:
        """Seconds the engine's loop ran late since this probe started (the checker's time, not the peer's)."""
        return max(0.0, self.engine.lag.debt() - self._debt0)

    def hard_remaining(self) -> float:
        """Wall-clock seconds left before the engine gives up on this probe whatever the loop's lag."""
        return self.started + self.timeout * HARD_FACTOR + HARD_EXTRA_S - time.monotonic()

    def hold(self) -> None:
        """Stop the timeout while the probe waits for a turn the checker rations (latency samples to
        one host): that wait is the checker's, not the peer's. :meth:`restart_clock` ends it."""
        self.held = True

    def restart_clock(self) -> None:
        """Count the timeout from now (after :meth:`hold`, once the probe has its turn)."""
        self.started = time.monotonic()
        self._debt0 = self.engine.lag.debt()
        self.held = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the timeout for the block, a short wait for a turn the checker rations, and let it run
        on afterwards from where it stood (less the loop's lag meanwhile, which the deadline already
        adds)."""
        t0, debt0, self.held = time.monotonic(), self.engine.lag.debt(), True
        try:
            yield
        finally:
            self.held = False
            self.started += max(0.0, time.monotonic() - t0 - (self.engine.lag.debt() - debt0))

    async def run_sync(self, fn: Callable[..., R], *args: Any) -> R:
        """Run a blocking library call in the engine's worker threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.engine.executor, lambda: fn(*args))

    async def depend(self, probe: str, *, item: str | None = None) -> Any:
        """The result of another probe of the same target (shared, run once).

        The dependency is shielded (this probe timing out must not cancel it for the others), and
        this probe gives its concurrency slot back while it waits, so that a dependency can run
        even with ``--probe-concurrency 1``.
        """
        key = ProbeKey(probe, self.key.env, self.key.target, item)
        self.engine.depends[self.key].add(key)
        future = asyncio.wrap_future(self.engine.submit_registered(key))
        async with self.engine.slot_released():
            return await asyncio.shield(future)

    async def after(self, probe: str, *, item: str | None = None) -> None:
        """Wait until another probe of the same target has ended, if this run started it (its outcome
        is that probe's business): for a probe that must not run beside it."""
        key = ProbeKey(probe, self.key.env, self.key.target, item)
        if not self.engine.is_submitted(key):
            return
        future = asyncio.wrap_future(self.engine.submit_registered(key))
        async with self.engine.slot_released():
            await asyncio.wait({asyncio.shield(future)})

    def resource(self, name: str, factory: Callable[[], Any]) -> Any:
        """A per-engine shared object (a client, a connection), created once, closed at shutdown."""
        return self.engine.resource(name, factory)


ProbeFn = Callable[[ProbeContext[Any]], Awaitable[Any]]


@dataclass
class ProbeRequest:
    """Everything needed to run a probe later: the function and how to build its context."""

    fn: ProbeFn
    env: Any
    target: Any
    item: Any
    timeout: float
