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

import asyncio
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from opsverify.config.slo import (
    MetricsTarget,
    PromCache,
    PromErrorRate,
    PrometheusTarget,
    PromGauge,
    PromLatency,
    PromQuery,
    PromRateLimit,
    ScrapeCache,
    ScrapeCounter,
    ScrapeErrorRate,
    ScrapeGauge,
    ScrapeLatency,
    ScrapeRateLimit,
    SloTarget,
    join_selectors,
)
from opsverify.engine import ProbeContext
from opsverify.errors import UnexpectedResponse
from opsverify.net.http import HttpAnswer, request, reveal_headers
from opsverify.net.tls import TlsSettings

Direction = Literal["at_most", "at_least"]
MAX_BODY = 16 * 1024 * 1024
MARGIN_S = 0.15  # a probe ends this much before the engine's backstop, so its own message wins


@dataclass
class SloReading:
    """One SLO's number and where it came from.

    ``value`` is in ``unit`` (ms, %, /s or the query's own unit). When a query returns several
    series, ``value`` is the worst one's and ``labels`` name it.
    """

    what: str
    query: str
    value: float
    unit: str
    direction: Direction
    source: str
    series: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    nan_series: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def subject(self) -> str:
        """How the number is named in messages: what, the query, and which series."""
        text = f"{self.what} [{self.query}]"
        if self.series > 1:
            text += f" (worst of {self.series} series: {_labels(self.labels, '{}')})"
        if self.detail:
            text += f" ({self.detail})"
        return text


# -- HTTP ---------------------------------------------------------------------------------------------
def _where(url: str) -> str:
    return urlsplit(url).netloc or url


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def _get(
    ctx: ProbeContext[Any],
    target: SloTarget,
    url: str,
    *,
    params: dict[str, str] | None = None,
    accept: str = "application/json",
) -> HttpAnswer:
    """One GET through the network layer, within the probe's deadline (less a margin)."""
    headers = {"accept": accept, **reveal_headers(target.request_headers)}
    return await request(ctx, "GET", url, tls=TlsSettings.of(target, ctx.env), headers=headers, params=params,
                         what=ctx.phase, max_body=MAX_BODY)


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
    ctx: ProbeContext[Any], target: PrometheusTarget, promql: str
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


async def prometheus_api(ctx: ProbeContext[Any]) -> PrometheusApi:
    """Does the API answer an instant query? Failing answers (401, 503, not Prometheus) are data."""
    target: PrometheusTarget = ctx.target
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
    ctx: ProbeContext[Any],
    *,
    what: str,
    promql: str,
    scale: float,
    unit: str,
    direction: Direction,
) -> SloReading:
    target: PrometheusTarget = ctx.target
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


def _entry(ctx: ProbeContext[Any], field_name: str) -> Any:
    """The SLO entry this per-item probe is for, looked up in its own list (names repeat across lists)."""
    for entry in getattr(ctx.target, field_name):
        if entry.name == ctx.key.item:
            return entry
    raise UnexpectedResponse(f"no {field_name} entry named {ctx.key.item!r}")


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


async def prometheus_latency(ctx: ProbeContext[Any]) -> SloReading:
    entry: PromLatency = _entry(ctx, "latency")
    return await _prom_reading(
        ctx, what=entry.label, promql=latency_query(ctx.target, entry), scale=1000, unit="ms",
        direction="at_most",
    )


async def prometheus_error_rate(ctx: ProbeContext[Any]) -> SloReading:
    entry: PromErrorRate = _entry(ctx, "error_rate")
    return await _prom_reading(
        ctx, what="error rate", promql=status_ratio_query(ctx.target, entry), scale=100, unit="%",
        direction="at_most",
    )


async def prometheus_rate_limit_block_rate(ctx: ProbeContext[Any]) -> SloReading:
    entry: PromRateLimit = _entry(ctx, "rate_limit_block_rate")
    return await _prom_reading(
        ctx, what="rate-limit block rate", promql=status_ratio_query(ctx.target, entry), scale=100,
        unit="%", direction="at_most",
    )


async def prometheus_cache_hit_ratio(ctx: ProbeContext[Any]) -> SloReading:
    entry: PromCache = _entry(ctx, "cache_hit_ratio")
    return await _prom_reading(
        ctx, what="cache hit ratio", promql=cache_query(ctx.target, entry), scale=100, unit="%",
        direction="at_least",
    )


async def prometheus_gauge(ctx: ProbeContext[Any]) -> SloReading:
    entry: PromGauge = _entry(ctx, "gauges")
    return await _prom_reading(
        ctx, what=entry.metric, promql=gauge_query(ctx.target, entry), scale=1, unit="",
        direction="at_most",
    )


async def prometheus_query(ctx: ProbeContext[Any]) -> SloReading:
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


async def prometheus_targets_up(ctx: ProbeContext[Any]) -> TargetsUp:
    target: PrometheusTarget = ctx.target
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


# -- direct scrape ------------------------------------------------------------------------------------
Sample = tuple[dict[str, str], float]


@dataclass
class Scrape:
    """One parse of the exposition: samples by name, and when (monotonic midpoint of the request)."""

    at: float
    samples: dict[str, list[Sample]]


@dataclass
class ScrapePair:
    """Two scrapes of one ``/metrics`` endpoint ``interval_s`` apart (``error`` set: unreadable)."""

    url: str
    status: int
    error: str | None
    families: int = 0
    first: Scrape | None = None
    second: Scrape | None = None

    @property
    def interval_s(self) -> float:
        if self.first is None or self.second is None:
            return 0.0
        return self.second.at - self.first.at


def parse_exposition(text: str, at: float) -> tuple[Scrape, int]:
    """Samples of a Prometheus text exposition (raises ``ValueError`` when it is not one)."""
    samples: dict[str, list[Sample]] = {}
    families = 0
    for family in text_string_to_metric_families(text):
        families += 1
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return Scrape(at, samples), families


async def _scrape_once(
    ctx: ProbeContext[Any], target: MetricsTarget
) -> tuple[int, str, float, float]:
    """HTTP status, body, monotonic midpoint and duration of one GET of the endpoint."""
    started = time.monotonic()
    response = await _get(ctx, target, target.url, accept="text/plain;version=0.0.4;q=1,*/*;q=0.1")
    text = response.text
    ended = time.monotonic()
    return response.status, text, (started + ended) / 2, ended - started


async def metrics_scrape(ctx: ProbeContext[Any]) -> ScrapePair:
    """Scrape twice, ``interval_s`` apart (shortened so both fit in the timeout)."""
    target: MetricsTarget = ctx.target
    where = _where(target.url)
    ctx.phase = f"first scrape of {target.url}"
    status, text, at, took = await _scrape_once(ctx, target)
    problem = _unreadable(status, text)
    if problem:
        return ScrapePair(target.url, status, problem)
    try:
        first, families = parse_exposition(text, at)
    except ValueError as exc:
        return ScrapePair(target.url, status, f"not in Prometheus text format ({_short(str(exc), 100)})")
    # the interval, shortened when the second scrape would not fit in what is left of the timeout
    wait = max(0.0, min(target.interval_s, ctx.remaining(MARGIN_S) - 2 * took - 0.05))
    ctx.phase = f"waiting {wait:.2g} s between the scrapes of {where}"
    await asyncio.sleep(wait)
    ctx.phase = f"second scrape of {target.url}"
    status, text, at, _ = await _scrape_once(ctx, target)
    problem = _unreadable(status, text)
    if problem:
        return ScrapePair(target.url, status, problem)
    try:
        second, families = parse_exposition(text, at)
    except ValueError as exc:
        return ScrapePair(target.url, status, f"not in Prometheus text format ({_short(str(exc), 100)})")
    return ScrapePair(target.url, status, None, families, first, second)


def _unreadable(status: int, text: str) -> str | None:
    if status != 200:
        return f"HTTP {status} ({_short(text, 80)!r})" if text.strip() else f"HTTP {status}"
    if not text.strip():
        return "an empty body"
    return None


def _labels(labels: dict[str, str], empty: str = "") -> str:
    """``{a="1", b="2"}`` (``empty`` when there are no labels)."""
    if not labels:
        return empty
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _series(scrape: Scrape, name: str, wanted: dict[str, str]) -> list[Sample] | None:
    """Samples named ``name`` (or ``name_total``) whose labels include ``wanted``; None: no such name."""
    found = scrape.samples.get(name)
    if found is None and not name.endswith("_total"):
        found = scrape.samples.get(f"{name}_total")
    if found is None:
        return None
    return [(labels, value) for labels, value in found if _matches(labels, wanted)]


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _increases(pair: ScrapePair, name: str, wanted: dict[str, str], lifetime: bool) -> list[Sample] | None:
    """Per-series increase between the scrapes (a reset counts from zero), or totals (lifetime)."""
    assert pair.first is not None and pair.second is not None
    now = _series(pair.second, name, wanted)
    if now is None or lifetime:
        return now
    before = {_key(labels): value for labels, value in (_series(pair.first, name, wanted) or [])}
    out: list[Sample] = []
    for labels, value in now:
        old = before.get(_key(labels), 0.0)
        out.append((labels, value - old if value >= old else value))
    return out


class _Scraped:
    """Helpers bound to one ScrapePair and one SLO entry's mode, for the readings below."""

    def __init__(self, pair: ScrapePair, over: str) -> None:
        self.pair = pair
        self.lifetime = over == "lifetime"

    @property
    def span(self) -> str:
        if self.lifetime:
            return "since the process started"
        return f"over the {self.pair.interval_s:.2g} s between two scrapes"

    def increases(self, name: str, wanted: dict[str, str]) -> list[Sample]:
        found = _increases(self.pair, name, wanted, self.lifetime)
        if not found:
            raise UnexpectedResponse(f"no series {name}{_labels(wanted)} in {self.pair.url}")
        return found

    def total(self, name: str, wanted: dict[str, str]) -> float:
        return sum(value for _, value in self.increases(name, wanted))


async def _pair(ctx: ProbeContext[Any]) -> ScrapePair:
    ctx.phase = "waiting for the scrapes"
    pair: ScrapePair = await ctx.depend("metrics_scrape")
    if pair.error is not None:
        raise UnexpectedResponse(f"{pair.url} cannot be read as metrics: {pair.error}")
    return pair


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` over ``(upper bound, cumulative count)`` pairs (NaN: empty)."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return math.nan
    counts: list[float] = []
    for _, count in ordered:
        counts.append(max(count, counts[-1]) if counts else count)  # enforce monotonicity
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(ordered) - 1:
        return ordered[-2][0] if len(ordered) > 1 else math.nan
    upper = ordered[index][0]
    if index == 0:
        if upper <= 0:
            return upper
        lower, below = 0.0, 0.0
    else:
        lower, below = ordered[index - 1][0], counts[index - 1]
    in_bucket = counts[index] - below
    if in_bucket <= 0:
        return upper
    return lower + (upper - lower) * (rank - below) / in_bucket


async def scraped_latency(ctx: ProbeContext[Any]) -> SloReading:
    target: MetricsTarget = ctx.target
    entry: ScrapeLatency = _entry(ctx, "latency")
    pair = await _pair(ctx)
    mode = _Scraped(pair, entry.over)
    wanted = target.labels_for(entry.labels)
    name = f"{entry.histogram}_bucket"
    grouped: dict[float, float] = {}
    for labels, value in mode.increases(name, wanted):
        try:
            bound = float(labels.get("le", "nan"))
        except ValueError:
            continue
        if not math.isnan(bound):
            grouped[bound] = grouped.get(bound, 0.0) + value
    seconds = histogram_quantile(entry.quantile, list(grouped.items()))
    shown = f"{name}{_labels(wanted)} {mode.span}"
    if math.isnan(seconds):
        raise UnexpectedResponse(f"no observations in {shown} (the quantile is NaN)")
    return SloReading(
        what=entry.label, query=shown, value=seconds * 1000, unit="ms", direction="at_most",
        source=pair.url, detail=f"{grouped.get(math.inf, 0):g} requests",
    )


def _status_ratio(ctx: ProbeContext[Any], pair: ScrapePair, entry: ScrapeErrorRate | ScrapeRateLimit,
                  what: str) -> SloReading:
    target: MetricsTarget = ctx.target
    mode = _Scraped(pair, entry.over)
    wanted = target.labels_for(entry.labels)
    pattern = re.compile(entry.status)
    series = mode.increases(entry.counter, wanted)
    every = sum(value for _, value in series)
    picked = sum(value for labels, value in series if pattern.fullmatch(labels.get(entry.status_label, "")))
    picked_labels = _labels({**wanted, entry.status_label: "\0"}).replace('="\0"', f'=~"{entry.status}"')
    shown = f"{entry.counter}{picked_labels} / {entry.counter}{_labels(wanted)} {mode.span}"
    if every <= 0:
        raise UnexpectedResponse(f"no requests counted in {shown} (the ratio is NaN)")
    return SloReading(
        what=what, query=shown, value=100 * picked / every, unit="%", direction="at_most",
        source=pair.url, detail=f"{picked:g} of {every:g} requests",
    )


async def scraped_error_rate(ctx: ProbeContext[Any]) -> SloReading:
    entry: ScrapeErrorRate = _entry(ctx, "error_rate")
    return _status_ratio(ctx, await _pair(ctx), entry, "error rate")


async def scraped_rate_limit_block_rate(ctx: ProbeContext[Any]) -> SloReading:
    entry: ScrapeRateLimit = _entry(ctx, "rate_limit_block_rate")
    return _status_ratio(ctx, await _pair(ctx), entry, "rate-limit block rate")


async def scraped_cache_hit_ratio(ctx: ProbeContext[Any]) -> SloReading:
    target: MetricsTarget = ctx.target
    entry: ScrapeCache = _entry(ctx, "cache_hit_ratio")
    pair = await _pair(ctx)
    mode = _Scraped(pair, entry.over)
    wanted = target.labels_for(entry.labels)
    hits_series = _increases(pair, entry.hits, wanted, mode.lifetime)
    miss_series = _increases(pair, entry.misses, wanted, mode.lifetime)
    shown = f"{entry.hits}{_labels(wanted)} / ({entry.hits} + {entry.misses}) {mode.span}"
    if not hits_series and not miss_series:
        raise UnexpectedResponse(f"no series {entry.hits} or {entry.misses}{_labels(wanted)} in {pair.url}")
    hits = sum(v for _, v in hits_series or [])
    lookups = hits + sum(v for _, v in miss_series or [])
    if lookups <= 0:
        raise UnexpectedResponse(f"no cache lookups counted in {shown} (the ratio is NaN)")
    return SloReading(
        what="cache hit ratio", query=shown, value=100 * hits / lookups, unit="%", direction="at_least",
        source=pair.url, detail=f"{hits:g} of {lookups:g} lookups",
    )


async def scraped_gauge(ctx: ProbeContext[Any]) -> SloReading:
    target: MetricsTarget = ctx.target
    entry: ScrapeGauge = _entry(ctx, "gauges")
    pair = await _pair(ctx)
    assert pair.second is not None
    wanted = target.labels_for(entry.labels)
    found = _series(pair.second, entry.metric, wanted)
    if not found:
        raise UnexpectedResponse(f"no series {entry.metric}{_labels(wanted)} in {pair.url}")
    values = [value for _, value in found]
    value = max(values) if entry.aggregate == "max" else sum(values)
    return SloReading(
        what=entry.metric, query=f"{entry.aggregate} of {entry.metric}{_labels(wanted)}", value=value,
        unit="", direction="at_most", source=pair.url, series=1,
        detail=f"{len(values)} series" if len(values) > 1 else "",
    )


async def scraped_counter_rate(ctx: ProbeContext[Any]) -> SloReading:
    target: MetricsTarget = ctx.target
    entry: ScrapeCounter = _entry(ctx, "counters")
    pair = await _pair(ctx)
    mode = _Scraped(pair, "interval")
    wanted = target.labels_for(entry.labels)
    increase = mode.total(entry.metric, wanted)
    seconds = pair.interval_s
    if seconds <= 0:
        raise UnexpectedResponse(f"the two scrapes of {pair.url} were not apart in time")
    return SloReading(
        what=f"rate of {entry.description or entry.metric}",
        query=f"increase of {entry.metric}{_labels(wanted)} {mode.span}",
        value=increase / seconds, unit=entry.unit, direction=entry.direction, source=pair.url,
        detail=f"+{increase:g}",
    )
