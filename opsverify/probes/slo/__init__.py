"""SLO probes: PromQL against a Prometheus HTTP API, or two direct scrapes of a ``/metrics`` endpoint.

Every SLO probe returns an :class:`SloReading`: the number the SLO is judged on (in the unit the
threshold is written in: ms, %, /s), and what produced it (the PromQL query, or the metric and
labels of the scrape), so a failure message shows query, value and threshold.

What is an *error* (the check could not see the number), never a pass:

* the query returns no series, or only NaN (no samples in the window, 0/0);
* Prometheus rejects the query (its own parse/execution message is passed on);
* Prometheus or the ``/metrics`` endpoint is unreachable or does not answer like one.

Example::

    reading = await prometheus_latency(ctx)     # ctx.target: PrometheusTarget, ctx.key.item: "jobs-list"
    reading.value, reading.unit, reading.query  # 212.5, "ms", "histogram_quantile(0.95, ...)"
"""

from __future__ import annotations

from opsverify.probes.slo.reading import (
    Direction, MAX_BODY, MARGIN_S, SloReading,
)
from opsverify.probes.slo.prometheus import (
    PrometheusApi, Series, prometheus_api, latency_query, status_ratio_query, cache_query, gauge_query,
    prometheus_latency, prometheus_error_rate, prometheus_rate_limit_block_rate, prometheus_cache_hit_ratio,
    prometheus_gauge, prometheus_query, TargetsUp, prometheus_targets_up,
)
from opsverify.probes.slo.scrape import (
    Sample, Scrape, ScrapePair, parse_exposition, metrics_scrape, histogram_quantile, scraped_latency,
    scraped_error_rate, scraped_rate_limit_block_rate, scraped_cache_hit_ratio, scraped_gauge,
    scraped_counter_rate,
)

__all__ = [
    "Direction", "MAX_BODY", "MARGIN_S", "SloReading", "PrometheusApi", "Series", "prometheus_api",
    "latency_query", "status_ratio_query", "cache_query", "gauge_query", "prometheus_latency",
    "prometheus_error_rate", "prometheus_rate_limit_block_rate", "prometheus_cache_hit_ratio",
    "prometheus_gauge", "prometheus_query", "TargetsUp", "prometheus_targets_up", "Sample", "Scrape",
    "ScrapePair", "parse_exposition", "metrics_scrape", "histogram_quantile", "scraped_latency",
    "scraped_error_rate", "scraped_rate_limit_block_rate", "scraped_cache_hit_ratio", "scraped_gauge",
    "scraped_counter_rate",
]
