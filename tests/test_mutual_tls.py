"""Mutual TLS against real servers that demand a client certificate: accepted, expiring, expired, untrusted.

Certificates and keys are generated here (:mod:`opsverify_sandbox.pki`): a CA the servers trust for
client certificates, and one they do not. The HTTPS server is Python's own ``ssl`` server with
``CERT_REQUIRED`` (:mod:`tests.payload_server`); it negotiates TLS 1.3, so a refused certificate
arrives as the server's alert after the handshake, as it does from nginx or Envoy. The credential
inventory (``opsverify credentials``) lists every client certificate with its days left.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsverify_sandbox.servers.nats import NatsServer, make_tls_files, start_nats, token_user
from tests.client_pki import Pki, make_client_pki
from tests.harness import ROOT, write_env
from tests.payload_server import PayloadServer

NATS_CONNECT = "test_nats_accepts_credential"
ACCEPTED = "test_client_certificate_is_accepted"
EXPIRY = "test_client_certificate_is_not_close_to_expiry"
STATUS = "test_endpoint_returns_expected_status"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_client_pki(tmp_path_factory.mktemp("mtls"))


@pytest.fixture(scope="module")
def https(pki: Pki) -> Iterator[PayloadServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.directory / "server.pem"), str(pki.directory / "server.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(str(pki.ca))
    with PayloadServer({"/healthz": (200, "application/json", '{"status": "ok"}')}, context) as server:
        yield server


@pytest.fixture(scope="module")
def nats(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """nats-server with ``tls { verify: true }``: a client certificate from the client CA is required."""
    workdir = tmp_path_factory.mktemp("nats-mtls")
    files = make_tls_files(workdir / "tls")
    files = type(files)(files.ca_cert, files.server_cert, files.server_key, client_ca=pki.ca)
    server = start_nats(workdir, users=[token_user("svc")], tls=files, jetstream=False, monitoring=False)
    try:
        yield server
    finally:
        server.stop()


def _mtls(pki: Pki, name: str, *, env_key: bool = False) -> dict[str, Any]:
    key = {"env": f"SELFTEST_KEY_{name.upper()}"} if env_key else {"file": pki.key(name)}
    return {"client_cert": pki.cert(name), "client_key": key}


def _env(pki: Pki, https: PayloadServer) -> dict[str, Any]:
    tls = [{"name": name, "host": "127.0.0.1", "port": https.port, "ca_bundle": str(pki.ca), **_mtls(pki, name),
            "client_min_days": {"warn": 30, "critical": 14}} for name in ("good", "soon", "expired", "untrusted")]
    tls.append({"name": "key-in-env", "host": "127.0.0.1", "port": https.port, "ca_bundle": str(pki.ca),
                **_mtls(pki, "good", env_key=True)})
    tls.append({"name": "key-unset", "host": "127.0.0.1", "port": https.port, "ca_bundle": str(pki.ca),
                "client_cert": pki.cert("good"), "client_key": {"env": "SELFTEST_KEY_UNSET"}})
    url = https.url("/healthz")
    http = [{"name": "good", "url": url, "ca_bundle": str(pki.ca), **_mtls(pki, "good")},
            {"name": "expired", "url": url, "ca_bundle": str(pki.ca), **_mtls(pki, "expired")},
            {"name": "no-client-cert", "url": url, "ca_bundle": str(pki.ca)}]
    return {"tls": tls, "http": http}


def _secrets(pki: Pki) -> dict[str, str]:
    return {"SELFTEST_KEY_GOOD": pki.key_pem["good"]}


def test_client_certificates_are_judged_by_the_server_and_by_their_expiry(run_suite, pki: Pki, https: PayloadServer) -> None:
    run = run_suite(_env(pki, https), "-k", "client_certificate or expected_status", env_vars=_secrets(pki))
    for name in ("good", "key-in-env"):
        assert run.outcome(ACCEPTED, name) == "passed", run.message(ACCEPTED, name)
    assert run.outcome(EXPIRY, "good") == "passed"
    # accepted but 5 days from expiry: the expiry check fails with the days
    assert run.outcome(ACCEPTED, "soon") == "passed"
    assert run.outcome(EXPIRY, "soon") == "failed"
    assert ("expected days until the client certificate opsverify-soon" in run.message(EXPIRY, "soon")
            and ">= 14 d, got 5 d" in run.message(EXPIRY, "soon"))
    message = run.message(ACCEPTED, "expired")
    assert run.outcome(ACCEPTED, "expired") == "failed", message
    assert "the server refused the certificate: certificate expired" in message
    assert "-2.0 d from now" in message and "[runbook certs#client-certificate]" in message
    assert run.outcome(EXPIRY, "expired") == "failed"
    assert ">= 14 d, got -2 d" in run.message(EXPIRY, "expired")
    message = run.message(ACCEPTED, "untrusted")
    assert run.outcome(ACCEPTED, "untrusted") == "failed"
    assert "the server refused the certificate: unknown ca" in message
    assert run.outcome(ACCEPTED, "key-unset") == "error"
    assert "SecretMissing: secret SELFTEST_KEY_UNSET is not set" in run.message(ACCEPTED, "key-unset")
    # HTTP presents the certificate: accepted with it, refused (could not see) without it or with an expired one
    assert run.outcome(STATUS, "good") == "passed", run.message(STATUS, "good")
    # the refusal is of the checker's own credential: nothing about the endpoint was seen (an error), and
    # under TLS 1.3 the alert that says why is read even when the reset of the sent request came first
    for name, alert in (("expired", "certificate expired"), ("no-client-cert", "certificate required")):
        message = run.message(STATUS, name)
        assert run.outcome(STATUS, name) == "error", message
        assert message.startswith(f"ClientCertRefused: 127.0.0.1:{https.port} refused the TLS session with the alert '{alert}'"), message
        assert "check the checker's own client certificate and key" in message, message
    key = pki.key_pem["good"]
    body = "\n".join(key.splitlines()[1:-1])
    output = run.stdout + run.stderr + json.dumps(run.summary)
    assert body[:40] not in output and key.splitlines()[1] not in output


def test_the_inventory_lists_each_client_certificate_with_its_days_left(pki: Pki, https: PayloadServer, tmp_path: Path) -> None:
    path = write_env(tmp_path, _env(pki, https), name="mtls")
    proc = subprocess.run([sys.executable, "-m", "opsverify", "credentials", "--env-file", str(path), "--json"],
                          cwd=tmp_path, env={**os.environ, **_secrets(pki), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in json.loads(proc.stdout)["credentials"] if r["kind"] == "TLS client certificate"]
    by_owner = {(r["owner"], r["name"].split(" ")[0]): r for r in rows}
    assert by_owner[("tls/good", "opsverify-checker")]["status"] == "ok"
    assert 89 < by_owner[("tls/good", "opsverify-checker")]["days_left"] <= 90
    assert by_owner[("tls/soon", "opsverify-soon")]["status"] == "rotate now"
    assert by_owner[("tls/expired", "opsverify-expired")]["status"] == "rotate now"
    assert "expired" in by_owner[("tls/expired", "opsverify-expired")]["reason"]
    assert by_owner[("http/good", "opsverify-checker")]["days_left"] > 89
    # the keys are covered by their certificate's row, not listed as untracked secrets
    assert not [r for r in json.loads(proc.stdout)["credentials"] if "client_key" in r["name"]]


@pytest.mark.parametrize(("fields", "problem"), [
    ({"client_cert": "c.pem"}, "mutual TLS needs client_cert and client_key: client_key is missing"),
    ({"client_key": {"env": "K"}}, "client_cert is missing"),
    ({"client_cert": "c.pem", "client_key": "inline-pem"}, "client_key"),
])
def test_half_a_client_certificate_is_a_usage_error(run_suite, fields: dict[str, Any], problem: str) -> None:
    for section, target in (("tls", {"host": "127.0.0.1"}), ("nats", {"url": "nats://127.0.0.1:4222"}),
                            ("redis", {"url": "rediss://127.0.0.1:6379/0"})):
        run = run_suite({section: [{"name": "x", **target, **fields}]})
        output = run.stdout + run.stderr
        assert run.ret == 4 and f"{section}[0]" in output and problem in output and "Traceback" not in output, output


def test_nats_with_verify_true_accepts_a_valid_client_certificate_only(run_suite, pki: Pki, nats: NatsServer) -> None:
    base = {"url": nats.tls_url, "ca_bundle": str(nats.ca_path), "token": {"env": "SELFTEST_NATS_TOKEN"}}
    env = {"nats": [{"name": "good", **base, **_mtls(pki, "good")},
                    {"name": "expired", **base, **_mtls(pki, "expired")},
                    {"name": "untrusted", **base, **_mtls(pki, "untrusted")},
                    {"name": "no-client-cert", **base}]}
    run = run_suite(env, "-k", "accepts_credential", paths=["checks/test_nats.py"],
                    env_vars={"SELFTEST_NATS_TOKEN": nats.user("svc").secret})
    assert run.outcome(NATS_CONNECT, "good") == "passed", run.message(NATS_CONNECT, "good")
    # under TLS 1.3 the server's alert races its reset of the connection (the client has already sent
    # CONNECT): a refusal the client lost is read again the quiet way, so it is always a refusal (failed)
    refusals = {"expired": "(certificate expired) with client certificate " + pki.cert("expired"),
                "untrusted": "(unknown ca) with client certificate " + pki.cert("untrusted"),
                "no-client-cert": "(certificate required) with no client certificate"}
    for name, refusal in refusals.items():
        message = run.message(NATS_CONNECT, name)
        assert run.outcome(NATS_CONNECT, name) == "failed", (name, message)
        assert f"got {nats.tls_url} refused the TLS handshake {refusal}" in message, (name, message)
    assert "the client certificate opsverify-expired" in run.message(NATS_CONNECT, "expired")
    assert "2.0 d ago" in run.message(NATS_CONNECT, "expired")
