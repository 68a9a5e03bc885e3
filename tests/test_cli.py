"""The ``opsverify`` command line as a person meets it: ``--version``, ``--help``, a pipe closed by
``head``, tables that fit 100 columns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from opsverify import __version__
from tests.harness import ROOT

COMMANDS = ("credentials", "gate", "history", "runbooks", "sandbox", "status")


def _opsverify(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsverify", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False, **kw)  # type: ignore[call-overload]


def test_version_names_the_installed_version() -> None:
    proc = _opsverify("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"opsverify {__version__}"


def test_help_has_one_line_per_subcommand() -> None:
    proc = _opsverify("--help", env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name in COMMANDS:
        line = next((ln for ln in lines if re.match(rf"^\s+{name}\s", ln)), None)
        assert line is not None, f"no line for {name}:\n{proc.stdout}"
        assert len(line.split()) > 2, f"{name}'s summary is not on its line: {line!r}\n{proc.stdout}"
    assert "--version" in proc.stdout


def _into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``opsverify ARGS`` with stdout a pipe whose reader has already gone (as after ``head``)."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "opsverify", *args], cwd=ROOT, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", proc.stderr)


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    for args in (("runbooks",),
                 ("gate", "--policy", "gates/production.yaml", "--results", str(tmp_path / "none.json"),
                  "--output", str(tmp_path / "gate.json"))):
        proc = _into_closed_pipe(*args)
        assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
        assert proc.returncode == 141, (args, proc.returncode, proc.stderr)


def test_runbooks_table_fits_100_columns_unless_wide() -> None:
    narrow = _opsverify("runbooks")
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 100
    assert "certs#expiry" in narrow.stdout and "test_certificate_is_not_close_to_expiry" in narrow.stdout
    wide = _opsverify("runbooks", "--wide")
    step = next(line for line in wide.stdout.splitlines() if "certs#protocol" in line)
    # one line per step: the title and every check that verifies it
    assert "Only modern TLS versions are accepted" in step and "test_tls_refuses_versions_below_minimum" in step
