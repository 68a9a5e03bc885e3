"""What a run of the checks prints on the terminal besides pytest's own lines.

- **Grouped summary.** With the project's default ``-ra`` (no ``-r`` of your own on the command
  line), pytest's one-line-per-check short summary of failures, errors and skips is replaced by the
  *opsverify summary*: identical failures as one line naming their targets and the range measured
  (:mod:`opsverify.grouping`), and one line per section whose checks are not configured. Any ``-r``
  you give (``-rs``, ``-rfE``, ``-rA``) brings pytest's own listing back, every check on its line.
- **Progress.** While probes are still in flight a couple of seconds after the wave started, a line
  every ~2 s says which ones are awaited and what each is doing::

      opsverify: still waiting for 3 probes: staging-vault (GET /v1/sys/health on vault:8200), ...
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from opsverify.config.secrets import REDACTOR
from opsverify.engine import Engine, ProbeKey
from opsverify.grouping import Group, group_records, split_skips, targets_text
from opsverify.results import CheckRecord

GROUPED_KEY = pytest.StashKey[bool]()
TAKEN_OVER = "fEs"  # the report chars the grouped summary prints instead of pytest
SHOWN_PROBES = 5
WORD = {"failed": "FAILED", "error": "ERROR", "skipped": "SKIPPED"}


def _explicit_report_chars(config: pytest.Config) -> bool:
    """Whether the command line or ``PYTEST_ADDOPTS`` says ``-r…`` (the ini's ``-ra`` does not count)."""
    args = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    return any(a.startswith("--report-chars") or re.match(r"^-[A-Za-z]*r", a) and not a.startswith("--")
               for a in map(str, args))


def configure(config: pytest.Config, wants_checks: bool) -> None:
    """Take over pytest's short summary of failures, errors and skips, unless ``-r`` was given."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not wants_checks or _explicit_report_chars(config):
        return
    reporter.reportchars = "".join(c for c in reporter.reportchars if c not in TAKEN_OVER)
    config.stash[GROUPED_KEY] = True


def _group_line(group: Group) -> str:
    targets = group.targets
    where = f"[{targets_text(targets)}]" + (f" ({len(targets)})" if len(targets) > 1 else "")
    measured = group.measured_range()
    return f"{WORD[group.outcome]} {group.check} {where}{' ' + measured if measured else ''}: {group.text}"


def summary_lines(records: list[CheckRecord], others: Sequence[Any] = ()) -> list[str]:
    """The grouped summary: skips (a line per unconfigured section), then errors, then failures.

    ``others`` are pytest reports of failed/errored items that are not opsverify checks (no record):
    they are listed one per line, as pytest would.
    """
    sections, skips = split_skips([r for r in records if r.outcome == "skipped"])
    lines = [f"SKIPPED {section.line}" for section in sections]
    lines += [_group_line(g) for g in skips]
    for outcome in ("error", "failed"):
        lines += [_group_line(g) for g in group_records(r for r in records if r.outcome == outcome)]
    for report in others:
        word = "ERROR" if report.when != "call" or not report.failed else "FAILED"
        crash = getattr(report.longrepr, "reprcrash", None)
        lines.append(f"{word} {report.nodeid}" + (f" - {crash.message.splitlines()[0]}" if crash else ""))
    return [REDACTOR.redact(line) for line in lines]


def terminal_summary(reporter: Any, config: pytest.Config, records: list[CheckRecord]) -> None:
    """Print the grouped summary (when :func:`configure` took over pytest's short summary)."""
    if not config.stash.get(GROUPED_KEY, False):
        return
    known = {r.nodeid for r in records}
    others = [rep for stat in ("failed", "error") for rep in reporter.stats.get(stat, [])
              if getattr(rep, "nodeid", None) not in known]
    lines = summary_lines(records, others)
    if lines:
        reporter.write_sep("=", "opsverify summary", cyan=True, bold=True)
        for line in lines:
            reporter.write_line(line)


def waiting_line(engine: Engine, keys: list[ProbeKey]) -> str:
    """``"still waiting for 3 probes: staging-a (GET /x on host:80), ..."``; probes of one target
    doing the same thing are one entry (``× 2``)."""
    seen: dict[str, int] = {}
    for key in sorted(keys, key=str):
        label = "-".join(p for p in (key.env, key.target, key.item) if p)
        entry = f"{label} ({engine.doing(key)})"
        seen[entry] = seen.get(entry, 0) + 1
    shown = [entry + (f" × {n}" if n > 1 else "") for entry, n in list(seen.items())[:SHOWN_PROBES]]
    more = f", and {len(seen) - SHOWN_PROBES} more" if len(seen) > SHOWN_PROBES else ""
    noun = "probe" if len(keys) == 1 else "probes"
    return f"opsverify: still waiting for {len(keys)} {noun}: {', '.join(shown)}{more}"


def progress(config: pytest.Config, engine: Engine) -> Callable[[list[ProbeKey]], None] | None:
    """A callback for :meth:`OvSession.prefetch` that prints :func:`waiting_line` on the terminal."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None

    def report(keys: list[ProbeKey]) -> None:
        reporter.write_line(REDACTOR.redact(waiting_line(engine, keys)))

    return report
