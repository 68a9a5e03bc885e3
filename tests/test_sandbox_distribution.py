"""The sandbox is a distribution of its own (``sandbox/``, ``opsverify-sandbox``): the library never
imports it, ``opsverify sandbox`` reaches it through an entry point, and every path it and the
library's commands use comes from the project they run in, never from where a package lies."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tests.harness import ROOT

LIBRARY = ROOT / "opsverify"
SANDBOX = ROOT / "sandbox" / "opsverify_sandbox"


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` in ``cwd`` with this checkout's packages first on the path, and without the
    variables that would move the project's directories (unless given)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("OPSVERIFY_SANDBOX_DIR", "OPSVERIFY_TOOLS")}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "sandbox"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**environ, **env}, capture_output=True,
                          text=True, timeout=120, check=False)


def _opsverify(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _python(f"import sys; from opsverify.cli import main; sys.exit(main({list(args)!r}))", cwd)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("opsverify_sandbox"):
            names.add(node.value)  # importlib.import_module("opsverify_sandbox...")
    return names


def test_no_module_of_the_library_imports_the_sandbox() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imported_modules(path) if n.split(".")[0] == "opsverify_sandbox")
        for path in sorted(LIBRARY.rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert not (LIBRARY / "sandbox").exists()


def test_the_plugin_and_the_cli_load_without_the_sandbox(tmp_path: Path) -> None:
    """Every library module a run or the CLI loads, loaded: not one module of the sandbox comes along."""
    code = (
        "import sys, importlib, pkgutil, opsverify.plugin, opsverify.cli as cli\n"
        "import opsverify.commands as commands\n"
        "for info in pkgutil.iter_modules(commands.__path__): importlib.import_module(f'opsverify.commands.{info.name}')\n"
        "cli._load_commands(plugins=())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opsverify_sandbox')))\n"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_opsverify_sandbox_is_the_sandbox_distributions_entry_point(tmp_path: Path) -> None:
    registered = {ep.name: ep.value for ep in entry_points(group="opsverify.commands")}
    assert registered.get("sandbox") == "opsverify_sandbox.command"
    proc = subprocess.run([sys.executable, "-m", "opsverify", "sandbox", "status"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, "OPSVERIFY_SANDBOX_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "  nats         stopped" in proc.stdout.splitlines()


def test_without_the_sandbox_distribution_opsverify_sandbox_says_how_to_install_it(tmp_path: Path) -> None:
    code = "import sys; from opsverify.cli import main; sys.exit(main({argv!r}, plugins=()))"
    proc = _python(code.format(argv=["sandbox", "up", "nats"]), tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "opsverify sandbox: the opsverify-sandbox distribution is not installed: pip install -e sandbox "
        "(in an opsverify checkout; scripts/bootstrap.sh does it)"
    ]
    listed = _python(code.format(argv=["--help"]), tmp_path)
    assert any(line.split()[:2] == ["sandbox", "real"] for line in listed.stdout.splitlines()), listed.stdout


def test_serve_without_aiohttp_names_the_serve_extra(tmp_path: Path) -> None:
    """aiohttp is the serve extra's, not a core dependency: without it, one line says which extra to install."""
    code = ("import sys; sys.modules['aiohttp'] = None  # as where it is not installed\n"
            "from opsverify.cli import main; sys.exit(main(['serve', '--env-file', 'none.yaml']))")
    proc = _python(code, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "opsverify serve: needs aiohttp, which the serve extra installs: pip install 'opsverify[serve]'"
    ]
    core = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[0]
    assert "aiohttp" not in core


def _project(root: Path) -> Path:
    (root / "runbooks").mkdir(parents=True)
    (root / "checks").mkdir()
    (root / "runbooks" / "demo.md").write_text(
        "# Demo\n## Restart\n### demo#up — The service answers\n**Action:** Start it again.\n"
    )
    (root / "checks" / "test_demo.py").write_text(
        "import pytest\n\n@pytest.mark.runbook('demo#up')\ndef test_up():\n    pass\n"
    )
    return root


def test_runbooks_reads_the_project_in_the_working_directory(tmp_path: Path) -> None:
    proc = _opsverify("runbooks", "--json", cwd=_project(tmp_path / "project"))
    assert proc.returncode == 0, proc.stderr
    assert '"demo#up"' in proc.stdout and '"percent": 100.0' in proc.stdout


def test_runbooks_and_credentials_outside_a_project_are_a_one_line_usage_error(tmp_path: Path) -> None:
    for args, missing in ((("runbooks",), "runbooks"), (("credentials", "--env", "local"), "environments")):
        proc = _opsverify(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.splitlines() == [
            f"opsverify {args[0]}: {tmp_path.resolve()} has no {missing}/ directory: run it in an opsverify "
            "project or give --root DIR"
        ]


def test_the_sandbox_keeps_its_state_and_finds_its_tools_in_the_working_directory(tmp_path: Path) -> None:
    code = ("from opsverify_sandbox import manager, tools\n"
            "print(manager.state_dir()); print(tools.tools_dir())")
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(tmp_path / ".opsverify" / "sandbox"), str(tmp_path / ".opsverify" / "tools")]
    moved = _python(code, tmp_path, OPSVERIFY_SANDBOX_DIR="/srv/state", OPSVERIFY_TOOLS="/srv/tools")
    assert moved.stdout.splitlines() == ["/srv/state", "/srv/tools"]


def test_a_run_resolves_the_sandbox_directory_from_its_rootdir(tmp_path: Path) -> None:
    """``${OPSVERIFY_SANDBOX_DIR}`` in environment files: the run's rootdir's ``.opsverify/sandbox``."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text('pytest_plugins = ["opsverify.plugin"]\n')
    (project / "test_where.py").write_text(
        "import os\n\ndef test_where():\n    print('SANDBOX=' + os.environ['OPSVERIFY_SANDBOX_DIR'])\n"
    )
    code = "import sys, pytest; sys.exit(pytest.main(['-q', '-s', '-p', 'no:cacheprovider', 'test_where.py']))"
    proc = _python(code, project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SANDBOX={project / '.opsverify' / 'sandbox'}" in proc.stdout


def test_the_tools_of_the_self_tests_are_the_projects_wherever_a_process_runs(tmp_path: Path) -> None:
    """tests/conftest.py points ``$OPSVERIFY_TOOLS`` at the rootdir's tools (unless it was set), so a
    server started from another directory still finds them."""
    assert Path(os.environ["OPSVERIFY_TOOLS"]).is_absolute()
    proc = subprocess.run([sys.executable, "-c", "from opsverify_sandbox.tools import tools_dir; print(tools_dir())"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip() == os.environ["OPSVERIFY_TOOLS"], proc.stderr


def test_certificates_are_made_by_the_one_pki_module() -> None:
    """One place builds certificates (:mod:`opsverify_sandbox.pki`); the launchers and tests use it."""
    builders = sorted(
        str(path.relative_to(ROOT))
        for folder in ("opsverify", "sandbox", "tests", "bench", "fixtures", "checks")
        for path in (ROOT / folder).rglob("*.py")
        if "CertificateBuilder(" in path.read_text() and path != Path(__file__)
    )
    assert builders == ["sandbox/opsverify_sandbox/pki.py"]
