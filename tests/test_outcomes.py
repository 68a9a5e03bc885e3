"""The right outcome and the right words, against real servers: a wrong answer is a failure that says
what was expected and seen; an error says what could not be seen, on which target and address, and how
to let the checker see again, never the runbook's remedy for a symptom nobody saw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opsverify_sandbox.servers.vault import VaultServer, start_vault_dev
from tests.harness import SuiteRun, run_checks
from tests.test_gate import gate, run_staging, staging, write_policy

STATUS = "test_endpoint_returns_expected_status"
BODY = "test_endpoint_body_contains_expected_text"
JSON = "test_endpoint_json_fields_have_expected_values"
VAULT_CHECKS = ["checks/test_vault.py"]
UNSEALED = "test_vault_is_unsealed"
INITIALIZED = "test_vault_is_initialized"
LEADER = "test_vault_has_a_leader"
PEERS = "test_vault_raft_has_enough_peers"

# words of runbook actions for symptoms: never in an error's message
SEAL_ACTION = "Fetch the unseal key shares"
INIT_ACTION = "vault operator init"
CONTENT_ACTION = "follow that component's procedure"


def test_an_html_maintenance_page_where_json_is_expected_fails_with_target_expected_got_and_action(run_suite, demo):
    env = {"http": [
        {"name": "maintenance", "url": demo.url("/maintenance"), "json": {"status": "ok"}},
        {"name": "healthy", "url": demo.url("/healthz"), "json": {"status": "ok"}},
    ]}
    run = run_suite(env, "-k", "json_fields")
    assert run.outcome(JSON, "healthy") == "passed", run.stdout
    assert run.outcome(JSON, "maintenance") == "failed", run.stdout
    assert run.message(JSON, "maintenance") == (
        f"selftest-maintenance: expected JSON fields status='ok' from GET {demo.url('/maintenance')}, got HTTP 200 "
        "with a text/html body that is not JSON (starts with '<html><head><title>Maintenance</title></head>"
        "<body><h1>Back soon</h1></body></ht') — something other than the service answers for it (a maintenance "
        "page, a proxy or load balancer error page): find what serves that address and why, then the service's "
        "own health [runbook platform#http-content]"
    )


def test_a_body_longer_than_what_is_read_is_an_error_not_a_missing_text_or_a_pass(run_suite, demo):
    """256 KiB are read; text or JSON past them was never seen, so its absence is no evidence."""
    env = {"http": [
        {"name": "big", "url": demo.url("/big?kb=300"), "body_contains": '"status": "ok"', "json": {"status": "ok"}},
        {"name": "big-starts", "url": demo.url("/big?kb=300"), "body_contains": '{"padding": "xxx'},
        {"name": "fits", "url": demo.url("/big?kb=200"), "body_contains": '"status": "ok"', "json": {"status": "ok"}},
    ]}
    run = run_suite(env, "-k", "body_contains or json_fields")
    assert run.outcome(BODY, "fits") == "passed" and run.outcome(JSON, "fits") == "passed", run.stdout
    assert run.outcome(BODY, "big-starts") == "passed"  # the text is in the part that was read
    for check in (BODY, JSON):
        assert run.outcome(check, "big") == "error", run.stdout
        assert run.cause(check, "big") == (
            f"UnexpectedResponse: {demo.url('/big?kb=300')} answered a body longer than 256 KiB: only its start "
            "was read, so what the rest holds cannot be checked")


def test_an_unreachable_endpoint_errors_naming_label_address_and_how_to_see_it_again(run_suite, demo, tmp_path):
    url = f"http://127.0.0.1:{demo.closed}/healthz"
    run = run_suite({"http": [{"name": "api", "url": url, "json": {"status": "ok"}}]}, "-k", "status or json_fields")
    for check in (STATUS, JSON):
        assert run.outcome(check, "api") == "error"
        assert run.message(check, "api") == (
            f"Unreachable: cannot connect to 127.0.0.1:{demo.closed}: connection refused — could not see "
            f"selftest-api ({url}): check that the service is up and that the checker can reach that address "
            "(DNS, routes, firewall, TLS trust)")
    summary = (run.reports / "summary.md").read_text()
    line = next(ln for ln in summary.splitlines() if f"`{JSON}`" in ln)
    assert CONTENT_ACTION not in line and "runbook [platform#http-content]" in line, line
    # the gate's checklist: the error's line offers visibility, not the failure's runbook action
    staged = run_staging(run_suite, staging(demo, url))
    result = gate(tmp_path, write_policy(tmp_path), staged.reports / "summary.json")
    errors = [ln for ln in result.stdout.splitlines() if ln.startswith("  - ✗ error:")]
    assert errors and all("[staging-api]" in ln and f"could not see ‹target› ({url})" in ln for ln in errors), errors
    assert not any("Restart or roll back" in ln or "follow that component" in ln for ln in errors), errors


def test_a_missing_secret_says_which_reference_and_how_to_resolve_it(run_suite, demo):
    env = {"http": [{"name": "api", "url": demo.url("/echo"),
                     "request_headers": {"authorization": {"env": "SELFTEST_OUTCOMES_UNSET"}}}]}
    run = run_suite(env, "-k", "status")
    assert run.message(STATUS, "api") == (
        f"SecretMissing: secret SELFTEST_OUTCOMES_UNSET is not set — could not see selftest-api "
        f"({demo.url('/echo')}): make the secret reference resolve where the checker runs (set the variable "
        "or file it names)")


@pytest.fixture(scope="module")
def vault_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VaultServer, SuiteRun]]:
    """A real OpenBao that was running and went down (its process stopped): its address now refuses."""
    base = tmp_path_factory.mktemp("vault-down")
    server = start_vault_dev(base / "bao", root_token="selftest-down-root")
    addr = server.addr
    server.stop()
    env = {"vault": [{"name": "vault", "addr": addr, "token": {"env": "SELFTEST_DOWN_ROOT"},
                      "raft": {"min_peers": 3}}]}
    (base / "run").mkdir()
    yield server, run_checks(base / "run", env, paths=VAULT_CHECKS, env_vars={"SELFTEST_DOWN_ROOT": "x"})


def test_vault_down_errors_with_visibility_words_never_the_seal_or_init_action(vault_down):
    server, run = vault_down
    address = server.addr.removeprefix("http://")
    for check in (UNSEALED, INITIALIZED, LEADER, PEERS):
        assert run.outcome(check, "vault") == "error", run.stdout
        message = run.message(check, "vault")
        assert message == (
            f"Unreachable: cannot connect to {address}: connection refused — could not see selftest-vault "
            f"({server.addr}): check that the service is up and that the checker can reach that address "
            "(DNS, routes, firewall, TLS trust)"), message
    summary = (run.reports / "summary.md").read_text()
    outputs = summary + run.stdout + (run.reports / "junit.xml").read_text()
    assert SEAL_ACTION not in outputs and INIT_ACTION not in outputs
    assert "could not see selftest-vault" in run.stdout  # the console line says it too


def test_sealed_vault_errors_behind_the_seal_point_at_the_seal_check(tmp_path: Path):
    server = start_vault_dev(tmp_path / "bao", root_token="selftest-sealed-root")
    try:
        server.seal()
        env = {"vault": [{"name": "vault", "addr": server.addr, "token": {"env": "SELFTEST_SEALED_ROOT"}}]}
        (tmp_path / "run").mkdir()
        run = run_checks(tmp_path / "run", env, "-k", "unsealed or leader", paths=VAULT_CHECKS,
                         env_vars={"SELFTEST_SEALED_ROOT": "selftest-sealed-root"})
    finally:
        server.stop()
    assert run.outcome(UNSEALED, "vault") == "failed"
    assert "each key holder runs `vault operator unseal`" in run.message(UNSEALED, "vault")  # the failure's action
    assert run.outcome(LEADER, "vault") == "error"
    assert run.message(LEADER, "vault") == (
        f"VaultSealed: {server.addr} is sealed: cannot tell who the leader is until it is unsealed — could not see "
        "selftest-vault: nothing behind the seal can be read: its seal and initialisation checks say what was seen "
        "and what to do")
    assert "vault operator unseal" not in run.message(LEADER, "vault")
