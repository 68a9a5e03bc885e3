"""The promotion gate: decisions and exit codes (0 promote, 1 hold, 2 cannot decide), fail-closed.

The evidence is produced by real runs of the checks against the real demo service (``run_suite`` +
``demo``); only the corrupt and partial cases edit a real ``summary.json`` by hand, and stale
evidence is judged with ``--now`` set past the policy's age limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ROOT, run_checks, run_pytest

STATUS = "test_endpoint_returns_expected_status"
JSON_FIELDS = "test_endpoint_json_fields_have_expected_values"
HTTP_CHECKS = "checks/test_http.py"

POLICY: dict[str, Any] = {
    "name": "selftest-production",
    "environment": "staging",
    "markers": ["predeploy"],
    "max_age_minutes": 30,
    "max_warnings": 0,
    "waivers": {"max_days": 14},
    "items": [
        {"name": "Health endpoints answer", "systems": ["http"], "checks": [STATUS]},
        {"name": "Migrations applied", "checks": [JSON_FIELDS], "targets": ["admin-health"]},
        {"name": "Rollback plan validated", "manual": "the down-migration is written in the release"},
    ],
}


# -- helpers -----------------------------------------------------------------------------------------
def staging(demo: Any, api_url: str | None = None, admin: bool = True, **api: Any) -> dict[str, Any]:
    """A staging environment: the demo's health endpoint (or ``api_url``) and its admin health."""
    targets = [{"name": "api", "url": api_url or demo.url("/healthz"), **api}]
    if admin:
        targets.append({"name": "admin-health", "url": demo.url("/api/admin/health"),
                        "json": {"migrations": "applied"}})
    return {"tier": "staging", "http": targets}


def run_staging(run_suite: Any, env: dict[str, Any], *args: str, env_name: str = "staging", **kw: Any) -> Any:
    run = run_suite(env, "-m", "predeploy", *args, paths=[HTTP_CHECKS], env_name=env_name, **kw)
    assert run.summary is not None, run.stdout + run.stderr
    return run


def write_policy(tmp: Path, name: str = "production.yaml", **changes: Any) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump({**POLICY, **changes}, sort_keys=False, allow_unicode=True))
    return path


def write_waivers(tmp: Path, *waivers: dict[str, Any], name: str = "waivers.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump({"waivers": list(waivers)}, sort_keys=False))
    return path


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def finished(run: Any) -> datetime:
    return datetime.fromisoformat(run.summary["run"]["finished_at"].replace("Z", "+00:00"))


def waiver(now: datetime, *, days_before: float = 1, days_after: float = 3, **changes: Any) -> dict[str, Any]:
    return {
        "check": STATUS,
        "target": "api",
        "environment": "staging",
        "justification": "health endpoint answers 500 until the cache migration lands (OPS-42)",
        "owner": "alice@example.com",
        "approver": "bob@example.com",
        "created": iso(now - timedelta(days=days_before)),
        "expires": iso(now + timedelta(days=days_after)),
        **changes,
    }


class Gate:
    """One ``opsverify gate`` run: exit code, output, and the ``gate.json`` it wrote."""

    def __init__(self, proc: subprocess.CompletedProcess[str], output: Path) -> None:
        self.ret = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.doc: dict[str, Any] = json.loads(output.read_text()) if output.exists() else {}

    @property
    def reasons(self) -> list[str]:
        return list(self.doc.get("reasons", []))

    def reason(self, text: str) -> str:
        found = [r for r in self.reasons if text in r]
        assert found, f"no reason contains {text!r}: {self.reasons}\n{self.stdout}"
        return found[0]

    def item(self, name: str) -> dict[str, Any]:
        return next(i for i in self.doc["items"] if i["name"] == name)

    def line(self, name: str) -> str:
        """The checklist line of one item (the Markdown printed on stdout)."""
        found = [ln for ln in self.stdout.splitlines() if f"**{name}**" in ln]
        assert len(found) == 1, self.stdout
        return found[0]


def gate(tmp: Path, policy: Path, *results: Path, args: tuple[str, ...] = (),
         env_vars: dict[str, str] | None = None) -> Gate:
    output = tmp / f"gate-{len(list(tmp.glob('gate-*.json')))}.json"
    argv = [sys.executable, "-m", "opsverify", "gate", "--policy", str(policy), "--output", str(output)]
    for path in results:
        argv += ["--results", str(path)]
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    proc = subprocess.run([*argv, *args], cwd=ROOT, env={**env, **(env_vars or {})},
                          capture_output=True, text=True, timeout=120, check=False)
    return Gate(proc, output)


# -- promote -----------------------------------------------------------------------------------------
def test_all_green_promotes_with_evidence_and_checklist(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo))
    assert run.ret == 0, run.stdout
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 0, result.stdout + result.stderr
    doc = result.doc
    assert doc["decision"] == "promote" and doc["exit_code"] == 0
    assert doc["reasons"] == []
    evidence = doc["evidence"][0]
    assert evidence["ok"] is True
    assert evidence["run_id"] == run.summary["run"]["run_id"]
    assert evidence["git_commit"] == run.summary["run"]["git_commit"]
    assert evidence["finished_at"] == run.summary["run"]["finished_at"]
    assert evidence["environments"] == ["staging"]
    assert "PROMOTE" in result.stdout
    assert result.line("Health endpoints answer").startswith("- ✓ ")
    assert "2 passed" in result.line("Health endpoints answer")
    assert result.line("Migrations applied").startswith("- ✓ ")
    assert result.line("Evidence is current and complete").startswith("- ✓ ")
    assert result.line("Rollback plan validated").startswith("- ☐ ")
    assert result.item("Migrations applied")["checks"] == [
        {"nodeid": f"{HTTP_CHECKS}::{JSON_FIELDS}[staging-admin-health]", "outcome": "passed"}
    ]


# -- hold: the system -----------------------------------------------------------------------------------
def test_a_required_check_failing_holds_with_message_and_runbook_link(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")))
    assert run.outcome(STATUS, "api") == "failed"
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1, result.stdout
    assert result.doc["decision"] == "hold"
    reason = result.reason("Health endpoints answer: failed")
    assert f"`{STATUS}` [staging-api]" in reason and "got HTTP 500" in reason
    assert result.line("Health endpoints answer").startswith("- ✗ ")
    failing = [ln for ln in result.stdout.splitlines() if ln.startswith("  - ✗ failed:")]
    assert len(failing) == 1
    assert "got HTTP 500" in failing[0]
    assert "— runbook [platform#http-status](runbooks/platform.md#platformhttp-status" in failing[0]
    assert "HOLD" in result.stdout
    problem = result.item("Health endpoints answer")["problems"][0]
    assert problem["kind"] == "failed" and problem["waived"] is False
    assert problem["runbook"]["id"] == "platform#http-status"
    assert problem["severity"] == "critical"


def test_a_check_that_could_not_verify_holds(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, f"http://127.0.0.1:{demo.closed}/healthz"))
    assert run.outcome(STATUS, "api") == "error"
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1
    reason = result.reason("Health endpoints answer: error")
    assert "Unreachable" in reason and str(demo.closed) in reason
    assert any(ln.startswith("  - ✗ error:") and "Unreachable" in ln for ln in result.stdout.splitlines())


def test_a_failing_check_no_item_names_still_holds(run_suite, demo, tmp_path):
    """Every check in the policy's scope counts, not only the ones an item names (fail closed)."""
    run = run_staging(run_suite, staging(demo, demo.url("/healthz"), body_contains="never-in-the-body"))
    assert run.outcome("test_endpoint_body_contains_expected_text", "api") == "failed"
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1
    assert "never-in-the-body" in result.reason("Other checks in scope: failed")
    assert result.line("Health endpoints answer").startswith("- ✓ ")


def test_too_many_warnings_hold(run_suite, demo, tmp_path):
    # 60 ms against a 20 ms warning: past it even with 40 ms of the checker's own lag taken off
    run = run_staging(run_suite, staging(demo, demo.url("/slow?ms=60"), max_latency_ms={"warn": 20, "critical": 60000}))
    assert run.outcome("test_endpoint_answers_within_latency_budget", "api") == "passed"
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1
    assert "too many warnings: 1 checks warn, the policy tolerates 0" in result.reasons
    assert "past the warning level" in result.stdout
    tolerant = gate(tmp_path, write_policy(tmp_path, "tolerant.yaml", max_warnings=1), run.reports / "summary.json")
    assert tolerant.ret == 0, tolerant.stdout


# -- hold: the evidence ---------------------------------------------------------------------------------
def test_a_missing_required_check_holds(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, admin=False))
    assert run.ret == 0
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1
    reason = result.reason(f"Migrations applied: missing: no result for `{JSON_FIELDS}` in staging")
    assert "only skipped: not configured" in reason
    assert result.reason("Migrations applied: missing: no verified check on target `admin-health` in staging")
    assert result.line("Migrations applied").startswith("- ✗ ")


def test_missing_results_hold(tmp_path):
    result = gate(tmp_path, write_policy(tmp_path), tmp_path / "nowhere" / "summary.json")
    assert result.ret == 1
    assert result.reason("no results (file does not exist)").startswith(str(tmp_path / "nowhere"))
    assert result.line("Evidence is current and complete").startswith("- ✗ ")


def test_stale_evidence_holds(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo))
    summary = run.reports / "summary.json"
    policy = write_policy(tmp_path)
    fresh = gate(tmp_path, policy, summary, args=("--now", iso(finished(run) + timedelta(minutes=29))))
    assert fresh.ret == 0, fresh.stdout
    stale = gate(tmp_path, policy, summary, args=("--now", iso(finished(run) + timedelta(minutes=95, seconds=1))))
    assert stale.ret == 1
    reason = stale.reason("stale results")
    assert "is 1 h 35 min old" in reason and "the policy allows 30 min" in reason
    assert stale.doc["evidence"][0]["age_minutes"] >= 95
    future = gate(tmp_path, policy, summary, args=("--now", iso(finished(run) - timedelta(hours=1))))
    assert future.ret == 1
    assert "check the clocks" in future.reason("results from the future")


# -- corrupt, tampered and partial evidence: one real run of each kind, then edits of its summary.json ------
@pytest.fixture(scope="module")
def evidence(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The summaries of a green and a red (one check failing) staging run."""
    found = {}
    for name, env in (("green", staging(demo)), ("red", staging(demo, demo.url("/status/500")))):
        run = run_checks(tmp_path_factory.mktemp(name), env, "-m", "predeploy", paths=[HTTP_CHECKS], env_name="staging")
        assert run.summary is not None, run.stdout + run.stderr
        found[name] = run.summary
    assert [r["outcome"] for r in found["red"]["checks"]].count("failed") == 1
    return found


def _failed(doc: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in doc["checks"] if r["outcome"] == "failed")


def _flip(doc: dict[str, Any], fix_totals: bool = False) -> None:
    _failed(doc)["outcome"] = "passed"
    if fix_totals:
        doc["totals"]["failed"] -= 1
        doc["totals"]["passed"] += 1


def _drop_failed(doc: dict[str, Any]) -> None:
    doc["checks"].remove(_failed(doc))
    doc["totals"]["failed"] -= 1
    doc["totals"]["total"] -= 1


def _passing_copy(doc: dict[str, Any]) -> None:
    doc["checks"].append({**_failed(doc), "outcome": "passed", "message": ""})
    doc["totals"]["passed"] += 1
    doc["totals"]["total"] += 1


def _deep(levels: int) -> str:
    return '{"schema": "opsverify.summary/2", "run": ' + "[" * levels + "]" * levels + "}"


CORRUPT: list[tuple[str, str, Any, str]] = [
    # (case, which run, the edit: a function of the document, or the file's new text/bytes, expected reason)
    ("not-json", "green", lambda text: text[:200], "not valid JSON"),
    ("not-utf8", "green", b"\xff\xfe{}", "not valid JSON (not UTF-8 text)"),
    ("other-schema", "green", '{"schema": "something/else", "checks": []}', "not an opsverify summary"),
    ("old-schema", "green", lambda doc: doc.update(schema="opsverify.summary/1"), "found 'opsverify.summary/1'"),
    ("truncated-checks", "green", lambda doc: doc["checks"].pop(), "are listed (truncated or edited?)"),
    ("unfinished", "green", lambda doc: doc["run"].update(finished_at=""), "integrity digest does not match"),
    ("checks-numbers", "green", lambda doc: doc.update(checks=[1, 2]), "checks[0]: Input should be a valid dictionary"),
    ("checks-mapping", "green", lambda doc: doc.update(checks={}), "checks: Input should be a valid list"),
    ("checks-text", "green", lambda doc: doc.update(checks="x"), "checks: Input should be a valid list"),
    ("checks-missing", "green", lambda doc: doc.pop("checks"), "checks: required key is missing"),
    ("marker-number", "green", lambda doc: doc["checks"][0].update(markers=[1]), "checks[0].markers[0]: Input should be a valid string"),
    ("markers-text", "green", lambda doc: doc["checks"][0].update(markers="predeploy"), "checks[0].markers: Input should be a valid list"),
    ("target-number", "green", lambda doc: doc["checks"][0].update(target=5), "checks[0].target: Input should be a valid string"),
    ("message-mapping", "green", lambda doc: doc["checks"][0].update(message={"a": 1}), "checks[0].message: Input should be a valid string"),
    ("outcome-unknown", "green", lambda doc: doc["checks"][0].update(outcome="passed "), "checks[0].outcome: Input should be"),
    ("nodeid-empty", "green", lambda doc: doc["checks"][0].update(nodeid=""), "checks[0].nodeid: String should have at least 1"),
    ("run-list", "green", lambda doc: doc.update(run=[]), "run: Input should be a valid dictionary"),
    ("environments-numbers", "green", lambda doc: doc["run"].update(environments=[1]), "run.environments[0]: Input should be a valid string"),
    ("commit-list", "green", lambda doc: doc["run"].update(git_commit=["a"]), "run.git_commit: Input should be a valid string"),
    ("finished-number", "green", lambda doc: doc["run"].update(finished_at=123), "run.finished_at: Input should be a valid string"),
    ("totals-text", "green", lambda doc: doc["totals"].update(total="9"), "totals.total: Input should be a valid integer"),
    ("nested-100k", "green", _deep(100_000), "nested more than 64 levels deep"),
    ("nested-500", "green", _deep(500), "nested more than 64 levels deep"),
    ("no-integrity", "green", lambda doc: doc.pop("integrity"), "it carries no integrity digest"),
    ("no-ended", "green", lambda doc: doc["run"].pop("ended"), "run.ended is missing"),
    ("ended-edited", "red", lambda doc: (_flip(doc, True), doc["run"]["ended"].update(exit_status=0)),
     "its integrity digest does not match its contents"),
    # tampering that made a held release promote
    ("failed-flipped", "red", lambda doc: _flip(doc), "passed but 7 are listed (edited?)"),
    ("failed-flipped-totals-fixed", "red", lambda doc: _flip(doc, fix_totals=True), "integrity digest does not match"),
    ("failed-marker-removed", "red", lambda doc: _failed(doc)["markers"].remove("predeploy"), "integrity digest does not match"),
    ("failed-deleted-totals-fixed", "red", _drop_failed, "integrity digest does not match"),
    ("failed-then-passing-copy", "red", _passing_copy, "is listed twice"),
]


@pytest.mark.parametrize(("base", "edit", "expected"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_corrupt_tampered_and_partial_results_hold(evidence, tmp_path, base, edit, expected):
    """Every case holds (exit 1) with one reason naming the file; none promotes, none crashes."""
    from opsverify.gate import run_gate

    path = tmp_path / "summary.json"
    original = json.dumps(evidence[base], indent=2)
    if callable(edit) and edit.__code__.co_varnames[:1] == ("text",):
        path.write_text(edit(original))
    elif callable(edit):
        doc = json.loads(original)
        edit(doc)
        path.write_text(json.dumps(doc, indent=2))
    else:
        path.write_bytes(edit if isinstance(edit, bytes) else edit.encode())
    outcome = run_gate(write_policy(tmp_path), [path], output=tmp_path / "gate.json")
    reasons = outcome.decision.reasons
    assert outcome.exit_code == 1 and outcome.decision.decision == "hold", reasons
    found = [r for r in reasons if expected in r]
    assert found, reasons
    assert str(path) in found[0] and "\n" not in found[0]
    assert found[0].startswith(("corrupt results: ", "partial results: ")), found[0]


def test_the_untouched_evidence_of_the_table_promotes(evidence, tmp_path):
    """The table's edits are what holds: the green run as written promotes."""
    from opsverify.gate import run_gate

    path = tmp_path / "summary.json"
    path.write_text(json.dumps(evidence["green"]))
    outcome = run_gate(write_policy(tmp_path), [path])
    assert outcome.exit_code == 0, outcome.decision.reasons


def test_corrupt_results_hold_through_the_command_too(evidence, tmp_path):
    broken = tmp_path / "summary.json"
    broken.write_text(json.dumps({**evidence["green"], "checks": [1, 2]}))
    result = gate(tmp_path, write_policy(tmp_path), broken)
    assert result.ret == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.reason("corrupt results").endswith("checks[0]: Input should be a valid dictionary")


CRASH_PLUGIN = """
seen = 0


def pytest_runtest_logfinish(nodeid, location):
    global seen
    seen += 1
    if seen == 5:
        raise RuntimeError("a reporter crashed")
"""


def _with_plugin(tmp_path: Path, name: str, text: str) -> dict[str, str]:
    (tmp_path / f"{name}.py").write_text(text)
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)}


def test_a_run_that_crashed_holds_in_both_forms(run_suite, demo, tmp_path):
    """pytest exits 3 (INTERNALERROR) after 5 checks, yet the summary is finished and consistent:
    its run.ended says how the session ended, and the gate holds on it."""
    env_vars = _with_plugin(tmp_path, "crash_after_five", CRASH_PLUGIN)
    run = run_staging(run_suite, staging(demo), "-p", "crash_after_five", env_vars=env_vars)
    assert run.ret == 3, run.stdout[-2000:]
    ended = run.summary["run"]["ended"]
    assert (ended["exit_status"], ended["status"], ended["checks"]) == (3, "internal_error", 5)
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1, result.stdout
    assert result.reason("partial results").endswith(
        "the run ended with an internal error (pytest exit 3): its results are partial")
    assert "did not complete: internal error (pytest exit 3)" in (run.reports / "summary.md").read_text()
    one_step = run_staging(run_suite, staging(demo), "-p", "crash_after_five", "--gate", str(write_policy(tmp_path)),
                           env_vars=env_vars)
    assert one_step.ret == 1
    doc = json.loads((one_step.reports / "gate.json").read_text())
    assert doc["decision"] == "hold"
    assert sum("internal error (pytest exit 3)" in r for r in doc["reasons"]) == 1


@pytest.mark.parametrize(("check", "exit_status", "why"), [
    ("import pytest\n\n@pytest.mark.runbook('nowhere#nothing')\ndef test_x(http_response):\n    pass\n", 4, "a usage error"),
    ("def test_x(:\n", 2, "interrupted during collection"),
], ids=["usage-error", "collection-error"])
def test_a_run_that_did_not_start_holds(run_suite, demo, tmp_path, check, exit_status, why):
    bad = tmp_path / "test_bad_check.py"
    bad.write_text(check)
    run = run_suite(staging(demo), "-m", "predeploy", "-p", "fixtures.http", paths=[HTTP_CHECKS, str(bad)],
                    env_name="staging")
    assert run.ret == exit_status, run.stdout + run.stderr
    assert run.summary is not None and run.summary["checks"] == []
    assert run.summary["run"]["ended"]["status"] == "not_started"
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1
    assert result.reason("the run did not start").endswith(
        f"the run did not start (pytest exit {exit_status}, {why}): no check ran — fix that and run the checks again")
    assert not result.line("Evidence is current and complete").startswith("- ✓ ")


def test_signed_evidence_promotes_only_with_the_policys_key(run_suite, demo, evidence, tmp_path, monkeypatch):
    from opsverify.gate import run_gate

    signing_key = "k3y-for-the-selftest-0123456789"
    run = run_staging(run_suite, staging(demo), env_vars={"OPSVERIFY_EVIDENCE_KEY": signing_key})
    signed = run.reports / "summary.json"
    seal = run.summary["integrity"]
    assert seal["signature"]["algorithm"] == "hmac-sha256" and seal["signature"]["key"] == "$OPSVERIFY_EVIDENCE_KEY"
    assert signing_key not in signed.read_text()
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps(evidence["green"]))
    policy = write_policy(tmp_path, evidence={"key": {"env": "SELFTEST_GATE_KEY"}})

    def judge(path: Path) -> list[str]:
        outcome = run_gate(policy, [path], output=tmp_path / "gate.json")
        assert signing_key not in (tmp_path / "gate.json").read_text() + outcome.markdown
        return outcome.decision.reasons

    monkeypatch.delenv("SELFTEST_GATE_KEY", raising=False)
    assert any(r.startswith("unverifiable evidence: secret SELFTEST_GATE_KEY is not set") for r in judge(signed))
    monkeypatch.setenv("SELFTEST_GATE_KEY", signing_key)
    assert judge(signed) == []
    assert any("it is not signed, and the policy accepts only evidence signed with $SELFTEST_GATE_KEY" in r
               for r in judge(unsigned))
    monkeypatch.setenv("SELFTEST_GATE_KEY", "another-key-entirely-0123456789")
    assert any("its signature was not made with $SELFTEST_GATE_KEY" in r for r in judge(signed))
    forged = json.loads(signed.read_text())
    forged["checks"][0]["markers"] = []
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(forged))
    monkeypatch.setenv("SELFTEST_GATE_KEY", signing_key)
    assert any("integrity digest does not match" in r for r in judge(tampered))


def test_results_of_another_environment_hold(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo), env_name="dev")
    assert run.ret == 0
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json")
    assert result.ret == 1
    assert result.reason("wrong environment").endswith("holds results for dev, the policy needs staging")


def test_evidence_for_another_commit_holds(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo))
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json", args=("--commit", "0" * 40))
    assert result.ret == 1
    assert "the release is 000000000000" in result.reason("wrong commit")


# -- waivers -----------------------------------------------------------------------------------------------
def test_an_active_waiver_turns_the_failure_into_a_visible_non_blocking_item(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")))
    now = finished(run) + timedelta(minutes=1)
    write_waivers(tmp_path, waiver(now, days_after=3))
    policy = write_policy(tmp_path, waivers={"max_days": 14, "file": "waivers.yaml"})
    result = gate(tmp_path, policy, run.reports / "summary.json", args=("--now", iso(now)))
    assert result.ret == 0, result.stdout
    assert result.doc["decision"] == "promote"
    assert result.line("Health endpoints answer").startswith("- ✓ ")
    assert "1 waived" in result.line("Health endpoints answer")
    waived = [ln for ln in result.stdout.splitlines() if ln.startswith("  - ⚠ waived failed:")]
    assert len(waived) == 1 and "got HTTP 500" in waived[0]
    assert "### Waivers (1 used, 0 expired)" in result.stdout
    row = next(ln for ln in result.stdout.splitlines() if ln.startswith(f"| `{STATUS}` on api in staging"))
    assert "| alice@example.com | bob@example.com |" in row and "| 3.0 |" in row and "OPS-42" in row
    used = result.doc["waivers"]["used"]
    assert len(used) == 1 and used[0]["days_left"] == 3.0 and used[0]["owner"] == "alice@example.com"
    problem = result.item("Health endpoints answer")["problems"][0]
    assert problem["waived"] is True and problem["waiver"]["approver"] == "bob@example.com"


def test_a_waiver_only_covers_its_own_check_target_and_environment(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")))
    now = finished(run) + timedelta(minutes=1)
    write_waivers(tmp_path, waiver(now, target="other-target"), waiver(now, environment="dev"))
    policy = write_policy(tmp_path, waivers={"max_days": 14, "file": "waivers.yaml"})
    result = gate(tmp_path, policy, run.reports / "summary.json", args=("--now", iso(now)))
    assert result.ret == 1
    assert "got HTTP 500" in result.reason("Health endpoints answer: failed")
    assert result.doc["waivers"]["used"] == []
    assert len(result.doc["waivers"]["unused"]) == 2


def test_an_expired_waiver_holds(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")))
    now = finished(run) + timedelta(minutes=1)
    policy = write_policy(tmp_path, waivers={"max_days": 14, "entries": [waiver(now, days_before=8, days_after=-1)]})
    result = gate(tmp_path, policy, run.reports / "summary.json", args=("--now", iso(now)))
    assert result.ret == 1
    reason = result.reason("expired waiver")
    assert f"`{STATUS}` on api in staging (owner alice@example.com, approver bob@example.com) expired" in reason
    assert "renew it with a new approval or remove it" in reason
    assert result.line("Waivers valid and current").startswith("- ✗ ")
    assert "| expired |" in result.stdout
    # the failure it used to cover is not waived any more
    assert "got HTTP 500" in result.reason("Health endpoints answer: failed")


def test_an_expired_waiver_holds_even_when_everything_passes(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo))
    now = finished(run) + timedelta(minutes=1)
    write_waivers(tmp_path, waiver(now, days_before=3, days_after=-0.5))
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json",
                  args=("--now", iso(now), "--waivers", str(tmp_path / "waivers.yaml")))
    assert result.ret == 1
    assert result.reason("expired waiver")


def test_a_malformed_waiver_file_holds_naming_file_and_key(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")))
    now = finished(run) + timedelta(minutes=1)
    summary = run.reports / "summary.json"
    policy = write_policy(tmp_path, waivers={"max_days": 14, "file": "waivers.yaml"})

    no_approver = waiver(now)
    del no_approver["approver"]
    path = write_waivers(tmp_path, waiver(now), no_approver)
    result = gate(tmp_path, policy, summary, args=("--now", iso(now)))
    assert result.ret == 1, result.stdout
    assert result.reason("malformed waiver file") == (
        f"malformed waiver file: {path}: waivers[1].approver: required key is missing (line 10)"
    )  # the line of the waiver that lacks it
    # the file is rejected as a whole: its valid waiver does not cover the failure either
    assert "got HTTP 500" in result.reason("Health endpoints answer: failed")

    write_waivers(tmp_path, waiver(now, approver="alice@example.com"))
    result = gate(tmp_path, policy, summary, args=("--now", iso(now)))
    assert result.ret == 1
    assert "approver must be someone other than the owner" in result.reason(f"{path}: waivers[0]")

    write_waivers(tmp_path, waiver(now, days_before=10, days_after=10))
    result = gate(tmp_path, policy, summary, args=("--now", iso(now)))
    assert result.ret == 1
    assert result.reason(f"{path}: waivers[0].expires: waiver runs 20.0 days").endswith(
        "longer than the policy's maximum of 14 days")

    write_waivers(tmp_path, waiver(now, expires="next friday"))
    result = gate(tmp_path, policy, summary, args=("--now", iso(now)))
    assert result.ret == 1
    assert "waivers[0].expires: must be an ISO time in UTC" in result.reason("malformed waiver file")

    path.write_text("waivers:\n  - check: [unclosed\n")
    result = gate(tmp_path, policy, summary, args=("--now", iso(now)))
    assert result.ret == 1
    assert "not valid YAML" in result.reason(f"malformed waiver file: {path}")


def test_a_malformed_waiver_in_the_policy_holds(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo))
    now = finished(run) + timedelta(minutes=1)
    policy = write_policy(tmp_path, waivers={"entries": [waiver(now, justification="")]})
    result = gate(tmp_path, policy, run.reports / "summary.json", args=("--now", iso(now)))
    assert result.ret == 1
    assert result.reason("malformed waiver").startswith(f"malformed waiver: {policy}: waivers.entries[0].justification:")


def test_waivers_where_the_policy_allows_none_or_dated_in_the_future_hold(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")))
    now = finished(run) + timedelta(minutes=1)
    summary = run.reports / "summary.json"
    write_waivers(tmp_path, waiver(now))
    strict = write_policy(tmp_path, "strict.yaml", waivers={"allowed": False, "file": "waivers.yaml"})
    result = gate(tmp_path, strict, summary, args=("--now", iso(now)))
    assert result.ret == 1
    assert result.reason("waivers not allowed") == (
        f"waivers not allowed: {strict}: waivers.allowed is false, but 1 waiver was given")
    assert "got HTTP 500" in result.reason("Health endpoints answer: failed")

    write_waivers(tmp_path, waiver(now, days_before=-2, days_after=5))
    policy = write_policy(tmp_path, waivers={"file": "waivers.yaml"})
    result = gate(tmp_path, policy, summary, args=("--now", iso(now)))
    assert result.ret == 1
    assert "check its dates" in result.reason("waiver not yet valid")
    assert "got HTTP 500" in result.reason("Health endpoints answer: failed")


def test_several_results_files_are_judged_together(run_suite, demo, tmp_path):
    """Two runs of staging (one per check module) make one checklist; a third environment's holds."""
    env = staging(demo)
    env["tls"] = [demo.tls("good")]
    http = run_suite(env, "-m", "predeploy", paths=[HTTP_CHECKS], env_name="staging")
    tls = run_suite(env, "-m", "predeploy", paths=["checks/test_tls.py"], env_name="staging")
    items = [*POLICY["items"], {"name": "Certificates valid", "systems": ["tls"], "checks": ["test_certificate_*"]}]
    policy = write_policy(tmp_path, items=items)
    both = gate(tmp_path, policy, http.reports / "summary.json", tls.reports / "summary.json")
    assert both.ret == 0, both.stdout
    assert {e["run_id"] for e in both.doc["evidence"]} == {http.summary["run"]["run_id"], tls.summary["run"]["run_id"]}
    assert both.line("Certificates valid").startswith("- ✓ ")
    one_flag = gate(tmp_path, policy, args=("--results", str(http.reports / "summary.json"),
                                            str(tls.reports / "summary.json")))
    assert one_flag.ret == 0, one_flag.stdout
    only_http = gate(tmp_path, policy, http.reports / "summary.json")
    assert only_http.ret == 1
    assert only_http.reason("Certificates valid: missing: no result for `test_certificate_*` in staging")
    dev = run_suite(env, "-m", "predeploy", paths=["checks/test_tls.py"], env_name="dev")
    mixed = gate(tmp_path, policy, http.reports / "summary.json", tls.reports / "summary.json",
                 dev.reports / "summary.json")
    assert mixed.ret == 1
    assert mixed.reasons == [f"wrong environment: {dev.reports / 'summary.json'} holds results for dev, "
                             "the policy needs staging"]


# -- the policy itself -----------------------------------------------------------------------------------
def test_a_bad_policy_cannot_decide_naming_file_and_key(tmp_path):
    bad = dict(POLICY)
    bad["items"] = [{"name": "Health", "sytems": ["http"]}]
    policy = tmp_path / "bad.yaml"
    policy.write_text(yaml.safe_dump(bad))
    result = gate(tmp_path, policy, tmp_path / "summary.json")
    assert result.ret == 2
    assert f"opsverify gate: bad policy: {policy}: items[0].sytems: unknown key" in result.stderr
    assert result.doc["decision"] == "cannot_decide"
    assert "CANNOT DECIDE" in result.stdout

    lenient = dict(POLICY, block_on=["failed"])
    policy.write_text(yaml.safe_dump(lenient))
    result = gate(tmp_path, policy, tmp_path / "summary.json")
    assert result.ret == 2
    assert f"{policy}: block_on: must include error, missing: the gate fails closed" in result.stderr

    for value, problem in ((".inf", "max_age_minutes: Input should be a finite number"),
                           ("1e300", "max_age_minutes: Input should be less than or equal to 43200"),
                           ("true", "max_age_minutes: true is not a number here")):
        policy.write_text(yaml.safe_dump(dict(POLICY)).replace("max_age_minutes: 30", f"max_age_minutes: {value}"))
        result = gate(tmp_path, policy, tmp_path / "summary.json")
        assert result.ret == 2, result.stderr
        assert f"opsverify gate: bad policy: {policy}: {problem}" in result.stderr
        assert "Traceback" not in result.stderr

    missing = gate(tmp_path, tmp_path / "absent.yaml", tmp_path / "summary.json")
    assert missing.ret == 2
    assert f"{tmp_path / 'absent.yaml'}: file not found" in missing.stderr


def test_the_shipped_policies_and_waivers_file_are_valid(tmp_path):
    for name, environment in (("production.yaml", "staging"), ("local.yaml", "local")):
        result = gate(tmp_path, ROOT / "gates" / name, tmp_path / "absent.json")
        assert result.ret == 1, result.stderr
        assert result.doc["policy"]["environment"] == environment
        assert result.reasons[0] == f"{tmp_path / 'absent.json'}: no results (file does not exist) — run the checks first"
        assert all(": missing: " in reason for reason in result.reasons[1:])  # no waiver or policy problem


# -- the one-step form and the job summary -----------------------------------------------------------------
def test_one_step_gate_form_exits_with_the_gate_decision(run_suite, demo, tmp_path):
    policy = write_policy(tmp_path)
    green = run_staging(run_suite, staging(demo), "--gate", str(policy))
    assert green.ret == 0, green.stdout
    assert "opsverify gate: promote (exit 0)" in green.stdout
    assert "- ✓ **Health endpoints answer**" in green.stdout
    assert json.loads((green.reports / "gate.json").read_text())["decision"] == "promote"
    assert "## Pre-deploy checklist" in (green.reports / "summary.md").read_text()

    red = run_staging(run_suite, staging(demo, demo.url("/status/500")), "--gate", str(policy))
    assert red.ret == 1
    assert "opsverify gate: hold (exit 1)" in red.stdout
    doc = json.loads((red.reports / "gate.json").read_text())
    assert doc["evidence"][0]["run_id"] == red.summary["run"]["run_id"]
    assert any("got HTTP 500" in r for r in doc["reasons"])


def test_one_step_gate_with_an_active_waiver_promotes_despite_the_failure(run_suite, demo, tmp_path):
    policy = write_policy(tmp_path)
    waivers = write_waivers(tmp_path, waiver(datetime.now(UTC)))
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")), "--gate", str(policy),
                      "--waivers", str(waivers))
    assert run.outcome(STATUS, "api") == "failed"
    assert run.ret == 0, run.stdout
    assert "⚠ waived failed:" in run.stdout


def test_one_step_gate_holds_a_run_that_stopped_early(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")), "-x", "--gate", str(write_policy(tmp_path)))
    assert run.ret == 1
    doc = json.loads((run.reports / "gate.json").read_text())
    assert any("the run stopped early" in r and "results are partial" in r for r in doc["reasons"])


def test_one_step_gate_with_a_bad_policy_is_a_usage_error_before_probing(run_suite, demo, tmp_path):
    policy = write_policy(tmp_path, max_age_minutes="soon")
    run = run_suite(staging(demo), "-m", "predeploy", "--gate", str(policy), paths=[HTTP_CHECKS], env_name="staging")
    assert run.ret == 4
    assert f"--gate: bad policy: {policy}: max_age_minutes:" in run.stderr
    assert run.summary is None


def test_the_checklist_is_appended_to_the_github_step_summary(run_suite, demo, tmp_path):
    run = run_staging(run_suite, staging(demo, demo.url("/status/500")))
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("# Earlier step\n\nkept as it was\n")
    result = gate(tmp_path, write_policy(tmp_path), run.reports / "summary.json",
                  env_vars={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert result.ret == 1
    text = step_summary.read_text()
    assert text.startswith("# Earlier step\n\nkept as it was\n## Pre-deploy checklist — selftest-production")
    assert "- ✗ **Health endpoints answer**" in text and "got HTTP 500" in text

    one_step = run_staging(run_suite, staging(demo), "--gate", str(write_policy(tmp_path)),
                           env_vars={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert one_step.ret == 0
    text = step_summary.read_text()
    assert text.count("## Pre-deploy checklist") == 2
    assert text.startswith("# Earlier step\n")
    assert "PROMOTE" in text[text.rindex("## Pre-deploy"):]


def test_a_run_stopped_by_a_bad_environment_file_leaves_no_earlier_evidence(run_suite, demo, tmp_path):
    """The usage error comes before any report is written; the previous run's summary.json, left in
    the same reports directory, would otherwise be judged as this run's."""
    good = run_staging(run_suite, staging(demo))
    reports = good.reports
    assert good.ret == 0 and (reports / "summary.json").exists()
    bad = tmp_path / "staging.yaml"
    bad.write_text("name: staging\ntier: staging\ntier: dev\n")
    proc = run_pytest([f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}", f"--reports-dir={reports}",
                       f"--env-file={bad}", "-m", "predeploy", HTTP_CHECKS])
    assert proc.returncode == 4, proc.stderr
    assert not (reports / "summary.json").exists()
    result = gate(tmp_path, write_policy(tmp_path), reports / "summary.json")
    assert result.ret == 1
    assert result.reason("no results (file does not exist)")
