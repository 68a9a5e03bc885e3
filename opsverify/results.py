"""The one result record type, and the run it belongs to (the shape of ``summary.json``).

Each check produces one :class:`CheckRecord` (built from its setup/call/teardown reports). The
gate and every writer read these; ``summary.json`` is their serialized form::

    {"schema": "opsverify.summary/2", "run": {...}, "totals": {...}, "checks": [CheckRecord, ...],
     "integrity": {...}}

``run.ended`` says how the pytest session ended (:func:`run_ending`): the gate promotes only on a
run that completed. ``integrity`` is the seal the gate recomputes (:mod:`opsverify.integrity`).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Outcome = Literal["passed", "failed", "error", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "skipped")
SCHEMA = "opsverify.summary/2"


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
    facts: dict[str, Any] = field(default_factory=dict)  # what the check noted besides numbers (expect.fact)
    safety: str = "read_only"
    severity: str | None = None
    phase: str | None = None
    attempts: int = 1  # evaluations under --until-pass (1 otherwise)
    green_at: str | None = None  # UTC time it was first seen passing in a --until-pass wait
    green_after_s: float | None = None  # seconds into the wait it was first seen passing
    window: dict[str, Any] | None = None  # an analysis window: samples, interval, limits, each sample's outcome
    failure: dict[str, Any] | None = None  # a CheckFailed's parts: target, expected, actual, step (runbook id)
    error: dict[str, Any] | None = None  # a CouldNotVerify's parts: type, where (the address), phase (doing what)

    def to_dict(self) -> dict[str, Any]:
        """A copy as plain JSON-like data (what ``summary.json`` holds for it)."""
        return {name: _copied(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


_ATOMIC = (str, int, float, bool, type(None))


def _copied(value: Any) -> Any:
    """``value`` copied as ``dataclasses.asdict`` copies a field, at a fraction of its cost for a
    record's JSON-like data: numbers and strings are kept (asdict deep-copies each one, one call at a
    time), lists and mappings copied at every depth, anything else deep-copied."""
    if isinstance(value, _ATOMIC):
        return value
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if type(value) is tuple:
        return tuple(_copied(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return copy.deepcopy(value)


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
    ended: dict[str, Any] = field(default_factory=dict)  # run_ending(): how the pytest session ended


ENDINGS: dict[int, str] = {0: "completed", 1: "completed", 2: "interrupted", 3: "internal_error",
                           4: "usage_error", 5: "no_checks"}
"""pytest's exit status -> ``run.ended.status`` (1, checks failed, is a run that completed)."""


def run_ending(exit_status: int, checks: int, stopped_early: str | None = None) -> dict[str, Any]:
    """How a session ended, for ``run.ended``: ``{"exit_status": 4, "status": "not_started", ...}``.

    ``status`` is ``completed`` only for exit 0 or 1 with no early stop (``-x``, ``--maxfail``);
    a usage error or an interruption before any check ran is ``not_started``.
    """
    status = ENDINGS.get(int(exit_status), "unknown")
    if status in ("interrupted", "usage_error") and checks == 0:
        status = "not_started"
    elif status == "completed" and stopped_early:
        status = "stopped_early"
    return {"exit_status": int(exit_status), "status": status, "checks": checks, "stopped_early": stopped_early}


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


MAX_SUMMARY_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 64


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", defer_build=True)  # built when a summary is read


class _RecordShape(_Shape):
    nodeid: str = Field(min_length=1)
    check: str = Field(min_length=1)
    outcome: Outcome
    env: str | None = None
    target: str | None = None
    item: str | None = None
    system: str | None = None
    message: str = ""
    duration_s: float = 0.0
    markers: list[str] = Field(default_factory=list)
    runbook: dict[str, str | None] | None = None
    measured: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    safety: str = "read_only"
    severity: str | None = None
    phase: str | None = None


class _RunShape(_Shape):
    environments: list[str]
    started_at: str
    finished_at: str = ""
    git_commit: str | None = None
    run_id: str = ""
    ended: dict[str, Any] | None = None


class _SummaryShape(_Shape):
    run: _RunShape
    totals: dict[str, int]
    checks: list[_RecordShape]
    integrity: dict[str, Any] | None = None


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text or "(top level)"


def load_summary(path: Path) -> tuple[dict[str, Any], list[CheckRecord]]:
    """Read a ``summary.json``; raises ``ValueError`` with a one-line reason (naming the key) when it
    is not one: unreadable, not JSON, too deep, another schema, or a value of the wrong type."""
    try:
        if path.stat().st_size > MAX_SUMMARY_BYTES:
            raise ValueError(f"{path}: larger than {MAX_SUMMARY_BYTES // 2**20} MiB")
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ValueError(f"{path}: nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        seen = f", found {str(found)[:40]!r}" if found else ""
        raise ValueError(f"{path}: not an opsverify summary (schema {SCHEMA} expected{seen})")
    if _depth(data) > MAX_DEPTH:
        raise ValueError(f"{path}: nested more than {MAX_DEPTH} levels deep")
    try:
        _SummaryShape.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = re.sub(r" or instance of \w+", "", str(first.get("msg", "invalid value")))
        if first.get("type") == "missing":
            message = "required key is missing"
        raise ValueError(f"{path}: {_where(tuple(first.get('loc', ())))}: {message}") from None
    return data, [CheckRecord.from_dict(c) for c in data["checks"]]
