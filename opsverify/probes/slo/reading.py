"""The reading every SLO probe returns (:class:`SloReading`: the value against the objective),
and the bounded HTTP GET both sources of SLO values (Prometheus, a metrics endpoint) use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from opsverify.config.slo import SloTarget
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


def _entry(ctx: ProbeContext[Any], field_name: str) -> Any:
    """The SLO entry this per-item probe is for, looked up in its own list (names repeat across lists)."""
    for entry in getattr(ctx.target, field_name):
        if entry.name == ctx.key.item:
            return entry
    raise UnexpectedResponse(f"no {field_name} entry named {ctx.key.item!r}")


def _labels(labels: dict[str, str], empty: str = "") -> str:
    """``{a="1", b="2"}`` (``empty`` when there are no labels)."""
    if not labels:
        return empty
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
