"""The ``/healthz`` verdict: 200 while every check of the chosen severity passed in the latest run.

Example::

    verdict = judge(done, "critical")      # blocker and critical checks must have passed
    verdict.healthy, verdict.text          # False, "unhealthy: 1 of 3 checks of severity critical ..."

Severities are Allure's, most severe first (``blocker critical normal minor trivial``); the chosen
one and every more severe one count; a check without a ``severity`` marker is ``normal``. Skipped
checks (not configured, or a safety class the environment does not allow) do not count. A pass
needs evidence: before the first run completes, after a run that did not complete, or when no
check of that severity ran, the answer is 503 with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsverify.config.secrets import REDACTOR
from opsverify.results import CheckRecord
from opsverify.serve.runner import RunDone
from opsverify.serve.settings import SEVERITIES

DEFAULT_SEVERITY = "normal"
LISTED = 20


@dataclass(frozen=True)
class Verdict:
    """What ``/healthz`` answers."""

    healthy: bool
    text: str

    @property
    def status(self) -> int:
        return 200 if self.healthy else 503


def counts(record: CheckRecord, severity: str) -> bool:
    """Whether ``record`` is one of the checks ``/healthz`` judges at ``severity``."""
    mine = record.severity if record.severity in SEVERITIES else DEFAULT_SEVERITY
    return record.outcome != "skipped" and SEVERITIES.index(mine) <= SEVERITIES.index(severity)


def _what(severity: str) -> str:
    return "checks" if severity == SEVERITIES[-1] else f"checks of severity {severity} or higher"


def judge(done: RunDone | None, severity: str) -> Verdict:
    """The verdict on the latest run (``None``: no run has finished yet)."""
    if done is None:
        return Verdict(False, "unhealthy: no run has completed yet (the first run is in progress)")
    when = f"run {done.number} (finished {done.run.finished_at})"
    if not done.completed:
        status = done.run.ended.get("status", "unknown")
        return Verdict(False, f"unhealthy: {when} did not complete (pytest exit {done.exit_code}, {status}); "
                       "the log says why")
    judged = [r for r in done.records if counts(r, severity)]
    if not judged:
        return Verdict(False, f"unhealthy: no {_what(severity)} ran in {when} "
                       f"({len(done.records)} checks, all skipped or of lower severity)")
    bad = sorted((r for r in judged if r.outcome != "passed"), key=lambda r: (r.outcome, r.nodeid))
    if not bad:
        return Verdict(True, f"ok: all {len(judged)} {_what(severity)} passed in {when}")
    lines = [f"unhealthy: {len(bad)} of {len(judged)} {_what(severity)} did not pass in {when}"]
    for record in bad[:LISTED]:
        lines.append(REDACTOR.redact(f"{record.outcome}: {record.nodeid.split('::')[-1]}: {record.message}"))
    if len(bad) > LISTED:
        lines.append(f"... and {len(bad) - LISTED} more")
    return Verdict(False, "\n".join(lines))
