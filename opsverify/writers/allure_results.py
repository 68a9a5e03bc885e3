"""Allure results as written by allure-pytest, with two changes made in one place.

- Every JSON document and text attachment passes through the redactor (defence in depth: the plugin
  already redacts reports and exceptions before allure-pytest reads them).
- Containers that only hold opsverify's plumbing fixtures (``ov_case``, ``target``, ``expect`` ...)
  are not written: allure-pytest writes one file per fixture per test, which for a suite of hundreds
  of checks cost more than the checks themselves, and they show nothing a reader needs. The probe
  fixtures' containers (how long a check waited for its probe) are kept.
"""

from __future__ import annotations

from typing import Any

from opsverify.config.secrets import REDACTOR

PLUMBING = frozenset({"ov_case", "ov_session", "environment", "target", "target_item", "expect", "phase"})


def _only_plumbing(item: Any) -> bool:
    befores = getattr(item, "befores", None) or []
    afters = getattr(item, "afters", None) or []
    names = [str(getattr(f, "name", "")).split("::")[0] for f in [*befores, *afters]]
    return bool(befores) and all(name in PLUMBING for name in names)


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
            if isinstance(item, TestResultContainer) and _only_plumbing(item):
                return
            _redact_attrs(item)
            super()._report_item(item)

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
