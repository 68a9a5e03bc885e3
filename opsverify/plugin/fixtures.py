"""The fixtures every check can use: its case, the run's session, its environment, target, sub-item,
``expect`` (assertions bound to its target and runbook step) and the rotation ``phase``."""

from __future__ import annotations

from typing import Any

import pytest

from opsverify.config.base import Target
from opsverify.config.model import EnvironmentBase
from opsverify.expect import Expect
from opsverify.plugin.state import notes_of, ov
from opsverify.session import Case, OvSession


@pytest.fixture
def ov_case(request: pytest.FixtureRequest) -> Case:
    """The (environment, target[, item]) this check runs against (set by parametrization)."""
    raise pytest.UsageError(f"{request.node.nodeid}: ov_case was not parametrized")


@pytest.fixture(scope="session")
def ov_session(request: pytest.FixtureRequest) -> OvSession:
    """The run's opsverify session (environments, runbooks, engine)."""
    return ov(request.config)


@pytest.fixture
def environment(ov_case: Case, ov_session: OvSession) -> EnvironmentBase:
    """The environment model this check runs in (``environment.tier``, ``environment.defaults``)."""
    return ov_session.environments[ov_case.env]


@pytest.fixture
def target(ov_case: Case, ov_session: OvSession) -> Target:
    """The target model this check runs against (e.g. an ``HttpTarget``)."""
    return ov_session.target_of(ov_case)


@pytest.fixture
def target_item(request: pytest.FixtureRequest, ov_case: Case, ov_session: OvSession) -> Any:
    """The sub-item (``@pytest.mark.each("topics")``) this check runs against, or ``None``."""
    marker = request.node.get_closest_marker("each")
    return ov_session.item_of(ov_case, marker.args[0] if marker else None)


@pytest.fixture
def expect(request: pytest.FixtureRequest, ov_case: Case, ov_session: OvSession) -> Expect:
    """Assertion helpers bound to this check's target label and runbook step."""
    marker = request.node.get_closest_marker("runbook")
    step = ov_session.runbooks.step(marker.args[0]) if marker and marker.args else None
    return Expect(ov_case.id, step, notes_of(request.node))


@pytest.fixture
def phase(ov_case: Case, ov_session: OvSession) -> str | None:
    """The credential rotation phase this check verifies: ``--phase``, else the environment file's
    ``rotation:`` block (``"before"`` | ``"overlap"`` | ``"after"``), or ``None`` (no rotation declared)."""
    return ov_session.phase_for(ov_case)
