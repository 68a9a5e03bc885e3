"""The opsverify pytest plugin (the module pytest loads: ``-p opsverify.plugin``, the root conftest,
the ``pytest11`` entry point). It is a package of one concern per module, each its own plugin:

- :mod:`~opsverify.plugin.options`: options, markers, the run's configuration (``--env`` files
  validated, the optional parts registered when asked for);
- :mod:`~opsverify.plugin.collection`: each check parametrized over its section's targets, runbook
  ids and severities checked, safety classes applied;
- :mod:`~opsverify.plugin.fixtures`: ``ov_case``, ``environment``, ``target``, ``expect`` ...;
- :mod:`~opsverify.plugin.running` and :mod:`~opsverify.plugin.xdist_support`: every selected check's
  probes started at once (in one process, or on each pytest-xdist worker for the checks dealt to it);
- :mod:`~opsverify.plugin.outcomes`: each report classified, shortened, redacted, made a record;
- :mod:`~opsverify.plugin.reports`: ``summary.json``, ``summary.md`` and the terminal summary;
- registered only when active: :mod:`~opsverify.plugin.gate` (``--gate``), :mod:`~opsverify.plugin.allure`
  (allure-pytest writing results), :mod:`~opsverify.plugin.extras` (``metrics.prom``, ``--history``).

Data flow (DESIGN.md §3): ``--env`` files are validated in ``pytest_configure`` (a bad file is a usage
error, exit 4, before anything is collected or probed) → ``pytest_generate_tests`` parametrizes each
check over its section's targets → safety classes skip what the environment does not allow → the
engine starts every selected item's probes concurrently → each check asserts on its own result →
one :class:`~opsverify.results.CheckRecord` per check → writers.

The run's state is in ``config.stash`` (:mod:`~opsverify.plugin.state`, whose accessors are
re-exported here: ``ov(config)``, ``notes_of(item)``, ``collected_records(config)``).
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 7_000
"""Allocations between two passes of the garbage collector over its youngest objects, while opsverify
runs (Python's default is 700). Loading the plugin makes tens of thousands of objects that live as
long as the process (modules, classes, models), and a run makes many short-lived ones: at 700 the
collector walks the first again and again as they are made, and promotes the second before they die
(about 20 ms of a 300-check run's 1.5 s). Raised here, before the plugin's own imports."""

if gc.get_threshold()[0] < YOUNG_OBJECTS:
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])

import pytest  # noqa: E402

from opsverify.plugin.state import (  # noqa: E402
    NOTES_KEY,
    PROP,
    SESSION_KEY,
    collected_records,
    notes_of,
    ov,
    reports_dir,
)

PARTS = (
    "opsverify.plugin.options",
    "opsverify.plugin.collection",
    "opsverify.plugin.fixtures",
    "opsverify.plugin.running",
    "opsverify.plugin.xdist_support",
    "opsverify.plugin.outcomes",
    "opsverify.plugin.reports",
    "opsverify.bundled.plugin",  # every facade fixture; the shipped checks in a team's project
)
"""The plugin's parts, each a pytest plugin of its own, registered as this one is."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register :data:`PARTS` (called once, as this plugin is registered).

    Not ``pytest_plugins``: for every name listed there pytest also looks for an entry point of that
    name, reading the entry points of every installed distribution each time, which for these parts
    and the facade modules cost about 60 ms at every start. ``import_plugin`` imports and registers
    a module by its name alone (once: a part already registered is left as it is).
    """
    for name in PARTS:
        pluginmanager.import_plugin(name)

__all__ = ["NOTES_KEY", "PROP", "SESSION_KEY", "collected_records", "notes_of", "ov", "reports_dir"]
