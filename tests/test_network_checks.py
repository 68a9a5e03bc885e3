"""TCP and DNS checks against real listeners and a real DNS server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSServer

from opsverify_sandbox.process import free_port

PORT = "test_port_accepts_connections"
RESOLVES = "test_name_resolves"
EXPECTED = "test_name_resolves_to_expected_addresses"

ZONE = {"api.selftest.internal.": ["10.0.0.7"], "gateway.selftest.internal.": ["10.0.0.8", "10.0.0.9"]}


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    """Answers A queries from ZONE; NXDOMAIN for everything else (never forwards anywhere)."""

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname)
        if name not in ZONE:
            reply.header.rcode = 3  # NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.A:
            for address in ZONE[name]:
                reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=60))
        return reply


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    port = free_port()
    server = DNSServer(ZoneResolver(), port=port, address="127.0.0.1", tcp=False)
    server.start_thread()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def listening_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()
    yield sock.getsockname()[1]
    stop.set()
    sock.close()


def test_tcp_check_passes_on_open_port_and_fails_on_closed_one(run_suite, listening_port):
    closed = free_port()
    run = run_suite({"tcp": [
        {"name": "open", "host": "127.0.0.1", "port": listening_port},
        {"name": "closed", "host": "127.0.0.1", "port": closed},
    ]}, "-k", "port")
    assert run.outcome(PORT, "open") == "passed"
    assert run.outcome(PORT, "closed") == "failed"
    assert run.message(PORT, "closed").startswith(
        f"selftest-closed: expected 127.0.0.1:{closed} accepting connections, got connection refused"
    )


def test_dns_checks_against_a_real_nameserver(run_suite, nameserver):
    run = run_suite({"dns": [
        {"name": "api", "hostname": "api.selftest.internal", "nameserver": nameserver, "expect": ["10.0.0.7"]},
        {"name": "moved", "hostname": "gateway.selftest.internal", "nameserver": nameserver, "expect": ["10.0.0.8"]},
        {"name": "gone", "hostname": "old.selftest.internal", "nameserver": nameserver},
        {"name": "localhost", "hostname": "localhost", "expect": ["127.0.0.1"]},
    ]}, "-k", "name_resolves")
    assert run.outcome(RESOLVES, "api") == "passed"
    assert run.outcome(EXPECTED, "api") == "passed"
    assert run.outcome(RESOLVES, "localhost") == "passed"
    assert run.outcome(EXPECTED, "localhost") == "passed"
    assert run.outcome(EXPECTED, "moved") == "failed"
    assert "expected gateway.selftest.internal -> 10.0.0.8, got 10.0.0.8, 10.0.0.9" in run.message(EXPECTED, "moved")
    assert run.outcome(RESOLVES, "gone") == "failed"
    assert "got name does not exist (NXDOMAIN from 127.0.0.1:" in run.message(RESOLVES, "gone")


def test_silent_nameserver_is_an_error(run_suite):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        port = silent.getsockname()[1]
        run = run_suite({"dns": [{"name": "api", "hostname": "api.selftest.internal",
                                  "nameserver": f"127.0.0.1:{port}", "timeout_s": 1}]}, "-k", "name_resolves")
    finally:
        silent.close()
    assert run.outcome(RESOLVES, "api") == "error"
    assert f"nameserver 127.0.0.1:{port} did not answer within 1 s" in run.message(RESOLVES, "api")
