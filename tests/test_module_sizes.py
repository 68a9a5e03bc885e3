"""No module of the library is over 450 lines (DESIGN §9: small modules of one concern), so that each
reads as one thing; a module that grows past it is split by concern into a package.

Every line counts: blank lines, comments and docstrings too.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness import ROOT

MAX_LINES = 450
LIBRARY = ROOT / "opsverify"

# Modules not yet held to the limit (none today); each entry is removed when its module is split.
EXEMPT: set[Path] = set()


def line_count(path: Path) -> int:
    """Lines in ``path``, blank and comment lines included (a last line without a newline too)."""
    return len(path.read_bytes().splitlines())


def oversized(paths: list[Path], limit: int = MAX_LINES) -> list[str]:
    """``path: N lines`` of every module of ``paths`` over ``limit`` lines, longest first."""
    counted = [(line_count(path), path) for path in paths]
    return [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {count} lines"
            for count, path in sorted(counted, key=lambda pair: (-pair[0], pair[1])) if count > limit]


def _library_modules() -> list[Path]:
    return sorted(path for path in LIBRARY.rglob("*.py")
                  if not any(path == exempt or path.is_relative_to(exempt) for exempt in EXEMPT))


def test_no_library_module_is_over_450_lines():
    found = oversized(_library_modules())
    assert not found, f"split these by concern (at most {MAX_LINES} lines each):\n" + "\n".join(found)


def test_every_exemption_is_still_in_the_library():
    """An exemption for a module that has gone (moved out, split) is dead weight: remove it."""
    assert [str(path.relative_to(ROOT)) for path in sorted(EXEMPT) if not path.exists()] == []


def test_an_oversized_module_is_named_with_its_count(tmp_path):
    long, short, unterminated = tmp_path / "long.py", tmp_path / "short.py", tmp_path / "unterminated.py"
    long.write_text("x = 1\n" * 451)
    short.write_text("x = 1\n" * 450)
    unterminated.write_text("x = 1\n" * 450 + "y = 2")
    assert oversized([short, long, unterminated]) == [f"{long}: 451 lines", f"{unterminated}: 451 lines"]
