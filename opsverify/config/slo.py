"""``prometheus:`` and ``metrics:`` sections: service-level objectives (system ``slo``).

Two ways to read the numbers an SLO is judged on:

* ``prometheus:`` — PromQL instant queries against a Prometheus HTTP API (``/api/v1/query``);
  ready-made queries for the deploy runbook's targets, plus any custom query.
* ``metrics:`` — for services without a Prometheus: the service's own ``/metrics`` endpoint is
  scraped twice, ``interval_s`` apart; quantiles come from histogram buckets and rates/ratios from
  the difference between the two scrapes (or, with ``over: lifetime``, from the counters' totals).

Defaults are the deploy runbook's performance targets (p95 of the jobs list < 400 ms, errors < 1 %,
cache hits > 40 %, rate-limit blocks < 5 %). An SLO entry's own threshold wins, then the target's
``slo_defaults``, then those runbook values.

Its keys: ``docs/environment/reference.md`` (#prometheus, #metrics);
an example and its checks: ``docs/environment/slo.md``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import NAME_MAX, NAME_PATTERN, Strict, Target, section
from opsverify.config.http import HeaderValue
from opsverify.config.thresholds import AtLeast, AtMost, MaxMs, MaxPercent, MinPercent, Threshold
from opsverify.config.values import HttpUrl

METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"

# The deploy runbook's performance targets (runbooks/slo.md).
RUNBOOK_LATENCY_MS = 400.0
RUNBOOK_ERROR_PERCENT = 1.0
RUNBOOK_CACHE_HIT_PERCENT = 40.0
RUNBOOK_RATE_LIMIT_BLOCK_PERCENT = 5.0

_PAIRS = {")": "(", "]": "[", "}": "{"}


def promql_balance_problem(text: str) -> str | None:
    """Why ``text`` cannot be PromQL (unbalanced brackets or an unterminated string), else ``None``.

    A cheap check done when the environment file is loaded, so that a typo is a usage error naming
    the file and key instead of a failed run; Prometheus still parses the query for real.
    """
    stack: list[tuple[str, int]] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "\"'`":
            start = index
            index += 1
            while index < len(text) and text[index] != char:
                index += 2 if char != "`" and text[index] == "\\" else 1
            if index >= len(text):
                return f"unterminated string starting at column {start + 1}"
        elif char == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline  # a comment runs to the end of the line
        elif char in "([{":
            stack.append((char, index))
        elif char in ")]}":
            if not stack or stack[-1][0] != _PAIRS[char]:
                return f"unbalanced {char!r} at column {index + 1}"
            stack.pop()
        index += 1
    if stack:
        char, where = stack[-1]
        return f"unclosed {char!r} opened at column {where + 1}"
    return None


def _check_promql(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} is empty")
    problem = promql_balance_problem(value)
    if problem:
        raise ValueError(f"not valid PromQL: {problem} in {value!r}")
    return value


def _check_selector(value: str | None) -> str | None:
    """Label matchers without braces (``job="api", route="/jobs"``); surrounding braces are dropped."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    _check_promql(text or '""', "selector")
    if any(c in _without_strings(text) for c in "{}()[]"):
        raise ValueError(f"a selector holds label matchers only (like job=\"api\"), not {value!r}")
    return text or None


_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")


def _without_strings(text: str) -> str:
    return _STRING.sub('""', text)


def join_selectors(*parts: str | None) -> str:
    """``{a, b}`` of the non-empty matcher lists (``""`` when there are none)."""
    found = [p.strip().strip(",") for p in parts if p and p.strip()]
    return "{" + ", ".join(found) + "}" if found else ""


class SloDefaults(Strict):
    """Per-target overrides of the runbook's targets, used by every entry that sets no threshold."""

    latency_ms: MaxMs = Threshold(critical=RUNBOOK_LATENCY_MS)
    error_percent: MaxPercent = Threshold(critical=RUNBOOK_ERROR_PERCENT)
    cache_hit_percent: MinPercent = Threshold(critical=RUNBOOK_CACHE_HIT_PERCENT)
    rate_limit_block_percent: MaxPercent = Threshold(critical=RUNBOOK_RATE_LIMIT_BLOCK_PERCENT)


# -- SLO entries: what they measure ------------------------------------------------------------------
class Entry(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    description: str = ""


class LatencyBase(Entry):
    """A latency quantile from a histogram (seconds), judged in milliseconds."""

    histogram: str = Field(default="http_request_duration_seconds", pattern=METRIC_NAME)
    quantile: float = Field(default=0.95, gt=0, lt=1)
    max_ms: MaxMs | None = None

    @field_validator("histogram")
    @classmethod
    def _base_name(cls, value: str) -> str:
        return value.removesuffix("_bucket")

    @property
    def label(self) -> str:
        return f"p{self.quantile * 100:g} latency"


class StatusRatioBase(Entry):
    """Requests whose status label matches ``status`` (a regex), as a percentage of all requests."""

    counter: str = Field(default="http_requests_total", pattern=METRIC_NAME)
    status_label: str = Field(default="status", pattern=LABEL_NAME)
    status: str = "5.."
    max_percent: MaxPercent | None = None

    @field_validator("status")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"status is not a valid regular expression ({exc})") from None
        if '"' in value or "\\" in value:
            raise ValueError("status must not contain quotes or backslashes")
        return value


class ErrorRateBase(StatusRatioBase):
    status: str = "5.."


class RateLimitBase(StatusRatioBase):
    status: str = "429"


class CacheBase(Entry):
    """Cache hits as a percentage of lookups (hits + misses), from two counters."""

    hits: str = Field(default="cache_hits_total", pattern=METRIC_NAME)
    misses: str = Field(default="cache_misses_total", pattern=METRIC_NAME)
    min_percent: MinPercent | None = None


class GaugeBase(Entry):
    """A gauge (e.g. active WebSocket connections) against a cap."""

    metric: str = Field(pattern=METRIC_NAME)
    aggregate: Literal["max", "sum"] = "max"
    max: AtMost


class Bounded(Entry):
    """Exactly one of ``max`` (larger is worse) or ``min`` (smaller is worse)."""

    max: AtMost | None = None
    min: AtLeast | None = None
    unit: str = ""

    @model_validator(mode="after")
    def _one_bound(self) -> Bounded:
        if (self.max is None) == (self.min is None):
            raise ValueError("set exactly one of 'max' (larger is worse) or 'min' (smaller is worse)")
        return self

    @property
    def direction(self) -> Literal["at_most", "at_least"]:
        return "at_most" if self.max is not None else "at_least"

    @property
    def threshold(self) -> Threshold:
        bound = self.max if self.max is not None else self.min
        assert bound is not None
        return bound


# -- Prometheus flavour: PromQL selector + rate() window ---------------------------------------------
class PromScoped(Strict):
    selector: str | None = None
    window: str | None = Field(default=None, pattern=DURATION)

    @field_validator("selector")
    @classmethod
    def _matchers(cls, value: str | None) -> str | None:
        return _check_selector(value)


class PromLatency(LatencyBase, PromScoped):
    """``histogram_quantile(q, sum by (le) (rate(<histogram>_bucket{selector}[window])))``."""


class PromErrorRate(ErrorRateBase, PromScoped):
    """``sum(rate(counter{selector, status=~"5.."}[w])) / sum(rate(counter{selector}[w]))``."""


class PromRateLimit(RateLimitBase, PromScoped):
    """``sum(rate(counter{selector, status=~"429"}[w])) / sum(rate(counter{selector}[w]))``."""


class PromCache(CacheBase, PromScoped):
    """``sum(rate(hits[w])) / (sum(rate(hits[w])) + sum(rate(misses[w])))`` (a missing counter counts 0)."""


class PromGauge(GaugeBase, PromScoped):
    """``max(metric{selector})`` (or ``sum``) against ``max``."""


class PromQuery(Bounded):
    """A custom PromQL query: every series it returns is judged; the worst one decides."""

    query: str

    @field_validator("query")
    @classmethod
    def _promql(cls, value: str) -> str:
        return _check_promql(value, "query")


class SloTarget(Target):
    """Common to both sections: the SLO lists and the per-target threshold overrides."""

    slo_defaults: SloDefaults = Field(default_factory=SloDefaults)
    request_headers: dict[str, str | HeaderValue] = Field(default_factory=dict)
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")

    LISTS: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _unique_entry_names(self) -> SloTarget:
        for key in self.LISTS:
            seen: set[str] = set()
            for index, entry in enumerate(getattr(self, key) or []):
                if entry.name in seen:
                    raise ValueError(f"{key}[{index}].name: duplicate name {entry.name!r}")
                seen.add(entry.name)
        return self

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        ours = self.slo_defaults
        for latency in getattr(self, "latency", None) or []:
            if latency.max_ms is None:
                latency.max_ms = ours.latency_ms
        for errors in getattr(self, "error_rate", None) or []:
            if errors.max_percent is None:
                errors.max_percent = ours.error_percent
        for blocks in getattr(self, "rate_limit_block_rate", None) or []:
            if blocks.max_percent is None:
                blocks.max_percent = ours.rate_limit_block_percent
        for cache in getattr(self, "cache_hit_ratio", None) or []:
            if cache.min_percent is None:
                cache.min_percent = ours.cache_hit_percent


class PrometheusTarget(SloTarget):
    """A Prometheus HTTP API and the SLOs to judge with PromQL."""

    LISTS: ClassVar[tuple[str, ...]] = (
        "latency", "error_rate", "cache_hit_ratio", "rate_limit_block_rate", "gauges", "queries"
    )

    url: HttpUrl = Field(pattern=r"^https?://")
    selector: str | None = None
    window: str = Field(default="5m", pattern=DURATION)
    up_selector: str | None = None
    latency: list[PromLatency] = Field(default_factory=list)
    error_rate: list[PromErrorRate] = Field(default_factory=list)
    cache_hit_ratio: list[PromCache] = Field(default_factory=list)
    rate_limit_block_rate: list[PromRateLimit] = Field(default_factory=list)
    gauges: list[PromGauge] = Field(default_factory=list)
    queries: list[PromQuery] = Field(default_factory=list)

    @field_validator("selector", "up_selector")
    @classmethod
    def _matchers(cls, value: str | None) -> str | None:
        return _check_selector(value)

    def scope(self, entry: PromScoped) -> tuple[str | None, str]:
        """The entry's label matchers (target's + its own) and its rate() window."""
        matchers = ", ".join(s for s in (self.selector, entry.selector) if s) or None
        return matchers, entry.window or self.window


# -- direct scrape flavour: exact label matches, interval or lifetime ----------------------------------
class ScrapeScoped(Strict):
    labels: dict[str, str] = Field(default_factory=dict)
    over: Literal["interval", "lifetime"] = "interval"


class ScrapeLatency(LatencyBase, ScrapeScoped):
    """Quantile of the histogram's buckets (their increase between the scrapes, or totals)."""


class ScrapeErrorRate(ErrorRateBase, ScrapeScoped):
    """Increase of ``counter{status=~"5.."}`` over increase of ``counter`` between the scrapes."""


class ScrapeRateLimit(RateLimitBase, ScrapeScoped):
    """Increase of ``counter{status=~"429"}`` over increase of ``counter`` between the scrapes."""


class ScrapeCache(CacheBase, ScrapeScoped):
    """Increase of hits over increase of hits + misses between the scrapes."""


class ScrapeGauge(GaugeBase):
    """A gauge's value at the second scrape (``max`` or ``sum`` over matching series)."""

    labels: dict[str, str] = Field(default_factory=dict)


class ScrapeCounter(Bounded):
    """A counter's per-second rate between the two scrapes (e.g. an error counter)."""

    metric: str = Field(pattern=METRIC_NAME)
    labels: dict[str, str] = Field(default_factory=dict)
    unit: str = "/s"


class MetricsTarget(SloTarget):
    """A ``/metrics`` endpoint scraped directly (no Prometheus in between)."""

    LISTS: ClassVar[tuple[str, ...]] = (
        "latency", "error_rate", "cache_hit_ratio", "rate_limit_block_rate", "gauges", "counters"
    )

    url: HttpUrl = Field(pattern=r"^https?://")
    interval_s: float = Field(default=2.0, gt=0, le=120)
    labels: dict[str, str] = Field(default_factory=dict)
    latency: list[ScrapeLatency] = Field(default_factory=list)
    error_rate: list[ScrapeErrorRate] = Field(default_factory=list)
    cache_hit_ratio: list[ScrapeCache] = Field(default_factory=list)
    rate_limit_block_rate: list[ScrapeRateLimit] = Field(default_factory=list)
    gauges: list[ScrapeGauge] = Field(default_factory=list)
    counters: list[ScrapeCounter] = Field(default_factory=list)

    @model_validator(mode="after")
    def _interval_within_timeout(self) -> MetricsTarget:
        if self.timeout_s is not None and self.interval_s >= self.timeout_s:
            raise ValueError(
                f"interval_s ({self.interval_s:g}) must be shorter than timeout_s ({self.timeout_s:g}): "
                "both scrapes happen within the timeout"
            )
        return self

    def labels_for(self, entry_labels: dict[str, str]) -> dict[str, str]:
        """The target's labels overlaid with the entry's."""
        return {**self.labels, **entry_labels}


section("prometheus", PrometheusTarget, system="slo",
        doc="SLOs judged with PromQL against a Prometheus HTTP API (latency, errors, cache, rate limits)")
section("metrics", MetricsTarget, system="slo",
        doc="SLOs judged from a service's own /metrics endpoint, scraped twice (no Prometheus needed)")
