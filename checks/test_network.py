"""TCP ports accept connections and DNS names resolve (to the expected addresses)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]


@pytest.mark.runbook("platform#tcp-port")
def test_port_accepts_connections(tcp_connection, target, expect):
    expect.that(
        tcp_connection.connected,
        expected=f"{target.host}:{target.port} accepting connections",
        actual=tcp_connection.error or "not connected",
    )


@pytest.mark.runbook("platform#dns")
def test_name_resolves(dns_answer, target, expect):
    expect.that(
        dns_answer.error is None and bool(dns_answer.addresses),
        expected=f"{target.hostname} to resolve",
        actual=dns_answer.error or "no addresses",
    )


@pytest.mark.configured("expect")
@pytest.mark.runbook("platform#dns")
def test_name_resolves_to_expected_addresses(dns_answer, target, expect):
    wanted = set(target.expect)
    expect.that(
        dns_answer.addresses == wanted,
        expected=f"{target.hostname} -> {', '.join(sorted(wanted))}",
        actual=", ".join(sorted(dns_answer.addresses)) or (dns_answer.error or "nothing"),
    )
