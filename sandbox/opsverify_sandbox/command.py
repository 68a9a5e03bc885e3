"""``opsverify sandbox up|down|status``: the local sandbox of real services on loopback."""

from __future__ import annotations

import argparse

from opsverify.cli import command


def _sandbox_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("services", nargs="*", help="only these services (up, down)")


@command("sandbox")(_sandbox_args)
def run_sandbox(args: argparse.Namespace) -> int:
    from opsverify_sandbox import manager

    if args.action == "up":
        print(f"starting the sandbox (state in {manager.state_dir()})")
        manager.up(args.services or None)
        print("sandbox up: run `pytest -m smoke --env local`")
    elif args.action == "down":
        manager.down(only=args.services or None)
    else:
        print("\n".join(manager.status()))
    return 0
