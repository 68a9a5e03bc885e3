"""Identical outcomes grouped: one entry per check and message, listing the targets it happened on.

Two records are *identical* when they are the same check with the same outcome and the same message
once their target label (``staging-gateway``) is taken out of it. A hundred gateways answering 500
then read as one entry naming the hundred targets, with the range of what was measured on them.
Skips of checks whose section the environment does not configure collapse further: one line per
section with a count.

The console summary (:mod:`opsverify.console`), ``summary.md`` and the gate's checklist all group
with these functions, so they agree on what "the same failure" is.

Example::

    for group in group_records([r for r in records if r.outcome == "failed"]):
        print(group.check, group.targets, group.text, group.measured_range())
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from opsverify.results import CheckRecord

NOT_CONFIGURED = re.compile(r"^not configured: no (?P<section>\S+) target.* in (?P<envs>[^()]+)$")
TARGET = "‹target›"


def label_of(record: CheckRecord) -> str:
    """The record's target label, as the messages and test ids spell it: ``env-target[-item]``."""
    return "-".join(p for p in (record.env, record.target, record.item) if p)


def text_of(record: CheckRecord) -> str:
    """The record's message with its target label taken out (a leading ``label: `` is dropped)."""
    message = record.message or record.outcome
    label = label_of(record)
    if not label:
        return message
    message = message.removeprefix(f"{label}: ")
    return message.replace(label, TARGET)


@dataclass
class Group:
    """Records of one check that ended the same way with the same message."""

    check: str
    outcome: str
    text: str
    records: list[CheckRecord] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        """The target labels of the group's records, sorted."""
        return sorted(label_of(r) or r.nodeid for r in self.records)

    @property
    def first(self) -> CheckRecord:
        return self.records[0]

    def measured_range(self) -> str:
        """``"measured 3.2–9.8 d"`` over the group's records (first measure of each), or ``""``.

        Empty for a group of one (its message already says what was measured) or without measures.
        """
        if len(self.records) < 2:
            return ""
        values = [float(r.measured[0]["value"]) for r in self.records if r.measured]
        if not values:
            return ""
        unit = next(str(r.measured[0].get("unit") or "") for r in self.records if r.measured)
        low, high = min(values), max(values)
        shown = _fmt(low) if low == high else f"{_fmt(low)}–{_fmt(high)}"
        return f"measured {shown} {unit}".rstrip()


def group_records(records: Iterable[CheckRecord]) -> list[Group]:
    """Group ``records`` by (check, outcome, message without the target); in first-seen order of
    the records sorted by node id."""
    groups: dict[tuple[str, str, str], Group] = {}
    for record in sorted(records, key=lambda r: r.nodeid):
        text = text_of(record)
        key = (record.check, record.outcome, text)
        if key not in groups:
            groups[key] = Group(record.check, record.outcome, text)
        groups[key].records.append(record)
    return list(groups.values())


@dataclass
class UnconfiguredSection:
    """The checks skipped because the environment(s) configure no target of one section."""

    section: str
    envs: str
    records: list[CheckRecord] = field(default_factory=list)

    @property
    def line(self) -> str:
        """``"19 nats checks: not configured in staging"``."""
        noun = "check" if len(self.records) == 1 else "checks"
        return f"{len(self.records)} {self.section} {noun}: not configured in {self.envs}"


def split_skips(records: Iterable[CheckRecord]) -> tuple[list[UnconfiguredSection], list[Group]]:
    """Skipped records as (one entry per unconfigured section, groups of the other skips)."""
    sections: dict[tuple[str, str], UnconfiguredSection] = {}
    others: list[CheckRecord] = []
    for record in sorted(records, key=lambda r: r.nodeid):
        match = NOT_CONFIGURED.match(record.message or "")
        if record.outcome != "skipped" or match is None:
            others.append(record)
            continue
        key = (match["section"], match["envs"])
        if key not in sections:
            sections[key] = UnconfiguredSection(*key)
        sections[key].records.append(record)
    return sorted(sections.values(), key=lambda s: s.section), group_records(others)


def targets_text(targets: list[str], limit: int = 8) -> str:
    """``"staging-a, staging-b and 3 more"``: at most ``limit`` labels, then a count."""
    if len(targets) <= limit:
        return ", ".join(targets)
    return f"{', '.join(targets[:limit])} and {len(targets) - limit} more"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value % 1 else f"{value:g}"
