"""The credential inventory (``opsverify credentials`` and the summary.md section) against real
servers: the demo service's TLS listeners (certificates issued 30 days ago, expiring in 90, 20, 5
and -2 days), NATS user JWTs of an operator-mode nats-server (issued 120 and 80 days ago, expiring
in 2 and 60 days), and an OpenBao dev server (tokens with 48 h, 2 h and 10 min TTL, KV secrets).

Each row's age and expiry are compared with what the test itself created; the status follows the
same thresholds as the checks, and the rows come most urgent first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.nats import NatsServer, make_jwt_trust, start_nats
from opsverify_sandbox.servers.vault import VaultServer, start_vault_dev
from tests.harness import ROOT, run_checks, write_env

UTC = dt.UTC
DAY = dt.timedelta(days=1)


@dataclass
class World:
    env: dict[str, Any]
    secrets: dict[str, str]
    kv_written: dict[str, str]
    nats: NatsServer
    vault: VaultServer


@pytest.fixture(scope="module")
def world(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("inventory")
    trust = make_jwt_trust(tmp / "trust", account_name="PLATFORM")
    now = dt.datetime.now(UTC)
    creds = {
        "fresh": trust.write_user_creds("fresh", expires_at=now + 60 * DAY),
        "soon": trust.write_user_creds("soon", expires_at=now + 2 * DAY),
        "old": trust.write_user_creds("old", issued_at=now - 120 * DAY),
        "ageing": trust.write_user_creds("ageing", issued_at=now - 80 * DAY),
    }
    with start_nats(tmp / "nats", jwt_trust=trust, jetstream=False) as nats_server, \
            start_vault_dev(tmp / "vault", root_token="inventory-root") as vault:
        kv_written = {p: vault.write_kv(p, {"v": "1"})["created_time"] for p in ("app/db", "app/hooks")}
        tokens = {name: vault.create_token(ttl=ttl)["client_token"]
                  for name, ttl in (("long", "48h"), ("medium", "2h"), ("short", "10m"))}
        tls_policy = {"warn": 30, "critical": 14}
        env = {
            "tls": [demo.tls(name, min_days=tls_policy) for name in ("good", "warning", "expiring", "expired")],
            "nats": [{"name": name, "url": nats_server.url, "creds": {"file": str(path)},
                      "max_credential_age_days": {"warn": 75, "critical": 90}} for name, path in creds.items()]
            + [{"name": "pw-user", "url": nats_server.url, "user": "svc", "password": {"env": "INVENTORY_NATS_PW"}}],
            "vault": [
                {"name": "bao", "addr": vault.addr, "token": {"env": "INVENTORY_ROOT"},
                 "tokens": [{"name": name, "token": {"env": f"INVENTORY_{name.upper()}"},
                             "min_ttl": {"warn": "3h", "critical": "30m"}} for name in tokens],
                 "secrets": [{"name": "db", "path": "app/db", "max_age": "90d"},
                             {"name": "hooks", "path": "app/hooks", "max_age": {"warn": 0.000001, "critical": "30d"}},
                             {"name": "gone", "path": "app/gone"}]},
                {"name": "down", "addr": f"http://127.0.0.1:{free_port()}", "token": {"env": "INVENTORY_ROOT"}},
            ],
        }
        secrets = {"INVENTORY_ROOT": "inventory-root", **{f"INVENTORY_{k.upper()}": v for k, v in tokens.items()}}
        yield World(env, secrets, kv_written, nats_server, vault)


def _command(tmp: Path, world: World, *args: str) -> subprocess.CompletedProcess[str]:
    path = write_env(tmp, world.env, name="inventory")
    return subprocess.run([sys.executable, "-m", "opsverify", "credentials", "--env-file", str(path), *args],
                          cwd=tmp, env={**os.environ, **world.secrets}, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def listed(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proc = _command(tmp_path_factory.mktemp("json"), world, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _row(listed: dict[str, Any], owner: str, contains: str = "") -> dict[str, Any]:
    found = [r for r in listed["credentials"] if r["owner"] == owner and contains in r["name"]]
    assert len(found) == 1, (owner, contains, [(r["owner"], r["name"]) for r in listed["credentials"]])
    return found[0]


def test_tls_certificates_have_their_handshake_ages_and_expiries(listed: dict[str, Any]) -> None:
    good = _row(listed, "tls/good")
    assert good["kind"] == "TLS certificate" and good["status"] == "ok"
    assert 29.9 < good["age_days"] < 30.1 and 89.9 < good["days_left"] < 90.1
    assert good["min_days_left"] == "14 (warn 30)"
    assert _row(listed, "tls/warning")["status"] == "warn"
    assert "expires in 20.0 d (policy: at least 30 d left)" in _row(listed, "tls/warning")["reason"]
    expiring = _row(listed, "tls/expiring")
    assert expiring["status"] == "rotate now" and 4.9 < expiring["days_left"] < 5.1
    expired = _row(listed, "tls/expired")
    assert expired["status"] == "rotate now" and "expired (policy: at least 14 d left)" in expired["reason"]
    assert expired["runbook"] == "certs#expiry"


def test_nats_creds_have_their_jwt_issue_and_expiry_times(listed: dict[str, Any]) -> None:
    old = _row(listed, "nats/old")
    assert old["kind"] == "NATS user JWT" and old["status"] == "rotate now"
    assert 119.9 < old["age_days"] < 120.1 and old["expires_at"] is None
    assert "120.0 d old (policy: at most 90 d)" in old["reason"]
    ageing = _row(listed, "nats/ageing")
    assert ageing["status"] == "warn" and "80.0 d old (policy: at most 75 d)" in ageing["reason"]
    soon = _row(listed, "nats/soon")
    assert soon["status"] == "rotate now" and 1.9 < soon["days_left"] < 2.1
    fresh = _row(listed, "nats/fresh")
    assert fresh["status"] == "ok" and 59.9 < fresh["days_left"] < 60.1 and fresh["age_days"] < 0.1
    assert fresh["name"].startswith("user fresh (U")


def test_vault_tokens_have_their_ttl_and_kv_secrets_their_update_time(listed: dict[str, Any], world: World) -> None:
    assert _row(listed, "vault/bao", "token long")["status"] == "ok"
    medium = _row(listed, "vault/bao", "token medium")
    assert medium["status"] == "warn" and 0.08 < medium["days_left"] <= 0.0834
    short = _row(listed, "vault/bao", "token short")
    assert short["status"] == "rotate now" and short["days_left"] <= 0.007
    assert "(policy: at least 0.0208333 d left)" in short["reason"]
    assert "never expires" in _row(listed, "vault/bao", "checker token")["reason"]
    db = _row(listed, "vault/bao", "app/db")
    assert db["kind"] == "Vault KV secret" and db["status"] == "ok" and db["age_days"] < 0.1
    assert db["issued_at"] == world.kv_written["app/db"][:19] + "Z"
    assert db["max_age_days"] == "90"
    assert _row(listed, "vault/bao", "app/hooks")["status"] == "warn"
    gone = _row(listed, "vault/bao", "gone")
    assert gone["status"] == "unknown" and gone["reason"].startswith("could not read:")
    down = _row(listed, "vault/down")
    assert down["status"] == "unknown" and "connection refused" in down["reason"]


def test_secrets_without_dates_are_listed_as_untracked(listed: dict[str, Any], world: World, tmp_path: Path) -> None:
    row = _row(listed, "nats/pw-user")
    assert row["kind"] == "secret" and row["status"] == "untracked"
    assert row["name"] == "password ($INVENTORY_NATS_PW)"
    assert "no issue or expiry date is known for it" in row["reason"]
    # credentials a probe judges are not listed a second time
    assert [r["owner"] for r in listed["credentials"]].count("nats/old") == 1
    assert _command(tmp_path, world, "--fail-on", "untracked").returncode == 1


def test_rows_come_most_urgent_first(listed: dict[str, Any]) -> None:
    statuses = [r["status"] for r in listed["credentials"]]
    order = ["rotate now", "warn", "unknown", "untracked", "ok"]
    assert statuses == sorted(statuses, key=order.index)
    urgent = [r["owner"] + ":" + r["name"] for r in listed["credentials"] if r["status"] == "rotate now"]
    # soonest expiry first (expired TLS, 10-minute token, 2-day JWT, 5-day TLS), then the over-age JWT
    assert [u.split(":")[0] for u in urgent] == ["tls/expired", "vault/bao", "nats/soon", "tls/expiring", "nats/old"]
    assert listed["counts"] == {"rotate now": 5, "warn": 4, "unknown": 2, "untracked": 1, "ok": 5}


def test_table_and_fail_on_rotate(world: World, tmp_path: Path) -> None:
    proc = _command(tmp_path, world)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["status", "credential", "expires", "age", "(d)", "left", "(d)", "why"]
    first = lines[2:lines.index("", 2)] if "" in lines[2:] else lines[2:]
    first = first[:next((i for i, ln in enumerate(first[1:], 1) if not ln.startswith(" ")), len(first))]
    assert first[0].startswith("rotate now") and "tls/expired" in " ".join(first)  # the row, wrapped
    assert max(len(line) for line in lines) <= 100  # wrapped to fit, by rich
    assert lines[-1] == "17 credentials: 5 rotate now, 4 warn, 2 unknown, 1 untracked, 5 ok"
    wide = _command(tmp_path, world, "--wide").stdout.splitlines()
    assert wide[0].split()[:3] == ["status", "kind", "env"]
    expired = next(line for line in wide if "tls/expired" in line)  # every column on the row's one line
    assert expired.startswith("rotate now") and "TLS certificate" in expired and "expired (policy:" in expired
    assert len(wide) == len([ln for ln in wide if ln.strip()]) + 1  # no wrapped continuation lines
    assert _command(tmp_path, world, "--fail-on", "rotate").returncode == 1
    for secret in world.secrets.values():
        assert secret not in proc.stdout


def test_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "opsverify", "credentials", "--env", "no-such-env"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "unknown environment 'no-such-env'" in proc.stderr


def test_summary_md_lists_the_credentials_the_run_read(world: World, tmp_path: Path) -> None:
    env = {"tls": world.env["tls"], "nats": world.env["nats"]}
    run = run_checks(tmp_path, env, "-k", "expiry or max_age", paths=["checks/test_tls.py", "checks/test_nats.py"])
    text = (run.reports / "summary.md").read_text()
    assert "## 🔑 Credentials (9: 4 rotate now, 2 warn, 0 unknown, 1 untracked, 2 ok)" in text
    section = text.split("## 🔑 Credentials")[1]
    rows = [line for line in section.splitlines() if line.startswith("| rotate now") or line.startswith("| ok")]
    assert "tls/expired" in rows[0] and "nats/old" in rows[3]
    assert run.summary is not None and len(run.summary["run"]["credentials"]) == 9
