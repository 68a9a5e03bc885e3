"""``opsverify credentials``: every credential and certificate, most urgent first.

    opsverify credentials --env staging             a table (100 columns; --wide: every column, unwrapped)
    opsverify credentials --env staging --json      the same as JSON
    opsverify credentials --env staging --fail-on rotate   exit 1 if something must be rotated now

Each row is read by the probe the age/expiry checks use and judged against the same thresholds
(see :mod:`opsverify.inventory`); the probes are read-only. Secret values never appear.
Exit codes: 0 listed, 1 ``--fail-on`` matched, 2 usage error (unknown environment, bad file).
The project is the working directory (or ``--root DIR``): ``--env NAME`` reads its ``environments/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from opsverify.cli import EXIT_USAGE, command, project_root

FAIL_ON = {"rotate": ("rotate now",), "warn": ("rotate now", "warn"), "unknown": ("rotate now", "unknown"),
           "untracked": ("rotate now", "unknown", "untracked")}


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", action="append", default=[], metavar="NAME", help="environments/NAME.yaml; repeatable")
    parser.add_argument("--env-file", action="append", default=[], metavar="PATH", help="an environment file; repeatable")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--wide", action="store_true", help="every column, one line per credential (no 100-column fit)")
    parser.add_argument("--fail-on", choices=sorted(FAIL_ON), default=None,
                        help="exit 1 when a credential must be rotated now (rotate); warn / unknown / untracked add those")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="project root (environments/, runbooks/, fixtures/); default: the working directory")


@command("credentials")(_args)
def run_credentials(args: argparse.Namespace) -> int:
    import pytest

    from opsverify import inventory
    from opsverify.config.secrets import REDACTOR
    from opsverify.session import OvSession

    if not args.env and not args.env_file:
        print("opsverify credentials: give --env NAME or --env-file PATH", file=sys.stderr)
        return 2
    from opsverify.local_state import export_sandbox_dir

    root = project_root(args.root, "environments", "credentials") if args.env else args.root.resolve()
    if root is None:
        return EXIT_USAGE
    export_sandbox_dir(root)  # as the pytest plugin does
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # fixtures/ registers the probes
    try:
        session = OvSession.create(root, args.env, args.env_file, concurrency=32)
    except pytest.UsageError as exc:
        print(f"opsverify credentials: {exc}", file=sys.stderr)
        return 2
    try:
        rows = inventory.collect(session)
    finally:
        session.engine.shutdown()
    for env in session.environments.values():
        for ref in env.secret_refs():
            ref.try_register()
    if args.json:
        document = {"environments": list(session.environments), "counts": inventory.counts(rows),
                    "credentials": [r.to_dict() for r in rows]}
        print(REDACTOR.redact(json.dumps(document, indent=2)))
    else:
        print(_table(rows, args.wide))
        c = inventory.counts(rows)
        print(f"\n{len(rows)} credentials: {c['rotate now']} rotate now, {c['warn']} warn, "
              f"{c['unknown']} unknown, {c['untracked']} untracked, {c['ok']} ok")
    if args.fail_on and any(r.status in FAIL_ON[args.fail_on] for r in rows):
        return 1
    return 0


def _table(rows: list[Any], wide: bool) -> str:
    """The credentials as a console table: all columns with ``wide``, else the ones that fit 100."""
    from opsverify import inventory
    from opsverify.config.secrets import REDACTOR
    from opsverify.tables import render

    grid = inventory.table(rows)
    header, body = grid[0], grid[1:]
    if wide:
        return REDACTOR.redact(render(header, body, wide=True, redact=REDACTOR.redact))
    narrow = []
    for line in body:
        cell = dict(zip(header, line))
        policy = f" (policy: {cell['policy']})" if cell["policy"] != "—" else ""
        narrow.append([cell["status"], f"{cell['kind']}: {cell['env']}/{cell['owner']} {cell['credential']}",
                       cell["expires"], cell["age (d)"], cell["left (d)"], cell["why"] + policy])
    columns = ["status", "credential", "expires", "age (d)", "left (d)", "why"]
    return REDACTOR.redact(render(columns, narrow, wrap={"credential", "why"}, redact=REDACTOR.redact))
