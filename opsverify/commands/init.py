"""``opsverify init``: start a team's suite repository (environments, checks, runbooks, gates, CI).

    opsverify init ops-checks          creates ops-checks/ (or fills an empty or new folder)
    cd ops-checks && pytest -m smoke --env example

What it writes, each file a working example to edit: ``environments/example.yaml``,
``checks/test_team.py`` (a check on a facade fixture, naming a step of ``runbooks/team.md``),
``gates/production.yaml``, ``pytest.ini`` (marks the suite's root), ``requirements.txt``,
``.github/workflows/opsverify.yml``, ``README.md``, ``.gitignore``, and an empty ``reports/``.
opsverify's own checks and runbooks come with the installed package; they are not copied.
A file that is already there is never overwritten: the command then writes nothing (exit 2).
"""

from __future__ import annotations

import argparse
import string
import sys
from importlib.resources import files
from pathlib import Path

from opsverify.cli import command

LAYOUT: dict[str, str] = {
    "environments/example.yaml": "environment.yaml",
    "checks/test_team.py": "check.py.tmpl",
    "runbooks/team.md": "runbook.md",
    "gates/production.yaml": "gate.yaml",
    "pytest.ini": "pytest.ini",
    "requirements.txt": "requirements.txt",
    ".github/workflows/opsverify.yml": "workflow.yml",
    "README.md": "readme.md",
    ".gitignore": "gitignore",
}
"""Each file ``opsverify init`` writes (relative to the folder) and the template it comes from."""

FOLDERS = ("reports",)
"""Folders it makes besides those the files are in."""


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, metavar="DIR",
                        help="the folder of the new suite (made when missing)")


def scaffold(directory: Path) -> dict[Path, str]:
    """The files ``opsverify init DIR`` writes: path -> text."""
    project = directory.resolve().name or "ops-checks"
    templates = files("opsverify.templates").joinpath("init")
    return {
        directory / target: string.Template(templates.joinpath(source).read_text(encoding="utf-8"))
        .safe_substitute(project=project)
        for target, source in LAYOUT.items()
    }


def _usage_error(message: str) -> int:
    print(f"opsverify init: {message}", file=sys.stderr)
    return 2


@command("init")(_args)
def run_init(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if directory.exists() and not directory.is_dir():
        return _usage_error(f"{directory} exists and is not a folder")
    planned = scaffold(directory)
    taken = [path for path in [*planned, *(directory / f for f in FOLDERS)]
             if path.exists() and not (path.is_dir() and path.name in FOLDERS)]
    if taken:
        shown = ", ".join(str(path.relative_to(directory)) for path in taken)
        return _usage_error(f"{directory}: would overwrite {shown}; nothing was written (choose a new or empty folder)")
    try:
        for path, text in planned.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as out:  # "x": never replace a file made meanwhile
                out.write(text)
        for folder in FOLDERS:
            (directory / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"opsverify init: cannot write {directory}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"opsverify init: wrote {len(planned)} files in {directory}/")
    print(f"  next: cd {directory} && edit environments/example.yaml, then: pytest -m smoke --env example")
    return 0
