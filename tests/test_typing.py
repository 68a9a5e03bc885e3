"""The library, the fixture modules and the checks type-check under ``mypy --strict`` (pyproject's [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def test_library_and_fixtures_pass_strict_mypy(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


PROBE_READING_A_FIELD_ITS_TARGET_LACKS = '''\
from opsverify.config.http import HttpTarget
from opsverify.engine import ProbeContext


async def probe(ctx: ProbeContext[HttpTarget]) -> str:
    url = str(ctx.target.url)
    return url + str(ctx.target.no_such_field)
'''


def test_probe_context_types_the_target_it_is_given(tmp_path):
    """``ProbeContext[HttpTarget]`` makes ``ctx.target`` an ``HttpTarget`` to mypy: its real fields pass,
    a field the model lacks is reported (were ``target`` ``Any``, mypy would say nothing)."""
    snippet = tmp_path / "snippet_probe.py"
    snippet.write_text(PROBE_READING_A_FIELD_ITS_TARGET_LACKS)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary",
         "--follow-imports", "silent", str(snippet)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(errors) == 1, proc.stdout
    assert 'snippet_probe.py:7: error: "HttpTarget" has no attribute "no_such_field"' in errors[0], proc.stdout
