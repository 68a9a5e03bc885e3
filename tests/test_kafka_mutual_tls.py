"""Kafka over mutual TLS: a real broker behind a TLS listener that demands a client certificate.

tansu (the Kafka-protocol broker of the sandbox) has no TLS client-certificate option, so it runs
behind :mod:`tests.tls_terminator` (Python's ``ssl``, i.e. OpenSSL, with ``CERT_REQUIRED``), as a
broker behind a TLS-terminating load balancer would; tansu advertises the terminator's port, so the
client's every connection, bootstrap and broker alike, goes through TLS. The client side is the real
one: librdkafka with the target's CA bundle, client certificate and key. Certificates are generated
per run (:mod:`tests.client_pki`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.kafka import start_kafka
from tests.client_pki import Pki, make_client_pki
from tests.harness import ROOT, write_env
from tests.tls_terminator import start_terminator

CHECKS = ["checks/test_kafka.py"]
METADATA = "test_kafka_cluster_answers_metadata"
TIMEOUT_S = 15


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_client_pki(tmp_path_factory.mktemp("kafka-mtls-pki"))


@pytest.fixture(scope="module")
def tls_bootstrap(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>`` of the TLS listener in front of a tansu broker that advertises it."""
    listen = free_port()
    with start_kafka(tmp_path_factory.mktemp("kafka-mtls"), advertised_port=listen) as server, \
            start_terminator(listen, server.bootstrap, str(pki.directory / "server.pem"), str(pki.directory / "server.key"),
                             client_ca=str(pki.ca)):
        yield f"127.0.0.1:{listen}"


def _target(pki: Pki, bootstrap: str, name: str, cert: str | None) -> dict[str, Any]:
    target: dict[str, Any] = {"name": name, "bootstrap": bootstrap, "ca_bundle": str(pki.ca), "timeout_s": TIMEOUT_S}
    if cert is not None:
        target.update(client_cert=pki.cert(cert), client_key={"file": pki.key(cert)}, client_min_days={"warn": 30, "critical": 14})
    else:
        target["security_protocol"] = "SSL"
    return target


def _env(pki: Pki, bootstrap: str) -> dict[str, Any]:
    return {"kafka": [_target(pki, bootstrap, "good", "good"), _target(pki, bootstrap, "expired", "expired"),
                      _target(pki, bootstrap, "untrusted", "untrusted"), _target(pki, bootstrap, "no-client-cert", None)]}


def test_kafka_answers_over_mutual_tls_only_with_a_certificate_it_trusts(run_suite, pki: Pki, tls_bootstrap: str) -> None:
    run = run_suite(_env(pki, tls_bootstrap), "-k", METADATA, paths=CHECKS)
    assert run.outcome(METADATA, "good") == "passed", run.message(METADATA, "good")
    # the listener refused the checker's own credential: nothing about the cluster was seen (an error),
    # and the message says which certificate and what the server said about it
    for name, alert in (("expired", "certificate expired"), ("untrusted", "unknown ca"),
                        ("no-client-cert", "certificate required")):
        message = run.message(METADATA, name)
        assert run.outcome(METADATA, name) == "error", (name, message)
        assert f"cannot reach Kafka at {tls_bootstrap}" in message and alert in message, (name, message)
        assert "check the checker's own client certificate and key" in message, (name, message)
    assert "the client certificate opsverify-expired" in run.message(METADATA, "expired")
    output = run.stdout + run.stderr + json.dumps(run.summary)
    key_body = "".join(pki.key_pem["good"].splitlines()[1:-1])
    assert key_body[:40] not in output


def test_the_inventory_lists_the_kafka_client_certificate_with_its_days_left(pki: Pki, tls_bootstrap: str, tmp_path: Path) -> None:
    path = write_env(tmp_path, _env(pki, tls_bootstrap), name="kafka-mtls")
    proc = subprocess.run([sys.executable, "-m", "opsverify", "credentials", "--env-file", str(path), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [r for r in json.loads(proc.stdout)["credentials"] if r["kind"] == "TLS client certificate"]
    by_owner = {(r["owner"], r["name"].split(" ")[0]): r for r in rows}
    assert 89 < by_owner[("kafka/good", "opsverify-checker")]["days_left"] <= 90
    assert by_owner[("kafka/good", "opsverify-checker")]["status"] == "ok"
    assert by_owner[("kafka/expired", "opsverify-expired")]["status"] == "rotate now"
