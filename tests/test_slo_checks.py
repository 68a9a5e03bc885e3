"""SLO checks against a real Prometheus scraping the real SLO demo service, and against its /metrics.

One demo service and one Prometheus (1 s scrapes) serve the whole module. The demo service drives
itself with fast, healthy traffic to ``/jobs`` (and two chatty WebSocket sessions); the module then
sends known traffic once, one route per scenario, so every threshold passes and fails for real:

==============  =====================================================  ===========================
route           traffic                                                what it proves
==============  =====================================================  ===========================
/api/fast       40 quick answers, 2 pages (38 cache hits)              every SLO passes
/api/slow       10 answers taking 600 ms                               p95 > 400 ms
/api/sluggish   10 answers taking 210 ms                               p95 past warn, within crit
/api/flaky      50 answers, 5 of them HTTP 500                         error rate 10 % > 1 %
/api/cold       20 answers, every page new                             cache hit ratio 0 % < 40 %
/api/limited    40 concurrent answers for one client (limit 5/s)       most blocked with 429
/api/idle       none (series exist at 0)                               NaN is an error
==============  =====================================================  ===========================

Every route's series exist at 0 before Prometheus' first scrape, so ``rate()`` counts every request
and ratios are exact. One big run covers every pass/fail/error; config errors need runs of their own.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.prometheus import PrometheusServer, start_prometheus
from tests.harness import SuiteRun

ROUTES = ("/api/fast", "/api/slow", "/api/sluggish", "/api/flaky", "/api/cold", "/api/limited", "/api/idle")

UP = "test_prometheus_answers_queries"
TARGETS_UP = "test_scrape_targets_are_up"
LATENCY = "test_p95_latency_within_slo"
ERRORS = "test_error_rate_within_slo"
CACHE = "test_cache_hit_ratio_above_slo"
BLOCKS = "test_rate_limit_block_rate_within_slo"
GAUGE = "test_gauge_within_cap"
CUSTOM = "test_custom_query_within_threshold"
SCRAPABLE = "test_metrics_endpoint_is_scrapable"
S_LATENCY = "test_scraped_p95_latency_within_slo"
S_ERRORS = "test_scraped_error_rate_within_slo"
S_CACHE = "test_scraped_cache_hit_ratio_above_slo"
S_BLOCKS = "test_scraped_rate_limit_block_rate_within_slo"
S_GAUGE = "test_scraped_gauge_within_cap"
S_COUNTER = "test_scraped_counter_rate_within_threshold"


@dataclass
class SloLab:
    """The demo service, a Prometheus scraping it (and a dead target), after the known traffic."""

    demo_port: int
    closed: int
    prom: PrometheusServer

    @property
    def demo(self) -> str:
        return f"http://127.0.0.1:{self.demo_port}"


async def _send_known_traffic(base: str) -> int:
    """The traffic of the table in the module docstring; returns how many requests were answered."""
    async with aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(route: str, params: dict[str, Any]) -> int:
            async with session.get(route, params={k: str(v) for k, v in params.items()}) as answer:
                await answer.read()
                return answer.status

        async def burst(route: str, params: list[dict[str, Any]]) -> None:
            statuses = await asyncio.gather(*(one(route, p) for p in params))
            assert set(statuses) <= {200, 429, 500}, statuses

        await burst("/api/fast", [{"page": i % 2, "client": f"fast-{i}"} for i in range(40)])
        await burst("/api/slow", [{"page": i, "client": f"slow-{i}", "delay_ms": 600} for i in range(10)])
        await burst("/api/sluggish", [{"page": i, "client": f"slug-{i}", "delay_ms": 210} for i in range(10)])
        await burst("/api/flaky", [
            {"page": 0, "client": f"flaky-{i}", **({"status": 500} if i % 10 == 0 else {})} for i in range(50)
        ])
        await burst("/api/cold", [{"page": 1000 + i, "client": f"cold-{i}"} for i in range(20)])
        await burst("/api/limited", [{"page": 0, "client": "greedy"} for _ in range(40)])
    return 40 + 10 + 10 + 50 + 20 + 40


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SloLab]:
    tmp = tmp_path_factory.mktemp("slo")
    port, closed = free_port(), free_port()
    argv = [sys.executable, "-m", "opsverify_sandbox.slo_demo", "--port", str(port), "--load-rps", "20",
            "--ws-clients", "2", "--rate-limit", "5", "--cache-ttl", "300"]
    for route in ROUTES:
        argv += ["--route", route]
    demo = ManagedProcess.start(argv, log_path=tmp / "slo-demo.log", name="slo-demo")
    try:
        demo.wait_for_port("127.0.0.1", port)
        with start_prometheus(
            tmp / "prom", scrape_targets=[f"127.0.0.1:{port}", f"127.0.0.1:{closed}"], job="slo"
        ) as prom:
            # one scrape of every route's zeros first, so that rate() sees every request
            prom.wait_for_series('http_requests_total{route="/api/idle", status="200"}', timeout_s=20)
            total = asyncio.run(_send_known_traffic(f"http://127.0.0.1:{port}"))
            prom.wait_for_series(f'sum(http_requests_total{{route=~"/api/.+"}}) == {total}', timeout_s=10)
            yield SloLab(port, closed, prom)
    finally:
        demo.stop()


def _prometheus_targets(lab: SloLab) -> list[dict[str, Any]]:
    route = lambda r: f'route="{r}"'  # noqa: E731
    return [
        {"name": "good", "url": lab.prom.url, "selector": 'job="slo"',
         "up_selector": f'instance="127.0.0.1:{lab.demo_port}"',
         "latency": [
             {"name": "fast", "selector": route("/api/fast")},
             {"name": "slow", "selector": route("/api/slow")},
             {"name": "sluggish", "selector": route("/api/sluggish"), "max_ms": {"warn": 200, "critical": 400}},
             {"name": "idle", "selector": route("/api/idle")},
             {"name": "unknown", "histogram": "no_such_duration_seconds"},
         ],
         "error_rate": [{"name": "fast", "selector": route("/api/fast")},
                        {"name": "flaky", "selector": route("/api/flaky")}],
         "cache_hit_ratio": [{"name": "fast", "selector": 'cache="/api/fast"'},
                             {"name": "cold", "selector": 'cache="/api/cold"'}],
         "rate_limit_block_rate": [{"name": "fast", "selector": route("/api/fast")},
                                   {"name": "limited", "selector": route("/api/limited")}],
         "gauges": [{"name": "ws", "metric": "active_websocket_connections", "max": 10},
                    {"name": "ws-tight", "metric": "active_websocket_connections", "max": 1}],
         "queries": [
             {"name": "fast-rps", "query": 'sum(rate(http_requests_total{route="/api/fast"}[5m]))', "max": 1000,
              "unit": "/s"},
             {"name": "per-route", "query": 'sum by (route) (increase(http_requests_total{route=~"/api/(fast|flaky)"}[5m]))',
              "max": 45},
             {"name": "too-quiet", "query": 'sum(rate(http_requests_total{route="/api/fast"}[5m]))', "min": 1000,
              "unit": "/s"},
             {"name": "nan", "query": "vector(0) / vector(0)", "max": 1},
             {"name": "empty", "query": "sum(no_such_metric_total)", "max": 1},
             {"name": "rejected", "query": "rate(http_requests_total)", "max": 1},
         ]},
        {"name": "all-jobs", "url": lab.prom.url, "up_selector": 'job="slo"'},
        {"name": "refused", "url": f"http://127.0.0.1:{lab.closed}", "timeout_s": 2,
         "latency": [{"name": "jobs"}]},
        {"name": "not-prometheus", "url": lab.demo, "error_rate": [{"name": "jobs"}]},
    ]


def _metrics_targets(lab: SloLab) -> list[dict[str, Any]]:
    live = {"route": "/jobs"}
    return [
        {"name": "scrape", "url": f"{lab.demo}/metrics", "interval_s": 1, "timeout_s": 5,
         "latency": [
             {"name": "jobs", "labels": live},
             {"name": "fast", "labels": {"route": "/api/fast"}, "over": "lifetime"},
             {"name": "slow", "labels": {"route": "/api/slow"}, "over": "lifetime"},
             {"name": "fast-now", "labels": {"route": "/api/fast"}},
         ],
         "error_rate": [{"name": "jobs", "labels": live},
                        {"name": "flaky", "labels": {"route": "/api/flaky"}, "over": "lifetime"}],
         "cache_hit_ratio": [{"name": "jobs", "labels": {"cache": "/jobs"}},
                             {"name": "cold", "labels": {"cache": "/api/cold"}, "over": "lifetime"}],
         "rate_limit_block_rate": [{"name": "jobs", "labels": live},
                                   {"name": "limited", "labels": {"route": "/api/limited"}, "over": "lifetime"}],
         "gauges": [{"name": "ws", "metric": "active_websocket_connections", "max": 10},
                    {"name": "ws-tight", "metric": "active_websocket_connections", "max": 1}],
         "counters": [
             {"name": "messages", "metric": "websocket_messages_total", "min": 0.5},
             {"name": "internal-errors", "metric": "app_errors_total", "labels": {"type": "INTERNAL"}, "max": 0.5},
             {"name": "jobs-requests", "metric": "http_requests_total", "labels": live, "max": 1},
             {"name": "unknown", "metric": "no_such_events_total", "max": 1},
         ]},
        {"name": "scrape-refused", "url": f"http://127.0.0.1:{lab.closed}/metrics", "interval_s": 0.5,
         "timeout_s": 2},
        {"name": "scrape-json", "url": f"{lab.demo}/healthz", "interval_s": 0.5,
         "gauges": [{"name": "ws", "metric": "active_websocket_connections", "max": 10}]},
    ]


def _stalled_targets(blackhole: int) -> dict[str, list[dict[str, Any]]]:
    """A port that accepts connections and never answers, as a Prometheus and as a /metrics endpoint."""
    url = f"http://127.0.0.1:{blackhole}"
    return {
        "prometheus": [{"name": "stalled", "url": url, "timeout_s": 1, "latency": [{"name": "jobs"}]}],
        "metrics": [{"name": "scrape-stalled", "url": f"{url}/metrics", "timeout_s": 1, "interval_s": 0.5,
                     "gauges": [{"name": "ws", "metric": "active_websocket_connections", "max": 10}]}],
    }


@pytest.fixture(scope="module")
def run(lab: SloLab, demo: Any, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """Every SLO check against every target above, in one run."""
    from tests.harness import run_checks

    stalled = _stalled_targets(demo.blackhole)
    env = {"prometheus": _prometheus_targets(lab) + stalled["prometheus"],
           "metrics": _metrics_targets(lab) + stalled["metrics"]}
    # --tb=line: pytest would otherwise build (and the plugin then discard) a long traceback per
    # failure/error, which costs ~0.1-0.4 s each; the console output is the plugin's either way
    return run_checks(tmp_path_factory.mktemp("slo-run"), env, "-m", "slo", "--tb=line")


def test_healthy_slos_pass(run: SuiteRun) -> None:
    passed = [
        (UP, "good", None), (TARGETS_UP, "good", None), (LATENCY, "good", "fast"),
        (LATENCY, "good", "sluggish"), (ERRORS, "good", "fast"), (CACHE, "good", "fast"),
        (BLOCKS, "good", "fast"), (GAUGE, "good", "ws"), (CUSTOM, "good", "fast-rps"),
        (SCRAPABLE, "scrape", None), (S_LATENCY, "scrape", "jobs"), (S_LATENCY, "scrape", "fast"),
        (S_ERRORS, "scrape", "jobs"), (S_CACHE, "scrape", "jobs"), (S_BLOCKS, "scrape", "jobs"),
        (S_GAUGE, "scrape", "ws"), (S_COUNTER, "scrape", "messages"), (S_COUNTER, "scrape", "internal-errors"),
    ]
    wrong = {f"{c}[{t}-{i}]": run.outcome(c, t, item=i) for c, t, i in passed if run.outcome(c, t, item=i) != "passed"}
    assert not wrong, (wrong, run.stdout[-3000:])
    # the runbook's default (400 ms) applies where the entry sets none; measured values are recorded
    fast = run.record(LATENCY, "good", item="fast")["measured"][0]
    assert fast["critical"] == 400 and fast["unit"] == "ms" and 0 < fast["value"] < 50
    assert run.record(CACHE, "good", item="fast")["measured"][0]["value"] == pytest.approx(95)


def test_latency_breach_fails_with_query_value_and_threshold(run: SuiteRun) -> None:
    assert run.outcome(LATENCY, "good", item="slow") == "failed"
    message = run.message(LATENCY, "good", item="slow")
    assert 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="slo", ' \
           'route="/api/slow"}[5m])))' in message
    assert "<= 400 ms, got " in message and "[runbook slo#latency]" in message
    assert 600 <= run.record(LATENCY, "good", item="slow")["measured"][0]["value"] <= 1000
    sluggish = run.record(LATENCY, "good", item="sluggish")
    assert "past the warning level 200 ms" in sluggish["warnings"][0]
    assert 200 < sluggish["measured"][0]["value"] < 400

    assert run.outcome(S_LATENCY, "scrape", item="slow") == "failed"
    message = run.message(S_LATENCY, "scrape", item="slow")
    assert 'http_request_duration_seconds_bucket{route="/api/slow"} since the process started' in message
    assert "since the process started] (10 requests) <= 400 ms, got " in message
    assert run.record(S_LATENCY, "scrape", item="slow")["measured"][0]["value"] == pytest.approx(
        run.record(LATENCY, "good", item="slow")["measured"][0]["value"], rel=0.01)


def test_error_rate_cache_and_rate_limit_breaches_fail(run: SuiteRun) -> None:
    assert run.outcome(ERRORS, "good", item="flaky") == "failed"
    assert "<= 1 %, got 10 %" in run.message(ERRORS, "good", item="flaky")
    assert 'status=~"5.."' in run.message(ERRORS, "good", item="flaky")
    assert run.outcome(S_ERRORS, "scrape", item="flaky") == "failed"
    assert 'http_requests_total{route="/api/flaky", status=~"5.."} / http_requests_total{route="/api/flaky"} ' \
           "since the process started] (5 of 50 requests) <= 1 %, got 10 %" in run.message(S_ERRORS, "scrape", item="flaky")

    assert run.outcome(CACHE, "good", item="cold") == "failed"
    assert ">= 40 %, got 0 %" in run.message(CACHE, "good", item="cold")
    assert run.outcome(S_CACHE, "scrape", item="cold") == "failed"
    assert "(0 of 20 lookups) >= 40 %, got 0 %" in run.message(S_CACHE, "scrape", item="cold")

    assert run.outcome(BLOCKS, "good", item="limited") == "failed"
    blocked = run.record(BLOCKS, "good", item="limited")["measured"][0]["value"]
    assert 50 <= blocked < 100, blocked  # 40 at once for one client, 5 allowed per second
    assert '<= 5 %, got' in run.message(BLOCKS, "good", item="limited")
    assert run.outcome(S_BLOCKS, "scrape", item="limited") == "failed"
    assert run.record(S_BLOCKS, "scrape", item="limited")["measured"][0]["value"] == pytest.approx(blocked)


def test_gauge_cap_counter_rate_and_custom_queries(run: SuiteRun, lab: SloLab) -> None:
    assert run.outcome(GAUGE, "good", item="ws-tight") == "failed"
    assert "max(active_websocket_connections{job=\"slo\"})] <= 1, got 2" in run.message(GAUGE, "good", item="ws-tight")
    assert run.outcome(S_GAUGE, "scrape", item="ws-tight") == "failed"
    assert "<= 1, got 2" in run.message(S_GAUGE, "scrape", item="ws-tight")

    assert run.outcome(S_COUNTER, "scrape", item="jobs-requests") == "failed"
    assert 'increase of http_requests_total{route="/jobs"} over the' in run.message(S_COUNTER, "scrape", item="jobs-requests")
    assert "<= 1 /s, got" in run.message(S_COUNTER, "scrape", item="jobs-requests")

    assert run.outcome(CUSTOM, "good", item="per-route") == "failed"
    assert 'worst of 2 series: {route="/api/flaky"}' in run.message(CUSTOM, "good", item="per-route")
    assert run.outcome(CUSTOM, "good", item="too-quiet") == "failed"
    assert re.search(r">= 1,000 /s, got 0\.\d+ /s", run.message(CUSTOM, "good", item="too-quiet"))

    assert run.outcome(TARGETS_UP, "all-jobs") == "failed"
    assert f"1 of 2 down: 127.0.0.1:{lab.closed}" in run.message(TARGETS_UP, "all-jobs")


def test_no_series_nan_and_rejected_queries_are_errors_not_passes(run: SuiteRun) -> None:
    errors = {
        (LATENCY, "idle"): "query returned NaN (no samples in the window, or 0/0): histogram_quantile(0.95",
        (LATENCY, "unknown"): "query returned no series: histogram_quantile(0.95, sum by (le) "
                              "(rate(no_such_duration_seconds_bucket{job=\"slo\"}[5m])))",
        (CUSTOM, "nan"): "query returned NaN (no samples in the window, or 0/0): vector(0) / vector(0)",
        (CUSTOM, "empty"): "query returned no series: sum(no_such_metric_total)",
        (CUSTOM, "rejected"): "Prometheus rejected the query (bad_data: 1:6: parse error: expected type range "
                              "vector in call to function \"rate\", got instant vector): rate(http_requests_total)",
    }
    for (check, item), text in errors.items():
        assert run.outcome(check, "good", item=item) == "error", (check, item)
        assert text in run.message(check, "good", item=item), run.message(check, "good", item=item)

    assert run.outcome(S_LATENCY, "scrape", item="fast-now") == "error"
    assert "no observations in http_request_duration_seconds_bucket{route=\"/api/fast\"} over the" in \
        run.message(S_LATENCY, "scrape", item="fast-now")
    assert run.outcome(S_COUNTER, "scrape", item="unknown") == "error"
    assert "no series no_such_events_total in http" in run.message(S_COUNTER, "scrape", item="unknown")


def test_unreachable_or_wrong_endpoints(run: SuiteRun, lab: SloLab) -> None:
    refused = f"Unreachable: cannot connect to 127.0.0.1:{lab.closed}: connection refused"
    assert run.outcome(UP, "refused") == "error"
    assert run.cause(UP, "refused") == refused
    assert run.outcome(LATENCY, "refused", item="jobs") == "error"
    assert run.cause(LATENCY, "refused", item="jobs") == refused

    assert run.outcome(UP, "not-prometheus") == "failed"
    assert f"got 127.0.0.1:{lab.demo_port} answered HTTP 404 instead of a Prometheus query result ('404: Not Found')" \
        in run.message(UP, "not-prometheus")
    assert run.outcome(ERRORS, "not-prometheus", item="jobs") == "error"
    assert "does not answer queries" in run.message(ERRORS, "not-prometheus", item="jobs")

    assert run.outcome(SCRAPABLE, "scrape-refused") == "error"
    assert run.cause(SCRAPABLE, "scrape-refused") == refused
    assert run.outcome(SCRAPABLE, "scrape-json") == "failed"
    assert "not in Prometheus text format" in run.message(SCRAPABLE, "scrape-json")
    assert run.outcome(S_GAUGE, "scrape-json", item="ws") == "error"
    assert "cannot be read as metrics" in run.message(S_GAUGE, "scrape-json", item="ws")
    assert "Traceback" not in run.stdout


def test_stalled_endpoints_are_errors_within_their_timeout(run: SuiteRun, demo: Any) -> None:
    where = f"127.0.0.1:{demo.blackhole}"
    for check, target, item in ((UP, "stalled", None), (LATENCY, "stalled", "jobs")):
        assert run.outcome(check, target, item=item) == "error"
        assert run.cause(check, target, item=item) == \
            f"ProbeTimeout: {where} sent no response within 1 s (query vector(1) at {where})"
    for check, item in ((SCRAPABLE, None), (S_GAUGE, "ws")):
        assert run.outcome(check, "scrape-stalled", item=item) == "error"
        assert run.cause(check, "scrape-stalled", item=item) == \
            f"ProbeTimeout: {where} sent no response within 1 s (first scrape of http://{where}/metrics)"


def test_unbalanced_promql_is_a_usage_error_before_anything_is_probed(run_suite: Any) -> None:
    bad = {"name": "p", "url": "http://127.0.0.1:9", "queries": [{"name": "q", "query": "sum(rate(x[5m])", "max": 1}]}
    run = run_suite({"prometheus": [bad]}, "-m", "slo")
    assert run.ret == 4, run.stdout + run.stderr
    assert "selftest.yaml: prometheus[0].queries[0].query (target 'q'): not valid PromQL: unclosed '(' " \
           "opened at column 4 in 'sum(rate(x[5m])'" in run.stderr


@pytest.mark.parametrize(
    ("section", "bad", "key", "problem"),
    [
        ("prometheus", {"url": "http://p:9090", "selector": 'job="api'},
         "prometheus[0].selector (target 'p')", "unterminated string starting at column 5"),
        ("prometheus", {"url": "http://p:9090", "latency": [{"name": "l", "selector": 'route="/a"}[5m]'}]},
         "prometheus[0].latency[0].selector (target 'l')", "unbalanced '}' at column 11"),
        ("prometheus", {"url": "http://p:9090", "window": "5 minutes"},
         "prometheus[0].window (target 'p')", "String should match pattern"),
        ("prometheus", {"url": "http://p:9090", "queries": [{"name": "q", "query": "up", "max": 1, "min": 0}]},
         "prometheus[0].queries[0] (target 'q')", "set exactly one of 'max'"),
        ("prometheus", {"url": "http://p:9090", "latency": [{"name": "a"}, {"name": "a"}]},
         "prometheus[0] (target 'p')", "latency[1].name: duplicate name 'a'"),
        ("metrics", {"url": "http://m:9/metrics", "interval_s": 3, "timeout_s": 2},
         "metrics[0] (target 'p')", "interval_s (3) must be shorter than timeout_s (2)"),
        ("metrics", {"url": "http://m:9/metrics", "error_rate": [{"name": "e", "status": "5(["}]},
         "metrics[0].error_rate[0].status (target 'e')", "status is not a valid regular expression"),
    ],
    ids=["unterminated-selector", "selector-with-range", "window", "max-and-min", "duplicate", "interval",
         "status-regex"],
)
def test_config_errors_name_file_and_key(
    tmp_path: Path, section: str, bad: dict[str, Any], key: str, problem: str
) -> None:
    from opsverify.config.model import load_environment
    from opsverify.errors import ConfigError
    from tests.harness import write_env

    path = write_env(tmp_path, {section: [{"name": "p", **bad}]})
    with pytest.raises(ConfigError) as raised:
        load_environment(path)
    assert raised.value.file == str(path) and raised.value.key == key, str(raised.value)
    assert problem in raised.value.problem, str(raised.value)


def test_runbook_defaults_fill_unset_thresholds(tmp_path: Path) -> None:
    from opsverify.config.model import load_environment
    from tests.harness import write_env

    env = load_environment(write_env(tmp_path, {
        "prometheus": [{"name": "p", "url": "http://p:9090", "slo_defaults": {"error_percent": {"warn": 0.5, "critical": 2}},
                        "latency": [{"name": "l"}, {"name": "tight", "max_ms": 100}], "error_rate": [{"name": "e"}],
                        "cache_hit_ratio": [{"name": "c"}], "rate_limit_block_rate": [{"name": "r"}]}],
    }))
    target = env.target("prometheus", "p")
    assert [t.max_ms.critical for t in target.latency] == [400, 100]
    assert (target.error_rate[0].max_percent.warn, target.error_rate[0].max_percent.critical) == (0.5, 2)
    assert target.cache_hit_ratio[0].min_percent.critical == 40
    assert target.rate_limit_block_rate[0].max_percent.critical == 5
