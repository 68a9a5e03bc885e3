"""The Pact Broker EMULATOR against the REAL Pact broker client (PyPI ``pact-python-cli``'s ``pact broker``).

No real broker can run here (a Ruby app + database), so this is where the emulator earns trust: the
official client's ``can-i-deploy`` sends the request our probe sends (``/matrix`` with
``q[][pacticipant]``, ``q[][version]``, ``environment``), parses the emulator's answer, and reaches the
same verdict - exit 0 "Computer says yes" for a verified release, exit 1 "Computer says no" for a
broken one. Skipped (with the reason) when the ``pact`` binary is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opsverify_sandbox.process import free_port, venv_bin
from opsverify_sandbox.servers.pact_broker import start_pact_broker
from tests.test_contracts_checks import DATA


def _pact_cli() -> str | None:
    candidate = venv_bin("pact")
    return candidate if Path(candidate).exists() else shutil.which("pact")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start_pact_broker(tmp_path_factory.mktemp("broker"), DATA, port=port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def _can_i_deploy(broker: str, version: str) -> subprocess.CompletedProcess[str]:
    cli = _pact_cli()
    if cli is None:
        pytest.skip("the pact CLI (PyPI pact-python-cli) is not installed")
    argv = [cli, "broker", "can-i-deploy", "--pacticipant", "auth-edge-service", "--version", version,
            "--to-environment", "production", "--broker-base-url", broker]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


def test_heartbeat_shape(broker: str) -> None:
    answer = httpx.get(f"{broker}/diagnostic/status/heartbeat", timeout=10)
    assert (answer.status_code, answer.headers["content-type"].split(";")[0]) == (200, "application/hal+json")
    assert answer.json()["ok"] is True and "self" in answer.json()["_links"]


def test_real_client_says_yes_to_a_verified_release_and_sends_the_probes_query(broker: str) -> None:
    run = _can_i_deploy(broker, "2.4.0")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Computer says yes" in run.stdout
    seen = httpx.get(f"{broker}/_emulator/requests", timeout=10).json()["requests"]
    matrix = [r for r in seen if r.startswith("/matrix?")]
    assert matrix and "q[][pacticipant]=auth-edge-service" in matrix[-1]
    assert "q[][version]=2.4.0" in matrix[-1] and "environment=production" in matrix[-1]


def test_real_client_says_no_to_a_release_with_a_failed_verification(broker: str) -> None:
    run = _can_i_deploy(broker, "2.5.0-rc1")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Computer says no" in run.stdout
    assert "web-console" in run.stdout and "false" in run.stdout


def test_matrix_shape_matches_the_brokers_decorator(broker: str) -> None:
    params = [("q[][pacticipant]", "auth-edge-service"), ("q[][version]", "2.5.0-rc1"), ("latestby", "cvp"),
              ("environment", "production")]
    body = httpx.get(f"{broker}/matrix", params=params, timeout=10).json()
    assert set(body) == {"summary", "matrix"}
    assert set(body["summary"]) == {"deployable", "reason", "success", "failed", "unknown"}
    row = body["matrix"][0]
    assert set(row) == {"consumer", "provider", "pact", "verificationResult"}
    assert set(row["consumer"]["version"]) >= {"number", "branch", "tags", "_links"}
    assert (body["summary"]["deployable"], body["summary"]["failed"]) == (False, 1)
