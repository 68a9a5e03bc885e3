"""``opsverify runbooks``: every runbook procedure and step, the checks that verify it, the gaps.

    opsverify runbooks                    a table
    opsverify runbooks --json             the same as JSON
    opsverify runbooks --fail-uncovered   exit 1 when a verifiable step has no check (for CI)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from opsverify.cli import command
from opsverify.coverage import coverage
from opsverify.sandbox.tools import PROJECT_ROOT


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--fail-uncovered", action="store_true", help="exit 1 if a verifiable step has no check")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="project root (runbooks/, checks/)")


@command("runbooks")(_args)
def run_runbooks(args: argparse.Namespace) -> int:
    report = coverage(args.root / "runbooks", args.root / "checks")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        current = None
        for step in report.steps:
            heading = f"{step.runbook} / {step.procedure}"
            if heading != current:
                print(f"\n{heading}")
                current = heading
            if step.manual:
                status, detail = "manual ", step.manual
            elif step.checks:
                status, detail = "covered", ", ".join(c.split("::")[1] for c in step.checks)
            else:
                status, detail = "MISSING", "no check verifies this step"
            print(f"  {status}  {step.id:<34} {step.title}\n           {'':<34} {detail}")
        for step_id, checks in sorted(report.unknown.items()):
            print(f"\nunknown step id {step_id!r} used by {', '.join(checks)}")
        print(
            f"\n{len(report.verifiable) - len(report.uncovered)}/{len(report.verifiable)} verifiable steps "
            f"covered ({report.percent:.1f}%); {len(report.steps) - len(report.verifiable)} manual"
        )
    if args.fail_uncovered and (report.uncovered or report.unknown):
        return 1
    return 0
