"""Runbook coverage: which checks verify each runbook step, and which steps no check verifies.

The checks are read from ``checks/test_*.py`` without importing or running them (their
``@pytest.mark.runbook("area#step")`` decorators are found in the syntax tree), so this needs no
environment and no network.

Example::

    report = coverage(Path("runbooks"), Path("checks"))
    report.uncovered        # ["nats#revoke-old-users", ...]
    report.percent          # 96.4
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from opsverify.runbooks import RunbookBook, load_runbooks


@dataclass
class StepCoverage:
    id: str
    title: str
    procedure: str
    runbook: str
    manual: str | None
    checks: list[str] = field(default_factory=list)


@dataclass
class CoverageReport:
    steps: list[StepCoverage]
    unknown: dict[str, list[str]]  # step id -> checks naming it, for ids no runbook has

    @property
    def verifiable(self) -> list[StepCoverage]:
        return [s for s in self.steps if s.manual is None]

    @property
    def uncovered(self) -> list[str]:
        return [s.id for s in self.verifiable if not s.checks]

    @property
    def percent(self) -> float:
        total = len(self.verifiable)
        return 100.0 * (total - len(self.uncovered)) / total if total else 100.0

    def to_dict(self) -> dict[str, object]:
        return {
            "verifiable_steps": len(self.verifiable),
            "covered_steps": len(self.verifiable) - len(self.uncovered),
            "percent": round(self.percent, 1),
            "uncovered": self.uncovered,
            "unknown_step_ids": self.unknown,
            "steps": [s.__dict__ for s in self.steps],
        }


def runbook_markers(checks_dir: Path) -> dict[str, list[str]]:
    """step id -> ``file::test_name`` of every check whose decorators name it."""
    found: dict[str, list[str]] = {}
    for path in sorted(checks_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        module_ids = _ids_in(_module_marks(tree))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                for step_id in _ids_in(node.decorator_list) or module_ids:
                    found.setdefault(step_id, []).append(f"{path.name}::{node.name}")
    return found


def _module_marks(tree: ast.Module) -> list[ast.expr]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            value = node.value
            return list(value.elts) if isinstance(value, (ast.List, ast.Tuple)) else [value]
    return []


def _ids_in(decorators: list[ast.expr]) -> list[str]:
    ids = []
    for dec in decorators:
        if (
            isinstance(dec, ast.Call)
            and isinstance(dec.func, ast.Attribute)
            and dec.func.attr == "runbook"
            and dec.args
            and isinstance(dec.args[0], ast.Constant)
            and isinstance(dec.args[0].value, str)
        ):
            ids.append(dec.args[0].value)
    return ids


def coverage(runbooks_dir: Path, checks_dir: Path, book: RunbookBook | None = None) -> CoverageReport:
    """Match every runbook step with the checks that name it."""
    book = book or load_runbooks(runbooks_dir)
    markers = runbook_markers(checks_dir)
    steps = [
        StepCoverage(s.id, s.title, s.procedure, s.runbook, s.manual, sorted(markers.get(s.id, [])))
        for s in book.steps.values()
    ]
    unknown = {k: v for k, v in markers.items() if k not in book.steps}
    return CoverageReport(steps, unknown)
