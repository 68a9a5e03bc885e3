"""Waits and windows under the ways pytest is run: ``-n 2`` (xdist), ``-x``, ``--lf`` and Ctrl-C,
against the real flaky and demo servers; a run cut short is partial evidence the gate holds on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.harness import ROOT, SuiteRun, as_from_a_terminal, write_env
from tests.test_gate import gate, staging, write_policy
from tests.test_waiting import HTTP, STATUS


def _unique(flaky: Any, path: str) -> str:
    """A flaky-server URL no other test shares (each path keeps its own first request and bursts)."""
    return flaky.url(f"{path}?run={uuid.uuid4().hex[:8]}")


def test_a_window_under_xdist_samples_every_check_on_its_worker(run_suite, flaky):
    env = {"http": [{"name": "a-ok", "url": _unique(flaky, "/always/200")},
                    {"name": "b-down", "url": _unique(flaky, "/always/503")}]}
    run = run_suite(env, "--samples", "3", "--interval", "500ms", "-k", "status", "-n", "2", paths=[HTTP])
    assert run.ret == 1, run.stdout + run.stderr
    ok, down = run.record(STATUS, "a-ok"), run.record(STATUS, "b-down")
    assert ok["outcome"] == "passed" and ok["window"]["samples"] == 3, ok
    assert down["outcome"] == "failed" and down["window"]["counts"]["failed"] == 3
    assert "3 of 3 samples failed, more than failure_limit 0 — sample 1: expected HTTP 200" in down["message"]
    assert run.summary is not None
    analysis = run.summary["run"]["analysis"]  # told by the controller: the windows ran on the workers
    assert analysis["samples"] == 3 and analysis["checks"] == 2 and analysis["on_workers"] is True
    assert "Analysis window: 3 samples every 0.5 s for 2 read-only checks" in (run.reports / "summary.md").read_text()


def test_a_wait_under_xdist_re_probes_until_green(run_suite, flaky):
    env = {"http": [{"name": "a-late", "url": _unique(flaky, "/healthy-after/2000")},
                    {"name": "b-ok", "url": _unique(flaky, "/always/200")}]}
    run = run_suite(env, "--until-pass", "15s", "--interval", "1s", "-k", "status", "-n", "2", paths=[HTTP])
    assert run.ret == 0, run.stdout + run.stderr
    late = run.record(STATUS, "a-late")
    assert late["outcome"] == "passed" and late["attempts"] >= 2 and late["green_after_s"] >= 2.0, late
    assert run.record(STATUS, "b-ok")["attempts"] == 1
    assert run.summary is not None and run.summary["run"]["wait"]["ended"] == "all passed"


def test_x_ends_a_window_once_a_failure_is_settled_and_the_gate_holds_the_partial_run(run_suite, demo, flaky,
                                                                                    tmp_path):
    env = staging(demo, api_url=_unique(flaky, "/always/503"))
    run = run_suite(env, "-m", "predeploy", "--samples", "5", "--interval", "1s", "-x", paths=[HTTP],
                    env_name="staging")
    assert run.ret == 1, run.stdout + run.stderr
    assert "analysis window stopped after sample 1 of 5" in run.stdout
    record = run.record(STATUS, "api")
    assert record["outcome"] == "failed" and record["window"]["samples"] == 1 and record["window"]["planned"] == 5
    assert run.summary is not None and run.summary["run"]["analysis"]["stopped_early"] is True
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1 and "stopped early" in result.stdout, result.stdout


def _pytest(tmp: Path, env: dict[str, Any], *args: str, env_name: str = "selftest") -> list[str]:
    return [sys.executable, "-m", "pytest", f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}",
            f"--reports-dir={tmp / 'reports'}", f"--env-file={write_env(tmp, env, env_name)}", *args]


def _environ() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    return {**environ, "PYTHONUNBUFFERED": "1"}


def test_lf_windows_only_the_checks_that_failed_last_time(flaky, tmp_path):
    env = {"http": [{"name": "a-down", "url": _unique(flaky, "/always/503")},
                    {"name": "b-ok", "url": _unique(flaky, "/always/200")}]}
    cache = f"-o=cache_dir={tmp_path / 'cache'}"
    runs = []
    for number, extra in enumerate(([], ["--lf"])):
        directory = tmp_path / f"run{number}"
        directory.mkdir()
        argv = _pytest(directory, env, cache, HTTP, "-k", "status", "--samples", "2", "--interval", "300ms", *extra)
        proc = subprocess.run(argv, cwd=ROOT, env=_environ(), capture_output=True, text=True, timeout=180, check=False)
        runs.append(SuiteRun.of(proc, directory / "reports"))
    first, again = runs
    assert first.ret == 1 and {r["target"] for r in first.records if r["outcome"] != "skipped"} == {"a-down", "b-ok"}
    assert again.ret == 1, again.stdout
    assert "run-last-failure: rerun previous 1 failure" in again.stdout, again.stdout
    assert [r["target"] for r in again.records] == ["a-down"]
    assert again.record(STATUS, "a-down")["window"]["samples"] == 2


def test_ctrl_c_ends_a_window_at_once_with_a_partial_summary_the_gate_holds(demo, tmp_path):
    argv = _pytest(tmp_path, staging(demo), HTTP, "-p", "no:cacheprovider", "-m", "predeploy",
                   "--samples", "100", "--interval", "1s", env_name="staging")
    proc = subprocess.Popen(argv, cwd=ROOT, env=_environ(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=as_from_a_terminal)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the first progress line says sample 1 is taken
        seen.append(line)
        if "opsverify: analysis window: sample 1 of 100" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)  # 100 samples 1 s apart: only the interrupt ends it this soon
    output = "".join(seen) + rest
    assert proc.returncode == 2, output
    run = SuiteRun.of(subprocess.CompletedProcess(argv, proc.returncode, output, ""), tmp_path / "reports")
    record = run.record(STATUS, "api")
    assert record["outcome"] == "passed" and 1 <= record["window"]["samples"] < 100, record["window"]
    assert run.summary is not None and run.summary["run"]["analysis"]["interrupted"] is True
    assert run.summary["run"]["ended"]["status"] == "interrupted"
    result = gate(tmp_path, write_policy(tmp_path), tmp_path / "reports" / "summary.json")
    assert result.ret == 1 and "interrupted" in result.stdout and "partial" in result.stdout, result.stdout
