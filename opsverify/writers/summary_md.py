"""``summary.md``: what a person reads first — totals, then failures and errors, warnings, skips."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from opsverify.config.secrets import REDACTOR
from opsverify.results import CheckRecord, RunInfo, totals
from opsverify.writers.links import runbook_url, strip_runbook_tag
from opsverify.inventory import markdown_section  # issue 8

ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️"}


def _label(record: CheckRecord) -> str:
    where = "-".join(p for p in (record.env, record.target, record.item) if p)
    return f"`{record.check}` [{where}]" if where else f"`{record.check}`"


def _action(record: CheckRecord) -> str:
    """The runbook step to follow: its action (unless the message already says what to do) and link.

    A failure's message ends with the action (``expect`` writes it); an error's message is the one
    line of what could not be seen, so the step's action is added.
    """
    if not record.runbook:
        return ""
    action = record.runbook.get("action") or ""
    message = record.message or ""
    todo = f" — {action}" if action and action not in message and " — " not in message else ""
    return f"{todo} — runbook [{record.runbook['id']}]({runbook_url(record.runbook.get('link', ''))})"


def _without_where(record: CheckRecord, text: str) -> str:
    """``text`` without its leading ``env-target:`` (the label in front of it already says so)."""
    where = "-".join(p for p in (record.env, record.target, record.item) if p)
    return text[len(where) + 2 :] if where and text.startswith(f"{where}: ") else text


def _message(record: CheckRecord, outcome: str) -> str:
    """The check's message without the trailing ``[runbook ID]``: the link after it names the step."""
    text = _without_where(record, strip_runbook_tag(record.message or outcome, (record.runbook or {}).get("id")))
    severity = f"**{record.severity}** · " if record.severity in ("blocker", "critical") else ""
    return severity + text


def render(run: RunInfo, records: list[CheckRecord]) -> str:
    """The Markdown summary of one run."""
    count = totals(records)
    lines = [
        f"# opsverify — {', '.join(run.environments) or 'no environment'}",
        "",
        f"Run {run.started_at} → {run.finished_at} · opsverify {run.opsverify_version}"
        + (f" · commit `{run.git_commit[:12]}`" if run.git_commit else "")
        + (f" · rotation phase **{run.phase}**" if run.phase else ""),
        "",
        *([f"Run id `{run.run_id}` (the evidence `opsverify gate` cites)", ""]
          if run.run_id else []),
        *([f"**The run did not complete: {str(run.ended.get('status')).replace('_', ' ')} (pytest exit "
           f"{run.ended.get('exit_status')})** — these results are partial; the gate holds them", ""]
          if run.ended and run.ended.get("status") != "completed" else []),
        "| passed | failed | error | skipped | warnings | total |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {count['passed']} | {count['failed']} | {count['error']} | {count['skipped']} "
        f"| {count['warnings']} | {count['total']} |",
        "",
    ]
    for outcome, heading in (("failed", "Failed — the system is not as expected"),
                             ("error", "Errors — the system could not be verified")):
        bad = [r for r in records if r.outcome == outcome]
        if not bad:
            continue
        lines += [f"## {ICON[outcome]} {heading} ({len(bad)})", ""]
        by_system: dict[str, list[CheckRecord]] = defaultdict(list)
        for record in bad:
            by_system[record.system or "other"].append(record)
        for system in sorted(by_system):
            lines += [f"### {system}", ""]
            for record in sorted(by_system[system], key=lambda r: r.nodeid):
                lines.append(f"- {_label(record)}: {_message(record, outcome)}{_action(record)}")
            lines.append("")
    warned = [r for r in records if r.warnings]
    if warned:
        lines += [f"## Warnings ({len(warned)})", ""]
        for record in warned:
            for text in record.warnings:
                lines.append(f"- {_label(record)}: {_without_where(record, text)}")
        lines.append("")
    lines += markdown_section(run.credentials)  # credential inventory (issue 8)
    skipped = [r for r in records if r.outcome == "skipped"]
    if skipped:
        lines += [f"## {ICON['skipped']} Skipped ({len(skipped)})", ""]
        for record in skipped:
            lines.append(f"- {_label(record)}: {record.message}")
        lines.append("")
    passed = [r for r in records if r.outcome == "passed"]
    if passed:
        lines += [f"<details><summary>{ICON['passed']} Passed ({len(passed)})</summary>", ""]
        for record in passed:
            lines.append(f"- {_label(record)}")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def write(path: Path, run: RunInfo, records: list[CheckRecord]) -> Path:
    """Write the redacted Markdown summary to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REDACTOR.redact(render(run, records)))
    return path
