"""Windows of evidence: a policy item may require checks judged over several samples, not one snapshot.

An item with ``min_samples`` and/or ``min_window_minutes`` holds the release when any of its verified
checks was judged on fewer samples, or over a shorter span, than it asks (a run without ``--samples``
is one sample over 0 minutes). The checklist line shows the window the evidence had::

    - name: Latency within budget
      checks: [test_endpoint_answers_within_latency_budget]
      min_samples: 5
      min_window_minutes: 4
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsverify.results import CheckRecord

if TYPE_CHECKING:
    from opsverify.gate.decide import Problem
    from opsverify.gate.policy import Item


def window_of(record: CheckRecord) -> tuple[int, float]:
    """How many samples ``record`` was judged on and over how many minutes (1 and 0: a snapshot)."""
    window = record.window or {}
    return int(window.get("samples") or 1), float(window.get("window_s") or 0.0) / 60


def wanted(item: Item) -> str:
    """What the item asks for, in words (``at least 5 samples over at least 4 min``)."""
    parts = []
    if item.min_samples:
        parts.append(f"at least {item.min_samples} samples")
    if item.min_window_minutes:
        parts.append(f"over at least {item.min_window_minutes:g} min")
    return " ".join(parts)


def _shown(samples: int, minutes: float) -> str:
    return "a single snapshot" if samples <= 1 else f"{samples} samples over {minutes:.1f} min"


def window_problems(item: Item, verified: list[CheckRecord], label: dict[str, str]) -> list[Problem]:
    """A ``window`` problem for each verified check whose window is smaller than the item asks."""
    from opsverify.gate.decide import Problem

    if not (item.min_samples or item.min_window_minutes):
        return []
    found = []
    for record in verified:
        samples, minutes = window_of(record)
        if samples < (item.min_samples or 0) or minutes < (item.min_window_minutes or 0):
            found.append(Problem(
                "window",
                f"{label[record.nodeid]}: judged on {_shown(samples, minutes)}, the policy needs {wanted(item)} "
                f"— run with --samples N --interval S (or an analysis: block) spanning the window",
                record.check, record.target, record,
            ))
    return found


def window_summary(item: Item, verified: list[CheckRecord]) -> str:
    """The checklist's note on the window the item's evidence had (empty when the item asks none)."""
    if not (item.min_samples or item.min_window_minutes) or not verified:
        return ""
    samples, minutes = min(window_of(r) for r in verified)
    return f"window {_shown(samples, minutes)} (needs {wanted(item)})"
