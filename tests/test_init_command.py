"""``opsverify init DIR``: a team's suite repository that works as written, and is never written over.

The scaffold's smoke run here uses this tree's opsverify (its checks are this project's, so only the
scaffold's own check runs); tests/test_installable_plugin.py runs it from an installed wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from opsverify.commands.init import LAYOUT
from opsverify.config.model import load_environment
from opsverify.gate.policy import load_policy
from tests.harness import ROOT, run_pytest


def _init(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsverify", "init", str(directory)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_init_writes_a_suite_whose_files_opsverify_accepts(tmp_path: Path) -> None:
    team = tmp_path / "ops-checks"
    proc = _init(team)
    assert proc.returncode == 0, proc.stderr
    for relative in LAYOUT:
        assert (team / relative).is_file(), relative
    assert (team / "reports").is_dir()
    assert load_environment(team / "environments" / "example.yaml").name == "example"
    assert load_policy(team / "gates" / "production.yaml").environment == "example"
    assert "ops-checks" in (team / "README.md").read_text()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    team = tmp_path / "ops-checks"
    (team / "checks").mkdir(parents=True)
    (team / "checks" / "test_team.py").write_text("# ours\n")
    proc = _init(team)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "would overwrite checks/test_team.py" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (team / "checks" / "test_team.py").read_text() == "# ours\n"
    assert sorted(p.name for p in team.rglob("*")) == ["checks", "test_team.py"]


def test_init_on_a_file_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("")
    proc = _init(target)
    assert proc.returncode == 2 and "is not a folder" in proc.stderr and "Traceback" not in proc.stderr


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture
def health() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    server.shutdown()
    server.server_close()


def test_space_form_paths_outside_the_suite_keep_its_root(tmp_path: Path, health: str) -> None:
    """pytest takes ``/elsewhere/example.yaml`` for a path before the plugin's options are known, and
    roots the run outside the suite; the suite's runbooks (the scaffold's check names one of its
    steps) and its environments are still found beside its pytest.ini."""
    team = tmp_path / "team"
    assert _init(team).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = elsewhere / "example.yaml"
    env.write_text(f"name: example\nhttp:\n  - {{name: api, url: '{health}'}}\n")
    reports = elsewhere / "reports"
    this_tree = {"PYTHONPATH": str(ROOT)}  # this tree's opsverify, whatever the venv installed
    proc = run_pytest(["-p", "opsverify.plugin", "-m", "smoke", "--env-file", str(env), "--reports-dir", str(reports)],
                      cwd=team, env=this_tree)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    checks = json.loads((reports / "summary.json").read_text())["checks"]
    assert [(c["check"], c["outcome"]) for c in checks] == [("test_health_endpoint_answers_json", "passed")]
    named = run_pytest(["-p", "opsverify.plugin", "--env", "example", "--reports-dir", str(reports),
                        "--collect-only", "-q", "--env-file", str(env)], cwd=team, env=this_tree)
    assert "given twice" in named.stderr, named.stdout + named.stderr  # environments/example.yaml was found
