"""``--until-pass``: re-probe what did not pass until it does or the deadline, against a real server
whose health changes over time (``tests.flaky_server``), and report every check once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.harness import ROOT, SuiteRun, as_from_a_terminal, write_env

STATUS = "test_endpoint_returns_expected_status"
HTTP = "checks/test_http.py"


def test_a_check_that_turns_healthy_passes_with_its_attempts_and_green_time_recorded(run_suite, flaky):
    env = {"http": [{"name": "api", "url": flaky.url("/healthy-after/3000")}]}
    run = run_suite(env, "--until-pass", "10s", "--interval", "1s", paths=[HTTP])
    assert run.ret == 0, run.stdout + run.stderr
    record = run.record(STATUS, "api")
    assert record["outcome"] == "passed"
    assert record["attempts"] >= 2 and record["green_at"] is not None
    assert record["green_after_s"] >= 3.0  # it cannot have passed before the server turned healthy
    assert "waiting for 1 of 3 checks to pass" in run.stdout and "(failed)" in run.stdout
    assert f"({record['attempts']} attempts)" in (run.reports / "summary.md").read_text()
    assert "passed after" in (run.reports / "summary.md").read_text()
    assert run.summary is not None and run.summary["run"]["wait"]["ended"] == "all passed"
    # the latency check shares no probe with the status check: it passed at once and was not re-run
    assert run.record("test_endpoint_answers_within_latency_budget", "api")["attempts"] == 1
    # skipped checks do not wait
    assert {r["attempts"] for r in run.records if r["outcome"] == "skipped"} == {1}
    # one record per check in every report, not one per attempt
    junit = (run.reports / "junit.xml").read_text()
    assert junit.count(f'name="{STATUS}[selftest-api]"') == 1
    allure = [json.loads(p.read_text()) for p in (run.reports / "allure-results").glob("*-result.json")]
    assert sorted(r["name"] for r in allure if STATUS in r["name"]) == [f"{STATUS}[selftest-api]"]
    assert len(allure) == len(run.records)


def test_failures_and_errors_wait_until_the_deadline_and_report_their_last_outcome(run_suite, flaky, closed_port):
    env = {"http": [{"name": "down", "url": flaky.url("/always/503")},
                    {"name": "refused", "url": f"http://127.0.0.1:{closed_port}/healthz"}]}
    run = run_suite(env, "--until-pass", "3s", "--interval", "1s", "-k", "status", paths=[HTTP])
    assert run.ret == 1, run.stdout + run.stderr
    down, refused = run.record(STATUS, "down"), run.record(STATUS, "refused")
    assert down["outcome"] == "failed" and "got HTTP 503" in down["message"]
    assert refused["outcome"] == "error" and "refused" in refused["message"]
    # attempts at 0 s, 1 s and 2 s; the next would start at the deadline
    assert down["attempts"] == refused["attempts"] == 3
    assert down["green_at"] is None and refused["green_after_s"] is None
    assert run.summary is not None and run.summary["run"]["wait"]["ended"] == "deadline"
    assert "still not passing" in run.stdout
    assert "still failed after 3 attempts" in (run.reports / "summary.md").read_text()


def test_x_reports_only_up_to_the_first_check_still_not_passing(run_suite, flaky):
    env = {"http": [{"name": "a-down", "url": flaky.url("/always/503")},
                    {"name": "b-down", "url": flaky.url("/always/500")}]}
    run = run_suite(env, "--until-pass", "2s", "--interval", "1s", "-k", "status", "-x", paths=[HTTP])
    assert run.ret == 1
    reported = [r for r in run.records if r["outcome"] != "skipped"]
    assert len(reported) == 1 and reported[0]["attempts"] == 2, run.stdout


def test_ctrl_c_ends_a_wait_at_once_and_reports_the_last_outcomes(flaky, tmp_path):
    env = write_env(tmp_path, {"http": [{"name": "down", "url": flaky.url("/always/503")}]})
    reports = tmp_path / "reports"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}",
            f"--reports-dir={reports}", f"--env-file={env}", HTTP, "-k", "status", "--until-pass", "10m", "--interval", "1s"]
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    proc = subprocess.Popen(argv, cwd=ROOT, env={**environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=as_from_a_terminal)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the first progress line says the wait has begun
        seen.append(line)
        if "opsverify: waiting for" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)  # a 10-minute deadline: only the interrupt ends it this soon
    output = "".join(seen) + rest
    assert proc.returncode == 2, output
    assert "wait was interrupted" in output
    run = SuiteRun.of(subprocess.CompletedProcess(argv, proc.returncode, output, ""), reports)
    record = run.record(STATUS, "down")
    assert record["outcome"] == "failed" and record["attempts"] >= 1
    assert run.summary is not None and run.summary["run"]["wait"]["ended"] == "interrupted"


@pytest.mark.parametrize(("args", "said"), [
    (["--until-pass", "soon"], "--until-pass: 'soon' is not a duration"),
    (["--until-pass", "5s", "--samples", "3"], "cannot be combined"),
    (["--until-pass", "5s", "--interval", "10s"], "longer than --until-pass"),
    (["--interval", "2s"], "--interval needs --until-pass or --samples"),
])
def test_bad_wait_options_are_usage_errors(run_suite, flaky, args, said):
    run = run_suite({"http": [{"name": "api", "url": flaky.url("/always/200")}]}, *args, paths=[HTTP])
    assert run.ret == 4 and said in run.stderr, run.stdout + run.stderr



def test_the_reported_run_shows_only_its_own_captured_output_not_the_waits(run_suite, flaky, tmp_path):
    check = tmp_path / "test_prints.py"
    check.write_text(
        "def test_prints_then_fails(http_response):\n"
        "    print('PRINTED BY THE CHECK')\n"
        "    assert http_response.status == 200\n"
    )
    env = {"http": [{"name": "down", "url": flaky.url("/always/503")}]}
    run = run_suite(env, "--until-pass", "2s", "--interval", "500ms", "-p", "opsverify.plugin", "-p", "fixtures.http",
                    paths=[str(check)])
    assert run.ret == 1, run.stdout + run.stderr
    assert run.record("test_prints_then_fails", "down")["attempts"] >= 2
    assert "Captured stdout call" in run.stdout
    assert run.stdout.count("PRINTED BY THE CHECK") == 1, run.stdout
