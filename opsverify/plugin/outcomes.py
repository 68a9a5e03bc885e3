"""Outcomes: each check's report classified (passed, failed, error, skipped), shortened to its one-line
message, redacted, and turned into one :class:`~opsverify.results.CheckRecord`.

A ``failed`` check raised :class:`~opsverify.errors.CheckFailed` (or a bare ``assert``); an ``error``
could not see the system (:class:`~opsverify.errors.CouldNotVerify`, worded by
:mod:`opsverify.visibility`) or crashed. The record carries the failure's parts (``failure``: target,
expected, actual, step) or the error's (``error``: type, where, phase) beside the message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsverify import analysis, waiting
from opsverify.config.base import Safety
from opsverify.config.secrets import REDACTOR
from opsverify.errors import CheckFailed, CouldNotVerify, OpsverifyError, one_line
from opsverify.plugin.state import PROP, RunState, notes_of, ov
from opsverify.results import CheckRecord
from opsverify.session import case_of, system_of
from opsverify.visibility import address_of, case_error_text

SHORT_STYLES = ("auto", "short", "line", "no")


def _redact_exception(exc: BaseException) -> None:
    """Mask secrets inside an exception's message, for every reporter that formats it later."""
    try:
        exc.args = tuple(REDACTOR.redact(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, CheckFailed):
            exc.message = REDACTOR.redact(exc.message)
    except (AttributeError, TypeError):
        pass


def short_text(item: pytest.Item, kind: str, message: str) -> str:
    """The report of a failure or error as text: its message, then where the check is and the kind."""
    path, lineno, _ = item.reportinfo()
    return f"{message}\n{path}:{(lineno or 0) + 1}: {kind}"


def _short(item: pytest.Item) -> bool:
    return item.config.option.tbstyle in SHORT_STYLES


class ShortReports:
    """Builds the report of an opsverify error or failure without rendering a traceback.

    pytest would format the whole traceback, and those of the exceptions it was raised from (parsing
    the source of every frame), only for the wrapper below to replace it with one line; for hundreds
    of errors that costs seconds of CPU, which also starves the engine thread and distorts the
    latencies it measures. pytest's own report builder is handed the report's text in place of the
    exception (which it takes as the text of a failure) and the exception is put back for every
    other plugin. (A separate plugin object, because one module cannot hold two implementations of
    the same hook.)
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
        excinfo = call.excinfo
        if excinfo is None or not isinstance(excinfo.value, OpsverifyError) or call.when == "collect":
            return None
        if not _short(item):
            return None
        _redact_exception(excinfo.value)
        _, message, _ = _classify(item, excinfo.value)
        call.excinfo = short_text(item, type(excinfo.value).__name__, REDACTOR.redact(message))  # type: ignore[assignment]
        try:
            return pytest.TestReport.from_item_and_call(item, call)
        finally:
            call.excinfo = excinfo


def _address(item: pytest.Item) -> str | None:
    """The configured address of the check's target, or ``None``."""
    case = case_of(item)
    if case is None:
        return None
    try:
        return address_of(ov(item.config).target_of(case)) or None
    except (KeyError, LookupError, AttributeError):
        return None


def _classify(item: pytest.Item, exc: BaseException) -> tuple[str, str, dict[str, Any]]:
    """``(kind, message, fields)`` of a check that raised ``exc``; ``fields`` is its record's ``failure``/``error``."""
    if isinstance(exc, CheckFailed):
        return "failed", exc.message, {"failure": exc.fields()}
    if isinstance(exc, OpsverifyError):
        fields: dict[str, Any] = {}
        if isinstance(exc, CouldNotVerify):
            fields = exc.fields()
            if fields["where"] is None:  # raised outside a probe (a secret, a window): the target's address
                fields["where"] = _address(item)
        return "error", case_error_text(exc, case_of(item), ov(item.config)), {"error": fields or None}
    if isinstance(exc, AssertionError):
        return "failed", " ".join(str(exc).split()) or "assertion failed", {}
    return "error", f"check crashed: {one_line(exc)}", {"error": {"type": type(exc).__name__, "where": None,
                                                                  "phase": None}}


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # trylast: the innermost wrapper, so the redacted report and exception are what every other
    # plugin (allure-pytest, junitxml, the terminal) reads afterwards.
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    case = case_of(item)
    if case is None and "ov_case" not in getattr(item, "fixturenames", ()):
        return
    verbose_tb = not _short(item)
    kind: str | None = None
    message = ""
    parts: dict[str, Any] = {}
    excinfo = call.excinfo
    if excinfo is not None:
        _redact_exception(excinfo.value)
    if report.failed and excinfo is not None:
        exc = excinfo.value
        kind, message, parts = _classify(item, exc)
        message = REDACTOR.redact(message)
        if not verbose_tb:
            report.longrepr = short_text(item, type(exc).__name__, message)
    elif report.skipped and isinstance(report.longrepr, tuple):
        kind, message = "skipped", str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.passed and report.when == "call":
        kind = "passed"
    if isinstance(report.longrepr, tuple):  # a skip's (path, line, reason): keep its shape for every reporter
        path, lineno, reason = report.longrepr
        report.longrepr = (path, lineno, REDACTOR.redact(reason))
    elif report.longrepr is not None and verbose_tb:
        report.longrepr = REDACTOR.redact(str(report.longrepr))
    report.sections = [(title, REDACTOR.redact(text)) for title, text in waiting.reported_sections(item, report.sections)]
    if kind is None:
        return
    blob = _record_fields(item, kind, message, report.when)
    blob.update(parts)
    report.user_properties.append((PROP, json.dumps(REDACTOR.redact_obj(blob))))


def _record_fields(item: pytest.Item, kind: str, message: str, when: str | None) -> dict[str, Any]:
    session = ov(item.config)
    case = case_of(item)
    notes = notes_of(item)
    runbook = None
    marker = item.get_closest_marker("runbook")
    if marker and marker.args and marker.args[0] in session.runbooks:
        step = session.runbooks.step(marker.args[0])
        runbook = {"id": step.id, "title": step.title, "action": step.action, "link": step.link}
    severity = item.get_closest_marker("severity")
    safety = session.safety_of(item, case).value if case else Safety.read_only.value
    return {
        "kind": kind,
        "when": when,
        "message": message,
        "env": case.env if case else None,
        "target": case.target if case else None,
        "item": case.item if case else None,
        "system": system_of(case.section) if case else None,
        "check": getattr(item, "originalname", item.name),
        "markers": sorted({m.name for m in item.iter_markers() if not m.name.startswith("allure_")}
                          - {"parametrize", "skip", "skipif"}),
        "runbook": runbook,
        "measured": notes.measured,
        "warnings": notes.warnings,
        "facts": notes.facts,
        "safety": safety,
        "severity": severity.args[0] if severity and severity.args else None,
        **waiting.record_fields(item),
        **analysis.record_fields(item),
    }


class RecordCollector:
    """Turns each check's reports (set-up, call, tear-down; from the workers too under xdist) into its
    one record in the run's :class:`~opsverify.plugin.state.RunState`."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        blob = next((json.loads(str(v)) for k, v in report.user_properties if k == PROP), None)
        if blob is None:
            return
        records = self.state.records
        record = records.get(report.nodeid)
        if record is None:
            record = CheckRecord(nodeid=report.nodeid, check=blob["check"], outcome="passed")
            records[report.nodeid] = record
        record.duration_s += float(report.duration)
        for key in ("env", "target", "item", "system", "markers", "runbook", "safety", "severity"):
            setattr(record, key, blob[key])
        record.measured = blob["measured"]
        for key in ("attempts", "green_at", "green_after_s", "window"):
            if key in blob:
                setattr(record, key, blob[key])
        record.warnings = blob["warnings"]
        record.facts = blob.get("facts") or {}
        kind = blob["kind"]
        if kind in ("failed", "error", "skipped") and record.outcome in ("passed",):
            record.outcome = kind
            record.message = blob["message"]
            record.phase = report.when
            record.failure = blob.get("failure")
            record.error = blob.get("error")
        elif kind == "passed" and record.outcome == "passed":
            record.phase = "call"
