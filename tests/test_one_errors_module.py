"""Every exception class of the library is defined in ``opsverify/errors.py`` (DESIGN §9.4: one errors
module, its hierarchy drawn in its docstring), so that checks, reports and readers find all kinds of
error in one place.

A class counts as an exception when one of its bases is a builtin exception or a class of
:mod:`opsverify.errors`, or (transitively) another exception class of the library.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import opsverify.errors
from tests.harness import ROOT

LIBRARY = ROOT / "opsverify"
ERRORS = LIBRARY / "errors.py"

BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}
ERRORS_CLASSES = {name for name, value in vars(opsverify.errors).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def _library_files() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def _base_name(base: ast.expr) -> str:
    """``Foo`` for ``Foo``, ``x.Foo`` and ``Foo[...]``."""
    if isinstance(base, ast.Subscript):
        base = base.value
    if isinstance(base, ast.Attribute):
        return base.attr
    return base.id if isinstance(base, ast.Name) else ""


def _classes(paths: list[Path]) -> list[tuple[Path, ast.ClassDef]]:
    return [(path, node) for path in paths for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.ClassDef)]


def exception_classes_outside_errors(paths: list[Path]) -> list[str]:
    """``file:line Name`` of every exception class defined in ``paths`` other than the errors module."""
    classes = _classes(paths)
    exceptions = BUILTIN_EXCEPTIONS | ERRORS_CLASSES
    found: dict[str, str] = {}
    grew = True
    while grew:  # a library class deriving from another library exception class is one too
        grew = False
        for path, node in classes:
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            where = f"{shown}:{node.lineno} {node.name}"
            if path != ERRORS and where not in found and any(_base_name(base) in exceptions for base in node.bases):
                found[where] = node.name
                exceptions.add(node.name)
                grew = True
    return sorted(found)


def test_no_exception_class_is_defined_outside_the_errors_module():
    found = exception_classes_outside_errors(_library_files())
    assert not found, "define these in opsverify/errors.py (and draw them in its hierarchy):\n" + "\n".join(found)


def test_the_walk_finds_exception_classes_of_every_shape(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("import opsverify.errors\nfrom opsverify.errors import CouldNotVerify\n\n"
                     "class Bare(Exception):\n    pass\n\n"
                     "class Kind(CouldNotVerify):\n    pass\n\n"
                     "class Dotted(opsverify.errors.CheckFailed):\n    pass\n\n"
                     "class Deeper(Kind):\n    pass\n\n"
                     "class NotAnError:\n    pass\n\n"
                     "def nested():\n    class Inner(ValueError):\n        pass\n")
    found = sorted(where.rsplit(" ", 1)[1] for where in exception_classes_outside_errors([stray]))
    assert found == ["Bare", "Deeper", "Dotted", "Inner", "Kind"]
