"""Startup guard: loading the suite imports no heavy client library (see ``opsverify/lazy.py``).

Every pytest run loads ``opsverify.plugin`` and every ``fixtures/*.py`` module, so a client library
imported at module level by any of them (or by the probe modules they import) is paid by every run,
even one that only checks HTTP endpoints. The import tests run a fresh interpreter with a recorder on
``sys.meta_path`` that notes, for each heavy package, the first frame of our code that imported it.
The others guard the rest of what every start pays for: config validators, configuration warnings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.harness import ROOT, run_pytest, write_env

HEAVY = (
    "nats", "confluent_kafka", "kubernetes", "testinfra", "redis", "psycopg", "websockets",
    "boto3", "botocore", "aiohttp", "jwt", "moto", "opentelemetry", "nkeys",
)
OURS = ("opsverify", "fixtures", "checks", "conftest")
#: Installed third-party pytest plugins that import a heavy library themselves (not our code):
#: kmock (test extra, imports aiohttp) and pytest-testinfra's own plugin (imports testinfra).
FOREIGN_PLUGINS = ("kmock", "pytest11.testinfra")

RECORDER = f'''
"""Notes who first imports each heavy package; reports those in sys.modules as JSON."""
import json, os, sys

HEAVY = {set(HEAVY)!r}
OURS = {OURS!r}
_first = {{}}


class _Recorder:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in HEAVY and top not in _first:
            frame, ours, chain = sys._getframe(1), None, []
            while frame is not None:
                module = frame.f_globals.get("__name__", "")
                if not module.startswith(("importlib", "_frozen")) and module != __name__:
                    chain.append(f"{{module}}:{{frame.f_lineno}}")
                    if ours is None and module.startswith(OURS):
                        ours = chain[-1]
                frame = frame.f_back
            _first[top] = {{"ours": ours, "via": chain[:4]}}
        return None


sys.meta_path.insert(0, _Recorder())


def report():
    return {{name: _first.get(name, {{}}) for name in sorted(HEAVY) if name in sys.modules}}


def pytest_sessionfinish(session):
    with open(os.environ["STARTUP_REPORT"], "w") as out:
        json.dump(report(), out)
'''


def _recorder(tmp_path: Path) -> Path:
    directory = tmp_path / "recorder"
    directory.mkdir()
    (directory / "startup_recorder.py").write_text(RECORDER)
    return directory


def _offenders(found: dict[str, dict[str, Any]]) -> str:
    return "\n".join(
        f"  {name}: imported by {info.get('ours') or 'no module of ours'}"
        f" (via {' <- '.join(info.get('via', []))})"
        for name, info in found.items()
    )


def _fixture_modules() -> list[str]:
    return sorted(f"fixtures.{p.stem}" for p in (ROOT / "fixtures").glob("*.py") if p.stem != "__init__")


def test_plugin_and_fixture_modules_import_no_heavy_client_library(tmp_path):
    import opsverify.plugin

    modules = ["opsverify.plugin", *opsverify.plugin.PARTS, *_fixture_modules()]  # the modules pytest loads
    script = (
        "import importlib, json, startup_recorder\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(startup_recorder.report()))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{_recorder(tmp_path)}:{ROOT}"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not found, (
        f"importing opsverify.plugin (and the {len(opsverify.plugin.PARTS)} parts it registers) and the fixtures modules loaded heavy client "
        f"libraries at import time (import them lazily, see opsverify/lazy.py):\n{_offenders(found)}"
    )


def test_collecting_an_http_only_suite_imports_no_heavy_client_library(tmp_path):
    env_file = write_env(tmp_path, {"http": [{"name": "demo", "url": "http://127.0.0.1:9/healthz"}]}, "httponly")
    report = tmp_path / "startup.json"
    disabled = [arg for plugin in FOREIGN_PLUGINS for arg in ("-p", f"no:{plugin}")]
    proc = run_pytest(
        [f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}", "-p", "startup_recorder", *disabled,
         "--collect-only", "-q", f"--env-file={env_file}", "checks/"],
        env={"PYTHONPATH": str(_recorder(tmp_path)), "STARTUP_REPORT": str(report)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks/test_http.py::" in proc.stdout, proc.stdout
    found = json.loads(report.read_text())
    assert not found, (
        "collecting checks/ for an http-only environment loaded heavy client libraries "
        f"(import them lazily, see opsverify/lazy.py):\n{_offenders(found)}"
    )


PROBE_MODULES_REPORT = """
import json, os, sys


def pytest_sessionfinish(session):
    with open(os.environ["PROBES_REPORT"], "w") as out:
        json.dump(sorted(name for name in sys.modules if name.startswith("opsverify.probes.")), out)
"""


def test_an_http_only_run_loads_no_other_systems_probe_module(tmp_path):
    """The facades name their probe modules lazily: a run of HTTP checks imports the HTTP probes and
    none of the other systems' (each of those is import work at every start, for nothing)."""
    directory = tmp_path / "reporter"
    directory.mkdir()
    (directory / "probes_report.py").write_text(PROBE_MODULES_REPORT)
    env_file = write_env(tmp_path, {"http": [{"name": "demo", "url": "http://127.0.0.1:9/healthz"}]}, "httponly")
    report = tmp_path / "probes.json"
    proc = run_pytest([f"--env-file={env_file}", f"--reports-dir={tmp_path / 'reports'}", "-p", "probes_report",
                       "checks/test_http.py::test_endpoint_returns_expected_status"],
                      env={"PYTHONPATH": str(directory), "PROBES_REPORT": str(report)})
    assert "1 error" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]  # refused: it did probe
    assert json.loads(report.read_text()) == ["opsverify.probes.http"]


def test_the_probe_modules_a_facade_names_load_with_their_libraries_before_the_wave():
    """Loading a facade imports none of its probe modules; ``load_for`` (what the session runs after
    collection, before any probe starts) imports them and the client libraries they declare."""
    script = (
        "import json, sys\n"
        "import opsverify.bundled.fixtures.kubernetes\n"
        "from opsverify.lazy import load_for\n"
        "before = [n for n in ('opsverify.probes.kubernetes', 'kubernetes.client') if n in sys.modules]\n"
        "load_for(['opsverify.bundled.fixtures.kubernetes'])\n"
        "after = [n for n in ('opsverify.probes.kubernetes', 'kubernetes.client') if n in sys.modules]\n"
        "print(json.dumps([before, after]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    before, after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before == []
    assert after == ["opsverify.probes.kubernetes", "kubernetes.client"]


def test_loading_an_http_only_file_builds_no_other_systems_validators(tmp_path):
    """Config models build their validators on first use: a file of HTTP targets alone does not pay
    for the validators of every other system's section at each start-up."""
    env_file = write_env(tmp_path, {"http": [{"name": "demo", "url": "http://127.0.0.1:9/healthz"}]}, "httponly")
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from opsverify.config.base import SECTIONS\n"
        "from opsverify.config.model import load_environment\n"
        "env = load_environment(Path(sys.argv[1]))\n"
        "assert [t.name for t in env.targets('http')] == ['demo']\n"
        "print(json.dumps({key: spec.model.__pydantic_complete__ for key, spec in SECTIONS.items()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(env_file)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(built) > 10, built  # every section was registered (an unknown key is known to be unknown)
    assert not [key for key, done in built.items() if done], built


def _runtime_distributions() -> set[str]:
    """opsverify and every distribution its core dependencies pull in (no extras), normalised names."""
    seen: set[str] = set()
    todo = ["opsverify"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = [Requirement(spec) for spec in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:
            continue
        todo.extend(req.name for req in requires if req.marker is None or req.marker.evaluate({"extra": ""}))
    return seen


def _self_test_plugins() -> list[str]:
    """pytest plugins installed here only for the self-tests: their distribution is not a runtime one."""
    runtime = _runtime_distributions()
    return sorted(entry.name for entry in metadata.entry_points(group="pytest11")
                  if entry.dist is not None and canonicalize_name(entry.dist.name) not in runtime)


def test_a_smoke_run_from_this_repository_warns_about_nothing_in_its_configuration(tmp_path):
    """pyproject.toml's pytest settings are all known to pytest and the runtime's plugins: a key only a
    self-test plugin knows would print a configuration warning in every run of a user's install. The
    run blocks every pytest plugin that only the self-tests' dependencies installed here."""
    blocked = _self_test_plugins()
    assert "kmock" in blocked and "opsverify.plugin" not in blocked and "xdist" not in blocked, blocked
    env_file = write_env(tmp_path, {"http": [{"name": "demo", "url": "http://127.0.0.1:9/healthz"}]}, "httponly")
    proc = run_pytest([*(arg for plugin in blocked for arg in ("-p", f"no:{plugin}")),
                       "-W", "error::pytest.PytestConfigWarning", "--collect-only", "-q",
                       f"--env-file={env_file}", "checks/"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "checks/test_http.py::" in proc.stdout, proc.stdout
    assert "warning" not in (proc.stdout + proc.stderr).lower(), proc.stdout[-3000:] + proc.stderr[-3000:]
