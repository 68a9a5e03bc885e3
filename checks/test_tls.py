"""TLS endpoints serve a trusted, current certificate for the right name over a modern protocol."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]


@pytest.mark.runbook("certs#expiry")
@pytest.mark.severity("critical")
def test_certificate_is_not_close_to_expiry(tls_certificate, target, expect):
    expect.at_least(
        round(tls_certificate.days_left, 1),
        target.min_days,
        what=f"days until the certificate for {tls_certificate.subject} expires "
        f"({tls_certificate.not_after:%Y-%m-%d %H:%M} UTC)",
        unit="d",
    )


@pytest.mark.runbook("certs#hostname")
def test_certificate_matches_hostname(tls_certificate, target, expect):
    expect.that(
        tls_certificate.hostname_matches,
        expected=f"a certificate valid for {target.sni}",
        actual=f"certificate for {', '.join(tls_certificate.sans) or tls_certificate.subject}",
    )


@pytest.mark.runbook("certs#chain")
def test_certificate_chain_is_trusted(tls_certificate, target, expect):
    store = f"CA bundle {target.ca_bundle}" if target.ca_bundle else "the system trust store"
    expect.that(
        tls_certificate.chain_error is None,
        expected=f"a chain that verifies against {store}",
        actual=f"{tls_certificate.chain_error} (issuer {tls_certificate.issuer})",
    )


@pytest.mark.runbook("certs#protocol")
def test_tls_negotiates_at_least_minimum_version(tls_certificate, target, expect):
    from opsverify.probes.tls import VERSIONS

    seen = tls_certificate.protocol
    expect.that(
        seen in VERSIONS and VERSIONS.index(seen) >= VERSIONS.index(target.min_version),
        expected=f"{target.min_version} or newer",
        actual=f"{seen} negotiated",
    )


@pytest.mark.runbook("certs#protocol")
def test_tls_refuses_versions_below_minimum(tls_certificate, target, expect):
    expect.that(
        tls_certificate.downgrade_accepted is None,
        expected=f"handshakes below {target.min_version} refused",
        actual=f"{tls_certificate.downgrade_accepted} accepted",
    )


@pytest.mark.configured("client_cert")
@pytest.mark.runbook("certs#client-certificate")
@pytest.mark.severity("critical")
def test_client_certificate_is_accepted(tls_client_handshake, target, expect):
    seen = tls_client_handshake
    cert = seen.certificate
    expect.that(
        seen.accepted,
        expected=f"{target.host}:{target.port} to accept the client certificate {cert.subject} ({target.client_cert})",
        actual=f"{seen.reason} (the certificate expires {cert.not_after:%Y-%m-%d %H:%M} UTC, "
        f"{cert.days_left:.1f} d from now)",
    )


@pytest.mark.configured("client_cert")
@pytest.mark.runbook("certs#client-certificate")
def test_client_certificate_is_not_close_to_expiry(tls_client_certificate, target, expect):
    cert = tls_client_certificate
    expect.at_least(
        round(cert.days_left, 1),
        target.client_min_days,
        what=f"days until the client certificate {cert.subject} ({target.client_cert}) expires "
        f"({cert.not_after:%Y-%m-%d %H:%M} UTC)",
        unit="d",
    )
