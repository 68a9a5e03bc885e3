"""Vault token rotation, driven for real on an OpenBao dev server: a service's old token and its
replacement are both valid (the overlap), then the old one is revoked through the API.

In each state one pytest run verifies three environment files, each declaring a different phase in
its ``rotation:`` block; the phases that match the server pass, the others fail naming the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsverify_sandbox.servers.vault import start_vault_dev
from tests.harness import SuiteRun, run_checks

CHECK = "test_vault_previous_token_is_valid_only_until_the_rotation_ends"
PHASES = ("before", "overlap", "after")


def _verify(tmp: Path, addr: str, secrets: dict[str, str], label: str) -> SuiteRun:
    run_dir = tmp / label
    run_dir.mkdir()
    envs = {
        f"declares-{phase}": {"vault": [{"name": "bao", "addr": addr, "token": {"env": "ROT_ROOT"},
                                         "tokens": [{"name": "auth-edge", "token": {"env": "ROT_NEW"},
                                                     "previous": {"env": "ROT_OLD"}, "min_ttl": "10m"}]}],
                              "rotation": {"phase": phase, "credentials": ["vault/bao"]}}
        for phase in PHASES
    }
    return run_checks(run_dir, None, "-m", "rotation", env_vars=secrets, paths=["checks/test_vault.py"], envs=envs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("vault-rotation")
    with start_vault_dev(tmp / "bao", root_token="rotation-root") as vault:
        old = vault.create_token(ttl="2h", display_name="auth-edge-old")["client_token"]
        new = vault.create_token(ttl="2h", display_name="auth-edge-new")["client_token"]
        secrets = {"ROT_ROOT": "rotation-root", "ROT_OLD": old, "ROT_NEW": new}
        found: dict[str, Any] = {"secrets": secrets}
        found["overlap"] = _verify(tmp, vault.addr, secrets, "both-valid")
        vault.request("POST", "auth/token/revoke", json={"token": old}, expect=(204, 200))
        found["after"] = _verify(tmp, vault.addr, secrets, "old-revoked")
        yield found


def _outcomes(run: SuiteRun) -> dict[str, str]:
    return {phase: run.outcome(CHECK, "bao", env=f"declares-{phase}", item="auth-edge") for phase in PHASES}


def test_both_tokens_valid_passes_before_and_overlap_and_fails_after(runs: dict[str, Any]) -> None:
    run = runs["overlap"]
    assert _outcomes(run) == {"before": "passed", "overlap": "passed", "after": "failed"}, run.stdout[-3000:]
    message = run.message(CHECK, "bao", env="declares-after", item="auth-edge")
    assert "expected the previous token of auth-edge ($ROT_OLD) revoked (rotation phase after), got still valid (" in message
    assert "h TTL left)" in message and "vault token revoke" in message
    assert "[runbook vault#token-rotation]" in message


def test_a_revoked_old_token_passes_after_and_fails_before_and_overlap(runs: dict[str, Any]) -> None:
    run = runs["after"]
    assert _outcomes(run) == {"before": "failed", "overlap": "failed", "after": "passed"}, run.stdout[-3000:]
    message = run.message(CHECK, "bao", env="declares-overlap", item="auth-edge")
    assert "expected the previous token of auth-edge ($ROT_OLD) still valid (rotation phase overlap)" in message
    assert "got refused by the server (permission denied)" in message
    assert "services not yet moved to the new token lose access to their secrets" in message
    assert "Re-issue a token for the services still on the old one" in message


def test_the_new_token_keeps_passing_its_own_ttl_check(runs: dict[str, Any]) -> None:
    run = runs["after"]
    for phase in PHASES:
        assert run.outcome("test_vault_token_has_enough_ttl_left", "bao", env=f"declares-{phase}",
                           item="auth-edge") == "passed"


def test_no_token_reaches_the_reports(runs: dict[str, Any]) -> None:
    run = runs["after"]
    text = run.stdout + (run.reports / "summary.md").read_text() + (run.reports / "junit.xml").read_text()
    for name in ("ROT_OLD", "ROT_NEW"):
        assert runs["secrets"][name] not in text
    assert "declares-after: after (vault/bao)" in (run.summary or {}).get("run", {}).get("phase", "")
