"""The evidence the gate reads: one ``summary.json`` per run, and every reason not to trust it.

A results file holds the release when it is missing, unreadable or malformed (each key checked for
its type: no traceback, one reason naming the key), when its seal does not match its contents
(:mod:`opsverify.integrity`; with the policy's ``evidence.key``, when it is not signed with it),
when its totals do not add up or a node id appears twice, when the run did not end normally
(``run.ended``: interrupted, internal error, usage error, stopped early, never started), when it is
stale or from the future, another environment's, or another commit's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsverify.gate.policy import Policy
from opsverify.integrity import verify
from opsverify.results import CheckRecord, load_summary, totals

FUTURE_SKEW = timedelta(minutes=5)
ENDING_PROBLEMS = {
    "not_started": "the run did not start (pytest exit {exit_status}{why}): no check ran — fix that and run the checks again",
    "interrupted": "the run was interrupted (pytest exit {exit_status}): its results are partial",
    "internal_error": "the run ended with an internal error (pytest exit {exit_status}): its results are partial",
    "usage_error": "the run ended with a usage error (pytest exit {exit_status}): its results are partial",
    "no_checks": "the run collected no checks (pytest exit {exit_status})",
    "stopped_early": "the run stopped early ({stopped_early}): its results are partial",
}
WHY = {4: ", a usage error", 2: ", interrupted during collection"}


@dataclass
class Evidence:
    """One results file and what the gate made of it."""

    path: str
    problems: list[str] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    records: list[CheckRecord] = field(default_factory=list)
    finished: datetime | None = None
    age: timedelta | None = None

    @property
    def usable(self) -> bool:
        """Readable and covering the environment: its checks are judged (stale ones still hold)."""
        return bool(self.run) and self.finished is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": not self.problems,
            "problems": self.problems,
            "run_id": self.run.get("run_id"),
            "git_commit": self.run.get("git_commit"),
            "environments": self.run.get("environments"),
            "started_at": self.run.get("started_at"),
            "finished_at": self.run.get("finished_at"),
            "age_minutes": round(self.age.total_seconds() / 60, 1) if self.age is not None else None,
            "opsverify_version": self.run.get("opsverify_version"),
        }


def iso(moment: datetime) -> str:
    """``2025-06-01T12:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    """An ISO-8601 time (``Z`` or an offset; naive times are taken as UTC), or ``None``."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age_text(delta: timedelta) -> str:
    """``45 min``, ``1 h 35 min``, ``3 days``."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def read_evidence(path: Path, policy: Policy, now: datetime, commit: str | None,
                  key: tuple[str, str] | None = None) -> Evidence:
    """Load one ``summary.json`` and list every reason it cannot be trusted as evidence.

    ``key`` is the policy's evidence key (value, label): the summary must then be signed with it.
    """
    evidence = Evidence(str(path))
    if not path.exists():
        evidence.problems.append(f"{path}: no results (file does not exist) — run the checks first")
        return evidence
    try:
        data, records = load_summary(path)
    except ValueError as exc:
        evidence.problems.append(f"corrupt results: {exc}")
        return evidence
    corrupt = corruption(data, records, key)
    if corrupt:
        evidence.problems.append(f"corrupt results: {path}: {corrupt}")
        return evidence
    run = data["run"]
    evidence.run = run
    finished = parse_time(run.get("finished_at"))
    if finished is None:
        evidence.problems.append(f"partial results: {path}: the run did not finish (no finished_at)")
        return evidence
    evidence.finished = finished
    ended = ending_problem(run["ended"])
    if ended:
        evidence.problems.append(f"partial results: {path}: {ended}")
    environments = run.get("environments") or []
    if policy.environment not in environments:
        shown = ", ".join(environments) or "no environment"
        evidence.problems.append(
            f"wrong environment: {path} holds results for {shown}, the policy needs {policy.environment}"
        )
        evidence.finished = None
        return evidence
    evidence.records = records
    evidence.age = now - finished
    if evidence.age > policy.max_age:
        evidence.problems.append(
            f"stale results: {path} is {age_text(evidence.age)} old (run finished {iso(finished)}), "
            f"the policy allows {policy.max_age_minutes:g} min — run the checks again"
        )
    elif -evidence.age > FUTURE_SKEW:
        evidence.problems.append(
            f"results from the future: {path} finished {iso(finished)}, after the gate's time "
            f"{iso(now)} — check the clocks"
        )
    if commit and run.get("git_commit") != commit:
        evidence.problems.append(
            f"wrong commit: {path} verified commit {str(run.get('git_commit') or 'unknown')[:12]}, "
            f"the release is {commit[:12]}"
        )
    return evidence


def corruption(data: dict[str, Any], records: list[CheckRecord], key: tuple[str, str] | None = None) -> str:
    """Why a well-formed summary is still not evidence: its totals, duplicate node ids, its seal."""
    declared = data["totals"]
    if declared.get("total") != len(records):
        return f"totals say {declared.get('total')} checks but {len(records)} are listed (truncated or edited?)"
    counted = totals(records)
    for name, count in counted.items():
        if declared.get(name) != count:
            return f"totals say {declared.get(name)} {name} but {count} are listed (edited?)"
    seen: set[str] = set()
    for index, record in enumerate(records):
        if record.nodeid in seen:
            return f"checks[{index}]: {record.nodeid} is listed twice (one run records each check once)"
        seen.add(record.nodeid)
    if not isinstance(data["run"].get("ended"), dict):
        return "run.ended is missing: the summary does not say how the run ended"
    problem = verify(data, *(key or (None, "")))
    return problem


def ending_problem(ended: dict[str, Any]) -> str:
    """Why the run's ``run.ended`` is not a normal end ("" when the run completed)."""
    status, code = ended.get("status"), ended.get("exit_status")
    if status == "completed" and code in (0, 1):
        return ""
    template = ENDING_PROBLEMS.get(str(status), "the run ended with pytest exit {exit_status} ({status})")
    return template.format(exit_status=code, status=status, stopped_early=ended.get("stopped_early") or "-x/--maxfail",
                           why=WHY.get(code, "") if isinstance(code, int) else "")
