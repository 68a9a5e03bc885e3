"""Exit codes and the console: every ``--tb`` style works, and a run says in its summary how it ended.

pytest's own exit codes (README, "Exit codes"): 0 all passed, 1 failures, 2 interrupted, 3 internal error,
4 usage error, 5 no tests. Runs are real pytest subprocesses against the demo service.
"""

from __future__ import annotations

import pytest

STATUS = "test_endpoint_returns_expected_status"
SKIPPED = "test_endpoint_json_fields_have_expected_values"  # no json: configured -> skipped


def mixed(demo):
    """A passing, a failing and an erroring target; every check without its config field is skipped."""
    return {"http": [
        {"name": "ok", "url": demo.url("/healthz")},
        {"name": "err500", "url": demo.url("/status/500")},
        {"name": "closed", "url": f"http://127.0.0.1:{demo.closed}/healthz"},
    ]}


@pytest.mark.parametrize("style", [["--tb=auto"], ["--tb=long"], ["--tb=short"], ["--tb=line"], ["--tb=native"],
                                   ["--tb=no"], ["--tb=long", "-l"]],
                         ids=lambda s: " ".join(s))
def test_every_traceback_style_reports_failures_errors_and_skips(run_suite, demo, style):
    run = run_suite(mixed(demo), *style, paths=["checks/test_http.py"])
    output = run.stdout + run.stderr
    assert run.ret == 1, output[-3000:]
    assert "INTERNALERROR" not in output
    assert run.outcome(STATUS, "ok") == "passed"
    assert run.outcome(STATUS, "err500") == "failed"
    assert run.outcome(STATUS, "closed") == "error"
    skipped = next(r for r in run.records if r["check"] == SKIPPED)
    assert skipped["outcome"] == "skipped" and "not configured" in skipped["message"]
    assert (run.reports / "junit.xml").exists()
