"""``opsverify status``: write the status page from the run history (one static HTML file).

    opsverify status --history reports/history.sqlite --out reports/status   -> reports/status/index.html

Per environment and system, each target's state now and since when, uptime over 24 h and 7 d and a
sparkline of what it measured, failures first (see :mod:`opsverify.status_page`). One file, no
script, nothing fetched from elsewhere: open it from disk or any static web server.
Exit codes: 0 written, 1 the history cannot be read or the page cannot be written, 2 usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from opsverify.cli import command


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", required=True, type=Path, metavar="PATH", help="the SQLite history file")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write index.html into")
    parser.add_argument("--title", default="opsverify status", help="the page's title (default: opsverify status)")


@command("status")(_args)
def run_status(args: argparse.Namespace) -> int:
    from opsverify.writers import status_html

    written = status_html.write(args.history, args.out, args.title)
    print(f"status page written to {written}")
    return 0
