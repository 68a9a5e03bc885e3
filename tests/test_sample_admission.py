"""Latency samples start only while the engine's loop has CPU to spare.

A sample is billed every loop turn it spans, with whatever CPU work the other samples do in that
turn. Samples that are nearly all CPU (instant endpoints) must therefore not overlap, while samples
that mostly wait on the network (slow endpoints) still do, or a run of slow endpoints would take
their sum. These tests drive the engine's own sampler with exchanges that spin the CPU or wait,
counting how many are in flight at once (no service is involved: the admission is the engine's).
"""

from __future__ import annotations

import asyncio
import time

from opsverify.engine import Engine, ProbeKey, ProbeRequest
from opsverify.net.lag import LoopLag
from opsverify.net.sampling import SPARE_BUSY, Timed, sample_latency


def test_the_loop_reads_as_busy_while_it_spins_and_as_spare_while_it_waits() -> None:
    async def main() -> tuple[float, float]:
        lag = LoopLag(in_flight=lambda: 1)
        lag.start(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        idle = lag.busy()
        end = time.monotonic() + 0.1
        while time.monotonic() < end:  # CPU work in short slices, the monitor ticking between them
            spin = time.monotonic() + 0.003
            while time.monotonic() < spin:
                pass
            await asyncio.sleep(0)
        busy = lag.busy()
        lag.stop()
        return idle, busy

    idle, busy = asyncio.run(main())
    assert idle <= SPARE_BUSY < busy, (idle, busy)


def _peak_samples_in_flight(take_ms: float, spins: bool, targets: int = 8) -> int:
    engine = Engine(concurrency=targets)
    state = {"now": 0, "peak": 0}

    async def take() -> Timed:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        start = time.monotonic()
        try:
            if spins:
                while time.monotonic() < start + take_ms / 1000:
                    pass
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(take_ms / 1000)
        finally:
            state["now"] -= 1
        return Timed(start, time.monotonic())

    async def probe(ctx):  # type: ignore[no-untyped-def]
        return await sample_latency(ctx, take, host=f"127.0.0.1:{ctx.key.target}", what="GET /", count=2)

    try:
        futures = [engine.submit(ProbeKey("latency", "e", f"{i}"), ProbeRequest(fn=probe, env=None, target=None,
                                                                              item=None, timeout=30))
                   for i in range(targets)]
        for future in futures:
            future.result(60)
    finally:
        engine.shutdown()
    return state["peak"]


def test_samples_that_are_all_cpu_are_taken_one_at_a_time() -> None:
    assert _peak_samples_in_flight(take_ms=4, spins=True) == 1


def test_samples_that_wait_on_the_network_still_overlap() -> None:
    assert _peak_samples_in_flight(take_ms=150, spins=False) >= 4
