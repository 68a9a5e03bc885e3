"""Where the suite being run lives: the folder of its ``environments/``, ``runbooks/`` and ``reports/``.

pytest finds its configuration file, and so its rootdir, from the command line BEFORE it loads the
plugins installed by entry point, opsverify's among them: it cannot know yet that
``/srv/ci/staging.yaml`` in ``pytest --env-file /srv/ci/staging.yaml`` is an option's value, takes
it for a path to test, looks for a configuration file around ``/srv/ci``, and, finding none there,
roots the run in a common ancestor of that folder and the current one. That rootdir says nothing
about the suite, so opsverify does not take it then: once every option is known, the arguments that
really are paths (or, with none, the current folder) lead to the suite's configuration file the same
way pytest looks for one, and its folder is the suite's root::

    root = project_root(config)
    root / "environments" / "staging.yaml"

When pytest read its arguments right (no option's value looked like a path, or ``--rootdir`` /
``-c`` said where the suite is), the root is pytest's rootdir.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "pyproject.toml", "tox.ini", "setup.cfg")
"""The files pytest reads its configuration from, in the order it prefers them in one folder."""


def project_root(config: pytest.Config) -> Path:
    """The suite's root folder (see the module's docstring)."""
    if not took_option_value_for_path(config):
        return config.rootpath
    invocation = config.invocation_params.dir
    start = _common_folder(_real_paths(config)) or invocation
    return config_folder(start) or invocation


def took_option_value_for_path(config: pytest.Config) -> bool:
    """Whether pytest took an option's value (``--env-file /x.yaml``) for a path while it looked for
    its configuration file, before the plugins' options were known."""
    if config.getoption("rootdir", None) or config.getoption("inifilename", None):
        return False
    real = set(_real_paths(config))
    invocation = config.invocation_params.dir
    for arg in _raw_args(config):
        if arg.startswith("-"):
            continue
        path = Path(invocation, arg.split("::", 1)[0])
        if _exists(path) and path.resolve() not in real:
            return True
    return False


def config_folder(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` with a pytest configuration file, else the nearest
    with a ``pyproject.toml`` (pytest's own fallback), else ``None``."""
    folders = [start, *start.parents]
    for folder in folders:
        if any(holds_pytest_config(folder / name) for name in CONFIG_FILES):
            return folder
    return next((folder for folder in folders if (folder / "pyproject.toml").is_file()), None)


def holds_pytest_config(path: Path) -> bool:
    """Whether ``path`` is a file pytest would take its configuration from."""
    try:
        if not path.is_file():
            return False
        if path.name in ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"):
            return True
        if path.suffix == ".toml":
            tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
            return isinstance(tool, dict) and "pytest" in tool
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
        return parser.has_section("tool:pytest" if path.name == "setup.cfg" else "pytest")
    except (OSError, ValueError, configparser.Error):
        return False


def _raw_args(config: pytest.Config) -> list[str]:
    """The arguments pytest looked for its configuration with: ``$PYTEST_ADDOPTS``, then the command line."""
    import shlex

    try:
        extra = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    except ValueError:
        extra = []
    return [*extra, *(str(arg) for arg in config.invocation_params.args)]


def _real_paths(config: pytest.Config) -> list[Path]:
    """The paths the command line names, now that every option took its value."""
    invocation = config.invocation_params.dir
    found = []
    for arg in getattr(config.option, "file_or_dir", None) or []:
        path = Path(invocation, str(arg).split("::", 1)[0])
        if _exists(path):
            found.append(path.resolve())
    return found


def _common_folder(paths: Iterable[Path]) -> Path | None:
    folders = [path if path.is_dir() else path.parent for path in paths]
    if not folders:
        return None
    return Path(os.path.commonpath([str(folder) for folder in folders]))


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long, or not a path at all
        return False
