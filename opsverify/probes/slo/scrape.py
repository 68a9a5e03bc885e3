"""SLO probes against a metrics endpoint scraped twice: the Prometheus exposition parsed, and each
kind of SLO computed from the increase of its counters and histograms between the two scrapes.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from opsverify.config.slo import (
    MetricsTarget,
    ScrapeCache,
    ScrapeCounter,
    ScrapeErrorRate,
    ScrapeGauge,
    ScrapeLatency,
    ScrapeRateLimit,
)
from opsverify.engine import ProbeContext
from opsverify.errors import UnexpectedResponse
from opsverify.probes.slo.reading import _entry, _get, _labels, _short, _where, MARGIN_S, SloReading


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
    ctx: ProbeContext[MetricsTarget], target: MetricsTarget
) -> tuple[int, str, float, float]:
    """HTTP status, body, monotonic midpoint and duration of one GET of the endpoint."""
    started = time.monotonic()
    response = await _get(ctx, target, target.url, accept="text/plain;version=0.0.4;q=1,*/*;q=0.1")
    text = response.text
    ended = time.monotonic()
    return response.status, text, (started + ended) / 2, ended - started


async def metrics_scrape(ctx: ProbeContext[MetricsTarget]) -> ScrapePair:
    """Scrape twice, ``interval_s`` apart (shortened so both fit in the timeout)."""
    target = ctx.target
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


async def _pair(ctx: ProbeContext[MetricsTarget]) -> ScrapePair:
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


async def scraped_latency(ctx: ProbeContext[MetricsTarget]) -> SloReading:
    target = ctx.target
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


def _status_ratio(ctx: ProbeContext[MetricsTarget], pair: ScrapePair, entry: ScrapeErrorRate | ScrapeRateLimit,
                  what: str) -> SloReading:
    target = ctx.target
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


async def scraped_error_rate(ctx: ProbeContext[MetricsTarget]) -> SloReading:
    entry: ScrapeErrorRate = _entry(ctx, "error_rate")
    return _status_ratio(ctx, await _pair(ctx), entry, "error rate")


async def scraped_rate_limit_block_rate(ctx: ProbeContext[MetricsTarget]) -> SloReading:
    entry: ScrapeRateLimit = _entry(ctx, "rate_limit_block_rate")
    return _status_ratio(ctx, await _pair(ctx), entry, "rate-limit block rate")


async def scraped_cache_hit_ratio(ctx: ProbeContext[MetricsTarget]) -> SloReading:
    target = ctx.target
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


async def scraped_gauge(ctx: ProbeContext[MetricsTarget]) -> SloReading:
    target = ctx.target
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


async def scraped_counter_rate(ctx: ProbeContext[MetricsTarget]) -> SloReading:
    target = ctx.target
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
