"""The pre-deploy checklist in Markdown: one line per policy item, ✓ or ✗, with the evidence.

Modelled on a deploy runbook's "checklist before production deploy": each policy item is a named
group of checks ("Metrics healthy", "Secrets store healthy"); the gate adds a first line for the
evidence itself (fresh, complete, from the right environment) and a last one for warnings. Failing
checks are listed under their item with their message and runbook link; waived ones with the waiver
(owner, approver, days left).
"""

from __future__ import annotations

from opsverify.gate.decide import GateDecision, Problem, days_left
from opsverify.grouping import label_of, targets_text, text_of
from opsverify.writers.links import runbook_url, strip_runbook_tag

MARK = {"passed": "✓", "waived": "✓", "failed": "✗", "manual": "☐"}
HEADLINE = {
    "promote": "✅ PROMOTE — every required item is verified",
    "hold": "❌ HOLD — the release must not be promoted",
    "cannot_decide": "⛔ CANNOT DECIDE — the policy could not be read; the release is held",
}


def _grouped(problems: list[Problem]) -> list[list[Problem]]:
    """Problems in order, identical ones (same kind, check and message but for the target, neither
    waived) together: one checklist line lists their targets."""
    groups: dict[tuple[str, str, str] | int, list[Problem]] = {}
    for n, problem in enumerate(problems):
        record = problem.record
        key: tuple[str, str, str] | int = n
        if record is not None and problem.waiver is None and problem.kind != "window":  # a window's text names its target
            key = (problem.kind, record.check, text_of(record))
        groups.setdefault(key, []).append(problem)
    return list(groups.values())


def _problem_line(problem: Problem, same: list[Problem] | None = None) -> str:
    record = problem.record
    if record is None or problem.kind == "window":  # a window problem is about the evidence, not the message
        text = problem.text
    else:
        step = record.runbook or {}
        targets = sorted(label_of(p.record) for p in (same or [problem]) if p.record is not None)
        count = f" ({len(targets)} targets)" if len(targets) > 1 else ""
        label = f"`{record.check}`" + (f" [{targets_text(targets, limit=20)}]{count}" if targets and targets[0] else "")
        message = strip_runbook_tag(text_of(record), step.get("id"))
        text = f"{label}: {message}"
        action = step.get("action") if record.outcome != "error" else None  # an error's remedy is visibility
        if action and action not in message and " — " not in message:
            text += f" — {action}"
        if step.get("id"):
            text += f" — runbook [{step['id']}]({runbook_url(step.get('link', ''))})"
    if problem.waiver is not None:
        return f"  - ⚠ waived {problem.kind}: {text}"
    return f"  - ✗ {problem.kind}: {text}"


def render(gate: GateDecision) -> str:
    """The checklist for the job summary, the terminal and ``summary.md``."""
    policy = gate.policy
    title = f"## Pre-deploy checklist — {policy.name} (evidence from {policy.environment})" if policy else \
        "## Pre-deploy checklist"
    lines = [title, "", f"**{HEADLINE[gate.decision]}** (exit {gate.exit_code})", ""]
    facts = [f"policy `{gate.policy_path}`", f"decided {gate.now:%Y-%m-%d %H:%M:%S}Z"]
    for evidence in gate.evidence:
        run = evidence.run
        if run:
            commit = str(run.get("git_commit") or "unknown")[:12]
            facts.append(f"run `{str(run.get('run_id') or '?')[:8]}` finished {run.get('finished_at') or '?'}"
                         f", commit `{commit}`")
    if gate.commit:
        facts.append(f"release commit `{gate.commit[:12]}`")
    lines += [" · ".join(facts), ""]
    for item in gate.items:
        lines.append(f"- {MARK[item.status]} **{item.name}** — {item.summary}")
        for note in item.notes:
            lines.append(f"  - ✗ {note}")
        ordered = sorted(item.problems, key=lambda p: (p.waiver is not None, p.kind, p.text))
        for same in _grouped(ordered):
            lines.append(_problem_line(same[0], same))
        if item.name.startswith("Warnings"):
            for record, text in item.warnings:
                lines.append(f"  - ⚠ `{record.check}`: {text}")
    if gate.items:
        lines.append("")
    if gate.waivers_used or gate.waivers_expired:
        lines += [f"### Waivers ({len(gate.waivers_used)} used, {len(gate.waivers_expired)} expired)", "",
                  "| waiver | owner | approver | expires (UTC) | days left | justification |",
                  "|---|---|---|---|---:|---|"]
        for waiver in [*gate.waivers_used, *gate.waivers_expired]:
            left = days_left(waiver, gate.now)
            shown = f"{left:.1f}" if left > 0 else "expired"
            ticket = f" ({waiver.ticket})" if waiver.ticket else ""
            lines.append(
                f"| {waiver.label} | {waiver.owner} | {waiver.approver} | {waiver.expires:%Y-%m-%d %H:%M} "
                f"| {shown} | {waiver.justification}{ticket} |"
            )
        lines.append("")
    if gate.reasons:
        heading = "Why the release is held" if gate.decision == "hold" else "Why the gate cannot decide"
        lines += [f"### {heading} ({len(gate.reasons)})", ""]
        lines += [f"{n}. {reason}" for n, reason in enumerate(gate.reasons, 1)]
        lines.append("")
    return "\n".join(lines)
