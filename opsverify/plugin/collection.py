"""Parametrization and collection: each check over its section's targets, runbook ids, safety classes.

``pytest_generate_tests`` parametrizes every check over the targets of its section (``ov_case``), or
one skipped ``unconfigured`` case when none has what it needs; ``pytest_collection_modifyitems``
refuses unknown runbook steps and severities (usage errors, exit 4) and skips what the environment's
safety classes do not allow.
"""

from __future__ import annotations

import gc

import pytest

from opsverify.config.base import Safety
from opsverify.plugin.state import ov, wants_checks
from opsverify.project import project_root
from opsverify.session import case_of, known_environments, section_of
from opsverify.writers.allure_extras import check_severity


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    if wants_checks(session.config):
        # What start-up built (modules, the validated environments, the runbooks) lives until the
        # run ends: out of the collector's passes during collection too (see pytest_collection_finish).
        gc.freeze()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    section = section_of(metafunc.fixturenames)
    if section is None:
        return
    session = ov(metafunc.config)
    configured: list[str] = []
    for marker in metafunc.definition.iter_markers("configured"):
        configured.extend(marker.args)
    each_marker = metafunc.definition.get_closest_marker("each")
    each = each_marker.args[0] if each_marker else None
    problem = session.marker_fields_problem(section, configured, each)
    if problem:  # raised once collection is done (pytest_collection_modifyitems): a usage error, exit 4
        session.usage_problems.append(f"{metafunc.definition.nodeid}: {problem}")
    cases = session.cases(section, configured, each)
    if cases:
        metafunc.parametrize("ov_case", cases, ids=[c.id for c in cases])
        return
    envs = ", ".join(session.environments) or "no environment selected"
    what = f"no {section} target" + (f" sets {' and '.join(configured)}" if configured else "")
    if each:
        what += f" with {each}"
    metafunc.parametrize(
        "ov_case",
        [pytest.param(None, marks=pytest.mark.skip(reason=f"not configured: {what} in {envs}"))],
        ids=["unconfigured"],
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = ov(config)
    if session.usage_problems:
        raise pytest.UsageError(session.usage_problems[0])
    for item in items:
        if "ov_case" not in getattr(item, "fixturenames", ()):
            continue
        for marker in item.iter_markers("runbook"):
            step_id = marker.args[0] if marker.args else None
            if step_id not in session.runbooks:
                raise pytest.UsageError(
                    f"{item.nodeid}: unknown runbook step {step_id!r} (not found in runbooks/*.md)"
                )
        check_severity(item)
        case = case_of(item)
        if case is None:
            continue
        decision = session.safety_decision(item, case)
        if decision.safety != Safety.read_only and item.get_closest_marker(decision.safety.value) is None:
            item.add_marker(decision.safety.value)  # so -m mutating / -m "not mutating" select by what is sent
        reason = decision.refusal(session.environments[case.env])
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if wants_checks(config):
        # Everything alive now (modules, the environment, the collected items) lives until the run
        # ends: move it out of the cyclic garbage collector's way. Its passes during the run, and the
        # interpreter's at exit, then only scan what the checks create (0.2 s of a 1.7 s run of 300
        # checks, bench/engine_bench.py). Not undone: a run is one process; undoing it makes the
        # exit pay the full scan again.
        gc.freeze()
        return
    checks = [i for i in session.items if "ov_case" in getattr(i, "fixturenames", ())]
    if checks:
        directory = project_root(config) / "environments"
        known = ", ".join(known_environments(directory)) or "none"
        raise pytest.UsageError(
            f"{len(checks)} checks selected but no environment given: add --env NAME "
            f"(known environments: {known}) or --env-file PATH"
        )
