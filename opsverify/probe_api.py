"""Declaring probe fixtures: the bridge between a system's facade and the probe engine.

A facade module (``fixtures/<system>.py``) turns each async probe into a pytest fixture::

    @probe_fixture("http")
    async def http_response(ctx: ProbeContext[HttpTarget]) -> HttpResponse:
        '''The answer of the target's HTTP request.'''
        return await http_probe.fetch(ctx)

A check that takes ``http_response`` as an argument is parametrized over the ``http:`` targets of
every selected environment (ids ``staging-gateway``); before the first check runs, the plugin starts
the probes of all collected items concurrently, and the fixture just waits for its own result. A probe
error (refused, timeout, missing secret ...) raises in the fixture, i.e. in the check's *setup*, so the
outcome is ``error``, not ``failed``.

``per_item=True`` keys the probe by the check's sub-item (``@pytest.mark.each("topics")``) instead
of sharing one run across the target's items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from opsverify.engine import ProbeFn
from opsverify.safety import SendsFn, reads

@dataclass(frozen=True)
class ProbeSpec:
    """A registered probe: the fixture name, its section, the coroutine and how it is keyed."""

    name: str
    section: str
    fn: ProbeFn
    per_item: bool = False
    each: str | None = None  # the target's list field the items come from (None: search every list)
    sends: SendsFn = field(default_factory=reads)  # what it sends to a target: its safety class


PROBES: dict[str, ProbeSpec] = {}


def probe_fixture(
    section: str, *, per_item: bool = False, name: str | None = None, each: str | None = None,
    sends: SendsFn | None = None,
) -> Callable[[ProbeFn], Any]:
    """Register ``fn`` as a probe of ``section`` and return a pytest fixture of the same name.

    ``each="topics"`` (implies ``per_item``) says which list of the target the items come from,
    so two lists with an item of the same name cannot be confused. ``sends`` declares what the
    probe sends to a target (:mod:`opsverify.safety`; default: it only reads), from which the
    checks using it get their safety class.
    """

    def decorate(fn: ProbeFn) -> Any:
        fixture_name = name or fn.__name__
        spec = ProbeSpec(fixture_name, section, fn, per_item or each is not None, each, sends or reads())
        PROBES[fixture_name] = spec

        def probe_result(request: pytest.FixtureRequest, ov_case: Any, ov_session: Any) -> Any:
            from opsverify.analysis import judged

            if judged(request.node):
                return None  # reported with its analysis window's verdict: its body does not run again
            return ov_session.probe_result(spec, ov_case)

        probe_result.__doc__ = fn.__doc__
        probe_result.__name__ = fixture_name
        return pytest.fixture(name=fixture_name)(probe_result)

    return decorate


def probe_by_name(name: str) -> ProbeSpec:
    try:
        return PROBES[name]
    except KeyError:
        raise KeyError(f"no probe fixture named {name!r}") from None
