"""opsverify as a team installs it: the wheel in a fresh virtualenv, beside PyPI's ``fixtures``, a suite
repository made by ``opsverify init``, and ``pytest -m smoke`` there against a service on loopback.

The virtualenv gets the wheel and the core dependencies only (no extras): what ``pip install
opsverify`` gives. Its dependencies come from a wheelhouse kept in ``~/.cache/opsverify/`` per
dependency list, filled from the package index the first time (about two minutes), so later runs
install offline in seconds; the opsverify wheel itself is built fresh from this tree every run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.harness import ROOT

WHEELHOUSES = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "opsverify" / "selftest-wheelhouse"


@dataclass
class Installed:
    """A fresh virtualenv with the built wheel installed, and a suite repository made by ``opsverify init``."""

    wheel: Path
    venv: Path
    team: Path
    outside: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def run(self, *argv: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` with the virtualenv's executables first on PATH, as an activated venv would."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV", "COV_", "OPSVERIFY_"))}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(list(argv), cwd=cwd or self.team, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)


def _pip(*args: str, timeout: float = 900) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _wheelhouse(wheel: Path) -> Path:
    """The dependencies of ``wheel`` (and PyPI's ``fixtures``) as wheels, fetched once per dependency list."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    key = hashlib.sha256(json.dumps([sys.version_info[:2], sorted(dependencies)]).encode()).hexdigest()[:16]
    house = WHEELHOUSES / key
    if not (house / ".complete").exists():
        shutil.rmtree(house, ignore_errors=True)
        _pip("wheel", "--quiet", "-w", str(house), str(wheel), "fixtures")
        (house / wheel.name).unlink(missing_ok=True)  # this tree's wheel is built anew every run
        (house / ".complete").touch()
    return house


@contextmanager
def _one_builder() -> Iterator[None]:
    """One process at a time builds from this tree and fills the wheelhouse (xdist workers each set
    up this module: a second builder would delete a wheelhouse the first is filling)."""
    WHEELHOUSES.mkdir(parents=True, exist_ok=True)
    with open(WHEELHOUSES / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("installable")
    with _one_builder():
        _pip("wheel", "--quiet", "--no-deps", "-w", str(tmp / "dist"), str(ROOT))
        wheel = next((tmp / "dist").glob("opsverify-*.whl"))
        house = _wheelhouse(wheel)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    _pip("--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-index", "--find-links", str(house),
         str(wheel), "fixtures")
    outside = tmp / "elsewhere"
    outside.mkdir()
    found = Installed(wheel, venv, tmp / "team-checks", outside)
    init = found.run("opsverify", "init", str(found.team), cwd=tmp)
    assert init.returncode == 0, init.stdout + init.stderr
    return found


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}' if self.path == "/healthz" else b"not found"
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("content-type", "application/json" if self.path == "/healthz" else "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """A health endpoint on 127.0.0.1 answering JSON."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    server.shutdown()
    server.server_close()


def _env_file(installed: Installed, url: str, name: str = "example", extra: str = "") -> Path:
    path = installed.outside / f"{name}.yaml"
    path.write_text(f"name: {name}\ntier: staging\nhttp:\n  - {{name: api, url: '{url}', status: 200, "
                    f"max_latency_ms: {{warn: 2000, critical: 5000}}}}\n{extra}")
    return path


def _records(reports: Path) -> dict[str, str]:
    summary = json.loads((reports / "summary.json").read_text())
    return {f"{r['check']}[{r['target']}]": r["outcome"] for r in summary["checks"]}


def test_the_wheel_ships_the_suite_inside_opsverify_and_no_top_level_fixtures(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.startswith("opsverify-")}
    assert tops == {"opsverify"}, tops
    assert "opsverify/bundled/fixtures/http.py" in names
    assert "opsverify/bundled/checks/test_http.py" in names
    assert "opsverify/bundled/runbooks/platform.md" in names
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "opsverify").rglob("__init__.py")}
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names)
    assert not missing, f"packages of opsverify/ the wheel lacks (add them to pyproject.toml's packages): {missing}"
    entry_points = zipfile.ZipFile(installed.wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "[pytest11]\nopsverify.plugin = opsverify.plugin" in entry_points


def test_import_fixtures_beside_opsverify_is_the_pypi_package(installed: Installed) -> None:
    proc = installed.run(installed.python, "-c",
                         "import fixtures, opsverify.bundled.fixtures as ours; "
                         "print(fixtures.__file__); print(hasattr(fixtures, 'Fixture')); print(ours.__file__)")
    assert proc.returncode == 0, proc.stderr
    theirs, has_fixture_class, ours = proc.stdout.split()
    assert Path(theirs).parent.name == "fixtures" and "site-packages" in theirs
    assert has_fixture_class == "True"  # testtools' fixtures, not opsverify's facades
    assert ours.endswith("site-packages/opsverify/bundled/fixtures/__init__.py")


def test_smoke_run_in_a_scaffolded_repo_runs_the_shipped_checks_and_the_teams_own(
    installed: Installed, service: str
) -> None:
    env = _env_file(installed, service)
    reports = installed.outside / "reports" / "smoke"  # not there yet: pytest must not take it for a path
    proc = installed.run("pytest", "-m", "smoke", "--env-file", str(env), "--reports-dir", str(reports))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    outcomes = _records(reports)
    assert outcomes["test_endpoint_returns_expected_status[api]"] == "passed"  # shipped (site-packages)
    assert outcomes["test_endpoint_answers_within_latency_budget[api]"] == "passed"
    assert outcomes["test_health_endpoint_answers_json[api]"] == "passed"  # the scaffold's, on its runbook step
    assert "site-packages/opsverify/bundled/checks/test_http.py" in proc.stdout or \
        "opsverify/bundled/checks/test_http.py" in proc.stdout
    assert not (installed.team / "reports" / "summary.json").exists()


def test_only_the_teams_checks_with_no_bundled_checks(installed: Installed, service: str) -> None:
    env = _env_file(installed, service)
    reports = installed.outside / "reports" / "own"
    proc = installed.run("pytest", "-m", "smoke", "--no-bundled-checks", "--env-file", str(env),
                         "--reports-dir", str(reports))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert set(_records(reports)) == {"test_health_endpoint_answers_json[api]"}


def test_gate_policy_outside_the_repo_in_the_space_form(installed: Installed, service: str) -> None:
    env = _env_file(installed, service)
    policy = installed.outside / "production.yaml"
    shutil.copy(installed.team / "gates" / "production.yaml", policy)
    reports = installed.outside / "reports" / "gate"
    proc = installed.run("pytest", "-m", "predeploy", "--env-file", str(env), "--reports-dir", str(reports),
                         "--gate", str(policy))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert json.loads((reports / "gate.json").read_text())["decision"] == "promote"


def test_a_section_whose_extra_is_not_installed_is_a_one_line_usage_error(installed: Installed, service: str) -> None:
    env = _env_file(installed, service, name="with-kafka",
                    extra="kafka:\n  - {name: events, bootstrap: '127.0.0.1:9'}\n")
    proc = installed.run("pytest", "-m", "smoke", "--env-file", str(env), "--no-reports")
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "opsverify[kafka]" in line]
    assert len(lines) == 1 and "confluent_kafka" in lines[0] and "kafka[0]" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
