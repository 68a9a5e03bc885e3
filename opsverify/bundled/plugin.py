"""The pytest side of the shipped suite: its facade fixtures everywhere, its checks in a team's project.

Registered by :mod:`opsverify.plugin` (one of its parts), so every run that loads the plugin, by its
entry point or with ``-p opsverify.plugin``, has every facade fixture (``http_response``,
``vault_seal_status`` ...) for the project's own checks.

A run that names no paths (``pytest -m smoke --env staging`` in a team's suite repository) also
collects the shipped checks from the installed package, beside the project's own ``checks/``;
``--no-bundled-checks`` leaves them out, and a run that names its paths collects only those. In
opsverify's own source tree the shipped checks are the project's ``checks/``, collected once, as any
project's.
"""

from __future__ import annotations

import pytest

from opsverify.bundled import CHECKS, FACADES, in_source_tree


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register every facade module as its own plugin (by name, without the entry-point search that
    ``pytest_plugins`` makes for each name)."""
    for name in FACADES:
        pluginmanager.import_plugin(name)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("opsverify").addoption(
        "--no-bundled-checks", action="store_true", default=False,
        help="run only the project's own checks, not those shipped with opsverify")


def wants_bundled_checks(config: pytest.Config) -> bool:
    """Whether this run collects the shipped checks from the installed package."""
    return (
        not in_source_tree()
        and not config.getoption("no_bundled_checks")
        and config.args_source != pytest.Config.ArgsSource.ARGS
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if wants_bundled_checks(config) and str(CHECKS) not in config.args:
        config.args.append(str(CHECKS))
