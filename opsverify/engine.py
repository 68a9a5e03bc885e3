"""The probe engine: every check's network work, run concurrently on one event loop.

pytest runs tests one after another; the engine lets the suite cost about its slowest probe instead of
the sum. After collection, the plugin submits the probes of every selected, allowed item; each check
then blocks only on its own probe's result.

- A probe is an ``async def probe(ctx: ProbeContext[HttpTarget]) -> T`` (the context is generic over
  the target model) identified by a :class:`ProbeKey` (probe name, environment, target, item).
  Identical keys run once and share the result.
- At most ``concurrency`` probes run at once (a semaphore), and while the loop lags new ones wait
  their turn (:meth:`opsverify.net.lag.LoopLag.admit`): the engine never starts more than it can serve.
- Each probe has its own deadline, ``ctx.deadline`` / ``ctx.remaining()``, counted from when it
  starts running and moved by the time the loop itself ran late meanwhile: a timeout bills the
  peer, not the checker's backlog. Past ``HARD_FACTOR`` times its timeout in wall time the engine
  gives up with :class:`~opsverify.errors.CheckerOverloaded`, which names the loop's lag.
- Sync-only libraries run in the engine's thread pool: ``await ctx.run_sync(fn, *args)``.
- Errors are :mod:`opsverify.errors` types; anything else becomes :class:`ProbeCrashed` (one line).

Example (the plugin does this through :meth:`opsverify.session.OvSession.prefetch`)::

    async def fetch(ctx: ProbeContext[HttpTarget]) -> str:
        return f"{ctx.target.url}: {ctx.remaining():.1f} s left"

    engine = Engine(concurrency=64)
    key = ProbeKey("http_response", "staging", "gateway")
    request = ProbeRequest(fn=fetch, env=env, target=target, item=None, timeout=target.timeout)
    future = engine.submit(key, request)      # starts it; the same key again returns this future
    answer = engine.result(key)               # blocks; raises the probe's opsverify.errors type
    engine.shutdown()
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opsverify.errors import (
    CheckerOverloaded,
    CouldNotVerify,
    OpsverifyError,
    ProbeCrashed,
    ProbeTimeout,
    one_line,
)
from opsverify.net.lag import LoopLag
from opsverify.probe_context import (  # re-exported: probes import them from here
    HARD_EXTRA_S,
    HARD_FACTOR,
    ProbeContext,
    ProbeFn,
    ProbeKey,
    ProbeRequest,
)
from opsverify.net.sampling import SamplingSettings

__all__ = ["DEFAULT_CONCURRENCY", "GRACE_S", "HARD_EXTRA_S", "HARD_FACTOR", "Engine", "EngineStats", "ProbeContext",
           "ProbeFn", "ProbeKey", "ProbeRequest", "translate_os_error"]

T = TypeVar("T")


def _default_concurrency() -> int:
    """Probes in flight by default: sized for sockets, not cores.

    512 (a suite of a few hundred checks then probes in one wave), or a quarter of the soft
    open-files limit where that is lower, leaving room for the files pytest and its report writers
    hold. ``--probe-concurrency`` overrides it.
    """
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 128
    if soft == resource.RLIM_INFINITY:
        return 512
    return max(16, min(512, soft // 4))


DEFAULT_CONCURRENCY = _default_concurrency()
GRACE_S = 0.5  # the engine's backstop beyond a probe's own timeout, so the probe's own message wins


@dataclass
class EngineStats:
    """Counters the self-tests and the benchmark read."""

    started: int = 0
    deduplicated: int = 0
    running: int = 0
    peak_running: int = 0
    finished: int = 0
    started_keys: list[str] = field(default_factory=list)


class Engine:
    """Runs probes on a private event loop in a background thread (started on first use)."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY, threads: int = 32) -> None:
        if concurrency < 1:
            raise ValueError("probe concurrency must be at least 1")
        self.concurrency = concurrency
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="opsverify-probe"
        )
        self.stats = EngineStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self._futures: dict[ProbeKey, concurrent.futures.Future[Any]] = {}
        self._requests: dict[ProbeKey, ProbeRequest] = {}
        self._resources: dict[str, Any] = {}
        self.depends: collections.defaultdict[ProbeKey, set[ProbeKey]] = collections.defaultdict(set)
        self._running: dict[ProbeKey, ProbeContext[Any]] = {}
        self.timings: dict[ProbeKey, tuple[float, float]] = {}  # wall-clock start and end of each probe's last run
        self._closed = False
        self.request_factory: Callable[[ProbeKey], ProbeRequest] | None = None
        self.lag = LoopLag(in_flight=lambda: self.stats.running)
        self.sampling = SamplingSettings()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._loop is not None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                if self._closed:
                    raise RuntimeError("the probe engine is shut down")
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    self._semaphore = asyncio.Semaphore(self.concurrency)
                    self.lag.start(loop)
                    ready.set()
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="opsverify-engine", daemon=True)
                self._thread.start()
                ready.wait(5)
                self._loop = loop
            return self._loop

    def shutdown(self) -> None:
        """Cancel outstanding probes, close shared resources and stop the loop (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop = self._loop
        if loop is None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            return
        for fut in list(self._futures.values()):
            fut.cancel()

        async def close_resources() -> None:
            self.lag.stop()
            for resource in list(self._resources.values()):
                closer = getattr(resource, "aclose", None) or getattr(resource, "close", None)
                if closer is None:
                    continue
                try:
                    result = closer()
                    if asyncio.iscoroutine(result):
                        await asyncio.wait_for(result, 2)
                except Exception:  # noqa: BLE001 - best effort at shutdown
                    pass
            self._resources.clear()

        try:
            asyncio.run_coroutine_threadsafe(close_resources(), loop).result(5)
        except Exception:  # noqa: BLE001
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(5)
        self.executor.shutdown(wait=False, cancel_futures=True)

    @contextlib.asynccontextmanager
    async def slot_released(self) -> AsyncIterator[None]:
        """Inside a running probe: hand its concurrency slot back for the duration of the block."""
        assert self._semaphore is not None
        self._semaphore.release()
        self.stats.running -= 1
        try:
            yield
        finally:
            await self._semaphore.acquire()
            self.stats.running += 1

    # -- resources -------------------------------------------------------------------------------
    def resource(self, name: str, factory: Callable[[], Any]) -> Any:
        """Create-once shared object (must be called from the engine loop or be thread-safe)."""
        with self._lock:
            if name not in self._resources:
                self._resources[name] = factory()
            return self._resources[name]

    # -- submitting ------------------------------------------------------------------------------
    def register(self, key: ProbeKey, request: ProbeRequest) -> None:
        """Remember how to run ``key`` without starting it (so a dependency can start it later)."""
        with self._lock:
            self._requests.setdefault(key, request)

    def submit(self, key: ProbeKey, request: ProbeRequest) -> concurrent.futures.Future[Any]:
        """Start ``key`` unless it is already started; return its (shared) future."""
        self.register(key, request)
        return self.submit_registered(key)

    def submit_registered(self, key: ProbeKey) -> concurrent.futures.Future[Any]:
        with self._lock:
            existing = self._futures.get(key)
            if existing is not None:
                self.stats.deduplicated += 1
                return existing
            request = self._requests.get(key)
        if request is None and self.request_factory is not None:
            request = self.request_factory(key)
            self.register(key, request)
        if request is None:
            raise KeyError(f"no probe registered for {key}")
        loop = self._ensure_loop()
        with self._lock:
            existing = self._futures.get(key)
            if existing is not None:
                return existing
            future = asyncio.run_coroutine_threadsafe(self._run(key, request), loop)
            self._futures[key] = future
            self.stats.started += 1
            self.stats.started_keys.append(str(key))
            return future

    def call(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``coro`` on the engine's loop from another thread and wait for its result."""
        loop = self._ensure_loop()

        async def wrapped() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(timeout)

    def forget(self, keys: set[ProbeKey]) -> set[ProbeKey]:
        """Drop the settled results of ``keys`` and of the probes they depended on, so that the next
        ``submit`` runs them again (a re-probe); returns every key forgotten. Running ones are kept."""
        with self._lock:
            todo, gone = list(keys), set()
            while todo:
                key = todo.pop()
                future = self._futures.get(key)
                if key in gone or future is None or not future.done():
                    continue
                gone.add(key)
                del self._futures[key]
                todo.extend(self.depends.pop(key, ()))
            return gone

    def doing(self, key: ProbeKey) -> str:
        """What ``key``'s probe is doing now (its phase), or ``"queued"`` before it got a slot."""
        ctx = self._running.get(key)
        return ctx.phase if ctx is not None else "queued"

    def is_submitted(self, key: ProbeKey) -> bool:
        with self._lock:
            return key in self._futures

    def finished(self, key: ProbeKey) -> concurrent.futures.Future[Any] | None:
        """``key``'s future once it has run to completion (a result or an error), else ``None``.

        Starts nothing: the reports use it to read what the run already probed.
        """
        with self._lock:
            future = self._futures.get(key)
        return future if future is not None and future.done() and not future.cancelled() else None

    def result(self, key: ProbeKey, request: ProbeRequest | None = None) -> Any:
        """Block until ``key``'s result is there; raise its error (an :mod:`opsverify.errors` type)."""
        future = self.submit(key, request) if request is not None else self.submit_registered(key)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ProbeCrashed(f"probe {key.probe} was cancelled (the run is stopping)") from None

    async def _run(self, key: ProbeKey, request: ProbeRequest) -> Any:
        assert self._semaphore is not None
        async with self._semaphore:
            await self.lag.admit()
            self.stats.running += 1
            self.stats.peak_running = max(self.stats.peak_running, self.stats.running)
            self.lag.wake()
            ctx: ProbeContext[Any] = ProbeContext(
                key=key,
                env=request.env,
                target=request.target,
                item=request.item,
                timeout=request.timeout,
                engine=self,
                _debt0=self.lag.debt(),
            )
            self._running[key] = ctx
            wall_start = time.time()
            try:
                return await self._bounded(ctx, request)
            except CouldNotVerify as exc:
                _locate(exc, ctx)
                raise
            except OpsverifyError:
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise _locate(ProbeCrashed(f"{key.probe} probe failed: {one_line(exc)}"), ctx) from exc
            finally:
                self.timings[key] = (wall_start, time.time())
                self._running.pop(key, None)
                self.stats.running -= 1
                self.stats.finished += 1
                ctx.phase = f"finished after {time.monotonic() - ctx.started:.3f} s"

    async def _bounded(self, ctx: ProbeContext[Any], request: ProbeRequest) -> Any:
        """Run the probe until it ends or its lag-adjusted deadline (plus grace) passes."""
        task = asyncio.ensure_future(request.fn(ctx))
        try:
            while True:
                wait = ctx.timeout if ctx.held else min(ctx.remaining() + GRACE_S, ctx.hard_remaining())
                if wait > 0:
                    done, _ = await asyncio.wait({task}, timeout=wait)
                    if done:
                        return task.result()
                    continue  # the deadline may have moved on (the loop lagged): look again
                task.cancel()
                task.add_done_callback(_discard)
                lag = ctx.checker_lag()
                if ctx.hard_remaining() <= 0 and ctx.remaining() + GRACE_S > 0:
                    raise CheckerOverloaded(
                        f"the checker was overloaded: its event loop ran {lag:.1f} s late during the "
                        f"{time.monotonic() - ctx.started:.1f} s this probe waited ({ctx.phase}); nothing is "
                        "known about the system — rerun with fewer probes at once (--probe-concurrency) "
                        "or on a less busy machine"
                    )
                note = f"; the checker's loop ran {lag:.1f} s late meanwhile, not counted" if lag >= 0.05 else ""
                raise ProbeTimeout(f"no answer within {request.timeout:g} s ({ctx.phase}{note})")
        except asyncio.CancelledError:
            task.cancel()
            raise


def _locate(exc: CouldNotVerify, ctx: ProbeContext[Any]) -> CouldNotVerify:
    """Give ``exc`` the address and the phase the probe left out: its target's address, its ``ctx.phase``."""
    if exc.where is None:
        from opsverify.visibility import address_of

        exc.where = address_of(ctx.target) or str(ctx.key)
    if exc.phase is None:
        exc.phase = ctx.phase
    return exc


def _discard(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


def translate_os_error(exc: BaseException, where: str) -> CouldNotVerify:
    """A short :class:`~opsverify.errors.Unreachable` for a socket-level failure at ``where``."""
    from opsverify.errors import Unreachable

    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return Unreachable(f"{where}: {reason}")
