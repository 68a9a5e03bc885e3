"""Options, markers and the run's configuration: ``--env`` files are validated here, in
``pytest_configure`` (a bad file is a usage error, exit 4, before anything is collected or probed);
the optional parts (the gate, history, metrics, Allure extras) are registered when they are asked for.
"""

from __future__ import annotations


import pytest

from opsverify import analysis, history, waiting
from opsverify.engine import DEFAULT_CONCURRENCY
from opsverify.local_state import export_sandbox_dir
from opsverify.net.sampling import DEFAULT_COUNT, DEFAULT_PER_HOST, SamplingSettings
from opsverify.plugin import hookspecs
from opsverify.project import project_root
from opsverify.plugin.state import RUN_KEY, SESSION_KEY, RunState, is_worker, reports_dir, writes_reports
from opsverify.results import utc_now
from opsverify.session import OvSession
from opsverify.writers import links

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


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


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
    # the one-step gate: `pytest -m predeploy --env staging --gate gates/production.yaml`
    group.addoption("--gate", default=None, metavar="POLICY",
                    help="after the run, judge it with this promotion policy; exit 0 promote, 1 hold, 2 cannot decide")
    group.addoption("--waivers", default=None, metavar="FILE",
                    help="waivers file for --gate (besides any the policy names)")
    history.add_options(group)


def _check_numbers(config: pytest.Config) -> None:
    if config.getoption("probe_concurrency") < 1:
        raise pytest.UsageError("--probe-concurrency must be at least 1")
    for option, low, high in (("latency_samples", 1, 50), ("latency_per_host", 1, 1024)):
        value = config.getoption(option)
        if not low <= value <= high:
            raise pytest.UsageError(f"--{option.replace('_', '-')} must be between {low} and {high}, got {value}")


def _aim_reports(config: pytest.Config) -> None:
    """junit.xml and allure-results/ go into the reports directory unless the command line sends them elsewhere."""
    out = reports_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(out / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(out / "allure-results")
        config.option.clean_alluredir = not is_worker(config)


def _register_parts(config: pytest.Config) -> None:
    """The optional parts, each only when this run uses it (so no other run imports or runs it)."""
    manager = config.pluginmanager
    controller = not is_worker(config)
    if controller and (config.getoption("gate", None) or config.getoption("waivers", None)):
        from opsverify.plugin.gate import Gate

        Gate.configure(config)  # a bad --gate policy file is a usage error before anything is probed
        manager.register(Gate(), "opsverify-gate")
    if getattr(config.option, "allure_report_dir", None):  # allure-pytest writes results in this run
        from opsverify.plugin.allure import AllureExtras

        manager.register(AllureExtras(), "opsverify-allure")
    if controller and writes_reports(config):
        from opsverify.plugin.extras import History, Metrics

        manager.register(Metrics(), "opsverify-metrics")
        if config.getoption("history", None):
            manager.register(History(), "opsverify-history")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    export_sandbox_dir(config.rootpath)
    if writes_reports(config) and not is_worker(config):
        # a run that stops here (a bad environment file) must not leave an earlier run's evidence behind
        (reports_dir(config) / "summary.json").unlink(missing_ok=True)
    _check_numbers(config)
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
    config.stash[RUN_KEY] = state = RunState(started_at=utc_now())
    links.configure(config)
    waiting.configure(config)
    analysis.configure(config, session.environments)
    # imported here, not at the top: pytest imports (and rewrites) each module the plugin lists
    # itself, and warns about one another module imported first
    from opsverify.plugin.outcomes import RecordCollector, ShortReports

    manager = config.pluginmanager
    if not manager.has_plugin("opsverify-short-reports"):
        manager.register(ShortReports(), "opsverify-short-reports")
        manager.register(RecordCollector(state), "opsverify-records")
    if writes_reports(config):
        _aim_reports(config)
    _register_parts(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.engine.shutdown()
