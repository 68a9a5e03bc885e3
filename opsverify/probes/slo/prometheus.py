"""SLO probes against a Prometheus HTTP API: the PromQL of each kind of SLO (latency quantile,
error rate, rate-limit block rate, cache hit ratio, gauge, a query of its own), run as instant queries,
and the targets Prometheus reports up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opsverify.config.slo import (
    PromCache,
    PromErrorRate,
    PrometheusTarget,
    PromGauge,
    PromLatency,
    PromQuery,
    PromRateLimit,
    join_selectors,
)
from opsverify.engine import ProbeContext
from opsverify.errors import UnexpectedResponse
from opsverify.probes.slo.reading import _entry, _get, _labels, _short, _where, Direction, SloReading


# -- Prometheus ---------------------------------------------------------------------------------------
@dataclass
class PrometheusApi:
    """Whether the Prometheus HTTP API answers an instant query (``vector(1)``)."""

    url: str
    ok: bool
    detail: str
    latency_ms: float


@dataclass
class Series:
    """One series of an instant-query answer."""

    labels: dict[str, str]
    value: float


async def _query(
    ctx: ProbeContext[PrometheusTarget], target: PrometheusTarget, promql: str
) -> list[Series]:
    """Run an instant query; return its series (a scalar answer is one series without labels)."""
    url = target.url.rstrip("/") + "/api/v1/query"
    response = await _get(ctx, target, url, params={"query": promql})
    body = response.json_or_none()
    where = _where(target.url)
    if not isinstance(body, dict) or "status" not in body:
        raise UnexpectedResponse(
            f"{where} answered HTTP {response.status} instead of a Prometheus query result "
            f"({_short(response.text, 100)!r})"
        )
    if body.get("status") != "success":
        kind = body.get("errorType", "error")
        message = str(body.get("error", "")).removeprefix('invalid parameter "query": ')
        raise UnexpectedResponse(f"Prometheus rejected the query ({kind}: {_short(message, 240)}): {promql}")
    data: dict[str, Any] = body.get("data") or {}
    kind = data.get("resultType")
    result: Any = data.get("result")
    try:
        if kind == "vector":
            return [Series(dict(r.get("metric", {})), float(r["value"][1])) for r in result]
        if kind == "scalar":
            return [Series({}, float(result[1]))]
    except (KeyError, IndexError, TypeError, ValueError):
        raise UnexpectedResponse(f"{where} answered the query in an unreadable shape: {promql}") from None
    raise UnexpectedResponse(
        f"the query returns a {kind or 'unknown'} result, not an instant vector or scalar: {promql}"
    )


async def prometheus_api(ctx: ProbeContext[PrometheusTarget]) -> PrometheusApi:
    """Does the API answer an instant query? Failing answers (401, 503, not Prometheus) are data."""
    target = ctx.target
    ctx.phase = f"query vector(1) at {_where(target.url)}"
    started = time.monotonic()
    try:
        series = await _query(ctx, target, "vector(1)")
        ok, detail = [s.value for s in series] == [1.0], ""
        if not ok:
            detail = "vector(1) did not return 1"
    except UnexpectedResponse as exc:
        ok, detail = False, str(exc)
    return PrometheusApi(target.url, ok, detail, (time.monotonic() - started) * 1000)


async def _prom_reading(
    ctx: ProbeContext[PrometheusTarget],
    *,
    what: str,
    promql: str,
    scale: float,
    unit: str,
    direction: Direction,
) -> SloReading:
    target = ctx.target
    ctx.phase = f"waiting for {_where(target.url)} to answer"
    api: PrometheusApi = await ctx.depend("prometheus_api")
    if not api.ok:
        raise UnexpectedResponse(f"Prometheus at {target.url} does not answer queries: {api.detail}")
    ctx.phase = f"query {promql}"
    series = await _query(ctx, target, promql)
    if not series:
        raise UnexpectedResponse(f"query returned no series: {promql}")
    numbers = [s for s in series if not math.isnan(s.value)]
    nan = [_labels(s.labels, "{}") for s in series if math.isnan(s.value)]
    if not numbers:
        raise UnexpectedResponse(f"query returned NaN (no samples in the window, or 0/0): {promql}")
    pick: Callable[[Iterable[Series]], Series] = (
        (lambda xs: max(xs, key=lambda s: s.value)) if direction == "at_most"
        else (lambda xs: min(xs, key=lambda s: s.value))
    )
    worst = pick(numbers)
    return SloReading(
        what=what, query=promql, value=worst.value * scale, unit=unit, direction=direction,
        source=target.url, series=len(series), labels=worst.labels, nan_series=nan,
    )


def latency_query(target: PrometheusTarget, entry: PromLatency) -> str:
    matchers, window = target.scope(entry)
    return (
        f"histogram_quantile({entry.quantile:g}, sum by (le) "
        f"(rate({entry.histogram}_bucket{join_selectors(matchers)}[{window}])))"
    )


def status_ratio_query(target: PrometheusTarget, entry: PromErrorRate | PromRateLimit) -> str:
    matchers, window = target.scope(entry)
    picked = join_selectors(matchers, f'{entry.status_label}=~"{entry.status}"')
    every = join_selectors(matchers)
    return (
        f"(sum(rate({entry.counter}{picked}[{window}])) or vector(0)) "
        f"/ sum(rate({entry.counter}{every}[{window}]))"
    )


def cache_query(target: PrometheusTarget, entry: PromCache) -> str:
    matchers, window = target.scope(entry)
    scope = join_selectors(matchers)
    hits = f"(sum(rate({entry.hits}{scope}[{window}])) or vector(0))"
    misses = f"(sum(rate({entry.misses}{scope}[{window}])) or vector(0))"
    return f"{hits} / ({hits} + {misses})"


def gauge_query(target: PrometheusTarget, entry: PromGauge) -> str:
    matchers, _ = target.scope(entry)
    return f"{entry.aggregate}({entry.metric}{join_selectors(matchers)})"


async def prometheus_latency(ctx: ProbeContext[PrometheusTarget]) -> SloReading:
    entry: PromLatency = _entry(ctx, "latency")
    return await _prom_reading(
        ctx, what=entry.label, promql=latency_query(ctx.target, entry), scale=1000, unit="ms",
        direction="at_most",
    )


async def prometheus_error_rate(ctx: ProbeContext[PrometheusTarget]) -> SloReading:
    entry: PromErrorRate = _entry(ctx, "error_rate")
    return await _prom_reading(
        ctx, what="error rate", promql=status_ratio_query(ctx.target, entry), scale=100, unit="%",
        direction="at_most",
    )


async def prometheus_rate_limit_block_rate(ctx: ProbeContext[PrometheusTarget]) -> SloReading:
    entry: PromRateLimit = _entry(ctx, "rate_limit_block_rate")
    return await _prom_reading(
        ctx, what="rate-limit block rate", promql=status_ratio_query(ctx.target, entry), scale=100,
        unit="%", direction="at_most",
    )


async def prometheus_cache_hit_ratio(ctx: ProbeContext[PrometheusTarget]) -> SloReading:
    entry: PromCache = _entry(ctx, "cache_hit_ratio")
    return await _prom_reading(
        ctx, what="cache hit ratio", promql=cache_query(ctx.target, entry), scale=100, unit="%",
        direction="at_least",
    )


async def prometheus_gauge(ctx: ProbeContext[PrometheusTarget]) -> SloReading:
    entry: PromGauge = _entry(ctx, "gauges")
    return await _prom_reading(
        ctx, what=entry.metric, promql=gauge_query(ctx.target, entry), scale=1, unit="",
        direction="at_most",
    )


async def prometheus_query(ctx: ProbeContext[PrometheusTarget]) -> SloReading:
    entry: PromQuery = _entry(ctx, "queries")
    return await _prom_reading(
        ctx, what=entry.description or entry.name, promql=entry.query, scale=1, unit=entry.unit,
        direction=entry.direction,
    )


@dataclass
class TargetsUp:
    """The ``up`` series matching ``up_selector``: how many, and which are down."""

    query: str
    total: int
    down: list[str]


async def prometheus_targets_up(ctx: ProbeContext[PrometheusTarget]) -> TargetsUp:
    target = ctx.target
    promql = f"up{join_selectors(target.up_selector)}"
    api: PrometheusApi = await ctx.depend("prometheus_api")
    if not api.ok:
        raise UnexpectedResponse(f"Prometheus at {target.url} does not answer queries: {api.detail}")
    ctx.phase = f"query {promql}"
    series = await _query(ctx, target, promql)
    if not series:
        raise UnexpectedResponse(f"query returned no series: {promql} (no scrape target matches)")
    down = sorted(
        s.labels.get("instance") or _labels(s.labels, "{}") for s in series if math.isnan(s.value) or s.value < 1
    )
    return TargetsUp(promql, len(series), down)
