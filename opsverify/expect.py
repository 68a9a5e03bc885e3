"""Assertion helpers for checks: every failure states target, expected, actual and action.

A check receives the ``expect`` fixture, bound to its target and runbook step::

    def test_vault_is_unsealed(vault_seal_status, expect):
        expect.that(
            not vault_seal_status.sealed,
            expected="unsealed",
            actual=f"sealed (unseal progress {vault_seal_status.progress}/{vault_seal_status.threshold})",
        )

Failure message (the action defaults to the runbook step's action)::

    staging-vault: expected unsealed, got sealed (unseal progress 1/3) — Unseal with 3 of 5 key
    shares ... [runbook vault#sealed]

Thresholds with a warning level pass past ``warn`` and record a warning; past ``critical`` they fail.
Every measured value is recorded for the reports (``measured`` in ``summary.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from opsverify.config.thresholds import Threshold
from opsverify.errors import CheckerOverloaded, CheckFailed
from opsverify.net.sampling import LatencyReading
from opsverify.results import Measured
from opsverify.runbooks import Step


@dataclass
class CheckNotes:
    """What a check recorded while running (attached to its report)."""

    measured: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


class Expect:
    """Assertions bound to one check run (its target label and runbook step)."""

    def __init__(self, label: str, step: Step | None, notes: CheckNotes) -> None:
        self.label = label
        self.step = step
        self.notes = notes

    # -- failing ---------------------------------------------------------------------------------
    def fail(self, *, expected: str, actual: str, action: str | None = None) -> NoReturn:
        """Fail the check with the standard message (its parts kept on the :class:`CheckFailed`)."""
        __tracebackhide__ = True
        raise CheckFailed(self.message(expected=expected, actual=actual, action=action), expected=expected,
                          actual=actual, target=self.label, step=self.step.id if self.step else None)

    def message(self, *, expected: str, actual: str, action: str | None = None) -> str:
        todo = action or (self.step.action if self.step else "")
        text = f"{self.label}: expected {expected}, got {actual}"
        if todo:
            text += f" — {todo}"
        if self.step:
            text += f" [runbook {self.step.id}]"
        return text

    def that(self, condition: bool, *, expected: str, actual: str, action: str | None = None) -> None:
        """Fail unless ``condition`` holds."""
        __tracebackhide__ = True
        if not condition:
            self.fail(expected=expected, actual=actual, action=action)

    def equal(self, actual: Any, expected: Any, *, what: str, action: str | None = None) -> None:
        """Fail unless ``actual == expected``."""
        __tracebackhide__ = True
        if actual != expected:
            self.fail(expected=f"{what} {expected!r}", actual=repr(actual), action=action)

    # -- thresholds ------------------------------------------------------------------------------
    def at_most(
        self,
        value: float,
        threshold: Threshold | float,
        *,
        what: str,
        unit: str = "",
        action: str | None = None,
    ) -> None:
        """Larger is worse: fail above ``critical``, record a warning above ``warn``."""
        __tracebackhide__ = True
        self._judge(value, _threshold(threshold), what, unit, action, "at_most")

    def at_least(
        self,
        value: float,
        threshold: Threshold | float,
        *,
        what: str,
        unit: str = "",
        action: str | None = None,
    ) -> None:
        """Smaller is worse: fail below ``critical``, record a warning below ``warn``."""
        __tracebackhide__ = True
        self._judge(value, _threshold(threshold), what, unit, action, "at_least")

    def latency_at_most(
        self, reading: LatencyReading, threshold: Threshold | float, *, what: str, action: str | None = None
    ) -> None:
        """Judge a latency reading (median of samples the engine vouches for) against ``threshold``.

        Without a single trusted sample (the checker's loop lagged through all of them) the reading
        only bounds the truth: it passes when even the upper bound is within ``critical``, fails
        when even the lower bound (the lag taken off) is past it, and otherwise errors with
        :class:`CheckerOverloaded` instead of blaming the service.
        """
        __tracebackhide__ = True
        limit = _threshold(threshold)
        value = round(reading.value_ms, 2)
        if reading.vouched:
            self._judge(value, limit, what, "ms", action, "at_most", detail=reading.detail())
            return
        lower = round(reading.lower_ms, 2)
        lag = f"the checker's loop ran up to {reading.worst_lag_ms:,.0f} ms late during each sample"
        if value <= limit.critical:
            warned = limit.warn is not None and lower > limit.warn
            self.record(what, value, unit="ms", threshold=limit, level="warn" if warned else "ok",
                        detail={**reading.detail(), "bound": "upper"})
            if warned:
                self.warn(f"{what} is at least {_fmt(lower, 'ms')}, past the warning level {_fmt(limit.warn or 0, 'ms')}")
            return
        if lower > limit.critical:
            self.record(what, lower, unit="ms", threshold=limit, level="critical",
                        detail={**reading.detail(), "bound": "lower"})
            held = f"up to {reading.worst_held_ms:,.0f} ms of each sample was the checker's own loop running late"
            self.fail(expected=f"{what} <= {_fmt(limit.critical, 'ms')}",
                      actual=f"at least {_fmt(lower, 'ms')} ({held}, not counted)", action=action)
        raise CheckerOverloaded(
            f"{self.label}: the checker was overloaded: {lag} of {len(reading.samples)} samples of {reading.what} "
            f"(read {_fmt(lower, 'ms')} to {_fmt(value, 'ms')}, budget {_fmt(limit.critical, 'ms')}), so it cannot "
            "tell whether the service is within budget — rerun with fewer probes at once (--probe-concurrency) "
            "or on a less busy machine"
        )

    def _judge(
        self, value: float, threshold: Threshold, what: str, unit: str, action: str | None, direction: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        __tracebackhide__ = True
        level = threshold.judge_at_most(value) if direction == "at_most" else threshold.judge_at_least(value)
        self.record(what, value, unit=unit, threshold=threshold, direction=direction, level=level, detail=detail)
        shown = _fmt(value, unit)
        bound = "<=" if direction == "at_most" else ">="
        if level == "critical":
            self.fail(
                expected=f"{what} {bound} {_fmt(threshold.critical, unit)}", actual=shown, action=action
            )
        if level == "warn" and threshold.warn is not None:
            self.warn(f"{what} is {shown}, past the warning level {_fmt(threshold.warn, unit)}")

    # -- recording -------------------------------------------------------------------------------
    def record(
        self,
        name: str,
        value: float,
        *,
        unit: str = "",
        threshold: Threshold | None = None,
        direction: str = "at_most",
        level: str = "ok",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record a measured value for the reports (and the Prometheus textfile)."""
        measured = Measured(
            name=name,
            value=float(value),
            unit=unit,
            warn=threshold.warn if threshold else None,
            critical=threshold.critical if threshold else None,
            direction=direction,  # type: ignore[arg-type]
            level=level,  # type: ignore[arg-type]
            detail=detail,
        )
        self.notes.measured.append(asdict(measured))

    def warn(self, text: str) -> None:
        """Record a warning: the check still passes; the gate's policy decides what it means."""
        self.notes.warnings.append(f"{self.label}: {text}")

    def fact(self, key: str, value: Any) -> None:
        """Record a non-numeric fact for the reports (e.g. the rotation phase verified)."""
        self.notes.facts[key] = value


def _threshold(value: Threshold | float) -> Threshold:
    return value if isinstance(value, Threshold) else Threshold(critical=float(value))


def _fmt(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value % 1 else f"{value:g}"
    return f"{text} {unit}".rstrip() if unit else text
