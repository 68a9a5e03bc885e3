"""What opsverify adds when allure-pytest writes results (registered only then): runbook links,
severity and Behaviors/Suites labels at collection, redaction and the check's shape in each result,
and ``environment.properties``, ``executor.json`` and ``categories.json`` once the run is written
(:mod:`opsverify.writers.allure_extras`, :mod:`~opsverify.writers.allure_shape`,
:mod:`~opsverify.writers.allure_results`, :mod:`~opsverify.writers.allure_env`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsverify.plugin.state import notes_of, ov
from opsverify.results import CheckRecord, RunInfo


class AllureExtras:
    """The Allure part of the plugin."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        from opsverify.writers import allure_extras

        runbooks = ov(config).runbooks
        for item in items:
            if "ov_case" in getattr(item, "fixturenames", ()):
                allure_extras.collect_item(item, runbooks)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """allure-pytest is configured now: adjust its result writer (redaction, plumbing) and results."""
        from opsverify.writers import allure_results, allure_shape

        allure_results.install()
        allure_shape.register(session.config, ov(session.config).probe_span, lambda item: notes_of(item).measured)

    def pytest_opsverify_reports_written(self, session: pytest.Session, run: RunInfo, records: list[CheckRecord],
                                         reports: Path, exitstatus: int) -> None:
        from opsverify.writers import allure_env, allure_extras

        directory = getattr(session.config.option, "allure_report_dir", None)
        if not directory:
            return
        ovs = ov(session.config)
        allure_env.write(Path(directory), run, {n: e.tier.value for n, e in ovs.environments.items()})
        allure_env.write_executor(Path(directory))
        allure_extras.write_categories(Path(directory))
