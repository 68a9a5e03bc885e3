"""The gate asks for windows: an item with ``min_samples`` / ``min_window_minutes`` holds single-snapshot
evidence with that reason, and the checklist shows the window (real runs against the demo service)."""

from __future__ import annotations

from typing import Any

from tests.test_gate import POLICY, gate, run_staging, staging, write_policy

HEALTH = "Health endpoints answer"


def _policy(tmp_path: Any, **window: Any) -> Any:
    items = [{**POLICY["items"][0], **window}, *POLICY["items"][1:]]
    return write_policy(tmp_path, items=items)


def test_single_snapshot_evidence_holds_an_item_that_needs_a_window(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo))
    assert run.ret == 0, run.stdout
    result = gate(tmp_path, _policy(tmp_path, min_samples=3), run.reports / "summary.json")
    assert result.ret == 1, result.stdout + result.stderr
    reason = result.reason(f"{HEALTH}: window: `test_endpoint_returns_expected_status` [staging-api]: ")
    assert "judged on a single snapshot, the policy needs at least 3 samples" in reason and "--samples" in reason
    assert result.line(HEALTH).startswith("- ✗ ")
    assert "window a single snapshot (needs at least 3 samples)" in result.line(HEALTH)
    assert "- ✗ window: `test_endpoint_returns_expected_status` [staging-api]: judged on a single snapshot" \
        in result.stdout
    # the item that asks for no window is unaffected
    assert result.line("Migrations applied").startswith("- ✓ ")


def test_a_window_of_enough_samples_over_enough_time_promotes_and_the_checklist_shows_it(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo), "--samples", "3", "--interval", "300ms")
    assert run.ret == 0, run.stdout
    record = run.record("test_endpoint_returns_expected_status", "api")
    assert record["window"]["samples"] == 3 and record["window"]["window_s"] >= 0.6
    result = gate(tmp_path, _policy(tmp_path, min_samples=3, min_window_minutes=0.01), run.reports / "summary.json")
    assert result.ret == 0, result.stdout + result.stderr
    assert "window 3 samples over 0.0 min (needs at least 3 samples over at least 0.01 min)" in result.line(HEALTH)


def test_a_window_too_short_or_too_few_samples_holds(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo), "--samples", "2", "--interval", "200ms")
    assert run.ret == 0, run.stdout
    few = gate(tmp_path, _policy(tmp_path, min_samples=3), run.reports / "summary.json")
    assert few.ret == 1 and "judged on 2 samples over 0.0 min, the policy needs at least 3 samples" \
        in few.reason(f"{HEALTH}: window: ")
    short = gate(tmp_path, _policy(tmp_path, min_window_minutes=5), run.reports / "summary.json")
    assert short.ret == 1 and "the policy needs over at least 5 min" in short.reason(f"{HEALTH}: window: ")


def test_a_manual_item_cannot_ask_for_a_window(tmp_path):
    items = [*POLICY["items"][:2], {"name": "Rollback plan validated", "manual": "written", "min_samples": 3}]
    result = gate(tmp_path, write_policy(tmp_path, items=items))
    assert result.ret == 2 and "items[2]" in result.stderr and "manual item" in result.stderr, result.stderr
