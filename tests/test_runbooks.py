"""Runbooks as data, and the coverage command that ties every step to the checks verifying it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from opsverify.coverage import coverage
from opsverify.errors import ConfigError
from opsverify.runbooks import load_runbooks
from tests.harness import ROOT

BOOK = """# Demo
## Sealed
### demo#sealed — The store is unsealed
Some prose.
**Action:** Unseal it with 3 of 5 shares.
### demo#document — The change is written down
**Action:** Record it in the operations log.
**Manual:** a person writes the log entry
## Peers
### demo#peers — Every peer is present
**Action:** Re-join the missing peer.
"""


def _project(tmp: Path, checks: str) -> Path:
    (tmp / "runbooks").mkdir()
    (tmp / "runbooks" / "demo.md").write_text(BOOK)
    (tmp / "checks").mkdir()
    (tmp / "checks" / "test_demo.py").write_text(checks)
    return tmp


def test_steps_procedures_actions_and_manual_steps_are_parsed(tmp_path):
    book = load_runbooks(_project(tmp_path, "")/"runbooks")
    assert list(book.steps) == ["demo#sealed", "demo#document", "demo#peers"]
    sealed = book.step("demo#sealed")
    assert (sealed.title, sealed.action, sealed.procedure, sealed.runbook) == (
        "The store is unsealed", "Unseal it with 3 of 5 shares.", "Sealed", "Demo")
    assert book.step("demo#document").manual == "a person writes the log entry"
    assert book.procedures["Demo / Peers"] == ["demo#peers"]


def test_a_step_without_an_action_is_an_error_naming_file_and_line(tmp_path):
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "bad.md").write_text("# Bad\n## P\n### bad#x — no action here\ntext\n")
    with pytest.raises(ConfigError, match=r"runbooks/bad.md: line 3: step bad#x has no \*\*Action:\*\* line"):
        load_runbooks(tmp_path / "runbooks")


def test_coverage_finds_checks_by_their_markers_and_reports_gaps(tmp_path):
    root = _project(tmp_path, (
        "import pytest\n\n"
        "@pytest.mark.smoke\n@pytest.mark.runbook('demo#sealed')\ndef test_store_is_unsealed():\n    pass\n\n"
        "@pytest.mark.runbook('demo#gone')\ndef test_stale_reference():\n    pass\n"
    ))
    report = coverage(root / "runbooks", root / "checks")
    assert report.uncovered == ["demo#peers"]
    assert [s.checks for s in report.steps if s.id == "demo#sealed"] == [["test_demo.py::test_store_is_unsealed"]]
    assert report.unknown == {"demo#gone": ["test_demo.py::test_stale_reference"]}
    assert report.percent == 50.0  # 1 of 2 verifiable steps; the manual one does not count


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsverify", "runbooks", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_runbooks_command_prints_table_and_json_and_fails_on_gaps(tmp_path):
    root = _project(tmp_path, "import pytest\n\n@pytest.mark.runbook('demo#sealed')\ndef test_x():\n    pass\n")
    table = _cli("--root", str(root))
    assert table.returncode == 0
    rows = [line.split()[:2] for line in table.stdout.splitlines() if line.strip()]
    assert ["MISSING", "demo#peers"] in rows and ["manual", "demo#document"] in rows
    assert "1/2 verifiable steps covered (50.0%); 1 manual" in table.stdout
    data = json.loads(_cli("--root", str(root), "--json").stdout)
    assert data["uncovered"] == ["demo#peers"] and data["percent"] == 50.0
    assert _cli("--root", str(root), "--fail-uncovered").returncode == 1


def test_every_check_of_the_project_names_a_known_runbook_step():
    report = coverage(ROOT / "runbooks", ROOT / "checks")
    assert report.unknown == {}
    unmarked = []
    for path in sorted((ROOT / "checks").glob("test_*.py")):
        import ast

        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names = {getattr(d.func, "attr", "") for d in node.decorator_list if isinstance(d, ast.Call)}
                if "runbook" not in names:
                    unmarked.append(f"{path.name}::{node.name}")
    assert unmarked == []
