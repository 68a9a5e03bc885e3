"""Consumer trends over an analysis window (Burrow's rules, :mod:`opsverify.trends`).

Against real brokers — tansu for Kafka, nats-server for JetStream — while a producer writes during
the window: a consumer that stopped committing fails as stalled with its lag under the threshold,
one that keeps up passes, one that falls further behind in every sample fails as lag growing, and
one that stopped committing mid-window fails once the offset stood still longer than its limit.
The time limit's boundary (exactly at the limit, one millisecond past) is proved on the judging
function with observations at chosen times: a broker's timing cannot be placed to the millisecond.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from opsverify_sandbox.servers.kafka import client_config, create_topic, start_kafka
from opsverify_sandbox.servers.nats import start_nats
from opsverify.trends import Observation, judge_partition
from tests.harness import ROOT, SuiteRun, write_env

KAFKA_TREND = "test_consumer_group_keeps_up_over_the_window"
KAFKA_LAG = "test_consumer_group_lag_within_threshold"
NATS_TREND = "test_consumer_keeps_up_over_the_window"
NATS_PENDING = "test_consumer_pending_within_limit"


# -- the judging function: the time limit exactly at and one step past ------------------------------
def _seen(*points: tuple[float, int, int]) -> list[Observation]:
    return [Observation(at, committed, lag) for at, committed, lag in points]


def test_an_offset_unchanged_for_exactly_the_limit_passes_and_one_millisecond_more_fails() -> None:
    # committed 10 -> 12 (moving), then 12 for 3.000 s with lag > 0 and the lag not growing every time
    at_limit = _seen((0.0, 10, 4), (1.0, 12, 3), (2.5, 12, 5), (4.0, 12, 6))
    assert judge_partition("t[0]", at_limit, "committed offset", 3.0) is None
    past = _seen((0.0, 10, 4), (1.0, 12, 3), (2.5, 12, 5), (4.001, 12, 6))
    finding = judge_partition("t[0]", past, "committed offset", 3.0)
    assert finding is not None and finding.rule == "no commit"
    assert finding.text == ("t[0] no commit for 3.001 s (more than 3 s): committed offset 10 → 12 → 12 → 12, "
                            "lag 4 → 3 → 5 → 6")
    assert judge_partition("t[0]", past, "committed offset", None) is None  # no limit set: not judged


def test_the_judging_rules_in_order() -> None:
    stalled = _seen((0.0, 5, 1), (1.0, 5, 1))
    assert judge_partition("p", stalled, "ack floor", None).rule == "stalled"  # type: ignore[union-attr]
    caught_up_once = _seen((0.0, 5, 3), (1.0, 5, 0), (2.0, 5, 4))
    assert judge_partition("p", caught_up_once, "ack floor", 0.5) is None
    growing = _seen((0.0, 5, 1), (1.0, 6, 2), (2.0, 7, 3))
    assert judge_partition("p", growing, "ack floor", None).rule == "lag growing"  # type: ignore[union-attr]
    # two samples cannot show growth (one rise is noise); they do show a stall
    assert judge_partition("p", growing[:2], "ack floor", None) is None
    not_every_time = _seen((0.0, 5, 1), (1.0, 6, 3), (2.0, 7, 3))
    assert judge_partition("p", not_every_time, "ack floor", None) is None


# -- a run whose output is read while it runs -----------------------------------------------------------
def _run_streaming(tmp: Path, env: dict[str, Any], *args: str, paths: list[str],
                   on_line: Callable[[str], None] = lambda line: None, timeout: float = 180) -> SuiteRun:
    """Run the checks as :func:`tests.harness.run_checks` does, calling ``on_line`` with each output line."""
    reports = tmp / "reports"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}",
            f"--reports-dir={reports}", f"--env-file={write_env(tmp, env)}", *paths, *args]
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    proc = subprocess.Popen(argv, cwd=ROOT, env={**environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    timer = threading.Timer(timeout, lambda: proc.send_signal(signal.SIGKILL))
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            on_line(line)
        proc.wait()
    finally:
        timer.cancel()
    return SuiteRun.of(subprocess.CompletedProcess(argv, proc.returncode, "".join(lines), ""), reports)


# -- Kafka (tansu) ------------------------------------------------------------------------------------
class KafkaTraffic:
    """A producer writing one record every 0.2 s and four consumer groups committing (or not) after it.

    - ``keeper`` commits the high watermark after every record (lag 0);
    - ``stalled`` committed 5 once, 10 records in, and never again;
    - ``behind`` commits half the high watermark (moving, but its lag grows);
    - ``quits`` commits 3 behind until :meth:`quit` is called, then never again.
    """

    GROUPS = ("keeper", "stalled", "behind", "quits")

    def __init__(self, bootstrap: str, topic: str, prefix: str) -> None:
        self.bootstrap, self.topic, self.prefix = bootstrap, topic, prefix
        self.stop, self.quit = threading.Event(), threading.Event()
        self.high = 0
        self.errors: list[str] = []
        self._producer = Producer(client_config(bootstrap, **{"linger.ms": 0}))
        self._groups = {g: Consumer(client_config(bootstrap, **{"group.id": self.group(g), "enable.auto.commit": False}))
                        for g in self.GROUPS}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def group(self, short: str) -> str:
        return f"{self.prefix}{short}"

    def _produce(self, n: int) -> None:
        for _ in range(n):
            self._producer.produce(self.topic, value=b"x", partition=0)
            self._producer.flush(5)
            self.high += 1

    def _commit(self, short: str, offset: int) -> None:
        self._groups[short].commit(offsets=[TopicPartition(self.topic, 0, offset)], asynchronous=False)

    def start(self) -> KafkaTraffic:
        self._produce(10)
        for short in self.GROUPS:
            self._commit(short, 5)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self.stop.wait(0.2):
                self._produce(1)
                self._commit("keeper", self.high)
                self._commit("behind", self.high // 2)
                if not self.quit.is_set():
                    self._commit("quits", self.high - 3)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(exc))

    def close(self) -> None:
        self.stop.set()
        self._thread.join(10)
        for consumer in self._groups.values():
            consumer.close()


@pytest.fixture(scope="module")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_kafka(tmp_path_factory.mktemp("kafka-trends")) as server:
        yield server.bootstrap


def test_kafka_groups_are_judged_on_their_trend_over_the_window(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"ovt-{uuid.uuid4().hex[:6]}-"
    topic = f"{prefix}events"
    create_topic(kafka_bootstrap, topic, 1)
    traffic = KafkaTraffic(kafka_bootstrap, topic, prefix).start()

    def quit_after_sample_2(line: str) -> None:
        if "analysis window: sample 2 of" in line:
            traffic.quit.set()

    groups = [{"name": traffic.group(g), "max_lag": {"warn": 500, "critical": 1000}} for g in traffic.GROUPS]
    groups[3]["max_commit_age_s"] = 2
    env = {"kafka": [{"name": "events", "bootstrap": kafka_bootstrap, "max_commit_age_s": 30, "groups": groups}]}
    try:
        run = _run_streaming(tmp_path, env, "--samples", "6", "--interval", "1s", "-k", "group",
                             paths=["checks/test_kafka.py"], on_line=quit_after_sample_2)
    finally:
        traffic.close()
    assert not traffic.errors, traffic.errors
    assert run.ret == 1, run.stdout

    def record(short: str, check: str = KAFKA_TREND) -> dict[str, Any]:
        return run.record(check, "events", item=traffic.group(short))

    assert record("keeper")["outcome"] == "passed", record("keeper")["message"]
    assert record("keeper")["window"]["samples"] == 6
    # the stalled group is under its lag threshold (the snapshot check passes) and fails on its trend
    assert record("stalled", KAFKA_LAG)["outcome"] == "passed"
    stalled = record("stalled")
    assert stalled["outcome"] == "failed", stalled["message"]
    assert f"{topic}[0] stalled: committed offset 5 unchanged across 6 samples over" in stalled["message"]
    assert "while the lag was " in stalled["message"]
    behind = record("behind")
    assert behind["outcome"] == "failed" and f"{topic}[0] lag growing in every sample: " \
        in behind["message"], behind["message"]
    quits = record("quits")
    assert quits["outcome"] == "failed" and f"{topic}[0] no commit for " in quits["message"], quits["message"]
    assert "(more than 2 s)" in quits["message"]
    # every sample is kept: sample 1 could not judge a trend, the others judged the series so far
    outcomes = [o["outcome"] for o in stalled["window"]["outcomes"]]
    assert outcomes[0] == "skipped" and outcomes[-1] == "failed", outcomes


def test_trends_are_judged_on_the_xdist_workers_too(kafka_bootstrap: str, run_suite) -> None:
    prefix = f"ovt-{uuid.uuid4().hex[:6]}-"
    topic = f"{prefix}events"
    create_topic(kafka_bootstrap, topic, 1)
    traffic = KafkaTraffic(kafka_bootstrap, topic, prefix).start()
    groups = [{"name": traffic.group(g)} for g in ("keeper", "stalled")]
    # two targets on the same cluster: xdist gives each worker its own
    env = {"kafka": [{"name": "one", "bootstrap": kafka_bootstrap, "groups": groups[:1]},
                     {"name": "two", "bootstrap": kafka_bootstrap, "groups": groups[1:]}]}
    try:
        run = run_suite(env, "--samples", "3", "--interval", "1s", "-k", "over_the_window", "-n", "2",
                        paths=["checks/test_kafka.py"])
    finally:
        traffic.close()
    keeper = run.record(KAFKA_TREND, "one", item=traffic.group("keeper"))
    stalled = run.record(KAFKA_TREND, "two", item=traffic.group("stalled"))
    assert keeper["outcome"] == "passed" and keeper["window"]["samples"] == 3, run.stdout
    assert stalled["outcome"] == "failed" and "stalled: committed offset 5 unchanged across 3 samples" \
        in stalled["message"], stalled["message"]


def test_a_trend_check_on_a_single_snapshot_is_skipped_not_passed(kafka_bootstrap: str, run_suite) -> None:
    env = {"kafka": [{"name": "events", "bootstrap": kafka_bootstrap, "groups": [{"name": "ovt-any"}]}]}
    run = run_suite(env, "-k", "over_the_window", paths=["checks/test_kafka.py"])
    record = run.record(KAFKA_TREND, "events", item="ovt-any")
    assert record["outcome"] == "skipped" and "needs --samples >= 2" in record["message"], run.stdout


def test_a_gate_asking_for_a_trend_holds_a_single_snapshot_and_promotes_a_window(kafka_bootstrap: str, run_suite,
                                                                                 tmp_path: Path) -> None:
    from tests.test_gate import gate, write_policy

    prefix = f"ovt-{uuid.uuid4().hex[:6]}-"
    topic = f"{prefix}events"
    create_topic(kafka_bootstrap, topic, 1)
    traffic = KafkaTraffic(kafka_bootstrap, topic, prefix).start()
    env = {"tier": "staging", "kafka": [{"name": "events", "bootstrap": kafka_bootstrap,
                                         "groups": [{"name": traffic.group("keeper")}]}]}
    policy = write_policy(tmp_path, items=[{"name": "Consumers keep up", "checks": [KAFKA_TREND]}])
    try:
        snapshot = run_suite(env, "-m", "predeploy", "-k", "over_the_window", paths=["checks/test_kafka.py"],
                             env_name="staging")
        window = run_suite(env, "-m", "predeploy", "-k", "over_the_window", "--samples", "3", "--interval", "500ms",
                           paths=["checks/test_kafka.py"], env_name="staging")
    finally:
        traffic.close()
    held = gate(tmp_path, policy, snapshot.reports / "summary.json")
    assert held.ret == 1 and "only skipped: needs --samples >= 2" in held.stdout, held.stdout
    promoted = gate(tmp_path, policy, window.reports / "summary.json")
    assert promoted.ret == 0, promoted.stdout + promoted.stderr


def test_a_group_with_no_commits_in_any_sample_fails_its_trend(kafka_bootstrap: str, run_suite) -> None:
    group = f"ovt-never-{uuid.uuid4().hex[:6]}"
    env = {"kafka": [{"name": "events", "bootstrap": kafka_bootstrap, "groups": [{"name": group}]}]}
    run = run_suite(env, "-k", "over_the_window", "--samples", "2", "--interval", "300ms", paths=["checks/test_kafka.py"])
    record = run.record(KAFKA_TREND, "events", item=group)
    assert record["outcome"] == "failed", run.stdout
    assert f"expected the committed offset of consumer group {group} seen in at least 2 samples of the window, " \
        "got no committed offset seen in any of 2 samples" in record["message"]


# -- JetStream (nats-server) ---------------------------------------------------------------------------
class JetStreamTraffic:
    """Publishes 2 messages to stream ORDERS every 0.2 s. Consumer ``keeper`` fetches and acks
    everything; ``stalled`` got 2 messages once and never acknowledged them; ``behind`` acks 1 of
    every 2 (its ack floor moves, its backlog grows); ``quits`` acks as ``behind`` does until
    :attr:`quit` is set, then never again."""

    CONSUMERS = ("keeper", "stalled", "behind", "quits")

    def __init__(self, server: Any) -> None:
        self.server = server
        self.stop, self.quit, self.ready = threading.Event(), threading.Event(), threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        try:
            nc = await nats.connect(**self.server.connect_options())
            js = nc.jetstream(timeout=2)
            await js.add_stream(name="ORDERS", subjects=["orders.>"], storage="file")
            for name in self.CONSUMERS:
                await js.add_consumer("ORDERS", durable_name=name, ack_policy="explicit")
            for number in range(5):
                await js.publish(f"orders.{number}", b"order")
            subs = {name: await js.pull_subscribe_bind(name, stream="ORDERS") for name in self.CONSUMERS}
            await subs["stalled"].fetch(2, timeout=2)  # delivered, never acknowledged
            self.ready.set()
            number = 5
            while not self.stop.is_set():
                for _ in range(2):
                    await js.publish(f"orders.{number}", b"order")
                    number += 1
                for message in await subs["keeper"].fetch(100, timeout=0.5):
                    await message.ack_sync()
                for name in ("behind", "quits"):
                    if name == "quits" and self.quit.is_set():
                        continue
                    for message in await subs[name].fetch(1, timeout=0.5):
                        await message.ack_sync()
                await asyncio.sleep(0.2)
            await nc.close()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(exc))
            self.ready.set()

    def start(self) -> JetStreamTraffic:
        self._thread.start()
        assert self.ready.wait(20) and not self.errors, self.errors
        return self

    def close(self) -> None:
        self.stop.set()
        self._thread.join(10)


def test_jetstream_consumers_are_judged_on_their_trend_over_the_window(tmp_path: Path) -> None:
    with start_nats(tmp_path / "nats", jetstream=True) as server:
        traffic = JetStreamTraffic(server).start()

        def quit_after_sample_2(line: str) -> None:
            if "analysis window: sample 2 of" in line:
                traffic.quit.set()

        consumers = [{"stream": "ORDERS", "consumer": c, "max_pending": 1000} for c in traffic.CONSUMERS]
        consumers[3]["max_ack_age_s"] = 2
        env = {"nats": [{"name": "bus", "url": server.url, "jetstream": True, "consumers": consumers}]}
        try:
            run = _run_streaming(tmp_path, env, "--samples", "6", "--interval", "1s", "-k", "consumer",
                                 paths=["checks/test_nats.py"], on_line=quit_after_sample_2)
        finally:
            traffic.close()
    assert not traffic.errors, traffic.errors

    def record(name: str, check: str = NATS_TREND) -> dict[str, Any]:
        return run.record(check, "bus", item=f"ORDERS/{name}")

    keeper = record("keeper")
    assert keeper["outcome"] == "passed" and keeper["window"]["samples"] == 6, keeper["message"]
    assert record("stalled", NATS_PENDING)["outcome"] == "passed"  # under its threshold
    stalled = record("stalled")
    assert stalled["outcome"] == "failed", stalled["message"]
    assert "ORDERS/stalled stalled: ack floor 0 unchanged across 6 samples over" in stalled["message"]
    behind = record("behind")
    assert behind["outcome"] == "failed", behind["message"]
    assert "ORDERS/behind lag growing in every sample: " in behind["message"] and "(ack floor " in behind["message"]
    quits = record("quits")
    assert quits["outcome"] == "failed" and "ORDERS/quits no ack for " in quits["message"], quits["message"]
    assert "(more than 2 s): ack floor " in quits["message"]


# -- the new keys are validated ---------------------------------------------------------------------------
@pytest.mark.parametrize(("sections", "problem"), [
    ({"kafka": [{"name": "c1", "bootstrap": "k:9092", "groups": [{"name": "g", "max_commit_age_s": 0}]}]},
     "kafka[0].groups[0].max_commit_age_s"),
    ({"kafka": [{"name": "c1", "bootstrap": "k:9092", "max_commit_age_s": float("nan")}]},
     "kafka[0].max_commit_age_s (target 'c1')"),
    ({"kafka": [{"name": "c1", "bootstrap": "k:9092", "max_commit_age_s": float("inf")}]},
     "kafka[0].max_commit_age_s (target 'c1')"),
    ({"nats": [{"name": "n1", "url": "nats://127.0.0.1:4222",
                "consumers": [{"stream": "S", "consumer": "c", "max_ack_age_s": -1}]}]},
     "nats[0].consumers[0].max_ack_age_s (target 'n1')"),
    ({"nats": [{"name": "n1", "url": "nats://127.0.0.1:4222",
                "consumers": [{"stream": "S", "consumer": "c", "max_ack_age_s": 8 * 86400}]}]},
     "nats[0].consumers[0].max_ack_age_s (target 'n1')"),
])
def test_a_bad_trend_limit_names_its_key(tmp_path: Path, sections: dict[str, Any], problem: str) -> None:
    from opsverify.config.model import load_environment
    from opsverify.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_environment(write_env(tmp_path, sections))
    assert problem in str(info.value), str(info.value)


def test_a_group_inherits_the_targets_commit_age_and_a_bad_one_is_a_one_line_usage_error(tmp_path: Path,
                                                                                        run_suite) -> None:
    from opsverify.config.model import load_environment

    env = load_environment(write_env(tmp_path, {"kafka": [{"name": "c1", "bootstrap": "k:9092", "max_commit_age_s": 60,
                                                           "groups": [{"name": "a"}, {"name": "b", "max_commit_age_s": 5}]}]}))
    assert [g.max_commit_age_s for g in env.kafka[0].groups] == [60, 5]
    run = run_suite({"kafka": [{"name": "c1", "bootstrap": "127.0.0.1:9", "max_commit_age_s": "soon"}]},
                    paths=["checks/test_kafka.py"])
    assert run.ret == 4 and "kafka[0].max_commit_age_s" in run.stderr and "Traceback" not in run.stderr, run.stderr
