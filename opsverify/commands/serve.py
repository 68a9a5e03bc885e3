"""``opsverify serve``: run the checks on an interval and serve /metrics and /healthz (continuous mode).

    opsverify serve --env staging --interval 60s --listen 127.0.0.1:9464 -m smoke
    opsverify serve --env-file env.yaml --healthz-severity critical --history reports/history.sqlite

Exit codes: 0 stopped (SIGTERM or Ctrl-C), 2 usage error (a bad argument or environment file, a port
that cannot be bound, a first run that selects nothing). See :mod:`opsverify.serve`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opsverify.cli import command
from opsverify.history import DEFAULT_KEEP_DAYS

SEVERITY_CHOICES = "blocker, critical, normal, minor, trivial"


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", action="append", default=[], metavar="NAME", help="environments/NAME.yaml; repeatable")
    parser.add_argument("--env-file", action="append", default=[], metavar="PATH", help="an environment file; repeatable")
    parser.add_argument("--interval", default="60s", metavar="DURATION", help="between run starts (default 60s)")
    parser.add_argument("--listen", default="127.0.0.1:9464", metavar="HOST:PORT", help="default 127.0.0.1:9464")
    parser.add_argument("-m", dest="markexpr", default=None, metavar="MARKEXPR", help="pytest marker expression")
    parser.add_argument("--healthz-severity", default="trivial", metavar="LEVEL",
                        help=f"/healthz judges checks of this severity or higher ({SEVERITY_CHOICES}; "
                        "default trivial: every check)")
    parser.add_argument("--history", default=None, metavar="PATH", help="append every completed run to this SQLite file")
    parser.add_argument("--history-keep-days", default=str(DEFAULT_KEEP_DAYS), metavar="DAYS",
                        help=f"history retention (default {DEFAULT_KEEP_DAYS:g})")
    parser.add_argument("--root", type=Path, default=Path.cwd(), metavar="DIR",
                        help="project root holding checks/ and environments/ (default: the current directory)")


@command("serve")(_args)
def run_serve(args: argparse.Namespace) -> int:
    from opsverify.errors import ConfigError
    from opsverify.serve.loop import serve
    from opsverify.serve.settings import ServeSettings

    try:
        return serve(ServeSettings.from_args(args))
    except ConfigError as exc:
        print(f"opsverify serve: {exc}", file=sys.stderr)
        return 2
