"""Rotation phases driven for real on the platform demo: an API key and a JWT signing key.

One demo listener is moved through a rotation at run time (``POST /_test/rotation``): ``before``
(only the old API key works; the JWKS publishes only the old kid, which signs), ``overlap`` (both keys
work; both kids published, the new one signs), ``after`` (only the new key; only the new kid). At each
server phase one suite run verifies three targets on that same listener, each declaring a different
phase in its ``rotation:`` block: the matching one passes, the wrong ones fail with their messages.
A last run shows that ``--phase`` overrides what the file declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import SuiteRun, run_checks
from tests.platform_support import Demo, start_demo

CHECKS = ["checks/test_auth.py", "-m", "rotation"]
API = "test_api_key_rotation_matches_phase"
SIGNING = "test_signing_key_rotation_matches_phase"
OLD_KID, NEW_KID = "platform-2025-01", "platform-2025-07"
PHASES = ("before", "overlap", "after")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(tmp_path_factory.mktemp("rotation"), {"edge": "apikey-phase=before,jwt-phase=before"})
    yield running
    running.stop()


def _env(demo: Demo) -> dict[str, Any]:
    def target(declared: str | None) -> dict[str, Any]:
        rotation = {"phase": declared} if declared else {}
        return {
            "name": f"declared-{declared or 'nothing'}",
            "base_url": demo.base("edge"),
            "client": {"client_id": "opsverify-synthetic", "client_secret": demo.ref("client-secret")},
            "api_key": {"path": "/v1/keys/check", "key": demo.ref("api-key-current")},
            "rotation": {
                **rotation,
                "api_key": {"old": demo.ref("api-key-previous"), "new": demo.ref("api-key-current")},
                "signing_key": {"old_kid": OLD_KID, "new_kid": NEW_KID},
            },
        }

    return {"auth": [target(phase) for phase in (*PHASES, None)]}


@pytest.fixture(scope="module")
def runs(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    """One run per server phase (driven in order, as a real rotation goes), plus ``--phase after``."""
    results = {}
    for server_phase in PHASES:
        state = demo.control("edge", "/_test/rotation", {"api_key": server_phase, "signing_key": server_phase})
        assert state == {"api_key": server_phase, "signing_key": server_phase}
        results[server_phase] = run_checks(tmp_path_factory.mktemp(f"server-{server_phase}"), _env(demo), *CHECKS[1:],
                                           paths=CHECKS[:1])
    results["override"] = run_checks(tmp_path_factory.mktemp("override"), _env(demo), *CHECKS[1:], "--phase", "after",
                                     paths=CHECKS[:1])
    return results


def _outcomes(run: SuiteRun, check: str) -> dict[str, str]:
    return {phase: run.outcome(check, f"declared-{phase}") for phase in PHASES}


def test_before_phase_only_the_old_credentials_work(runs: dict[str, SuiteRun]) -> None:
    run = runs["before"]
    assert _outcomes(run, API) == {"before": "passed", "overlap": "failed", "after": "failed"}, run.stdout[-3000:]
    assert ("expected the old and the new API key both accepted (rotation phase overlap), got new key refused "
            "(HTTP 401" in run.message(API, "declared-overlap"))
    after = run.message(API, "declared-after")
    assert "expected the new API key accepted and the old one refused (rotation phase after), got old key still " \
           "accepted (HTTP 200" in after and "new key refused (HTTP 401" in after
    assert "[runbook auth#api-key-rotation]" in after

    assert _outcomes(run, SIGNING) == {"before": "passed", "overlap": "failed", "after": "failed"}
    assert (f"got {NEW_KID} not published; new tokens signed with {OLD_KID} (published: {OLD_KID})"
            in run.message(SIGNING, "declared-overlap"))


def test_overlap_phase_both_credentials_work_and_two_kids_are_published(runs: dict[str, SuiteRun]) -> None:
    run = runs["overlap"]
    assert _outcomes(run, API) == {"before": "passed", "overlap": "passed", "after": "failed"}, run.stdout[-3000:]
    assert "got old key still accepted (HTTP 200" in run.message(API, "declared-after")

    assert _outcomes(run, SIGNING) == {"before": "failed", "overlap": "passed", "after": "failed"}
    assert (f"expected the JWKS publishing {OLD_KID}, new tokens signed with it (rotation phase before), "
            f"got new tokens signed with {NEW_KID} (published: {NEW_KID}, {OLD_KID})"
            in run.message(SIGNING, "declared-before"))
    assert (f"got {OLD_KID} still published (published: {NEW_KID}, {OLD_KID})"
            in run.message(SIGNING, "declared-after"))
    assert "rotation" in run.record(SIGNING, "declared-overlap")["markers"]


def test_after_phase_the_old_credentials_are_rejected(runs: dict[str, SuiteRun]) -> None:
    run = runs["after"]
    assert _outcomes(run, API) == {"before": "failed", "overlap": "failed", "after": "passed"}, run.stdout[-3000:]
    assert ("expected the old API key accepted (rotation phase before), got old key refused (HTTP 401"
            in run.message(API, "declared-before"))
    assert _outcomes(run, SIGNING) == {"before": "failed", "overlap": "failed", "after": "passed"}
    assert (f"got {OLD_KID} not published (published: {NEW_KID})" in run.message(SIGNING, "declared-overlap"))


def test_without_a_declared_phase_the_rotation_is_judged_finished(runs: dict[str, SuiteRun]) -> None:
    assert runs["before"].outcome(API, "declared-nothing") == "failed"
    assert "(rotation phase after)" in runs["before"].message(API, "declared-nothing")
    assert runs["overlap"].outcome(SIGNING, "declared-nothing") == "failed"
    assert runs["after"].outcome(API, "declared-nothing") == "passed"
    assert runs["after"].outcome(SIGNING, "declared-nothing") == "passed"


def test_phase_option_overrides_the_phase_the_file_declares(runs: dict[str, SuiteRun]) -> None:
    run = runs["override"]  # the server is in its after phase; every target is judged as "after"
    assert run.ret == 0, run.stdout[-3000:]
    assert set(_outcomes(run, API).values()) == {"passed"}
    assert set(_outcomes(run, SIGNING).values()) == {"passed"}
    assert run.summary is not None and run.summary["run"]["phase"] == "after (--phase)"
