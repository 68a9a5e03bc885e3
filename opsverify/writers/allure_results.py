"""Allure results as written by allure-pytest, with two changes made in one place.

- Every JSON document and text attachment passes through the redactor (defence in depth: the plugin
  already redacts reports and exceptions before allure-pytest reads them).
- Containers that only hold opsverify's own fixtures (the plumbing: ``ov_case``, ``target``,
  ``expect`` ...; and the probe fixtures, which only hand over a result the engine already has) are
  not written when they passed: allure-pytest writes one file per fixture per test, which for a suite
  of hundreds of checks cost more than the checks themselves (file creation dominated the run), and
  they show nothing a reader needs: the check's own result carries its outcome, message and duration.
  A container whose fixture failed or broke is kept, so the set-up error stays visible.
"""

from __future__ import annotations

from typing import Any

from opsverify.config.secrets import REDACTOR

PLUMBING = frozenset({"ov_case", "ov_session", "environment", "target", "target_item", "expect", "phase"})


def _only_ours_and_passed(item: Any) -> bool:
    from opsverify.probe_api import PROBES

    steps = [*(getattr(item, "befores", None) or []), *(getattr(item, "afters", None) or [])]
    if not steps:
        return False
    for step in steps:
        name = str(getattr(step, "name", "")).split("::")[0]
        if name not in PLUMBING and name not in PROBES:
            return False
        if getattr(step, "status", None) not in (None, "passed"):
            return False
    return True


def install() -> int:
    """Give every registered Allure file logger the behaviour above; returns how many were found."""
    try:
        import allure_commons
        from allure_commons.logger import AllureFileLogger
        from allure_commons.model2 import TestResultContainer
    except ImportError:
        return 0

    class OpsverifyAllureFileLogger(AllureFileLogger):  # type: ignore[misc]
        def _report_item(self, item: Any) -> None:
            if isinstance(item, TestResultContainer) and _only_ours_and_passed(item):
                return
            _redact_attrs(item)
            super()._report_item(item)  # type: ignore[no-untyped-call]

    found = 0
    for plugin in allure_commons.plugin_manager.get_plugins():
        if type(plugin) is AllureFileLogger:
            plugin.__class__ = OpsverifyAllureFileLogger
            found += 1
    return found


def _redact_attrs(obj: Any, depth: int = 0) -> None:
    """Redact, in place, every string attribute of an Allure model object (recursively)."""
    if depth > 8 or obj is None:
        return
    fields = getattr(obj, "__attrs_attrs__", None)
    if fields is None:
        return
    for field in fields:
        value = getattr(obj, field.name, None)
        if isinstance(value, str):
            setattr(obj, field.name, REDACTOR.redact(value))
        elif isinstance(value, list):
            for element in value:
                _redact_attrs(element, depth + 1)
        else:
            _redact_attrs(value, depth + 1)
