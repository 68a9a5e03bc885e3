"""``opsverify gate``: decide whether a release may be promoted (0 promote, 1 hold, 2 cannot decide)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opsverify.cli import command


def _gate_args(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Judge summary.json results against a promotion policy; print the pre-deploy checklist. "
        "Exit codes: 0 promote, 1 hold, 2 cannot decide (bad policy file or usage)."
    )
    parser.add_argument("--policy", required=True, type=Path, metavar="FILE",
                        help="the promotion policy, e.g. gates/production.yaml")
    parser.add_argument("--results", action="extend", nargs="+", type=Path, default=[], metavar="FILE",
                        help="summary.json files to judge (--results A B or --results A --results B; "
                        "default: reports/summary.json)")
    parser.add_argument("--waivers", type=Path, default=None, metavar="FILE",
                        help="a waivers file (besides any the policy names)")
    parser.add_argument("--now", default=None, metavar="ISO",
                        help="judge as of this UTC time (default: now), e.g. 2025-06-01T12:00:00Z")
    parser.add_argument("--commit", default=None, metavar="SHA",
                        help="the commit being promoted: evidence for another commit holds")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE",
                        help="where gate.json goes (default: next to the first results file)")


@command("gate")(_gate_args)
def run_gate_command(args: argparse.Namespace) -> int:
    from opsverify.gate import run_gate
    from opsverify.gate.evidence import parse_time

    now = None
    if args.now is not None:
        now = parse_time(args.now)
        if now is None:
            print(f"opsverify gate: --now {args.now!r} is not an ISO time (e.g. 2025-06-01T12:00:00Z)",
                  file=sys.stderr)
            return 2
    results = args.results or [Path("reports/summary.json")]
    output = args.output or results[0].parent / "gate.json"
    outcome = run_gate(args.policy, results, waivers_path=args.waivers, now=now, output=output,
                       commit=args.commit)
    print(outcome.markdown)
    if outcome.decision.decision == "cannot_decide":
        for reason in outcome.decision.reasons:
            print(f"opsverify gate: {reason}", file=sys.stderr)
    if outcome.written is not None:
        print(f"opsverify gate: {outcome.decision.decision} (exit {outcome.exit_code}); "
              f"decision written to {outcome.written}", file=sys.stderr)
    return outcome.exit_code
