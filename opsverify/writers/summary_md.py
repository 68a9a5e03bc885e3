"""``summary.md``: what a person reads first — totals, then failures and errors, warnings, skips."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from opsverify.config.secrets import REDACTOR
from opsverify.durations import human_duration
from opsverify.grouping import Group, group_records, split_skips, targets_text
from opsverify.results import CheckRecord, RunInfo, totals
from opsverify.writers.links import runbook_url, strip_runbook_tag
from opsverify.inventory import markdown_section

ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️"}


def _label(record: CheckRecord) -> str:
    where = "-".join(p for p in (record.env, record.target, record.item) if p)
    return f"`{record.check}` [{where}]" if where else f"`{record.check}`"


def _action(record: CheckRecord) -> str:
    """The runbook step to follow: its action (unless the message already says what to do) and link.

    A failure's message ends with the action (``expect`` writes it). An error's message says what
    could not be seen and how to restore visibility: the step's action is for a symptom nobody saw,
    so it is never added to an error, only the link to the step that could not be verified.
    """
    if not record.runbook:
        return ""
    action = (record.runbook.get("action") or "") if record.outcome != "error" else ""
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


def _tries(record: CheckRecord) -> str:
    """How a wait or a window judged the check: ``passed after 40 s (4 attempts)``, ``5 samples over 4 min``."""
    window = record.window
    if window:
        counts = window.get("counts") or {}
        bad = ", ".join(f"{counts[o]} {o}" for o in ("failed", "error") if counts.get(o))
        limits = f"failure_limit {window.get('failure_limit')}"
        return (f" — {window.get('samples')} samples over {human_duration(float(window.get('window_s') or 0))}"
                + (f" ({bad}; {limits})" if bad else ""))
    if record.attempts <= 1:
        return ""
    if record.outcome == "passed" and record.green_after_s is not None:
        return f" — passed after {human_duration(record.green_after_s)} ({record.attempts} attempts)"
    return f" — still {record.outcome} after {record.attempts} attempts"


def _wait_lines(run: RunInfo) -> list[str]:
    """A line on the run's wait (``--until-pass``) or analysis window (``--samples``), if it had one."""
    wait, window = run.wait, run.analysis
    if wait:
        return [f"Waited {human_duration(float(wait['waited_s']))} of at most {human_duration(float(wait['until_pass_s']))}"
                f" ({wait['attempts']} attempts, every {human_duration(float(wait['interval_s']))}): {wait['ended']}", ""]
    if window:
        return [f"Analysis window: {window['samples']} samples every {human_duration(float(window['interval_s']))} "
                f"for {window['checks']} read-only checks ({window['run_once']} others ran once)", ""]
    return []


def _group_line(group: Group, outcome: str) -> str:
    """One list item for a group of identical records: the check, its targets, the message once."""
    record = group.first
    if len(group.records) == 1:
        return f"- {_label(record)}: {_message(record, outcome)}{_action(record)}"
    measured = group.measured_range()
    where = f"[{targets_text(group.targets, limit=20)}] ({len(group.records)} targets" + \
        (f", {measured})" if measured else ")")
    severity = f"**{record.severity}** · " if record.severity in ("blocker", "critical") else ""
    text = strip_runbook_tag(group.text, (record.runbook or {}).get("id"))
    return f"- `{group.check}` {where}: {severity}{text}{_action(record)}"


def _skipped(skipped: list[CheckRecord]) -> list[str]:
    """One line per unconfigured section and per group of other skips; every skip folded below."""
    sections, others = split_skips(skipped)
    lines = [f"- **{s.section}**: {len(s.records)} {'check' if len(s.records) == 1 else 'checks'} "
             f"not configured in {s.envs}" for s in sections]
    for group in others:
        targets = group.targets
        where = f" [{targets_text(targets, limit=20)}]" if group.first.target else ""
        lines.append(f"- `{group.check}`{where}: {group.text}")
    lines += ["", "<details><summary>every skipped check</summary>", ""]
    lines += [f"- {_label(record)}: {record.message}" for record in skipped]
    return [*lines, "", "</details>"]


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
        *_wait_lines(run),
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
            for group in group_records(by_system[system]):
                tries = _tries(group.first) if len(group.records) == 1 else ""
                lines.append(_group_line(group, outcome) + tries)
            lines.append("")
    warned = [r for r in records if r.warnings]
    if warned:
        lines += [f"## Warnings ({len(warned)})", ""]
        for record in warned:
            for text in record.warnings:
                lines.append(f"- {_label(record)}: {_without_where(record, text)}")
        lines.append("")
    lines += markdown_section(run.credentials)  # the credentials the run read, and their ages
    skipped = [r for r in records if r.outcome == "skipped"]
    if skipped:
        lines += [f"## {ICON['skipped']} Skipped ({len(skipped)})", ""]
        lines += _skipped(skipped)
        lines.append("")
    passed = [r for r in records if r.outcome == "passed"]
    if passed:
        lines += [f"<details><summary>{ICON['passed']} Passed ({len(passed)})</summary>", ""]
        for record in passed:
            lines.append(f"- {_label(record)}{_tries(record)}")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def write(path: Path, run: RunInfo, records: list[CheckRecord]) -> Path:
    """Write the redacted Markdown summary to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REDACTOR.redact(render(run, records)))
    return path
