"""What a run prints on the terminal: identical failures grouped, unconfigured sections as one line
each (``-rs`` lists every skip again), and a progress line while probes are still awaited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsverify.grouping import group_records, split_skips
from opsverify.results import CheckRecord
from tests.harness import SuiteRun, run_checks

STATUS = "test_endpoint_returns_expected_status"
PATHS = ["checks/test_http.py", "checks/test_nats.py"]


@pytest.fixture(scope="module")
def env(demo: Any) -> dict[str, Any]:
    return {"http": [{"name": name, "url": demo.url("/status/500")} for name in ("a", "b", "c")]
            + [{"name": "ok", "url": demo.url("/healthz")},
               {"name": "down", "url": f"http://127.0.0.1:{demo.closed}/healthz"}]}


@pytest.fixture(scope="module")
def grouped(env: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRun]:
    run = run_checks(tmp_path_factory.mktemp("grouped"), env, paths=PATHS)
    assert run.summary is not None, run.stdout + run.stderr
    yield run


def _summary_section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "opsverify summary" in line)
    return lines[start + 1 : -1]


def test_identical_failures_are_one_line_naming_their_targets(grouped: SuiteRun) -> None:
    section = _summary_section(grouped.stdout)
    failed = [line for line in section if line.startswith("FAILED")]
    assert len(failed) == 1, section
    assert failed[0].startswith(f"FAILED {STATUS} [selftest-a, selftest-b, selftest-c] (3): expected HTTP 200")
    assert "got HTTP 500" in failed[0] and "selftest-a:" not in failed[0]
    errors = [line for line in section if line.startswith("ERROR")]
    assert errors and all("[selftest-down]:" in line and "connection refused" in line for line in errors)
    # pytest's own one-line-per-check listing is replaced, not repeated
    assert f"FAILED checks/test_http.py::{STATUS}" not in grouped.stdout


def test_unconfigured_checks_are_one_line_per_section(grouped: SuiteRun) -> None:
    section = _summary_section(grouped.stdout)
    skipped_nats = sum(1 for r in grouped.records if r["outcome"] == "skipped" and "test_nats.py" in r["nodeid"])
    assert f"SKIPPED {skipped_nats} nats checks: not configured in selftest" in section
    assert "SKIPPED [1]" not in grouped.stdout
    assert sum(1 for line in section if line.startswith("SKIPPED")) <= 2  # nats, and http's unset fields


def test_dash_rs_lists_every_skip_again(env: dict[str, Any], tmp_path: Any) -> None:
    run = run_checks(tmp_path, env, "-rs", paths=PATHS)
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED [1] checks/test_nats.py")]
    assert len(skips) == sum(1 for r in run.records if r["outcome"] == "skipped" and "test_nats.py" in r["nodeid"])
    assert "opsverify summary" not in run.stdout


def test_a_probe_still_in_flight_is_named_on_the_terminal(demo: Any, tmp_path: Any) -> None:
    # the blackhole port accepts and never answers: the probe is in flight until its 5 s timeout
    env = {"defaults": {"timeout_s": 5},
           "http": [{"name": "stalled", "url": f"http://127.0.0.1:{demo.blackhole}/healthz"}]}
    run = run_checks(tmp_path, env, "-k", STATUS, paths=["checks/test_http.py"])
    waiting = [line for line in run.stdout.splitlines() if line.startswith("opsverify: still waiting for")]
    assert waiting, run.stdout
    assert "1 probe: selftest-stalled (" in waiting[0] and f"127.0.0.1:{demo.blackhole}" in waiting[0]
    assert run.outcome(STATUS, "stalled") == "error"


def _record(target: str, message: str, value: float | None = None, check: str = "test_lag") -> CheckRecord:
    measured = [{"name": "lag", "value": value, "unit": "msgs"}] if value is not None else []
    return CheckRecord(nodeid=f"checks/t.py::{check}[prod-{target}]", check=check, outcome="failed",
                       env="prod", target=target, message=f"prod-{target}: {message}", measured=measured)


def test_grouping_takes_only_the_target_label_out() -> None:
    records = [_record("a", "lag above 1,000", 1200), _record("b", "lag above 1,000", 9800),
               _record("c", "lag above 5,000", 7000), _record("d", "lag above 1,000", 1500, check="test_other")]
    groups = group_records(records)
    assert [(g.check, g.targets) for g in groups] == [
        ("test_lag", ["prod-a", "prod-b"]), ("test_lag", ["prod-c"]), ("test_other", ["prod-d"])]
    assert groups[0].text == "lag above 1,000"
    assert groups[0].measured_range() == "measured 1,200–9,800 msgs"
    assert groups[1].measured_range() == ""  # one target: its message says it


def test_skips_split_into_sections_and_other_reasons() -> None:
    def skip(check: str, reason: str, target: str | None = None) -> CheckRecord:
        return CheckRecord(nodeid=f"t.py::{check}[{target or 'unconfigured'}]", check=check, outcome="skipped",
                           env="prod" if target else None, target=target, message=reason)

    sections, others = split_skips([
        skip("test_a", "not configured: no nats target in prod"),
        skip("test_b", "not configured: no nats target sets creds in prod"),
        skip("test_c", "not configured: no vault target in prod"),
        skip("test_d", "mutating checks are not allowed in prod (production tier allows: read_only)", "x"),
        skip("test_d", "mutating checks are not allowed in prod (production tier allows: read_only)", "y"),
    ])
    assert [s.line for s in sections] == ["2 nats checks: not configured in prod", "1 vault check: not configured in prod"]
    assert [(g.check, g.targets) for g in others] == [("test_d", ["prod-x", "prod-y"])]


def test_summary_md_groups_identical_failures_and_unconfigured_sections(grouped: SuiteRun) -> None:
    text = (grouped.reports / "summary.md").read_text()
    failed = text[text.index("## ❌ Failed"):text.index("## ⚠️ Errors")]
    lines = [line for line in failed.splitlines() if line.startswith("- ")]
    assert len(lines) == 1, failed
    assert lines[0].startswith(f"- `{STATUS}` [selftest-a, selftest-b, selftest-c] (3 targets): **critical** · "
                               "expected HTTP 200")
    assert "— runbook [platform#http-status]" in lines[0]
    skipped = text[text.index("## ⏭️ Skipped"):]
    nats = sum(1 for r in grouped.records if r["outcome"] == "skipped" and "test_nats.py" in r["nodeid"])
    assert f"- **nats**: {nats} checks not configured in selftest" in skipped
    # every skipped check is still there, folded away
    assert "<details><summary>every skipped check</summary>" in skipped
    assert "- `test_nats_accepts_credential`: not configured: no nats target in selftest" in skipped


def test_gate_checklist_groups_identical_failures(grouped: SuiteRun, tmp_path: Any) -> None:
    import subprocess
    import sys

    import yaml

    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "name": "grouping", "environment": "selftest", "max_age_minutes": 60,
        "items": [{"name": "Health endpoints answer", "checks": [STATUS]}]}))
    proc = subprocess.run([sys.executable, "-m", "opsverify", "gate", "--policy", str(policy), "--results",
                           str(grouped.reports / "summary.json"), "--output", str(tmp_path / "gate.json")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.startswith("  - ✗ failed:")]
    assert failed == [line for line in failed if "[selftest-a, selftest-b, selftest-c] (3 targets): expected HTTP 200" in line]
    assert len(failed) == 1, proc.stdout
