"""The probe engine: concurrency, de-duplication, bounded stalls, no probing of what will not run."""

from __future__ import annotations

import asyncio
import time

import pytest

from opsverify.engine import HARD_EXTRA_S, HARD_FACTOR, Engine, ProbeKey, ProbeRequest
from opsverify.errors import ProbeCrashed, ProbeTimeout, Unreachable

STATUS = "test_endpoint_returns_expected_status"
LATENCY = "test_endpoint_answers_within_latency_budget"
REDIRECT = "test_endpoint_does_not_redirect_unexpectedly"


def _request(fn, timeout=1.0):
    return ProbeRequest(fn=fn, env=None, target=None, item=None, timeout=timeout)


def test_engine_runs_probes_concurrently_up_to_its_bound():
    engine = Engine(concurrency=4)

    async def probe(ctx):
        await asyncio.sleep(0.05)
        return ctx.key.target

    try:
        futures = [engine.submit(ProbeKey("p", "e", f"t{i}"), _request(probe)) for i in range(12)]
        assert sorted(f.result(5) for f in futures) == sorted(f"t{i}" for i in range(12))
        assert engine.stats.peak_running == 4
        assert engine.stats.started == 12
    finally:
        engine.shutdown()


def test_identical_probes_run_once_and_share_the_result():
    engine = Engine()
    calls = []

    async def probe(ctx):
        calls.append(ctx.key)
        await asyncio.sleep(0.01)
        return object()

    try:
        key = ProbeKey("http_response", "staging", "gateway")
        results = {id(engine.result(key, _request(probe))) for _ in range(5)}
        assert len(calls) == 1 and len(results) == 1
        assert engine.stats.deduplicated >= 4
    finally:
        engine.shutdown()


def test_a_probe_that_never_answers_is_a_timeout_error_naming_its_phase():
    engine = Engine()

    async def stalls(ctx):
        ctx.phase = "waiting for the TLS handshake"
        await asyncio.Event().wait()

    try:
        with pytest.raises(ProbeTimeout, match=r"no answer within 0.3 s \(waiting for the TLS handshake[);]"):
            engine.result(ProbeKey("p", "e", "t"), _request(stalls, timeout=0.3))
    finally:
        engine.shutdown()


def test_unexpected_exceptions_become_one_line_probe_errors_and_ours_pass_through():
    engine = Engine()

    async def broken(ctx):
        raise KeyError("surprise\nsecond line")

    async def refused(ctx):
        raise Unreachable("cannot connect to db:5432: connection refused")

    try:
        with pytest.raises(ProbeCrashed) as crashed:
            engine.result(ProbeKey("broken", "e", "t"), _request(broken))
        assert "\n" not in str(crashed.value) and "KeyError" in str(crashed.value)
        with pytest.raises(Unreachable, match="connection refused"):
            engine.result(ProbeKey("refused", "e", "t"), _request(refused))
    finally:
        engine.shutdown()


def test_dependent_probes_share_the_dependency():
    engine = Engine()
    calls = []

    async def base(ctx):
        calls.append("base")
        return 41

    async def derived(ctx):
        return await ctx.depend("base") + 1

    engine.request_factory = lambda key: _request(base if key.probe == "base" else derived)
    try:
        assert engine.result(ProbeKey("derived", "e", "t")) == 42
        assert engine.result(ProbeKey("base", "e", "t")) == 41
        assert calls == ["base"]
    finally:
        engine.shutdown()


# -- through pytest, against a real server that records what it is asked --------------------------------
def _targets(recorder, n, **extra):
    return {"http": [{"name": f"t{i}", "url": recorder.url(f"/t{i}"), **extra} for i in range(n)]}


def test_checks_probe_concurrently_and_share_one_request_per_target(run_suite, fresh_recorder):
    run = run_suite(_targets(fresh_recorder, 20), "-k", f"{STATUS} or {REDIRECT}")
    assert run.ret == 0, run.stdout
    stats = fresh_recorder.stats()
    assert stats["count"] == 20, "the checks of a target must share one request"
    assert stats["peak"] >= 15, f"probes did not run concurrently (peak {stats['peak']})"


def test_latency_samples_to_one_host_are_few_at_a_time_and_judged_on_their_median(run_suite, fresh_recorder):
    """Twelve targets behind one host: their latency samples reach it at most 2 at a time (the
    checker must not load the service it measures), 3 samples each, every one recorded."""
    run = run_suite(_targets(fresh_recorder, 12), "-k", LATENCY, "--latency-per-host", "2")
    assert run.ret == 0, run.stdout
    stats = fresh_recorder.stats()
    assert stats["peak"] <= 2, f"latency samples to one host were not bounded (peak {stats['peak']})"
    assert stats["count"] >= 36
    for record in run.records:
        (measured,) = record["measured"]
        detail = measured["detail"]
        assert detail["trusted"] <= 3 and len(detail["samples_ms"]) >= 3, detail
        assert 195 <= measured["value"] < 400, measured  # the recorder answers after 200 ms
        assert set(detail["phases"]) == {"connect_ms", "tls_ms", "processing_ms", "transfer_ms"}
        if detail["trusted"]:  # on a quiet loop the phases are exact; otherwise a boundary may sit late by the lag
            assert detail["phases"]["processing_ms"] >= 195, detail
        else:  # no sample on a quiet loop (a loaded machine): passed on the upper bound
            assert detail["bound"] == "upper", detail


def test_probe_concurrency_one_is_sequential(run_suite, fresh_recorder):
    run = run_suite(_targets(fresh_recorder, 5), "-k", STATUS, "--probe-concurrency", "1")
    assert run.ret == 0
    assert fresh_recorder.stats()["peak"] == 1


def test_deselected_items_are_never_probed(run_suite, fresh_recorder):
    run = run_suite(_targets(fresh_recorder, 6), "-k", f"{STATUS} and t3")
    assert run.ret == 0
    assert fresh_recorder.stats()["paths"] == ["/t3"]


def test_skipped_items_are_never_probed(run_suite, fresh_recorder, tmp_path):
    check = tmp_path / "test_writes.py"
    check.write_text(
        "import pytest\n\n@pytest.mark.mutating\n@pytest.mark.runbook('platform#http-status')\n"
        "def test_writes(http_response):\n    assert http_response.status == 200\n"
    )
    run = run_suite({"tier": "production", **_targets(fresh_recorder, 3)}, "-p", "opsverify.plugin",
                    "-p", "fixtures.http", paths=[str(check)])
    assert run.ret == 0 and run.summary["totals"]["skipped"] == 3
    assert fresh_recorder.stats()["count"] == 0


def test_a_stalled_target_costs_its_timeout_once_not_once_per_check(run_suite, demo):
    env = {"http": [{"name": "stalled", "url": f"http://127.0.0.1:{demo.blackhole}/", "timeout_s": 1}]}
    run = run_suite(env)
    stalled = [r for r in run.records if r["target"] == "stalled" and r["outcome"] == "error"]
    assert len(stalled) == 3
    assert sum(r["duration_s"] for r in stalled) < 2.5, [r["duration_s"] for r in stalled]


def test_results_are_identical_under_xdist(run_suite, fresh_recorder, demo):
    env = {"http": [*_targets(fresh_recorder, 6)["http"],
                    {"name": "broken", "url": demo.url("/status/500")},
                    {"name": "refused", "url": f"http://127.0.0.1:{demo.closed}/"}]}
    single = run_suite(env)
    parallel = run_suite(env, "-n", "2")
    assert single.outcomes() == parallel.outcomes()
    assert {r["message"] for r in single.records} == {r["message"] for r in parallel.records}
    fresh_recorder.reset()
    run_suite(env, "-n", "2", "-k", f"not {LATENCY}")
    assert fresh_recorder.stats()["count"] == 6, "each worker probes only its own items, once"


def test_xdist_workers_probe_all_their_targets_concurrently(run_suite, fresh_recorder):
    """Each worker is dealt its targets up front and prefetches them all: with one target handed
    out per finished check, ``-n 2`` probed two at a time (peak 2) and was as slow as sequential."""
    run = run_suite(_targets(fresh_recorder, 30), "-k", STATUS, "-n", "2")
    assert run.ret == 0, run.stdout
    stats = fresh_recorder.stats()
    assert stats["count"] == 30
    assert stats["peak"] >= 10, f"xdist workers did not probe concurrently (peak {stats['peak']})"


def test_exitfirst_stops_and_cancels_outstanding_probes(run_suite, demo, fresh_recorder):
    env = {"http": [{"name": "a-broken", "url": demo.url("/status/500")},
                    *_targets(fresh_recorder, 5)["http"]]}
    run = run_suite(env, "-x", "-k", STATUS)
    assert run.ret == 1
    assert "stopping after 1 failures" in run.stdout
    assert run.summary["totals"]["failed"] == 1


def test_a_dependency_runs_even_with_one_slot_and_survives_a_dependent_timeout():
    engine = Engine(concurrency=1)
    runs = []

    async def health(ctx):
        runs.append("health")
        await asyncio.sleep(1.0)  # longer than the impatient probe's timeout + the engine's grace
        return "ok"

    async def impatient(ctx):
        return await ctx.depend("health")

    async def patient(ctx):
        return await ctx.depend("health")

    def factory(key):
        fn = {"health": health, "impatient": impatient, "patient": patient}[key.probe]
        return _request(fn, timeout=0.05 if key.probe == "impatient" else 3.0)

    engine.request_factory = factory
    try:
        with pytest.raises(ProbeTimeout):
            engine.result(ProbeKey("impatient", "e", "t"))
        assert engine.result(ProbeKey("patient", "e", "t")) == "ok"
        assert runs == ["health"]
    finally:
        engine.shutdown()


def test_time_the_loop_spent_on_other_probes_is_not_billed_to_a_probe_timeout():
    """One probe holds the engine's loop for 2.5 s (CPU work of the checker's own); another, waiting
    0.8 s on its peer with a 1 s timeout, is not timed out for it: the loop's lag moves its deadline."""
    engine = Engine()

    async def hog(ctx):
        await asyncio.sleep(0.05)
        time.sleep(2.5)  # blocks the loop, as an import or a big parse would
        return "hogged"

    async def patient(ctx):
        await asyncio.sleep(0.8)
        return ctx.checker_lag()

    try:
        hogging = engine.submit(ProbeKey("hog", "e", "t"), _request(hog, timeout=10))
        waited = engine.submit(ProbeKey("patient", "e", "t"), _request(patient, timeout=1.0))
        assert waited.result(20) >= 2.0, "the loop's lag was not measured"
        assert hogging.result(20) == "hogged"
    finally:
        engine.shutdown()


def test_a_probe_stalled_by_its_peer_still_times_out_on_time_while_the_loop_is_quiet():
    engine = Engine()

    async def stalls(ctx):
        await asyncio.Event().wait()

    try:
        started = time.monotonic()
        with pytest.raises(ProbeTimeout, match=r"no answer within 0.5 s"):
            engine.result(ProbeKey("p", "e", "t"), _request(stalls, timeout=0.5))
        assert time.monotonic() - started < 0.5 * HARD_FACTOR + HARD_EXTRA_S  # however busy the machine
    finally:
        engine.shutdown()


def test_a_latency_sample_taken_while_the_probe_has_handed_back_its_slot_still_sees_the_loop_lag():
    """While a probe samples it holds no concurrency slot (the wave runs on), so the engine may have
    no probe "running" at all; the lag monitor must tick anyway, or a sample the checker's own work
    stretched would be trusted and billed to the service."""
    from opsverify.net.sampling import Timed, sample_latency

    engine = Engine(concurrency=1)

    async def take() -> Timed:
        start = time.monotonic()
        await asyncio.sleep(0.005)  # on the wire
        time.sleep(0.04)  # the checker's own work holding the loop meanwhile
        await asyncio.sleep(0.005)
        return Timed(start, time.monotonic())

    async def probe(ctx):
        reading = await sample_latency(ctx, take, host="127.0.0.1:1", what="GET /", count=1)
        return reading.samples

    try:
        samples = engine.result(ProbeKey("p", "e", "t"), _request(probe, timeout=5))
        assert samples and all(s.lag_ms >= 30 and not s.trusted for s in samples), samples
    finally:
        engine.shutdown()


def test_the_loop_lag_monitor_sees_a_blocked_loop_in_the_window_of_a_sample():
    from opsverify.net.lag import LoopLag

    async def main():
        lag = LoopLag(in_flight=lambda: 1)
        lag.start(asyncio.get_running_loop())
        await asyncio.sleep(0.02)
        t0 = time.monotonic()
        time.sleep(0.05)  # the checker's own work holding the loop while a sample is on the wire
        t1 = time.monotonic()
        await lag.covered(t1)
        seen, debt = lag.worst_between(t0, t1), lag.debt()
        lag.stop()
        return seen, debt

    seen, debt = asyncio.run(main())
    assert seen >= 0.04 and debt >= 0.04, (seen, debt)


def test_the_loop_lag_monitor_counts_a_hold_that_begins_as_it_is_woken():
    """The monitor sleeps while nothing is in flight. A sample that wakes it and then holds the loop
    at once (an instant answer parsed in one go) must still read as lagging, both right away, to the
    sampler deciding whether another sample may start beside it, and in the sample's own window;
    were the next tick counted from when the monitor next runs, the hold would be invisible."""
    from opsverify.net.lag import LoopLag

    async def main():
        lag = LoopLag(in_flight=lambda: 0)
        lag.start(asyncio.get_running_loop())
        await asyncio.sleep(0.02)  # the monitor is asleep: nothing in flight
        t0 = time.monotonic()
        with lag.watch():
            time.sleep(0.02)  # held from the moment it was woken
            t1, now = time.monotonic(), lag.current()
            await lag.covered(t1)
        seen = lag.worst_between(t0, t1)
        lag.stop()
        return now, seen

    now, seen = asyncio.run(main())
    assert now >= 0.015 and seen >= 0.015, (now, seen)


def test_a_wait_the_checker_rations_does_not_run_a_probes_timeout():
    """A latency sample waiting its turn on the wire (another sample holds the loop's spare CPU)
    waits on the checker, not on the peer: its timeout stands still meanwhile and runs on after."""
    engine = Engine(concurrency=1)

    async def probe(ctx):
        before = ctx.remaining()
        with ctx.paused():
            await asyncio.sleep(0.5)  # longer than the whole timeout
        return before, ctx.remaining()

    try:
        before, after = engine.result(ProbeKey("p", "e", "t"), _request(probe, timeout=0.3))
        assert 0 <= before - after < 0.05, (before, after)
    finally:
        engine.shutdown()
