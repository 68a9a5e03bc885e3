"""Allure results as written by allure-pytest, with two changes made in one place.

- Every JSON document and text attachment passes through the redactor (defence in depth: the plugin
  already redacts reports and exceptions before allure-pytest reads them). A document is redacted as
  the JSON text it is written as (the redactor knows every secret's JSON-escaped form too), and
  serialized at once: allure-pytest's own writer streams it in hundreds of small writes.
- Containers that only hold opsverify's own fixtures (the plumbing: ``ov_case``, ``target``,
  ``expect`` ...; and the probe fixtures, which only hand over a result the engine already has) are
  not written when they passed: allure-pytest writes one file per fixture per test, which for a suite
  of hundreds of checks cost more than the checks themselves (file creation dominated the run), and
  they show nothing a reader needs: the check's own result carries its outcome, message and duration.
  A container whose fixture failed or broke is kept, so the set-up error stays visible.
"""

from __future__ import annotations

import json
import os
import uuid
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
        from allure_commons.logger import INDENT, AllureFileLogger
        from allure_commons.model2 import TestResultContainer
        from attr import asdict
    except ImportError:
        return 0

    class OpsverifyAllureFileLogger(AllureFileLogger):  # type: ignore[misc]
        def _report_item(self, item: Any) -> None:
            if isinstance(item, TestResultContainer) and _only_ours_and_passed(item):
                return
            # allure-pytest's own writer, but serialized in one piece and redacted as text
            indent = INDENT if os.environ.get("ALLURE_INDENT_OUTPUT") else None
            data = asdict(item, filter=lambda _, value: value or value is False)
            text = REDACTOR.redact(json.dumps(data, indent=indent, ensure_ascii=False))
            filename = item.file_pattern.format(prefix=uuid.uuid4())
            partial = self._report_dir / f"{filename}.tmp"
            partial.write_text(text, encoding="utf8")
            os.replace(partial, self._report_dir / filename)

    found = 0
    for plugin in allure_commons.plugin_manager.get_plugins():
        if type(plugin) is AllureFileLogger:
            plugin.__class__ = OpsverifyAllureFileLogger
            found += 1
    return found

