"""NATS credential rotation, driven for real: a running nats-server whose users are replaced by
config reload (SIGHUP), and an operator-mode server whose old user is revoked by reloading the
account JWT with a revocation -- the two ways the runbook's "revoke old users" happens.

The server goes through the three states of a rotation (only the old credential valid; old and new
both valid; only the new one). In each state one pytest run verifies three environment files at
once, each declaring a different phase in its ``rotation:`` block: the file whose phase matches
the state passes, the others fail with messages naming the phase and the credential. A last run
shows ``--phase`` overriding the files. ``before`` only demands that the old credential works, so
verifying ``before`` while the server is already in the overlap passes (by design).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsverify_sandbox.servers.nats import (
    JwtTrust,
    NatsServer,
    NatsUser,
    decode_jwt_claims,
    encode_jwt,
    make_jwt_trust,
    nkey_user,
    read_creds_claims,
    start_nats,
)
from tests.harness import ROOT, SuiteRun, run_checks

KEPT = "test_previous_credential_is_accepted_until_the_rollout_completes"
REVOKED = "test_previous_credential_is_rejected_after_the_rotation"
NEW = "test_new_credential_is_accepted_from_the_overlap_on"
CONNECT = "test_nats_accepts_credential"
PHASES = ("before", "overlap", "after")


@dataclass
class RotationWorld:
    """Two servers mid-rotation, and the secret files of the old and new credentials."""

    users: NatsServer       # config-file nkey users, rotated by config reload
    jwt: NatsServer         # operator mode, the old user revoked through the account JWT
    trust: JwtTrust
    old: NatsUser
    new: NatsUser
    old_creds: Path
    new_creds: Path
    secrets: Path

    def seed_file(self, user: NatsUser) -> dict[str, str]:
        path = self.secrets / f"{user.name}.seed"
        path.write_text(user.secret)
        path.chmod(0o600)
        return {"file": str(path)}

    def targets(self, with_jwt: bool) -> list[dict[str, Any]]:
        found = [{"name": "wasmcloud", "url": self.users.url, "nkey_seed": self.seed_file(self.new),
                  "previous": {"nkey_seed": self.seed_file(self.old)}}]
        if with_jwt:
            found.append({"name": "restate", "url": self.jwt.url, "creds": {"file": str(self.new_creds)},
                          "previous": {"creds": {"file": str(self.old_creds)}}})
        return found


def revoke_user(server: NatsServer, trust: JwtTrust, creds: Path) -> None:
    """Revoke the user of ``creds``: account JWT with a revocation entry, then a config reload."""
    claims = decode_jwt_claims(trust.account_jwt)
    for key in ("iss", "jti"):
        claims.pop(key, None)
    user_public = read_creds_claims(creds)["sub"]
    # every JWT of this user issued at or before this moment is revoked
    claims["nats"]["revocations"] = {user_public: int(time.time()) + 1}
    trust.account_jwt = encode_jwt(claims, trust.operator_seed)
    server.reload()


def _verify(tmp: Path, world: RotationWorld, label: str, *, with_jwt: bool, extra: tuple[str, ...] = (),
            file_phase: dict[str, str] | None = None) -> SuiteRun:
    """One pytest run of the NATS checks against three environments, one per declared phase."""
    run_dir = tmp / label
    run_dir.mkdir()
    envs = {
        f"declares-{phase}": {"nats": world.targets(with_jwt),
                              "rotation": {"phase": (file_phase or {}).get(phase, phase), "change": f"CHG-{label}"}}
        for phase in PHASES
    }
    return run_checks(run_dir, None, "-k", "credential", *extra, paths=["checks/test_nats.py"], envs=envs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SuiteRun]]:
    tmp = tmp_path_factory.mktemp("nats-rotation")
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir()
    old, new = nkey_user("wasmcloud-old"), nkey_user("wasmcloud-new")
    trust = make_jwt_trust(tmp / "trust", account_name="PLATFORM")
    old_creds = trust.write_user_creds("restate-old")
    new_creds = trust.write_user_creds("restate-new")
    with start_nats(tmp / "users", users=[old], jetstream=False) as users, \
            start_nats(tmp / "jwt", jwt_trust=trust, jetstream=False) as jwt:
        world = RotationWorld(users, jwt, trust, old, new, old_creds, new_creds, secrets_dir)
        found: dict[str, SuiteRun] = {}
        # state 1: only the old user exists
        found["before"] = _verify(tmp, world, "state-before", with_jwt=False)
        # state 2: the new user is added next to the old one (config reload); JWT users both valid
        users.reload(users=[old, new])
        found["overlap"] = _verify(tmp, world, "state-overlap", with_jwt=True)
        # state 3: the old user is removed (config reload) / revoked (account JWT reload)
        users.reload(users=[new])
        revoke_user(jwt, trust, old_creds)
        found["after"] = _verify(tmp, world, "state-after", with_jwt=True)
        # --phase wins over the files (which all declare overlap here)
        found["override"] = _verify(tmp, world, "override", with_jwt=True, extra=("--phase", "after"),
                                    file_phase={p: "overlap" for p in PHASES})
        yield found


def _outcomes(run: SuiteRun, env: str, target: str) -> dict[str, str]:
    return {check: run.outcome(check, target, env=env) for check in (KEPT, REVOKED, NEW)}


def test_the_phase_that_matches_the_server_passes(runs: dict[str, SuiteRun]) -> None:
    assert _outcomes(runs["before"], "declares-before", "wasmcloud") == {KEPT: "passed", REVOKED: "skipped", NEW: "skipped"}
    for target in ("wasmcloud", "restate"):
        assert _outcomes(runs["overlap"], "declares-overlap", target) == {KEPT: "passed", REVOKED: "skipped", NEW: "passed"}
        assert _outcomes(runs["after"], "declares-after", target) == {KEPT: "skipped", REVOKED: "passed", NEW: "passed"}
    assert "rotation phase before: the new credential need not work yet" in runs["before"].message(
        NEW, "wasmcloud", env="declares-before")


def test_overlap_and_after_fail_while_only_the_old_credential_works(runs: dict[str, SuiteRun]) -> None:
    run = runs["before"]
    assert run.outcome(NEW, "wasmcloud", env="declares-overlap") == "failed"
    message = run.message(NEW, "wasmcloud", env="declares-overlap")
    assert "expected the new credential nkey user U" in message
    assert "(rotation phase overlap), got authorization violation for nkey user U" in message
    assert "[runbook nats#rotation-new]" in message
    assert run.outcome(REVOKED, "wasmcloud", env="declares-after") == "failed"
    message = run.message(REVOKED, "wasmcloud", env="declares-after")
    assert "(rotation phase after), got still accepted: the old user was not revoked" in message
    assert "nsc revocations add-user" in message and "[runbook nats#revoke-old-users]" in message
    assert run.outcome(NEW, "wasmcloud", env="declares-after") == "failed"


def test_after_fails_during_the_overlap(runs: dict[str, SuiteRun]) -> None:
    run = runs["overlap"]
    for target in ("wasmcloud", "restate"):
        assert run.outcome(REVOKED, target, env="declares-after") == "failed"
        assert _outcomes(run, "declares-before", target)[KEPT] == "passed"  # before only asks for the old one
    assert "expected the previous credential user restate-old (U" in run.message(REVOKED, "restate", env="declares-after")


def test_before_and_overlap_fail_once_the_old_credential_is_gone(runs: dict[str, SuiteRun], ) -> None:
    run = runs["after"]
    for env in ("declares-before", "declares-overlap"):
        assert run.outcome(KEPT, "wasmcloud", env=env) == "failed"
        assert run.outcome(KEPT, "restate", env=env) == "failed"
    message = run.message(KEPT, "restate", env="declares-overlap")
    assert "expected the previous credential user restate-old (U" in message
    assert "still accepted by nats://127.0.0.1:" in message and "(rotation phase overlap)" in message
    assert "got authorization violation for user restate-old" in message
    assert "services not yet rolled over to the new credential cannot connect" in message
    assert "[runbook nats#rotation-overlap]" in message
    # the plain connect check is phase-blind: the new credential works in every environment
    assert run.outcome(CONNECT, "restate", env="declares-before") == "passed"


def test_phase_option_overrides_the_environment_files(runs: dict[str, SuiteRun]) -> None:
    run = runs["override"]
    for env in ("declares-before", "declares-overlap", "declares-after"):
        assert _outcomes(run, env, "restate") == {KEPT: "skipped", REVOKED: "passed", NEW: "passed"}
    assert run.summary is not None and run.summary["run"]["phase"] == "after (--phase)"
    assert "rotation phase **after (--phase)**" in (run.reports / "summary.md").read_text()


def test_summary_names_the_phase_each_environment_declared(runs: dict[str, SuiteRun]) -> None:
    summary = runs["overlap"].summary
    assert summary is not None
    phase = summary["run"]["phase"]
    assert "declares-before: before (every target) — CHG-state-overlap" in phase
    assert "declares-after: after (every target)" in phase
    assert "declares-overlap: overlap (every target)" in (runs["overlap"].reports / "summary.md").read_text()


def test_no_seed_reaches_the_reports(runs: dict[str, SuiteRun]) -> None:
    run = runs["after"]
    text = run.stdout + json.dumps(run.summary) + (run.reports / "summary.md").read_text()
    assert "SUA" not in text  # every nkey user seed starts with SU


@pytest.mark.parametrize(("rotation", "problem"), [
    ({"credentials": ["nats/wasmcloud"]}, "set rotation.phase (before | overlap | after), or a phase on every credential"),
    ({"phase": "during"}, "rotation.phase: Input should be 'before', 'overlap' or 'after'"),
    ({"phase": "after", "credentials": ["nats/nope"]}, "rotation.credentials: nats/nope names no target of this environment"),
    ({"phase": "after", "credentials": ["nats/wasmcloud", {"target": "nats/wasmcloud"}]}, "credential nats/wasmcloud is listed twice"),
])
def test_bad_rotation_blocks_are_config_errors(tmp_path: Path, rotation: dict[str, Any], problem: str) -> None:
    from opsverify.config.model import load_environment
    from opsverify.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"name": "bad", "nats": [{"name": "wasmcloud", "url": "nats://127.0.0.1:4222"}],
                                "rotation": rotation}))
    with pytest.raises(ConfigError) as raised:
        load_environment(path)
    assert problem in str(raised.value)


def test_per_credential_phases_and_targets_outside_the_rotation(tmp_path: Path) -> None:
    from opsverify.config.model import load_environment

    path = tmp_path / "env.yaml"
    path.write_text(json.dumps({
        "name": "env",
        "nats": [{"name": "a", "url": "nats://127.0.0.1:4222"}, {"name": "b", "url": "nats://127.0.0.1:4222"},
                 {"name": "c", "url": "nats://127.0.0.1:4222"}],
        "rotation": {"phase": "overlap", "credentials": ["nats/a", {"target": "nats/b", "phase": "after"}]},
    }))
    rotation = load_environment(path).rotation
    assert rotation is not None
    assert (rotation.phase_for("nats", "a"), rotation.phase_for("nats", "b"), rotation.phase_for("nats", "c")) == (
        "overlap", "after", None)


def test_summary_names_per_target_rotation_blocks_and_the_environment_block(tmp_path: Path) -> None:
    from opsverify.session import Case, OvSession

    auth = {"name": "platform", "base_url": "http://127.0.0.1:9",
            "api_key": {"path": "/v1/keys/check", "header": "x-api-key", "key": {"env": "K"}},
            "rotation": {"phase": "before", "api_key": {"old": {"env": "OLD"}, "new": {"env": "K"}}}}
    nats_target = {"name": "wasmcloud", "url": "nats://127.0.0.1:4222"}
    first = tmp_path / "first.yaml"
    first.write_text(json.dumps({"name": "first", "auth": [auth], "nats": [nats_target],
                                 "rotation": {"phase": "overlap", "credentials": ["nats/wasmcloud"], "change": "CHG-7"}}))
    second = tmp_path / "second.yaml"
    second.write_text(json.dumps({"name": "second", "nats": [nats_target]}))
    session = OvSession.create(ROOT, [], [str(first), str(second)], concurrency=1)
    try:
        assert session.phase_summary() == "first: overlap (nats/wasmcloud), before (auth/platform) — CHG-7"
        assert session.phase_for(Case("first", "nats", "wasmcloud")) == "overlap"
        assert session.phase_for(Case("first", "auth", "platform")) is None  # its own block decides (the check reads it)
        assert session.phase_for(Case("second", "nats", "wasmcloud")) is None
    finally:
        session.engine.shutdown()
    cli = OvSession.create(ROOT, [], [str(second)], concurrency=1, phase="after")
    try:
        assert cli.phase_summary() == "after (--phase)"
        assert cli.phase_for(Case("second", "nats", "wasmcloud")) == "after"
    finally:
        cli.engine.shutdown()
