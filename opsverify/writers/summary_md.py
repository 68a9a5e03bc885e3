"""``summary.md``: what a person reads first — totals, then failures and errors, warnings, skips."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from opsverify.config.secrets import REDACTOR
from opsverify.results import CheckRecord, RunInfo, totals

ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️"}


def _label(record: CheckRecord) -> str:
    where = "-".join(p for p in (record.env, record.target, record.item) if p)
    return f"`{record.check}` [{where}]" if where else f"`{record.check}`"


def _action(record: CheckRecord) -> str:
    if not record.runbook:
        return ""
    return f" — runbook [{record.runbook['id']}]({record.runbook.get('link', '')})"


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
                lines.append(f"- {_label(record)}: {record.message or outcome}{_action(record)}")
            lines.append("")
    warned = [r for r in records if r.warnings]
    if warned:
        lines += [f"## Warnings ({len(warned)})", ""]
        for record in warned:
            for text in record.warnings:
                lines.append(f"- {_label(record)}: {text}")
        lines.append("")
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
