"""Self-tests of checks/test_tokens.py against the Cloudflare token-verify EMULATOR (a real HTTP server;
the real endpoint needs a Cloudflare account). Faults: a wrong token, a disabled token, a token expiring
within the warning and within the critical window, an unreadable expiry, a 5xx-free unreachable endpoint.
Also the credential-inventory rows of the same targets.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsverify.config.model import load_environment
from opsverify.errors import ConfigError
from opsverify_sandbox.process import ManagedProcess, free_port
from opsverify_sandbox.servers.token_verify import VERIFY_PATH, start_token_verify
from tests.harness import ROOT, SuiteRun, run_checks

CHECKS = ["checks/test_tokens.py"]
ACTIVE = "test_api_token_is_active"
EXPIRY = "test_api_token_expiry_is_far_enough"
NAMES = ("good", "never", "disabled", "soon", "warning", "badexpiry")


@dataclass
class Provider:
    url: str
    values: dict[str, str]  # env var -> token value
    proc: ManagedProcess


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    values = {name: secrets.token_urlsafe(24) for name in NAMES}
    table: dict[str, dict[str, Any]] = {
        values["good"]: {"id": "id-good", "status": "active", "expires_in_days": 90},
        values["never"]: {"id": "id-never", "status": "active", "expires_in_days": None},
        values["disabled"]: {"id": "id-disabled", "status": "disabled", "expires_in_days": 90},
        values["soon"]: {"id": "id-soon", "status": "active", "expires_in_days": 2},
        values["warning"]: {"id": "id-warning", "status": "active", "expires_in_days": 20},
        values["badexpiry"]: {"id": "id-bad", "status": "active", "expires_on": "next tuesday"},
    }
    port = free_port()
    proc, _ = start_token_verify(tmp_path_factory.mktemp("cf"), table, port=port)
    try:
        yield Provider(f"http://127.0.0.1:{port}{VERIFY_PATH}",
                       {f"SELFTEST_CF_{n.upper()}": v for n, v in values.items()}, proc)
    finally:
        proc.stop()


def _env(provider: Provider, refused_port: int) -> dict[str, Any]:
    def target(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "verify_url": provider.url, "token": {"env": f"SELFTEST_CF_{name.upper()}"},
                "min_days": {"warn": 30, "critical": 7}, **extra}

    return {"api_tokens": [
        *(target(n, issued_at="2026-01-05") if n == "good" else target(n) for n in NAMES),
        {"name": "wrong", "verify_url": provider.url, "token": {"env": "SELFTEST_CF_WRONG"}},
        {"name": "refused", "verify_url": f"http://127.0.0.1:{refused_port}{VERIFY_PATH}",
         "token": {"env": "SELFTEST_CF_GOOD"}},
        {"name": "unset", "verify_url": provider.url, "token": {"env": "SELFTEST_CF_NOT_SET"}},
    ]}


@pytest.fixture(scope="module")
def suite(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    env_vars = {**provider.values, "SELFTEST_CF_WRONG": "not-a-token-" + secrets.token_hex(8)}
    return run_checks(tmp_path_factory.mktemp("suite"), _env(provider, free_port()), paths=CHECKS,
                      env_vars=env_vars)


def test_active_tokens_pass_and_record_their_expiry(suite: SuiteRun) -> None:
    for name in ("good", "never"):
        assert suite.outcome(ACTIVE, name) == "passed", suite.stdout[-3000:]
        assert suite.outcome(EXPIRY, name) == "passed"
    assert suite.record(EXPIRY, "never")["measured"] == []  # no expiry: nothing to measure
    assert suite.record(EXPIRY, "good")["measured"][0]["value"] > 89
    assert "Traceback" not in suite.stdout and "ProbeCrashed" not in suite.stdout


def test_wrong_token_fails_with_the_providers_reason(suite: SuiteRun, provider: Provider) -> None:
    assert suite.outcome(ACTIVE, "wrong") == "failed"
    assert suite.message(ACTIVE, "wrong") == (
        f"selftest-wrong: expected token $SELFTEST_CF_WRONG active at {provider.url}, got HTTP 401 "
        "(Invalid API Token (code 1000)) — The provider no longer accepts the token (revoked, expired, deleted, or "
        "the secret holds the wrong value): create a replacement with the same permissions in the provider's "
        "dashboard, update the encrypted secret, re-apply the environment (`mise deploy:promote --environment "
        "<env> --provider <provider>`), verify it, then revoke the old one. [runbook tokens#active]"
    )


def test_disabled_token_fails_active_and_expiry(suite: SuiteRun) -> None:
    assert suite.outcome(ACTIVE, "disabled") == "failed"
    assert "got disabled (status disabled)" in suite.message(ACTIVE, "disabled")
    assert suite.outcome(EXPIRY, "disabled") == "failed"
    assert "see tokens#active first" in suite.message(EXPIRY, "disabled")


def test_token_inside_the_critical_window_fails_and_inside_the_warning_window_warns(suite: SuiteRun) -> None:
    assert suite.outcome(EXPIRY, "soon") == "failed"
    message = suite.message(EXPIRY, "soon")
    assert message.startswith("selftest-soon: expected days until token $SELFTEST_CF_SOON expires (")
    assert ">= 7 d, got 1.9" in message or ">= 7 d, got 2 d" in message, message
    assert message.endswith("[runbook tokens#expiry]")
    assert suite.outcome(EXPIRY, "warning") == "passed"
    warnings = suite.record(EXPIRY, "warning")["warnings"]
    assert len(warnings) == 1 and "past the warning level 30 d" in warnings[0]


def test_unreadable_expiry_fails_naming_the_path(suite: SuiteRun) -> None:
    assert suite.outcome(EXPIRY, "badexpiry") == "failed"
    assert ("expected an expiry time at result.expires_on, got result.expires_on = 'next tuesday' is not a time"
            in suite.message(EXPIRY, "badexpiry"))


def test_unreachable_endpoint_and_missing_secret_error(suite: SuiteRun) -> None:
    assert suite.outcome(ACTIVE, "refused") == "error"
    assert suite.cause(ACTIVE, "refused").endswith(": connection refused")
    assert suite.outcome(ACTIVE, "unset") == "error"
    assert suite.cause(ACTIVE, "unset") == "SecretMissing: secret SELFTEST_CF_NOT_SET is not set"


def test_no_token_value_reaches_the_console_or_the_reports(suite: SuiteRun, provider: Provider) -> None:
    reports = (suite.reports / "summary.json").read_text() + (suite.reports / "junit.xml").read_text()
    for value in provider.values.values():
        assert value not in suite.stdout and value not in reports


def test_credential_inventory_lists_each_token_with_issue_and_expiry(provider: Provider, tmp_path: Path) -> None:
    """`opsverify credentials` (opsverify/inventory.py) reads these tokens through the same probe."""
    path = tmp_path / "inv.yaml"
    path.write_text(json.dumps({"name": "inv", **_env(provider, free_port())}))
    env = {**os.environ, **provider.values, "SELFTEST_CF_WRONG": "not-a-token"}
    proc = subprocess.run([sys.executable, "-m", "opsverify", "credentials", f"--env-file={path}", "--json",
                           f"--root={ROOT}"], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = {row["owner"].split("/")[-1]: row for row in json.loads(proc.stdout)["credentials"]}
    assert rows["good"]["status"] == "ok" and rows["good"]["issued_at"].startswith("2026-01-05")
    assert rows["good"]["expires_at"] is not None and "id-good" in rows["good"]["name"]
    assert rows["soon"]["status"] == "rotate now" and rows["warning"]["status"] == "warn"
    assert rows["disabled"]["status"] == "rotate now" and rows["disabled"]["reason"] == "not active: status disabled"
    assert rows["wrong"]["reason"] == "not active: Invalid API Token (code 1000)"
    assert rows["refused"]["status"] == "unknown"
    for value in provider.values.values():
        assert value not in proc.stdout


def test_config_fills_min_days_from_the_tier_and_rejects_bad_paths(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    base = {"name": "t", "verify_url": "https://api.example.com/verify", "token": {"env": "T"}}
    path.write_text(json.dumps({"name": "cfg", "tier": "production", "api_tokens": [base]}))
    target = load_environment(path).api_tokens[0]
    assert (target.min_days.warn, target.min_days.critical) == (30, 14)
    path.write_text(json.dumps({"name": "cfg", "api_tokens": [{**base, "expires_path": "result..x"}]}))
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    assert "api_tokens[0]" in str(caught.value) and "expires_path" in str(caught.value)
