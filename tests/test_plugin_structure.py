"""The plugin's shape: public pytest API only, run state in the stash, optional parts loaded only when used.

- No module of the library, the facades, the checks or the root conftest imports ``_pytest`` (pytest's
  private package, which changes between releases without notice).
- No ``config._opsverify_*`` attributes and no ``global`` run state in the plugin: the run's state is
  in ``config.stash`` (:mod:`opsverify.plugin.state`).
- The plugin is a package of modules of one concern, none over 450 lines.
- A run that does not use the gate, metrics or history does not import them (nor register their plugin
  objects); a run with ``--gate`` does.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT

OURS = [ROOT / "conftest.py", *sorted((ROOT / "opsverify").rglob("*.py")), *sorted((ROOT / "fixtures").rglob("*.py")),
        *sorted((ROOT / "checks").rglob("*.py"))]
PLUGIN = ROOT / "opsverify" / "plugin"
MAX_LINES = 450


def _private_pytest_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: module`` of every import of ``_pytest`` (or a module under it) in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        found += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "_pytest"]
    return found


def test_no_module_imports_pytests_private_package():
    assert len(OURS) > 100
    found = [hit for path in OURS for hit in _private_pytest_imports(path)]
    assert found == []


def test_the_private_import_check_sees_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import pytest\nfrom _pytest.runner import runtestprotocol\nimport _pytest._code as c\n")
    assert [hit.split(": ")[1] for hit in _private_pytest_imports(sample, tmp_path)] == ["_pytest.runner", "_pytest._code"]


def test_run_state_is_in_the_stash_not_in_config_attributes_or_globals():
    attributes = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in OURS for n in ast.walk(ast.parse(p.read_text()))
                  if isinstance(n, ast.Attribute) and n.attr.startswith("_opsverify")]
    assert attributes == []
    globals_ = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in PLUGIN.glob("*.py") for n in ast.walk(ast.parse(p.read_text()))
                if isinstance(n, (ast.Global, ast.Nonlocal))]
    assert globals_ == []


def test_the_plugin_is_a_package_of_small_modules():
    assert not (ROOT / "opsverify" / "plugin.py").exists()
    sizes = {p.name: len(p.read_text().splitlines()) for p in PLUGIN.glob("*.py")}
    assert len(sizes) >= 8
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


PROBE = """
import json, sys
import pytest

class Seen:
    def pytest_collection_finish(self, session):
        manager = session.config.pluginmanager
        print("SEEN " + json.dumps({
            "modules": sorted(m for m in sys.modules if m.startswith(("opsverify", "prometheus_client"))),
            "plugins": sorted(n for n, _ in manager.list_name_plugin() if n and n.startswith("opsverify-")),
        }))

sys.exit(pytest.main(sys.argv[1:], plugins=[Seen()]))
"""


def _seen(tmp_path: Path, *args: str) -> dict[str, list[str]]:
    env = tmp_path / "tiny.yaml"
    env.write_text("name: tiny\ntier: dev\nhttp:\n  - {name: one, url: 'http://127.0.0.1:9/'}\n")
    proc = subprocess.run([sys.executable, "-c", PROBE, f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}",
                           "-p", "no:cacheprovider", "-q", "--collect-only", f"--env-file={env}",
                           f"--reports-dir={tmp_path / 'reports'}", *args, str(ROOT / "checks" / "test_http.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("SEEN ")), None)
    assert line is not None, proc.stdout + proc.stderr
    seen: dict[str, list[str]] = json.loads(line.removeprefix("SEEN "))
    return seen


def test_a_run_without_the_gate_metrics_or_history_neither_imports_nor_registers_them(tmp_path):
    seen = _seen(tmp_path)
    for module in ("opsverify.gate", "opsverify.plugin.gate", "opsverify.writers.metrics_prom",
                   "opsverify.plugin.extras", "opsverify.writers.summary_md"):
        assert module not in seen["modules"], module
    assert "opsverify-gate" not in seen["plugins"] and "opsverify-metrics" not in seen["plugins"]
    assert {"opsverify-short-reports", "opsverify-records"} <= set(seen["plugins"])


def test_a_run_with_the_gate_registers_it(tmp_path):
    seen = _seen(tmp_path, f"--gate={ROOT / 'gates' / 'production.yaml'}")
    assert "opsverify.gate" in seen["modules"] and "opsverify-gate" in seen["plugins"]
