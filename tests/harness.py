"""Self-test harness: run the real checks (``checks/``) against real local servers, in a subprocess.

Example::

    def test_http_500_fails(run_suite, demo):
        run = run_suite({"http": [{"name": "broken", "url": demo.url("/status/500")}]}, "-k", "status")
        assert run.outcome("test_endpoint_returns_expected_status", "broken") == "failed"
        assert "got HTTP 500" in run.message("test_endpoint_returns_expected_status", "broken")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SuiteRun:
    """The result of one pytest run of the checks: exit code, output and ``summary.json``."""

    ret: int
    stdout: str
    stderr: str
    reports: Path
    summary: dict[str, Any] | None

    @classmethod
    def of(cls, proc: subprocess.CompletedProcess[str], reports: Path) -> SuiteRun:
        """The result of a finished pytest process that wrote its reports into ``reports``."""
        summary_path = reports / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        return cls(proc.returncode, proc.stdout, proc.stderr, reports, summary)

    @property
    def records(self) -> list[dict[str, Any]]:
        return list((self.summary or {}).get("checks", []))

    def record(self, check: str, target: str, env: str | None = None, item: str | None = None) -> dict[str, Any]:
        found = [
            r for r in self.records
            if r["check"] == check and r["target"] == target
            and (env is None or r["env"] == env) and (item is None or r["item"] == item)
        ]
        if len(found) != 1:
            seen = sorted(f"{r['check']}[{r['env']}-{r['target']}]" for r in self.records)
            raise AssertionError(f"expected one record for {check}[{target}], found {len(found)}; have {seen}\n{self.stdout[-3000:]}")
        return found[0]

    def outcome(self, check: str, target: str, **kw: Any) -> str:
        return str(self.record(check, target, **kw)["outcome"])

    def message(self, check: str, target: str, **kw: Any) -> str:
        return str(self.record(check, target, **kw)["message"])

    def cause(self, check: str, target: str, **kw: Any) -> str:
        """An error's message up to what it adds on every error (`` — could not see LABEL (ADDRESS): remedy``)."""
        return self.message(check, target, **kw).split(" — could not see ", 1)[0]

    def outcomes(self) -> dict[str, str]:
        return {f"{r['check']}[{r['env']}-{r['target']}{'-' + r['item'] if r['item'] else ''}]": r["outcome"] for r in self.records}


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a run a test interrupts: SIGINT at its default, as in a terminal.

    A test run started from a background job without job control (``cmd &`` in a script) inherits
    SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so the Ctrl-C the test sends
    would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_env(directory: Path, env: dict[str, Any], name: str = "selftest") -> Path:
    data = {"name": name, "tier": "dev", **env}
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_pytest(
    args: list[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    netns: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest ARGS`` in the project (optionally in a fresh network namespace)."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    if netns:
        argv = ["unshare", "-rn", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh", *argv]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTEST_XDIST_WORKER", None)
    full_env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False)


def run_checks(
    tmp: Path,
    env: dict[str, Any] | None,
    *args: str,
    env_vars: dict[str, str] | None = None,
    paths: list[str] | None = None,
    netns: bool = False,
    env_name: str = "selftest",
    timeout: float = 180,
    envs: Mapping[str, dict[str, Any]] | None = None,
) -> SuiteRun:
    """Write ``env`` as an environment file and run the project's checks against it; ``envs``
    (name -> sections) adds more environment files to the same run."""
    reports = tmp / "reports"
    argv = [f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}", f"--reports-dir={reports}"]
    if env is not None:
        argv.append(f"--env-file={write_env(tmp, env, env_name)}")
    for name, sections in (envs or {}).items():
        argv.append(f"--env-file={write_env(tmp, sections, name)}")
    argv += [*(paths or []), *args]
    return SuiteRun.of(run_pytest(argv, env=env_vars, netns=netns, timeout=timeout), reports)


class _Stoppable(Protocol):
    def stop(self) -> None: ...


StoppableT = TypeVar("StoppableT", bound=_Stoppable)


def start_in_parallel(stack: ExitStack, starters: Mapping[str, Callable[[], StoppableT]]) -> dict[str, StoppableT]:
    """Call every starter at once and return the started servers by name; each one's ``stop`` goes
    on ``stack``. If any start-up failed, the first failure is raised after the others are started
    (and so stopped with the stack)."""
    with ThreadPoolExecutor(len(starters)) as pool:
        futures = {name: pool.submit(fn) for name, fn in starters.items()}
    started: dict[str, StoppableT] = {}
    for name, future in futures.items():
        if future.exception() is None:
            started[name] = future.result()
            stack.callback(started[name].stop)
    for future in futures.values():
        future.result()  # re-raise the first start-up failure (the others are stopped above)
    return started
