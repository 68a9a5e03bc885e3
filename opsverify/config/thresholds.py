"""Warn / critical thresholds (natscli style).

A threshold is written as a number (the critical level) or as ``{warn: W, critical: C}``. Whether a
larger value is worse (latency, lag, age) or better (days to expiry, partitions) is decided by the
check, which calls :meth:`Threshold.judge_at_most` or :meth:`Threshold.judge_at_least`.

Example::

    Threshold.model_validate({"warn": 30, "critical": 14}).judge_at_least(20)   # -> "warn"
    Threshold.model_validate(400).judge_at_most(512)                             # -> "critical"

A threshold field of a config model says how it is judged and what its unit allows, with one of the
annotated types below (``max_latency_ms: MaxMs | None``): levels must be finite numbers within the
unit's range, and a warning must come before the failure in the direction the check judges
(``{warn: 300, critical: 400}`` for a latency, ``{warn: 30, critical: 14}`` for days to expiry).
A threshold that can never fail (``.nan``, ``.inf``, ``min_days: -30``) is a usage error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

Level = Literal["ok", "warn", "critical"]


class Threshold(BaseModel):
    """A failing (``critical``) level and an optional earlier ``warn`` level."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    warn: float | None = None
    critical: float

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        if isinstance(data, bool) or (isinstance(data, dict) and any(isinstance(v, bool) for v in data.values())):
            raise ValueError("a threshold is a number or {warn: W, critical: C}, not true/false")
        if isinstance(data, (int, float)):
            return {"critical": data}
        return data

    def judge_at_most(self, value: float) -> Level:
        """Larger is worse: fail above ``critical``, warn above ``warn``."""
        if value > self.critical:
            return "critical"
        if self.warn is not None and value > self.warn:
            return "warn"
        return "ok"

    def judge_at_least(self, value: float) -> Level:
        """Smaller is worse: fail below ``critical``, warn below ``warn``."""
        if value < self.critical:
            return "critical"
        if self.warn is not None and value < self.warn:
            return "warn"
        return "ok"

    def describe(self, unit: str = "") -> str:
        suffix = f" {unit}" if unit else ""
        if self.warn is None:
            return f"{self.critical:g}{suffix}"
        return f"{self.critical:g}{suffix} (warn {self.warn:g}{suffix})"


Direction = Literal["at_most", "at_least"]


@dataclass(frozen=True)
class Judged:
    """How a threshold field is judged, and the range its unit allows (a pydantic after-validator).

    ``Judged("at_most", "ms", high=3_600_000)``: larger is worse, levels from 0 to an hour.
    """

    direction: Direction
    unit: str = ""
    low: float | None = 0.0
    high: float | None = None

    def __call__(self, value: Threshold | None) -> Threshold | None:
        if value is None:
            return None
        for name, level in (("critical", value.critical), ("warn", value.warn)):
            if level is None:
                continue
            if not math.isfinite(level):
                raise ValueError(f"{name} must be a finite number")
            if (self.low is not None and level < self.low) or (self.high is not None and level > self.high):
                raise ValueError(f"{name} {self.show(level)} is outside {self.describe_range()}")
        if value.warn is not None:
            warn, critical = self.show(value.warn), self.show(value.critical)
            if self.direction == "at_most" and value.warn > value.critical:
                raise ValueError(f"warn {warn} is above critical {critical}: larger is worse here, "
                                 "so the warning level must be the lower one")
            if self.direction == "at_least" and value.warn < value.critical:
                raise ValueError(f"warn {warn} is below critical {critical}: smaller is worse here, "
                                 "so the warning level must be the higher one")
        return value

    def show(self, level: float) -> str:
        """A level in this rule's unit, for messages (durations in readable units)."""
        if self.unit == "s":
            from opsverify.durations import human_duration

            return human_duration(level)
        return f"{level:g} {self.unit}" if self.unit else f"{level:g}"

    def describe_range(self) -> str:
        """The levels this rule allows, for messages (``0..100 %``)."""
        if self.low is not None and self.high is not None:
            return f"{self.show(self.low)}..{self.show(self.high)}"
        if self.low is not None:
            return f">= {self.show(self.low)}"
        return f"<= {self.show(self.high)}" if self.high is not None else "any finite number"


DAY_MS = 86_400_000.0
CENTURY_DAYS = 36_500.0
COUNT_MAX = float(2**53)  # every integer up to here is exact in a float

MaxMs = Annotated[Threshold, AfterValidator(Judged("at_most", "ms", high=DAY_MS))]
"""A latency budget in milliseconds (larger is worse)."""
MaxDays = Annotated[Threshold, AfterValidator(Judged("at_most", "days", high=CENTURY_DAYS))]
"""An age limit in days (larger is worse)."""
MinDays = Annotated[Threshold, AfterValidator(Judged("at_least", "days", high=CENTURY_DAYS))]
"""Days that must be left before expiry (smaller is worse)."""
MaxMinutes = Annotated[Threshold, AfterValidator(Judged("at_most", "min", high=CENTURY_DAYS * 1440))]
"""A time limit in minutes (larger is worse)."""
MaxCount = Annotated[Threshold, AfterValidator(Judged("at_most", "", high=COUNT_MAX))]
"""A count that must stay low: lag, pending messages, restarts (larger is worse)."""
MaxPercent = Annotated[Threshold, AfterValidator(Judged("at_most", "%", high=100.0))]
"""A percentage that must stay low: error rate, blocked requests (larger is worse)."""
MinPercent = Annotated[Threshold, AfterValidator(Judged("at_least", "%", high=100.0))]
"""A percentage that must stay high: cache hits (smaller is worse)."""
AtMost = Annotated[Threshold, AfterValidator(Judged("at_most", low=None))]
"""A limit on a value of any unit, possibly negative (larger is worse)."""
AtLeast = Annotated[Threshold, AfterValidator(Judged("at_least", low=None))]
"""A floor on a value of any unit, possibly negative (smaller is worse)."""


def judged_by(annotation: Any) -> Judged | None:
    """The :class:`Judged` rule in a field annotation (``MaxMs | None`` -> its rule), else ``None``."""
    from typing import get_args

    for meta in getattr(annotation, "__metadata__", ()):
        rule = getattr(meta, "func", None)
        if isinstance(rule, Judged):
            return rule
    for arg in get_args(annotation):
        found = judged_by(arg)
        if found is not None:
            return found
    return None
