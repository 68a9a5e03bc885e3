"""The ``opsverify`` command: the tools around a run of the checks.

    opsverify --version
    opsverify gate --policy gates/production.yaml     may this release be promoted?
    opsverify credentials --env staging               every credential, most urgent first
    opsverify runbooks                                 which runbook steps the checks verify
    opsverify history --history PATH                  what the recorded runs say over time
    opsverify status --history PATH --out DIR         the status page (static HTML) from the history
    opsverify serve --env staging --interval 60s      the checks on an interval, with /metrics and /healthz
    opsverify init DIR                                a team's own suite repository, scaffolded
    opsverify sandbox up|down|status                  real local services on loopback (--env local)

Each subcommand is a module of :mod:`opsverify.commands` that registers itself with
:func:`command`; ``opsverify --help`` lists them with the first line of each module's docstring.
Subcommands come from :mod:`opsverify.commands` and from the ``opsverify.commands`` entry points
of other installed distributions (``opsverify sandbox`` is ``opsverify-sandbox``'s). A command whose
distribution is not installed says how to install it.

Checks themselves run with pytest: ``pytest -m smoke --env staging``.
Exit codes: 0 ok, 1 the command failed (message on stderr), 2 usage error; the gate documents its
own. A reader that closes the pipe early (``opsverify gate ... | head``) ends the command quietly
with exit 141, as a shell reports a process ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from opsverify import __version__
from opsverify.errors import OpsverifyError

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {}
EXIT_BROKEN_PIPE = 141
EXIT_USAGE = 2
#: the entry-point group other distributions register their subcommands in (a module that calls
#: :func:`command` when imported)
ENTRY_POINT_GROUP = "opsverify.commands"
#: subcommands shipped by another distribution: name -> (distribution, what it does, how to install it)
ELSEWHERE = {
    "sandbox": ("opsverify-sandbox", "real local services on loopback (--env local)",
                "pip install -e sandbox (in an opsverify checkout; scripts/bootstrap.sh does it)"),
}


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


def _load_commands(plugins: Iterable[EntryPoint] | None = None) -> None:
    """Register every subcommand: the modules of :mod:`opsverify.commands`, then each entry point of
    :data:`ENTRY_POINT_GROUP` (``plugins``; default: those of the installed distributions), then a
    stand-in for each command of :data:`ELSEWHERE` no installed distribution gave."""
    import importlib
    import pkgutil

    import opsverify.commands as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"opsverify.commands.{info.name}")
    for plugin in entry_points(group=ENTRY_POINT_GROUP) if plugins is None else plugins:
        plugin.load()
    for name, (distribution, summary, install) in ELSEWHERE.items():
        if name not in COMMANDS:
            _register_missing(name, distribution, summary, install)


def _register_missing(name: str, distribution: str, summary: str, install: str) -> None:
    """A subcommand whose distribution is not installed: any use says, in one line, how to install it."""

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(args: argparse.Namespace) -> int:
        print(f"opsverify {name}: the {distribution} distribution is not installed: {install}", file=sys.stderr)
        return 1

    run.__doc__ = summary
    COMMANDS[name] = (configure, run)


def project_root(given: Path, needs: str, command_name: str) -> Path | None:
    """The project directory ``given`` (``--root``, default the working directory), resolved.

    Prints a one-line usage error and returns ``None`` when it has no ``needs`` directory (as when the
    command runs outside a project): the caller then exits with :data:`EXIT_USAGE`.
    """
    root = given.resolve()
    if not (root / needs).is_dir():
        print(f"opsverify {command_name}: {root} has no {needs}/ directory: run it in an opsverify project "
              f"or give --root DIR", file=sys.stderr)
        return None
    return root


def summary_of(run: Command) -> str:
    """One line saying what a subcommand does, from its module's docstring (a stand-in's own)."""
    source = run if run.__module__ == __name__ else sys.modules[run.__module__]
    doc = (source.__doc__ or "").strip()
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


def main(argv: list[str] | None = None, plugins: Iterable[EntryPoint] | None = None) -> int:
    """Entry point of the ``opsverify`` console script (``plugins``: see :func:`_load_commands`)."""
    _load_commands(plugins)
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
