"""``opsverify runbooks``: which runbook steps the checks verify, and the gaps.

Every runbook procedure and step, the checks that verify it, the steps no check verifies::

    opsverify runbooks                    a table per procedure (100 columns; --wide: unwrapped)
    opsverify runbooks --json             the same as JSON
    opsverify runbooks --fail-uncovered   exit 1 when a verifiable step has no check (for CI)

The project is the working directory (or ``--root DIR``): its ``runbooks/`` and ``checks/``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from opsverify.cli import EXIT_USAGE, command, project_root
from opsverify.coverage import coverage


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--wide", action="store_true", help="one line per step (no 100-column fit)")
    parser.add_argument("--fail-uncovered", action="store_true", help="exit 1 if a verifiable step has no check")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="project root (runbooks/, checks/); default: the working directory")


@command("runbooks")(_args)
def run_runbooks(args: argparse.Namespace) -> int:
    root = project_root(args.root, "runbooks", "runbooks")
    if root is None:
        return EXIT_USAGE
    report = coverage(root / "runbooks", root / "checks")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        from opsverify.tables import render

        by_procedure: dict[tuple[str, str], list[list[str]]] = {}
        for step in report.steps:
            if step.manual:
                status, detail = "manual", step.manual
            elif step.checks:
                status, detail = "covered", ", ".join(c.split("::")[1] for c in step.checks)
            else:
                status, detail = "MISSING", "no check verifies this step"
            what = f"{step.title} — {detail}" if args.wide else f"{step.title}\n{detail}"
            by_procedure.setdefault((step.runbook, step.procedure), []).append([status, step.id, what])
        current = None
        for (runbook, procedure), rows in by_procedure.items():
            if runbook != current:
                print(f"\n{runbook}")
                current = runbook
            print(f"\n  {procedure}")
            print(render(["status", "step", "what it verifies, and how"], rows, wide=args.wide,
                         wrap={"what it verifies, and how"}))
        for step_id, checks in sorted(report.unknown.items()):
            print(f"\nunknown step id {step_id!r} used by {', '.join(checks)}")
        print(
            f"\n{len(report.verifiable) - len(report.uncovered)}/{len(report.verifiable)} verifiable steps "
            f"covered ({report.percent:.1f}%); {len(report.steps) - len(report.verifiable)} manual"
        )
    if args.fail_uncovered and (report.uncovered or report.unknown):
        return 1
    return 0
