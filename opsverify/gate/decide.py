"""The gate's decision: read the evidence, judge it against the policy, fail closed.

Evidence is one or more ``summary.json`` files. A file holds the release (with a reason) when it is
missing, unreadable or corrupt, when its run did not finish, when it is older than the policy allows
(or from the future), when it does not cover the policy's environment, or when it was made for
another commit than the one being promoted. Then each checklist item is judged on the checks of the
policy's environment that it selects: a failed, errored (or, if the policy says so, skipped) check
blocks, and so does a required check or target with no verified result (*missing*). An active
waiver turns a blocking problem into a recorded, non-blocking one; an expired or malformed waiver
holds.

Decision and exit code: ``promote`` 0, ``hold`` 1, ``cannot_decide`` 2 (the policy cannot be read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from opsverify.gate.evidence import FUTURE_SKEW, Evidence, age_text, read_evidence
from opsverify.gate.evidence import iso as _iso
from opsverify.errors import SecretMissing
from opsverify.gate.policy import Item, Policy, Waiver
from opsverify.gate.windows import window_problems, window_summary
from opsverify.results import OUTCOMES, CheckRecord

Decision = Literal["promote", "hold", "cannot_decide"]
EXIT_CODES: dict[str, int] = {"promote": 0, "hold": 1, "cannot_decide": 2}
OTHER_ITEM = "Other checks in scope"


# -- patterns -------------------------------------------------------------------------------------
@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` are wildcards; everything else (``[``, ``]`` of node ids) is literal."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def glob_match(pattern: str, text: str | None) -> bool:
    return text is not None and _glob(pattern).match(text) is not None


def check_matches(pattern: str, record: CheckRecord) -> bool:
    """A pattern with ``::`` or ``/`` is a node-id glob; otherwise it matches the check id."""
    if "::" in pattern or "/" in pattern:
        return glob_match(pattern, record.nodeid)
    return glob_match(pattern, record.check)


# -- what the gate found ------------------------------------------------------------------------------
@dataclass
class Problem:
    """One thing that blocks an item (unless waived)."""

    kind: Literal["failed", "error", "skipped", "missing", "window"]
    text: str
    check: str
    target: str | None = None
    record: CheckRecord | None = None
    waiver: Waiver | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "text": self.text, "check": self.check,
                                "target": self.target, "waived": self.waiver is not None}
        if self.record is not None:
            data["nodeid"] = self.record.nodeid
            data["runbook"] = self.record.runbook
            data["severity"] = self.record.severity
        if self.waiver is not None:
            data["waiver"] = waiver_dict(self.waiver)
        return data


@dataclass
class ItemResult:
    """One checklist line: an item of the policy (or a line the gate adds itself)."""

    name: str
    status: Literal["passed", "failed", "waived", "manual"]
    summary: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[tuple[CheckRecord, str]] = field(default_factory=list)
    checks: list[CheckRecord] = field(default_factory=list)
    description: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [{"nodeid": r.nodeid, "text": t} for r, t in self.warnings],
            "checks": [{"nodeid": r.nodeid, "outcome": r.outcome} for r in self.checks],
            "notes": self.notes,
        }


@dataclass
class GateDecision:
    """The outcome of one gate evaluation."""

    policy: Policy | None
    policy_path: str
    now: datetime
    decision: Decision = "hold"
    reasons: list[str] = field(default_factory=list)
    items: list[ItemResult] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    waivers_used: list[Waiver] = field(default_factory=list)
    waivers_expired: list[Waiver] = field(default_factory=list)
    warning_count: int = 0
    commit: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def to_dict(self) -> dict[str, Any]:
        policy = self.policy
        return {
            "schema": "opsverify.gate/1",
            "decision": self.decision,
            "exit_code": self.exit_code,
            "decided_at": _iso(self.now),
            "policy": {
                "path": self.policy_path,
                "name": policy.name if policy else None,
                "environment": policy.environment if policy else None,
                "markers": policy.markers if policy else None,
                "max_age_minutes": policy.max_age_minutes if policy else None,
                "max_warnings": policy.max_warnings if policy else None,
                "block_on": policy.block_on if policy else None,
            },
            "commit": self.commit,
            "reasons": self.reasons,
            "items": [i.to_dict() for i in self.items],
            "evidence": [e.to_dict() for e in self.evidence],
            "warnings": self.warning_count,
            "waivers": {
                "used": [waiver_dict(w, self.now) for w in self.waivers_used],
                "expired": [waiver_dict(w, self.now) for w in self.waivers_expired],
                "unused": [waiver_dict(w, self.now) for w in self.waivers
                           if w not in self.waivers_used and w not in self.waivers_expired],
            },
        }


def waiver_dict(waiver: Waiver, now: datetime | None = None) -> dict[str, Any]:
    data = waiver.model_dump(mode="json")
    if now is not None:
        data["days_left"] = round(days_left(waiver, now), 1)
    return data


def days_left(waiver: Waiver, now: datetime) -> float:
    return (waiver.expires - now).total_seconds() / 86400


# -- evidence ---------------------------------------------------------------------------------------------
def _merged_records(evidence: list[Evidence], environment: str) -> list[CheckRecord]:
    """The policy environment's checks from every usable file; the newest run wins per node id."""
    newest: dict[str, tuple[datetime, CheckRecord]] = {}
    for item in evidence:
        if not item.usable or item.finished is None:
            continue
        for record in item.records:
            if record.env not in (environment, None):
                continue
            seen = newest.get(record.nodeid)
            if seen is None or item.finished >= seen[0]:
                newest[record.nodeid] = (item.finished, record)
    return [record for _, record in sorted(newest.values(), key=lambda pair: pair[1].nodeid)]


# -- items -------------------------------------------------------------------------------------------------
def _where(record: CheckRecord) -> str:
    return "-".join(p for p in (record.env, record.target, record.item) if p)


def _label(record: CheckRecord) -> str:
    where = _where(record)
    return f"`{record.check}` [{where}]" if where else f"`{record.check}`"


def _selects(item: Item, record: CheckRecord) -> bool:
    if not set(item.markers) <= set(record.markers):
        return False
    if item.systems and record.system not in item.systems:
        return False
    if item.checks and not any(check_matches(p, record) for p in item.checks):
        return False
    return not item.targets or any(glob_match(p, record.target) for p in item.targets)


def _waiver_for(problem: Problem, waivers: list[Waiver], environment: str) -> Waiver | None:
    for waiver in waivers:
        if waiver.environment != environment:
            continue
        if problem.record is not None:
            if not check_matches(waiver.check, problem.record):
                continue
            if waiver.target and not glob_match(waiver.target, problem.record.target):
                continue
            return waiver
        if not (glob_match(waiver.check, problem.check) or waiver.check == problem.check):
            continue
        if waiver.target and problem.target is not None and not glob_match(waiver.target, problem.target):
            continue
        return waiver
    return None


def _judge_item(
    name: str, item: Item | None, records: list[CheckRecord], policy: Policy, active: list[Waiver],
    in_scope: list[CheckRecord] | None = None,
) -> ItemResult:
    """One checklist line from the records the item selects (``in_scope``: to explain a missing one)."""
    verified = [r for r in records if r.outcome != "skipped"]
    problems: list[Problem] = []
    for record in records:
        if record.outcome in ("failed", "error") or (record.outcome == "skipped" and "skipped" in policy.block_on):
            message = record.message or record.outcome
            if _where(record) and message.startswith(f"{_where(record)}: "):
                message = message[len(_where(record)) + 2 :]
            problems.append(Problem(record.outcome, f"{_label(record)}: {message}",  # type: ignore[arg-type]
                                    record.check, record.target, record))
    if item is not None:
        for pattern in item.checks:
            if not any(check_matches(pattern, r) for r in verified):
                skipped = [r for r in (in_scope or records) if check_matches(pattern, r) and r.outcome == "skipped"]
                why = f" (only skipped: {skipped[0].message})" if skipped else ""
                problems.append(Problem("missing", f"no result for `{pattern}` in {policy.environment}{why}", pattern))
        for pattern in item.targets:
            if not any(glob_match(pattern, r.target) for r in verified):
                problems.append(Problem("missing", f"no verified check on target `{pattern}` in {policy.environment}",
                                        "*", pattern))
        if len(verified) < item.min_checks and not any(p.kind == "missing" for p in problems):
            problems.append(Problem(
                "missing",
                f"{len(verified)} verified check{'s' if len(verified) != 1 else ''} in {policy.environment}, "
                f"at least {item.min_checks} required",
                "*",
            ))
    if item is not None:
        problems += window_problems(item, verified, {r.nodeid: _label(r) for r in verified})
    for problem in problems:
        problem.waiver = _waiver_for(problem, active, policy.environment)
    counts = {o: sum(1 for r in records if r.outcome == o) for o in OUTCOMES}
    parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o]]
    missing = sum(1 for p in problems if p.kind == "missing")
    if missing:
        parts.append(f"{missing} missing")
    waived = sum(1 for p in problems if p.waiver is not None)
    if waived:
        parts.append(f"{waived} waived")
    window = window_summary(item, verified) if item is not None else ""
    if window:
        parts.append(window)
    blocking = [p for p in problems if p.waiver is None]
    status: Literal["passed", "failed", "waived"] = "failed" if blocking else "waived" if problems else "passed"
    warnings = [(r, text) for r in records for text in r.warnings]
    return ItemResult(
        name, status, ", ".join(parts) or "no checks", problems, warnings, records,
        item.description if item else "",
    )


# -- the decision ------------------------------------------------------------------------------------------
def decide(
    policy: Policy,
    results: list[Path],
    waivers: list[Waiver],
    now: datetime,
    *,
    commit: str | None = None,
    extra_reasons: list[str] | None = None,
    waiver_problems: list[str] | None = None,
) -> GateDecision:
    """Judge the results against the policy. Never raises for bad evidence: it holds instead.

    ``waivers`` are every waiver given (other environments' ones are recorded as unused);
    ``waiver_problems`` are the reasons a waivers file could not be used (each holds).
    """
    gate = GateDecision(policy, policy.source, now, waivers=list(waivers), commit=commit)
    reasons = gate.reasons

    # evidence
    held_by_evidence: list[str] = list(extra_reasons or [])
    if not results:
        held_by_evidence.append("no results given — run the checks first")
    key: tuple[str, str] | None = None
    if policy.evidence.key is not None:
        try:
            key = (policy.evidence.key.reveal(), policy.evidence.key.label)
        except SecretMissing as exc:
            held_by_evidence.append(f"unverifiable evidence: {exc} — the policy accepts only evidence signed with it")
    gate.evidence = [read_evidence(path, policy, now, commit, key) for path in results]
    held_by_evidence.extend(p for e in gate.evidence for p in e.problems)
    runs = [e for e in gate.evidence if e.usable]
    commits = {e.run.get("git_commit") for e in runs}
    if len(commits) > 1:
        shown = ", ".join(sorted(str(c)[:12] for c in commits))
        held_by_evidence.append(f"mixed evidence: the results files verified different commits ({shown})")
    reasons.extend(held_by_evidence)
    if held_by_evidence:
        evidence_line = ItemResult("Evidence is current and complete", "failed",
                                   f"{len(held_by_evidence)} problem{'s' if len(held_by_evidence) != 1 else ''}")
        evidence_line.notes = held_by_evidence
    else:
        oldest = max((e.age for e in runs if e.age is not None), default=timedelta(0))
        evidence_line = ItemResult(
            "Evidence is current and complete", "passed",
            f"{len(runs)} run{'s' if len(runs) != 1 else ''} of {policy.environment}, "
            f"{age_text(max(oldest, timedelta(0)))} old (limit {policy.max_age_minutes:g} min)",
        )

    # waivers: malformed files and expired waivers (of this environment) hold; active ones may
    # cover problems
    mine = [w for w in waivers if w.environment == policy.environment]
    active = [w for w in mine if w.created <= now + FUTURE_SKEW and now < w.expires]
    gate.waivers_expired = [w for w in mine if w.expires <= now]
    waiver_reasons = list(waiver_problems or [])
    for waiver in gate.waivers_expired:
        waiver_reasons.append(
            f"expired waiver: {waiver.label} (owner {waiver.owner}, approver {waiver.approver}) expired "
            f"{_iso(waiver.expires)} — renew it with a new approval or remove it"
        )
    for waiver in mine:
        if waiver.created > now + FUTURE_SKEW:
            waiver_reasons.append(
                f"waiver not yet valid: {waiver.label} is created {_iso(waiver.created)}, after the gate's "
                f"time {_iso(now)} — check its dates"
            )
    reasons.extend(waiver_reasons)
    if waiver_reasons:
        waiver_line = ItemResult("Waivers valid and current", "failed",
                                 f"{len(waiver_reasons)} problem{'s' if len(waiver_reasons) != 1 else ''}")
        waiver_line.notes = waiver_reasons
    else:
        waiver_line = ItemResult(
            "Waivers valid and current", "passed",
            f"{len(active)} in force for {policy.environment}" if mine else "no waivers for " + policy.environment,
        )

    # items
    records = _merged_records(gate.evidence, policy.environment)
    in_scope = [r for r in records if set(policy.markers) <= set(r.markers)]
    claimed: set[str] = set()
    items: list[ItemResult] = [evidence_line, waiver_line]
    for item in policy.items:
        if item.manual is not None:
            items.append(ItemResult(item.name, "manual", f"manual: {item.manual}", description=item.description))
            continue
        chosen = [r for r in in_scope if _selects(item, r)]
        claimed.update(r.nodeid for r in chosen)
        items.append(_judge_item(item.name, item, chosen, policy, active, in_scope))
    rest = [r for r in in_scope if r.nodeid not in claimed]
    if any(r.outcome != "skipped" or "skipped" in policy.block_on for r in rest):
        items.append(_judge_item(OTHER_ITEM, None, rest, policy, active))

    # warnings
    warned = [r for r in in_scope if r.warnings and not _waiver_for(
        Problem("failed", "", r.check, r.target, r), active, policy.environment)]
    gate.warning_count = len(warned)
    if policy.max_warnings is not None:
        within = gate.warning_count <= policy.max_warnings
        line = ItemResult(
            f"Warnings within limit (at most {policy.max_warnings})",
            "passed" if within else "failed",
            f"{gate.warning_count} check{'s' if gate.warning_count != 1 else ''} with warnings",
            warnings=[(r, t) for r in warned for t in r.warnings],
        )
        items.append(line)
        if not within:
            reasons.append(
                f"too many warnings: {gate.warning_count} checks warn, the policy tolerates {policy.max_warnings}"
            )

    for result in items[2:]:
        for problem in result.problems:
            if problem.waiver is None:
                reasons.append(f"{result.name}: {problem.kind}: {problem.text}")
    used: list[Waiver] = []
    for result in items:
        for problem in result.problems:
            if problem.waiver is not None and problem.waiver not in used:
                used.append(problem.waiver)
    gate.waivers_used = used
    gate.items = items
    gate.decision = "hold" if reasons else "promote"
    return gate


def cannot_decide(policy: Policy | None, policy_path: str, now: datetime, reason: str) -> GateDecision:
    """The decision when the policy or the waivers cannot be read: never a promotion."""
    gate = GateDecision(policy, policy_path, now, decision="cannot_decide")
    gate.reasons.append(reason)
    return gate
