"""The ``opsverify`` command: the local sandbox and the tools around a run.

    opsverify sandbox up [SERVICE ...]   start real local services on loopback (for --env local)
    opsverify sandbox down               stop what `up` started
    opsverify sandbox status             what is running

Checks themselves run with pytest: ``pytest -m smoke --env staging``.
Exit codes: 0 ok, 1 the command failed (message on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from opsverify.errors import OpsverifyError

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str) -> Callable[[Callable[[argparse.ArgumentParser], None]], Callable[[Command], Command]]:
    """Register a subcommand: ``@command("gate")(configure)(run)``."""

    def with_parser(configure: Callable[[argparse.ArgumentParser], None]) -> Callable[[Command], Command]:
        def with_run(run: Command) -> Command:
            COMMANDS[name] = (configure, run)
            return run

        return with_run

    return with_parser


def _load_commands() -> None:
    """Import every module of :mod:`opsverify.commands` (each registers its subcommand)."""
    import importlib
    import pkgutil

    import opsverify.commands as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"opsverify.commands.{info.name}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``opsverify`` console script."""
    _load_commands()
    parser = argparse.ArgumentParser(prog="opsverify", description=__doc__.splitlines()[0])
    subs = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _) in sorted(COMMANDS.items()):
        configure(subs.add_parser(name))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except OpsverifyError as exc:
        print(f"opsverify {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
