"""The ``opsverify`` command: the tools around a run of the checks.

    opsverify --version
    opsverify gate --policy gates/production.yaml     may this release be promoted?
    opsverify credentials --env staging               every credential, most urgent first
    opsverify runbooks                                 which runbook steps the checks verify
    opsverify history --history PATH                  what the recorded runs say over time
    opsverify status --history PATH --out DIR         the status page (static HTML) from the history
    opsverify serve --env staging --interval 60s      the checks on an interval, with /metrics and /healthz
    opsverify sandbox up|down|status                  real local services on loopback (--env local)

Each subcommand is a module of :mod:`opsverify.commands` that registers itself with
:func:`command`; ``opsverify --help`` lists them with the first line of each module's docstring.
Checks themselves run with pytest: ``pytest -m smoke --env staging``.
Exit codes: 0 ok, 1 the command failed (message on stderr), 2 usage error; the gate documents its
own. A reader that closes the pipe early (``opsverify gate ... | head``) ends the command quietly
with exit 141, as a shell reports a process ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from opsverify import __version__
from opsverify.errors import OpsverifyError

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {}
EXIT_BROKEN_PIPE = 141


def command(name: str) -> Callable[[Callable[[argparse.ArgumentParser], None]], Callable[[Command], Command]]:
    """Register a subcommand: ``@command("gate")(configure)(run)``.

    The first line of the module docstring of ``run`` (after its ````opsverify NAME``: `` prefix,
    up to the first parenthesis) is the command's line in ``opsverify --help``.
    """

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


def summary_of(run: Command) -> str:
    """One line saying what a subcommand does, from its module's docstring."""
    doc = (sys.modules[run.__module__].__doc__ or "").strip()
    line = doc.splitlines()[0] if doc else ""
    if "``: " in line:
        line = line.split("``: ", 1)[1]
    return line.split(" (", 1)[0].rstrip(".")


class _Help(argparse.HelpFormatter):
    """argparse's help, with each subcommand and its summary on one line.

    Python 3.11 measures the subcommands' names one indentation level short, which pushes the
    longest one's summary onto a line of its own; this counts that level.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            longest = max((len(name) for name in action.choices), default=0)
            needed = longest + self._current_indent + 2 * self._indent_increment
            self._action_max_length = max(self._action_max_length, needed)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``opsverify`` console script."""
    _load_commands()
    parser = argparse.ArgumentParser(
        prog="opsverify", description="The tools around a run of the opsverify checks.",
        epilog="Checks run with pytest: pytest -m smoke --env staging",
        formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"opsverify {__version__}")
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (configure, run) in sorted(COMMANDS.items()):
        summary = summary_of(run)
        configure(subs.add_parser(name, help=summary, description=summary))
    args = parser.parse_args(argv)
    try:
        code = COMMANDS[args.command][1](args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except OpsverifyError as exc:
        print(f"opsverify {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
