"""The one result record type, and the run it belongs to (the shape of ``summary.json``).

Each check produces one :class:`CheckRecord` (built from its setup/call/teardown reports). The
gate and every writer read these; ``summary.json`` is their serialized form::

    {"schema": "opsverify.summary/1", "run": {...}, "totals": {...}, "checks": [CheckRecord, ...]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["passed", "failed", "error", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "skipped")
SCHEMA = "opsverify.summary/1"


@dataclass
class Measured:
    """A number a check measured and the threshold it was judged against."""

    name: str
    value: float
    unit: str = ""
    warn: float | None = None
    critical: float | None = None
    direction: Literal["at_most", "at_least"] = "at_most"
    level: Literal["ok", "warn", "critical"] = "ok"
    detail: dict[str, Any] | None = None  # e.g. a latency's samples, spread, checker lag and phases


@dataclass
class CheckRecord:
    """Everything known about one check run against one target."""

    nodeid: str
    check: str
    outcome: Outcome
    env: str | None = None
    target: str | None = None
    item: str | None = None
    system: str | None = None
    message: str = ""
    duration_s: float = 0.0
    markers: list[str] = field(default_factory=list)
    runbook: dict[str, str] | None = None
    measured: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    safety: str = "read_only"
    severity: str | None = None
    phase: str | None = None
    attempts: int = 1  # evaluations under --until-pass (1 otherwise)
    green_at: str | None = None  # UTC time it was first seen passing in a --until-pass wait
    green_after_s: float | None = None  # seconds into the wait it was first seen passing
    window: dict[str, Any] | None = None  # an analysis window: samples, interval, limits, each sample's outcome

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class RunInfo:
    """Facts about the run as a whole."""

    environments: list[str]
    started_at: str
    finished_at: str = ""
    opsverify_version: str = ""
    git_commit: str | None = None
    args: list[str] = field(default_factory=list)
    phase: str | None = None
    run_id: str = ""
    credentials: list[dict[str, Any]] = field(default_factory=list)  # opsverify.inventory rows the run read
    wait: dict[str, Any] | None = None  # --until-pass: deadline, interval, attempts, how it ended
    analysis: dict[str, Any] | None = None  # --samples / analysis: the window every read-only check was judged on


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def totals(records: list[CheckRecord]) -> dict[str, int]:
    counts: dict[str, int] = {outcome: 0 for outcome in OUTCOMES}
    for record in records:
        counts[record.outcome] += 1
    counts["total"] = len(records)
    counts["warnings"] = sum(1 for r in records if r.warnings)
    return counts


def summary_document(run: RunInfo, records: list[CheckRecord]) -> dict[str, Any]:
    """The ``summary.json`` document."""
    return {
        "schema": SCHEMA,
        "run": asdict(run),
        "totals": totals(records),
        "checks": [r.to_dict() for r in sorted(records, key=lambda r: r.nodeid)],
    }


def load_summary(path: Path) -> tuple[dict[str, Any], list[CheckRecord]]:
    """Read a ``summary.json``; raises ``ValueError`` with a one-line reason when it is not one."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not an opsverify summary (schema {SCHEMA} expected)")
    try:
        records = [CheckRecord.from_dict(c) for c in data["checks"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed checks list ({exc})") from None
    return data, records
