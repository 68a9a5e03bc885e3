"""Durations in check messages: readable units, and thresholds judged in seconds.

Example::

    human_duration(129600)  # "1 d 12 h"
    judge_duration(expect, token.ttl_s, target.min_ttl, what="token TTL left", at_least=True)
    # below critical it fails with: expected token TTL left >= 1 d, got 9 h 59 min
"""

from __future__ import annotations

import math
from typing import Any

from opsverify.config.thresholds import Threshold

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def human_duration(seconds: float) -> str:
    """``90 d``, ``2 d 4 h``, ``9 min 59 s``, ``45 s``, ``0.9 s`` (two units at most, never rounded up)."""
    if abs(seconds) < 60:
        tenths = math.floor(abs(seconds) * 10) / 10 * (1 if seconds >= 0 else -1)
        return f"{tenths:.1f}".rstrip("0").rstrip(".") + " s"
    sign, left = ("-" if seconds < 0 else ""), abs(seconds)
    for index, (unit, size) in enumerate(_UNITS[:-1]):
        if left >= size:
            big, rest = divmod(int(left), size)
            small_unit, small_size = _UNITS[index + 1]
            small = rest // small_size
            return f"{sign}{big} {unit}" + (f" {small} {small_unit}" if small else "")
    return f"{seconds:.0f} s"


def judge_duration(expect: Any, seconds: float, threshold: Threshold, *, what: str, at_least: bool = False,
                   note: str = "", metric: str | None = None) -> None:
    """Like ``expect.at_most`` (or ``expect.at_least``) for a duration, in readable units.

    The value is recorded in seconds under ``metric`` (default: ``what``); ``note`` follows the
    measured value in the failure and the warning.
    """
    __tracebackhide__ = True
    level = threshold.judge_at_least(seconds) if at_least else threshold.judge_at_most(seconds)
    direction = "at_least" if at_least else "at_most"
    expect.record(metric or what, seconds, unit="s", threshold=threshold, direction=direction, level=level)
    bound = ">=" if at_least else "<="
    if level == "critical":
        expect.fail(expected=f"{what} {bound} {human_duration(threshold.critical)}",
                    actual=f"{human_duration(seconds)}{note}")
    if level == "warn" and threshold.warn is not None:
        expect.warn(f"{what} is {human_duration(seconds)}, past the warning level {human_duration(threshold.warn)}{note}")


_SUFFIXES = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90``, ``10s``, ``500ms``, ``5m``, ``1.5h``; raises ``ValueError`` naming it."""
    raw = text.strip().lower()
    number, unit = raw, "s"
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if raw.endswith(suffix):
            number, unit = raw[: -len(suffix)].strip(), suffix
            break
    try:
        seconds = float(number) * _SUFFIXES[unit]
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (examples: 90, 10s, 500ms, 5m, 1h)") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds
