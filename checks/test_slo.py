"""Service-level objectives hold: latency, error rate, cache hits, rate-limit blocks, connection caps.

Judged with PromQL against a Prometheus (``prometheus:``) or from a service's own ``/metrics``
scraped twice (``metrics:``). A query without series, or NaN, is an error, never a pass.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slo, pytest.mark.smoke, pytest.mark.predeploy]


def _judge(expect, reading, threshold):
    """Judge ``reading`` (an SloReading) against ``threshold`` in its direction."""
    __tracebackhide__ = True
    if reading.nan_series:
        expect.warn(f"{len(reading.nan_series)} series of {reading.query} are NaN: "
                    f"{', '.join(reading.nan_series[:5])}")
    judge = expect.at_most if reading.direction == "at_most" else expect.at_least
    judge(reading.value, threshold, what=reading.subject, unit=reading.unit)


# -- prometheus: ------------------------------------------------------------------------------------
@pytest.mark.runbook("slo#prometheus")
@pytest.mark.severity("critical")
def test_prometheus_answers_queries(prometheus_api, target, expect):
    expect.that(
        prometheus_api.ok,
        expected=f"{target.url}/api/v1/query to answer vector(1)",
        actual=prometheus_api.detail,
    )


@pytest.mark.configured("up_selector")
@pytest.mark.runbook("slo#scrape-targets")
def test_scrape_targets_are_up(prometheus_targets_up, target, expect):
    down = prometheus_targets_up.down
    expect.that(
        not down,
        expected=f"every scrape target of {prometheus_targets_up.query} up",
        actual=f"{len(down)} of {prometheus_targets_up.total} down: {', '.join(down)}",
    )


@pytest.mark.each("latency")
@pytest.mark.runbook("slo#latency")
@pytest.mark.severity("critical")
def test_p95_latency_within_slo(prometheus_latency, target_item, expect):
    _judge(expect, prometheus_latency, target_item.max_ms)


@pytest.mark.each("error_rate")
@pytest.mark.runbook("slo#error-rate")
@pytest.mark.severity("critical")
def test_error_rate_within_slo(prometheus_error_rate, target_item, expect):
    _judge(expect, prometheus_error_rate, target_item.max_percent)


@pytest.mark.each("cache_hit_ratio")
@pytest.mark.runbook("slo#cache-hit-ratio")
def test_cache_hit_ratio_above_slo(prometheus_cache_hit_ratio, target_item, expect):
    _judge(expect, prometheus_cache_hit_ratio, target_item.min_percent)


@pytest.mark.each("rate_limit_block_rate")
@pytest.mark.runbook("slo#rate-limit-blocks")
def test_rate_limit_block_rate_within_slo(prometheus_rate_limit_block_rate, target_item, expect):
    _judge(expect, prometheus_rate_limit_block_rate, target_item.max_percent)


@pytest.mark.each("gauges")
@pytest.mark.runbook("slo#connections")
def test_gauge_within_cap(prometheus_gauge, target_item, expect):
    _judge(expect, prometheus_gauge, target_item.max)


@pytest.mark.each("queries")
@pytest.mark.runbook("slo#custom")
def test_custom_query_within_threshold(prometheus_query, target_item, expect):
    _judge(expect, prometheus_query, target_item.threshold)


# -- metrics: (direct scrape of /metrics) -------------------------------------------------------------
@pytest.mark.runbook("slo#metrics-endpoint")
def test_metrics_endpoint_is_scrapable(metrics_scrape, target, expect):
    expect.that(
        metrics_scrape.error is None,
        expected=f"{target.url} to serve metrics in Prometheus text format",
        actual=metrics_scrape.error,
    )


@pytest.mark.each("latency")
@pytest.mark.runbook("slo#latency")
@pytest.mark.severity("critical")
def test_scraped_p95_latency_within_slo(scraped_latency, target_item, expect):
    _judge(expect, scraped_latency, target_item.max_ms)


@pytest.mark.each("error_rate")
@pytest.mark.runbook("slo#error-rate")
@pytest.mark.severity("critical")
def test_scraped_error_rate_within_slo(scraped_error_rate, target_item, expect):
    _judge(expect, scraped_error_rate, target_item.max_percent)


@pytest.mark.each("cache_hit_ratio")
@pytest.mark.runbook("slo#cache-hit-ratio")
def test_scraped_cache_hit_ratio_above_slo(scraped_cache_hit_ratio, target_item, expect):
    _judge(expect, scraped_cache_hit_ratio, target_item.min_percent)


@pytest.mark.each("rate_limit_block_rate")
@pytest.mark.runbook("slo#rate-limit-blocks")
def test_scraped_rate_limit_block_rate_within_slo(scraped_rate_limit_block_rate, target_item, expect):
    _judge(expect, scraped_rate_limit_block_rate, target_item.max_percent)


@pytest.mark.each("gauges")
@pytest.mark.runbook("slo#connections")
def test_scraped_gauge_within_cap(scraped_gauge, target_item, expect):
    _judge(expect, scraped_gauge, target_item.max)


@pytest.mark.each("counters")
@pytest.mark.runbook("slo#counter-rate")
def test_scraped_counter_rate_within_threshold(scraped_counter_rate, target_item, expect):
    _judge(expect, scraped_counter_rate, target_item.threshold)
