"""Analysis windows (``--samples``, ``analysis:``): a read-only check judged on N samples with Argo
Rollouts' AnalysisRun limits, against real servers; mutating checks still run once."""

from __future__ import annotations

import pytest

from tests.test_waiting import HTTP, STATUS

LATENCY = "test_endpoint_answers_within_latency_budget"
SIGNED = "test_signed_webhook_is_accepted"


def _slow_once(flaky, failure_limit):
    """A latency endpoint that is slow (300 ms, budget 150 ms) for the 2nd of 5 samples, 2 s apart."""
    return {
        "analysis": {"samples": 5, "interval_s": 2, "failure_limit": failure_limit},
        "http": [{"name": "api", "url": flaky.url("/slow-burst/2/300"), "max_latency_ms": 150}],
    }


@pytest.mark.parametrize(("failure_limit", "outcome"), [(1, "passed"), (0, "failed")])
def test_a_latency_slow_in_one_sample_of_five_is_judged_by_the_failure_limit(run_suite, flaky, failure_limit,
                                                                            outcome):
    # one reading per sample keeps each burst short, so the slow one cannot run into the next sample
    run = run_suite(_slow_once(flaky, failure_limit), "-k", "latency", "--latency-samples", "1", paths=[HTTP])
    record = run.record(LATENCY, "api")
    assert record["outcome"] == outcome, run.stdout
    window = record["window"]
    assert window["samples"] == 5 and window["counts"] == {"passed": 4, "failed": 1, "error": 0, "skipped": 0}
    assert [o["outcome"] for o in window["outcomes"]] == ["passed", "failed", "passed", "passed", "passed"]
    assert [m["sample"] for m in record["measured"]] == [1, 2, 3, 4, 5]
    assert [m["outcome"] for m in record["measured"]][1] == "failed" and record["measured"][1]["value"] > 150
    assert window["window_s"] >= 8  # 5 samples, 2 s apart
    if outcome == "failed":
        assert run.ret == 1
        assert "1 of 5 samples failed, more than failure_limit 0 — sample 2: expected response time <= 150 ms" \
            in record["message"]
    else:
        assert run.ret == 0 and record["message"] == ""
    assert "5 samples over" in (run.reports / "summary.md").read_text()


def test_consecutive_errors_reaching_the_limit_are_an_error(run_suite, closed_port):
    env = {"analysis": {"consecutive_error_limit": 2},
           "http": [{"name": "down", "url": f"http://127.0.0.1:{closed_port}/healthz"}]}
    run = run_suite(env, "--samples", "3", "--interval", "200ms", "-k", "status", paths=[HTTP])
    record = run.record(STATUS, "down")
    assert record["outcome"] == "error" and run.ret == 1
    assert "WindowErrored: selftest-down: 3 samples in a row could not see the system (consecutive_error_limit 2)" \
        in record["message"] and "refused" in record["message"]


def test_a_window_in_which_no_sample_saw_the_system_is_an_error_below_the_limit_too(run_suite, closed_port):
    env = {"http": [{"name": "down", "url": f"http://127.0.0.1:{closed_port}/healthz"}]}
    run = run_suite(env, "--samples", "2", "--interval", "200ms", "-k", "status", paths=[HTTP])
    record = run.record(STATUS, "down")
    assert record["outcome"] == "error" and "no sample of 2 saw the system" in record["message"]


def test_one_failed_sample_fails_the_window_at_the_default_failure_limit(run_suite, flaky):
    env = {"http": [{"name": "api", "url": flaky.url("/healthy-after/300")}]}
    run = run_suite(env, "--samples", "3", "--interval", "1s", "-k", "status", paths=[HTTP])
    record = run.record(STATUS, "api")
    outcomes = [o["outcome"] for o in record["window"]["outcomes"]]
    # sample 1 fails (503), the last passes; the default failure_limit 0 fails the window: failures are not errors
    assert outcomes[0] == "failed" and outcomes[-1] == "passed", outcomes
    assert record["outcome"] == "failed" and "samples failed, more than failure_limit 0 — sample 1: " in record["message"]


def test_mutating_checks_run_once_while_read_only_ones_are_sampled(run_suite, fresh_recorder):
    env = {"tier": "dev",
           "http": [{"name": "api", "url": fresh_recorder.url("/health-window")}],
           "webhooks": [{"name": "hook", "url": fresh_recorder.url("/hook-window"), "secret": {"env": "HOOK_SECRET"},
                         "accepted_status": [200]}]}
    run = run_suite(env, "--samples", "3", "--interval", "500ms", "-k", f"{STATUS} or {SIGNED}",
                    paths=[HTTP, "checks/test_webhooks.py"], env_vars={"HOOK_SECRET": "s3cret-value-for-window"})
    assert run.outcome(STATUS, "api") == "passed" and run.outcome(SIGNED, "hook") == "passed", run.stdout
    paths = fresh_recorder.stats()["paths"]
    assert paths.count("/health-window") == 3
    assert paths.count("/hook-window") == 1
    assert run.record(SIGNED, "hook")["window"] is None
    assert run.record(STATUS, "api")["window"]["samples"] == 3


@pytest.mark.parametrize(("env", "said"), [
    ({"analysis": {"samples": 0}}, "analysis.samples"),
    ({"analysis": {"sample": 3}}, "analysis.sample: unknown key"),
    ({"analysis": {"failure_limit": -1}}, "analysis.failure_limit"),
])
def test_a_bad_analysis_block_is_a_usage_error_naming_the_key(run_suite, env, said):
    run = run_suite({**env, "http": [{"name": "api", "url": "http://127.0.0.1:9/x"}]}, paths=[HTTP])
    assert run.ret == 4 and said in run.stderr, run.stderr


def test_environments_asking_for_different_windows_are_a_usage_error(run_suite):
    http = {"http": [{"name": "api", "url": "http://127.0.0.1:9/x"}]}
    run = run_suite(None, paths=[HTTP], envs={"one": {"analysis": {"samples": 3}, **http},
                                              "two": {"analysis": {"samples": 5}, **http}})
    assert run.ret == 4 and "different analysis windows" in run.stderr, run.stderr
