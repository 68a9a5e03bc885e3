"""The promotion gate: decide, against a written policy, whether a release may be promoted.

    opsverify gate --policy gates/production.yaml [--results reports/summary.json ...]
                   [--waivers waivers.yaml] [--now 2025-06-01T12:00:00Z] [--commit SHA]

or in one step, ``pytest -m predeploy --env staging --gate gates/production.yaml``.
Exit codes: 0 promote, 1 hold, 2 cannot decide (the policy file cannot be read or is invalid, or
bad usage). It fails closed: missing, stale, partial, corrupt or other-environment evidence holds
the release, each with its reason, and so does an expired or malformed waiver. It writes ``gate.json``
and prints the pre-deploy checklist (Markdown), which is also appended to ``$GITHUB_STEP_SUMMARY``
when that is set.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opsverify.config.secrets import REDACTOR
from opsverify.errors import ConfigError
from opsverify.gate import checklist
from opsverify.gate.decide import EXIT_CODES, GateDecision, cannot_decide, decide
from opsverify.gate.policy import gather_waivers, load_policy

__all__ = ["EXIT_CODES", "GateOutcome", "gather_waivers", "load_policy", "run_gate"]


@dataclass
class GateOutcome:
    """What one gate run decided, the checklist it printed and where it wrote ``gate.json``."""

    decision: GateDecision
    markdown: str
    written: Path | None

    @property
    def exit_code(self) -> int:
        return self.decision.exit_code


def run_gate(
    policy_path: Path,
    results: list[Path],
    *,
    waivers_path: Path | None = None,
    now: datetime | None = None,
    output: Path | None = None,
    commit: str | None = None,
    extra_reasons: list[str] | None = None,
) -> GateOutcome:
    """Load the policy and waivers, decide, write ``gate.json`` and the job summary."""
    moment = now or datetime.now(UTC)
    try:
        policy = load_policy(policy_path)
    except ConfigError as exc:
        gate = cannot_decide(None, str(policy_path), moment, f"bad policy: {exc}")
    else:
        waivers, waiver_problems = gather_waivers(policy, waivers_path)
        gate = decide(policy, results, waivers, moment, commit=commit, extra_reasons=extra_reasons,
                      waiver_problems=waiver_problems)
    markdown = REDACTOR.redact(checklist.render(gate))
    written = None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(REDACTOR.redact_obj(gate.to_dict()), indent=2) + "\n")
        written = output
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(markdown + "\n")
        except OSError as exc:
            print(f"opsverify gate: cannot append to $GITHUB_STEP_SUMMARY ({summary_file}): "
                  f"{exc.strerror or exc}", file=sys.stderr)
    return GateOutcome(gate, markdown, written)

