"""The opsverify pytest plugin: options, markers, parametrization, safety, engine, outcomes, reports.

Data flow (DESIGN.md §3): ``--env`` files are validated in ``pytest_configure`` (a bad file is a usage
error, exit 4, before anything is collected or probed) → ``pytest_generate_tests`` parametrizes each
check over its section's targets → safety classes skip what the environment does not allow → the
engine starts every selected item's probes concurrently → each check asserts on its own result →
one :class:`~opsverify.results.CheckRecord` per check → writers.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ReprEntry, ReprExceptionInfo, ReprFileLocation, ReprTraceback

from opsverify import __version__
from opsverify.config.base import Safety, Target
from opsverify.config.model import EnvironmentBase
from opsverify.config.secrets import REDACTOR
from opsverify.engine import DEFAULT_CONCURRENCY
from opsverify.net.sampling import DEFAULT_COUNT, DEFAULT_PER_HOST, SamplingSettings
from opsverify.errors import CheckFailed, OpsverifyError, one_line
from opsverify.visibility import case_error_text
from opsverify.expect import CheckNotes, Expect
from opsverify.results import CheckRecord, RunInfo, run_ending, utc_now
from opsverify.session import Case, OvSession, case_of, known_environments, section_of, system_of
from opsverify.writers import allure_env, allure_results, allure_shape, links, summary_json, summary_md
from opsverify.gate import pytest_support as gate_support  # gate (issue 7)
from opsverify.writers import allure_extras, metrics_prom  # gate (issue 7)
from opsverify import inventory  # credential inventory (issue 8)
from opsverify import analysis, waiting
from opsverify import console, history
from opsverify.project import project_root

pytest_plugins = ["opsverify.bundled.plugin"]  # every facade fixture; the shipped checks in a team's project

MARKERS = {
    "smoke": "quick post-deploy / on-call checks: `pytest -m smoke --env staging`",
    "predeploy": "checks a promotion gate requires before a release goes to production",
    "slo": "service-level objective checks (latency, error rate, cache hit ratio ...)",
    "rotation": "credential rotation checks; verify the phase selected by --phase or the env file",
    "mutating": "safety class: writes something (a canary message, a consumer group, an invocation)",
    "disruptive": "safety class: may degrade the system (bursts to trigger 429s, connection caps)",
    "runbook(id)": "the runbook step this check verifies, e.g. runbook('vault#sealed')",
    "severity(level)": "blocker | critical | normal | minor | trivial (Allure severity, report order)",
    "configured(*fields)": "run only against targets that set these config fields",
    "each(field)": "run once per element of the target's list field (e.g. topics)",
    "trend": "judged over an analysis window (--samples >= 2); skipped on a single snapshot",
}

NOTES_KEY = pytest.StashKey[CheckNotes]()
SESSION_KEY = pytest.StashKey[OvSession]()
INTERACTOR_KEY = pytest.StashKey[Any]()
WAITED_KEY = pytest.StashKey[bool]()
PROP = "opsverify"


# -- options & configuration ---------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opsverify", "opsverify operational checks")
    group.addoption("--env", action="append", default=[], metavar="NAME",
                    help="environment to verify (environments/NAME.yaml); repeatable")
    group.addoption("--env-file", action="append", default=[], metavar="PATH",
                    help="environment file outside environments/; repeatable")
    group.addoption("--reports-dir", default=None, metavar="DIR",
                    help="where junit.xml, allure-results/, summary.json, summary.md go (default: reports/)")
    group.addoption("--no-reports", action="store_true", default=False,
                    help="write no report files")
    group.addoption("--probe-concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                    help=f"probes in flight at once (default {DEFAULT_CONCURRENCY}; 1 = sequential)")
    group.addoption("--latency-samples", type=int, default=DEFAULT_COUNT, metavar="N",
                    help=f"samples a latency check is judged on, their median (default {DEFAULT_COUNT})")
    group.addoption("--latency-per-host", type=int, default=DEFAULT_PER_HOST, metavar="N",
                    help="latency samples in flight at once to one host:port, so a reading is the "
                    f"service's latency under its normal load, not under the checker's burst (default {DEFAULT_PER_HOST})")
    group.addoption("--phase", default=None, choices=["before", "overlap", "after"],
                    help="credential rotation phase the rotation checks verify "
                    "(overrides the environment file's rotation: block)")
    waiting.add_options(group)
    links.add_options(group)
    # -- gate (issue 7): one-step form `pytest -m predeploy --env staging --gate gates/production.yaml`
    group.addoption("--gate", default=None, metavar="POLICY",
                    help="after the run, judge it with this promotion policy; exit 0 promote, 1 hold, 2 cannot decide")
    group.addoption("--waivers", default=None, metavar="FILE",
                    help="waivers file for --gate (besides any the policy names)")
    # -- end gate
    history.add_options(group)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("dsession")


def _wants_checks(config: pytest.Config) -> bool:
    return bool(config.getoption("env") or config.getoption("env_file"))


def reports_dir(config: pytest.Config) -> Path:
    chosen = config.getoption("reports_dir")
    return Path(chosen) if chosen else project_root(config) / "reports"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    from opsverify.local_state import export_sandbox_dir

    export_sandbox_dir(config.rootpath)
    if _wants_checks(config) and not config.getoption("no_reports") and not config.option.collectonly \
            and not _is_worker(config):
        # a run that stops here (a bad environment file) must not leave an earlier run's evidence behind
        (reports_dir(config) / "summary.json").unlink(missing_ok=True)
    if config.getoption("probe_concurrency") < 1:
        raise pytest.UsageError("--probe-concurrency must be at least 1")
    for option, low, high in (("latency_samples", 1, 50), ("latency_per_host", 1, 1024)):
        value = config.getoption(option)
        if not low <= value <= high:
            raise pytest.UsageError(f"--{option.replace('_', '-')} must be between {low} and {high}, got {value}")
    session = OvSession.create(
        project_root(config),
        config.getoption("env"),
        config.getoption("env_file"),
        config.getoption("probe_concurrency"),
        phase=config.getoption("phase"),
    )
    session.engine.sampling = SamplingSettings(
        count=config.getoption("latency_samples"), per_host=config.getoption("latency_per_host")
    )
    config.stash[SESSION_KEY] = session
    links.configure(config)
    waiting.configure(config)
    analysis.configure(config, session.environments)
    if not config.pluginmanager.has_plugin("opsverify-short-reports"):
        config.pluginmanager.register(ShortReports(), "opsverify-short-reports")
    if _wants_checks(config) and not config.getoption("no_reports") and not config.option.collectonly:
        out = reports_dir(config)
        out.mkdir(parents=True, exist_ok=True)
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(out / "junit.xml")
        if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
            config.option.allure_report_dir = str(out / "allure-results")
            config.option.clean_alluredir = not _is_worker(config)
    # -- gate (issue 7): a bad --gate policy file is a usage error before anything is probed
    if not _is_worker(config):
        gate_support.configure(config)
    # -- end gate
    config._opsverify_started = utc_now()  # type: ignore[attr-defined]
    config._opsverify_partial = {}  # type: ignore[attr-defined]
    global _current_config
    _current_config = config


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n N`` (default ``--dist load``), send all checks of one target to one worker.

    Each worker then probes each of its targets once, as a single process would. (xdist's own
    ``loadgroup`` cannot be used: it renames node ids in a way pytest 9 no longer honours.)
    All targets are dealt out round-robin at the start rather than one at a time as workers
    finish: a worker can only probe concurrently what it has been given, and handing out one
    target per completed check made ``-n 2`` as slow as a sequential run.
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByTargetScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.endswith("]") and "[" in nodeid:
                return nodeid[nodeid.rindex("[") + 1 : -1]
            return nodeid

        def schedule(self) -> None:
            first = self.collection is None
            super().schedule()
            nodes = [node for node in self.nodes if not node.shutting_down]
            if not (first and self.collection and self.workqueue and nodes):
                return
            turn = 0
            while self.workqueue:
                self._assign_work_unit(nodes[turn % len(nodes)])
                turn += 1
            for node in nodes:
                node.shutdown()

    return ByTargetScheduling(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every plugin is configured now: adjust allure-pytest's result writer (redaction, plumbing)
    and the terminal's short summary (grouped)."""
    allure_results.install()
    allure_shape.register(session.config, ov(session.config).probe_span, lambda item: notes_of(item).measured)
    console.configure(session.config, _wants_checks(session.config))


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.engine.shutdown()


def ov(config: pytest.Config) -> OvSession:
    return config.stash[SESSION_KEY]


# -- parametrization ------------------------------------------------------------------------------
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


# -- collection: runbook ids, safety ------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = ov(config)
    if session.usage_problems:
        raise pytest.UsageError(session.usage_problems[0])
    allure_on = allure_extras.enabled(config)  # gate (issue 7)
    for item in items:
        if "ov_case" not in getattr(item, "fixturenames", ()):
            continue
        for marker in item.iter_markers("runbook"):
            step_id = marker.args[0] if marker.args else None
            if step_id not in session.runbooks:
                raise pytest.UsageError(
                    f"{item.nodeid}: unknown runbook step {step_id!r} (not found in runbooks/*.md)"
                )
        allure_extras.collect_item(item, session.runbooks, allure_on)  # severity checked; Allure links and labels
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
    if _wants_checks(config):
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


# -- running: prefetch every selected item's probes -----------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or _is_controller(config) or _is_worker(config):
        return
    started = time.monotonic()
    ov(config).on_waiting = console.progress(config, ov(config).engine)
    ov(config).prefetch(session.items)
    if analysis.wait_or_window(session, session.items, session.items[0] if session.items else None, started):
        from _pytest.main import pytest_runtestloop as report_every_check

        report_every_check(session)
        raise session.Interrupted("the wait was interrupted (Ctrl-C): each check reports its last outcome")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    config = item.config
    if not _is_worker(config):
        return
    interactor = _worker_interactor(config)
    queued = getattr(interactor, "torun", None)
    items = item.session.items
    owned = [item]
    if queued is not None:
        try:
            with queued.lock() as indices:
                pending = [getattr(interactor, "nextitem_index", None), *indices]
            owned += [items[i] for i in pending if isinstance(i, int) and i < len(items)]
        except Exception:  # noqa: BLE001 - xdist internals: prefetching is an optimisation only
            pass
    started = time.monotonic()
    ov(config).prefetch(owned)
    if not config.stash.get(WAITED_KEY, False):
        config.stash[WAITED_KEY] = True
        analysis.wait_or_window(item.session, owned, item, started)


def _worker_interactor(config: pytest.Config) -> Any:
    """xdist's WorkerInteractor (registered without a name), whose ``torun`` queue holds our items."""
    found = config.stash.get(INTERACTOR_KEY, None)
    if found is None:
        found = next((p for p in config.pluginmanager.get_plugins()
                      if type(p).__name__ == "WorkerInteractor"), False)
        config.stash[INTERACTOR_KEY] = found
    return found or None


# -- fixtures every check can use ------------------------------------------------------------------
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


def notes_of(item: pytest.Item) -> CheckNotes:
    notes = item.stash.get(NOTES_KEY, None)
    if notes is None:
        notes = CheckNotes()
        item.stash[NOTES_KEY] = notes
    return notes


# -- outcomes: classify, shorten, redact -----------------------------------------------------------
def _redact_exception(exc: BaseException) -> None:
    """Mask secrets inside an exception's message, for every reporter that formats it later."""
    try:
        exc.args = tuple(REDACTOR.redact(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, CheckFailed):
            exc.message = REDACTOR.redact(exc.message)
    except (AttributeError, TypeError):
        pass


def _short_repr(item: pytest.Item, kind: str, message: str) -> ReprExceptionInfo:
    path, lineno, _ = item.reportinfo()
    location = ReprFileLocation(str(path), (lineno or 0) + 1, kind)
    crash = ReprFileLocation(str(path), (lineno or 0) + 1, message)
    entry = ReprEntry([f"E   {line}" for line in message.splitlines()] or ["E"], None, None, location, "short")
    return ReprExceptionInfo(ReprTraceback([entry], None, "short"), crash)


class ShortReports:
    """Builds the report of an opsverify error or failure without rendering a traceback.

    pytest would format the whole traceback (parsing the source of every frame) only for the
    wrapper below to replace it with one line; for hundreds of errors that costs seconds of CPU,
    which also starves the engine thread and distorts the latencies it measures. (A separate
    plugin object, because one module cannot hold two implementations of the same hook.)
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
        excinfo = call.excinfo
        if excinfo is None or not isinstance(excinfo.value, OpsverifyError) or call.when == "collect":
            return None
        if item.config.option.tbstyle not in ("auto", "short", "line", "no"):
            return None
        _redact_exception(excinfo.value)
        exc = excinfo.value
        message = exc.message if isinstance(exc, CheckFailed) else case_error_text(exc, case_of(item), ov(item.config))
        sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
        return pytest.TestReport(
            item.nodeid,
            item.location,
            dict.fromkeys(item.keywords, 1),
            "failed",
            _short_repr(item, type(exc).__name__, REDACTOR.redact(message)),
            call.when,  # type: ignore[arg-type]
            sections,
            call.duration,
            call.start,
            call.stop,
            user_properties=item.user_properties,
        )


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # trylast: the innermost wrapper, so the redacted report and exception are what every other
    # plugin (allure-pytest, junitxml, the terminal) reads afterwards.
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    case = case_of(item)
    if case is None and "ov_case" not in getattr(item, "fixturenames", ()):
        return
    verbose_tb = item.config.option.tbstyle not in ("auto", "short", "line", "no")
    kind: str | None = None
    message = ""
    excinfo = call.excinfo
    if excinfo is not None:
        _redact_exception(excinfo.value)
    if report.failed and excinfo is not None:
        exc = excinfo.value
        if isinstance(exc, CheckFailed):
            kind, message = "failed", exc.message
        elif isinstance(exc, OpsverifyError):
            kind, message = "error", case_error_text(exc, case_of(item), ov(item.config))
        elif isinstance(exc, AssertionError):
            kind, message = "failed", " ".join(str(exc).split()) or "assertion failed"
        else:
            kind, message = "error", f"check crashed: {one_line(exc)}"
        message = REDACTOR.redact(message)
        if not verbose_tb:
            label = type(exc).__name__
            report.longrepr = _short_repr(item, label, message)
    elif report.skipped and isinstance(report.longrepr, tuple):
        kind, message = "skipped", str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.passed and report.when == "call":
        kind = "passed"
    if isinstance(report.longrepr, tuple):  # a skip's (path, line, reason): keep its shape for every reporter
        path, lineno, reason = report.longrepr
        report.longrepr = (path, lineno, REDACTOR.redact(reason))
    elif report.longrepr is not None and verbose_tb:
        report.longrepr = REDACTOR.redact(str(report.longrepr))
    report.sections = [(title, REDACTOR.redact(text)) for title, text in report.sections]
    if kind is None:
        return
    session = ov(item.config)
    notes = notes_of(item)
    runbook = None
    marker = item.get_closest_marker("runbook")
    if marker and marker.args and marker.args[0] in session.runbooks:
        step = session.runbooks.step(marker.args[0])
        runbook = {"id": step.id, "title": step.title, "action": step.action, "link": step.link}
    severity = item.get_closest_marker("severity")
    safety = session.safety_of(item, case).value if case else Safety.read_only.value
    blob = {
        "kind": kind,
        "when": report.when,
        "message": message,
        "env": case.env if case else None,
        "target": case.target if case else None,
        "item": case.item if case else None,
        "system": system_of(case.section) if case else None,
        "check": getattr(item, "originalname", item.name),
        "markers": sorted({m.name for m in item.iter_markers()
                           if not m.name.startswith("allure_")}  # gate (issue 7): not the Allure links
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
    report.user_properties.append((PROP, json.dumps(REDACTOR.redact_obj(blob))))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    blob = next((json.loads(str(v)) for k, v in report.user_properties if k == PROP), None)
    if blob is None:
        return
    config = _current_config
    if config is None:
        return
    records: dict[str, CheckRecord] = config._opsverify_partial  # type: ignore[attr-defined]
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
    kind = blob["kind"]
    if kind in ("failed", "error", "skipped") and record.outcome in ("passed",):
        record.outcome = kind
        record.message = blob["message"]
        record.phase = report.when
    elif kind == "passed" and record.outcome == "passed":
        record.phase = "call"


_current_config: pytest.Config | None = None


# -- reports ----------------------------------------------------------------------------------------
def _git_commit(root: Path) -> str | None:
    env_commit = os.environ.get("GITHUB_SHA")
    if env_commit:
        return env_commit
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def collected_records(config: pytest.Config) -> list[CheckRecord]:
    partial: dict[str, CheckRecord] = getattr(config, "_opsverify_partial", {})
    return list(partial.values())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    ovs = ov(config)
    ovs.engine.shutdown()
    if _is_worker(config) or not _wants_checks(config) or config.getoption("no_reports"):
        return
    if config.option.collectonly:
        return
    for env in ovs.environments.values():
        for ref in env.secret_refs():
            ref.try_register()
    records = collected_records(config)
    run = RunInfo(
        environments=list(ovs.environments),
        started_at=config._opsverify_started,  # type: ignore[attr-defined]
        finished_at=utc_now(),
        opsverify_version=__version__,
        git_commit=_git_commit(project_root(config)),
        args=[REDACTOR.redact(a) for a in config.invocation_params.args],
        phase=ovs.phase_summary(),
        run_id=str(uuid.uuid4()),
        credentials=[c.to_dict() for c in inventory.collect(ovs, settled_only=True)],  # issue 8
        wait=waiting.run_summary(config, records, exitstatus),
        analysis=analysis.run_summary(config, records, exitstatus),
        ended=run_ending(exitstatus, len(records), str(session.shouldstop or session.shouldfail or "") or None),
    )
    out = reports_dir(config)
    summary_json.write(out / "summary.json", run, records)
    summary_md.write(out / "summary.md", run, records)
    allure_dir = getattr(config.option, "allure_report_dir", None)
    if allure_dir:
        allure_env.write(Path(allure_dir), run, {n: e.tier.value for n, e in ovs.environments.items()})
        allure_env.write_executor(Path(allure_dir))
        allure_extras.write_categories(Path(allure_dir))  # gate (issue 7)
    metrics_prom.write(out / "metrics.prom", run, records)  # gate (issue 7)
    history.after_run(config, run, records)
    config._opsverify_written = out  # type: ignore[attr-defined]
    gate_support.after_reports(session, out, exitstatus)  # gate (issue 7): --gate sets session.exitstatus


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    records = collected_records(config)
    warned = [r for r in records if r.warnings]
    if warned:
        terminalreporter.section("opsverify warnings", sep="-", yellow=True)
        for record in warned:
            for text in record.warnings:
                terminalreporter.line(REDACTOR.redact(text))
    written = getattr(config, "_opsverify_written", None)
    if written is not None:
        terminalreporter.line(f"opsverify: reports written to {written}/ (summary.md, summary.json, junit.xml, allure-results/, metrics.prom)")
    gate_support.terminal(terminalreporter, config)  # gate (issue 7): the pre-deploy checklist
    console.terminal_summary(terminalreporter, config, records)
