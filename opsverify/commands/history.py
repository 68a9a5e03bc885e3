"""``opsverify history``: what the recorded runs say over time (a --history SQLite file).

    opsverify history --history H.sqlite                    what fails now, and since when
    opsverify history --history H.sqlite --check vault      only checks or targets naming "vault"
    opsverify history --history H.sqlite --flaps [--hours 24]   outcome changed twice or more
    opsverify history --history H.sqlite --series CHECK [--target LABEL]   measured values over time

Runs write the file with ``pytest ... --history H.sqlite`` (see :mod:`opsverify.history`).
Exit codes: 0 answered, 1 the file cannot be read, 2 usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from opsverify.cli import command


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", required=True, type=Path, metavar="PATH", help="the SQLite history file")
    parser.add_argument("--check", default=None, metavar="TEXT",
                        help="only checks whose name or target label contains TEXT")
    parser.add_argument("--flaps", action="store_true", help="checks whose outcome changed at least twice")
    parser.add_argument("--hours", type=float, default=24.0, metavar="H", help="the --flaps window (default 24)")
    parser.add_argument("--series", default=None, metavar="CHECK", help="the measured values of CHECK, oldest first")
    parser.add_argument("--target", default=None, metavar="LABEL", help="with --series: labels containing LABEL")
    parser.add_argument("--wide", action="store_true", help="tables unwrapped (no 100-column fit)")


@command("history")(_args)
def run_history(args: argparse.Namespace) -> int:
    from opsverify import history
    from opsverify.tables import render

    with history.connect(args.history) as conn:
        if args.series:
            rows = history.series(conn, args.series, args.target)
            if not rows:
                print(f"no recorded run of {args.series}" + (f" on {args.target}" if args.target else ""))
                return 0
            body = [[at[:19].replace("T", " "), label, outcome, "—" if value is None else f"{value:g}", unit or ""]
                    for at, label, outcome, value, unit in rows]
            print(render(["run finished (UTC)", "target", "outcome", "value", "unit"], body, wide=args.wide))
            return 0
        if args.flaps:
            found = history.flaps(conn, args.hours, args.check)
            if not found:
                print(f"no check changed outcome twice or more in the last {args.hours:g} h")
                return 0
            body = [[f.check, f.label, str(f.changes), " → ".join(f.outcomes[-8:]), f.last[:19].replace("T", " ")]
                    for f in found]
            print(render(["check", "target", "changes", "outcomes (oldest first)", "last run (UTC)"], body,
                         wide=args.wide, wrap={"check", "outcomes (oldest first)"}))
            print(f"\n{len(found)} flapping in the last {args.hours:g} h")
            return 0
        failing = history.failing(conn, args.check)
        if not failing:
            print("nothing is failing in its latest recorded run")
            return 0
        def when(at: str | None) -> str:
            return (at or "never recorded")[:19].replace("T", " ")

        if args.wide:
            body = [[f.check, f.label, f.outcome, when(f.since), str(f.runs), when(f.last_passed), f.message]
                    for f in failing]
            print(render(["check", "target", "outcome", "failing since (UTC)", "runs", "last ok (UTC)", "message"],
                         body, wide=True))
        else:
            body = [[f"{f.check} [{f.label}]\n{f.message.removeprefix(f.label + ': ')}", f.outcome, when(f.since),
                     str(f.runs), when(f.last_passed)] for f in failing]
            print(render(["check [target], message", "outcome", "failing since (UTC)", "runs", "last ok (UTC)"],
                         body, wrap={"check [target], message"}))
        print(f"\n{len(failing)} failing now")
    return 0
