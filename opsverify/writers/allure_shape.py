"""How each check reads in Allure: grouped by what it verifies, its parameters and measures in words,
and the probe's time as its own.

- **Behaviors**: epic = environment, feature = system, story = target, so the tab reads
  ``staging › http › gateway › test_endpoint_returns_expected_status[staging-gateway]``;
  **Suites**: parent suite = environment, suite = the check module (``http``, ``tls`` ...). Both are
  allure-pytest ``allure_label`` markers added at collection (:func:`label_markers`).
- **Parameters**: ``environment``, ``target`` (and ``item``) instead of the raw parametrization
  (``Case(env='local', section=...)``); each measured value and the threshold it was judged against
  (``measured days until the certificate for … expires = 3.2 d``, ``threshold … = at least 14 d
  (warn below 30 d)``), excluded from Allure's history id so a changing value stays one test.
- **Duration**: the probes run before the checks (all at once, after collection), so the time
  pytest spent in a check is ~0 s; the test's start and stop are those of its probes instead (the
  earliest start and the latest end when it used several).

Done on the test result allure-pytest is about to write, at the end of the check's teardown
(:class:`AllureShape`, registered by :func:`register` when allure-pytest writes results).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opsverify.session import Case, case_of, system_of

Span = tuple[float, float]  # wall-clock seconds


def label_markers(item: pytest.Item, case: Case) -> None:
    """Give ``item`` its Behaviors (epic/feature/story) and Suites (parent suite/suite) labels."""
    system = system_of(case.section)
    module = Path(str(getattr(item, "fspath", "") or item.nodeid.split("::")[0])).stem.removeprefix("test_")
    for kind, value in (("epic", case.env), ("feature", system), ("story", case.target),
                        ("parentSuite", case.env), ("suite", module or system)):
        item.add_marker(pytest.mark.allure_label(value, label_type=kind))


def _amount(value: Any, unit: str) -> str:
    return f"{float(value):g} {unit}".rstrip() if isinstance(value, (int, float)) else str(value)


def threshold_text(measured: dict[str, Any]) -> str | None:
    """``at most 400 ms (warn above 300 ms)`` / ``at least 14 d (warn below 30 d)``, or ``None``."""
    unit = str(measured.get("unit") or "")
    critical, warn = measured.get("critical"), measured.get("warn")
    at_least = measured.get("direction") == "at_least"
    parts = []
    if critical is not None:
        parts.append(f"{'at least' if at_least else 'at most'} {_amount(critical, unit)}")
    if warn is not None:
        parts.append(f"warn {'below' if at_least else 'above'} {_amount(warn, unit)}")
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else f"{parts[0]} ({parts[1]})"


def parameters(case: Case | None, measured: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """``(name, value, excluded from the history id)`` of one check, in display order."""
    found: list[tuple[str, str, bool]] = []
    if case is not None:
        found += [("environment", case.env, False), ("target", case.target, False)]
        if case.item:
            found.append(("item", case.item, False))
    for entry in measured:
        name = str(entry.get("name") or "value")
        level = entry.get("level")
        shown = _amount(entry.get("value"), str(entry.get("unit") or ""))
        if level in ("warn", "critical"):
            shown += f" (past {level})"
        found.append((f"measured {name}", shown, True))
        limit = threshold_text(entry)
        if limit:
            found.append((f"threshold {name}", limit, True))
    return found


class AllureShape:
    """Rewrites each opsverify check's Allure test result as the module docstring says."""

    def __init__(self, listener: Any, span: Callable[[pytest.Item], Span | None],
                 measured: Callable[[pytest.Item], list[dict[str, Any]]]) -> None:
        self.listener = listener
        self.span = span
        self.measured = measured

    def _result(self, item: pytest.Item) -> Any:
        """The test result allure-pytest holds for ``item`` (its current one), or ``None``."""
        from allure_pytest.utils import allure_full_name

        result = self.listener.allure_logger.get_test(None)
        if result is None or result.fullName != allure_full_name(item):
            return None
        return result

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Any:
        yield  # allure-pytest (inside) has added its labels, links and history id by now
        if "ov_case" not in getattr(item, "fixturenames", ()):
            return
        result = self._result(item)
        if result is None:
            return
        from allure_commons.model2 import Parameter

        case = case_of(item)
        kept = [p for p in result.parameters if p.name != "ov_case"]
        result.parameters = [Parameter(name=name, value=value, excluded=excluded or None)
                             for name, value, excluded in parameters(case, self.measured(item))] + kept
        span = self.span(item)
        if span is not None:
            result.start, result.stop = int(span[0] * 1000), max(int(span[0] * 1000), int(span[1] * 1000))


def register(config: pytest.Config, span: Callable[[pytest.Item], Span | None],
             measured: Callable[[pytest.Item], list[dict[str, Any]]]) -> bool:
    """Register :class:`AllureShape` when allure-pytest writes results in this run."""
    listener = config.pluginmanager.get_plugin("allure_listener")
    if listener is None or config.pluginmanager.has_plugin("opsverify-allure-shape"):
        return False
    config.pluginmanager.register(AllureShape(listener, span, measured), "opsverify-allure-shape")
    return True
