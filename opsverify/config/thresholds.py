"""Warn / critical thresholds (natscli style).

A threshold is written as a number (the critical level) or as ``{warn: W, critical: C}``. Whether a
larger value is worse (latency, lag, age) or better (days to expiry, partitions) is decided by the
check, which calls :meth:`Threshold.judge_at_most` or :meth:`Threshold.judge_at_least`.

Example::

    Threshold.model_validate({"warn": 30, "critical": 14}).judge_at_least(20)   # -> "warn"
    Threshold.model_validate(400).judge_at_most(512)                             # -> "critical"
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

Level = Literal["ok", "warn", "critical"]


class Threshold(BaseModel):
    """A failing (``critical``) level and an optional earlier ``warn`` level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn: float | None = None
    critical: float

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
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
