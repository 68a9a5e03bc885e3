"""TLS checks against real TLS listeners: a good certificate, and each certificate fault."""

from __future__ import annotations

EXPIRY = "test_certificate_is_not_close_to_expiry"
HOSTNAME = "test_certificate_matches_hostname"
CHAIN = "test_certificate_chain_is_trusted"
NEGOTIATED = "test_tls_negotiates_at_least_minimum_version"
DOWNGRADE = "test_tls_refuses_versions_below_minimum"


def test_tls_checks_pass_on_a_good_certificate_and_fail_on_each_fault(run_suite, demo):
    threshold = {"warn": 30, "critical": 14}
    env = {"tls": [
        demo.tls("good", min_days=threshold),
        demo.tls("expired", min_days=threshold),
        demo.tls("expiring", min_days=threshold),
        demo.tls("warning", min_days=threshold),
        demo.tls("wronghost", min_days=threshold),
        demo.tls("untrusted", min_days=threshold),
        demo.tls("tls12", min_version="TLSv1.3"),
    ]}
    run = run_suite(env)
    for check in (EXPIRY, HOSTNAME, CHAIN, NEGOTIATED, DOWNGRADE):
        assert run.outcome(check, "good") == "passed", run.stdout

    assert run.outcome(EXPIRY, "expired") == "failed"
    assert "expected days until the certificate for localhost expires" in run.message(EXPIRY, "expired")
    assert ">= 14 d, got -" in run.message(EXPIRY, "expired")
    assert run.outcome(CHAIN, "expired") == "failed"
    assert "certificate has expired" in run.message(CHAIN, "expired")

    assert run.outcome(EXPIRY, "expiring") == "failed"
    assert "got 4.9 d" in run.message(EXPIRY, "expiring") or "got 5 d" in run.message(EXPIRY, "expiring")
    warning = run.record(EXPIRY, "warning")
    assert warning["outcome"] == "passed" and "past the warning level 30 d" in warning["warnings"][0]

    assert run.outcome(HOSTNAME, "wronghost") == "failed"
    assert "expected a certificate valid for localhost, got certificate for other.example.test" in run.message(HOSTNAME, "wronghost")
    assert run.outcome(CHAIN, "wronghost") == "passed"

    assert run.outcome(CHAIN, "untrusted") == "failed"
    message = run.message(CHAIN, "untrusted")
    assert "expected a chain that verifies against CA bundle" in message
    assert "unable to get local issuer certificate" in message and "issuer untrusted CA" in message
    assert run.outcome(HOSTNAME, "untrusted") == "passed"

    assert run.outcome(NEGOTIATED, "tls12") == "failed"
    assert "expected TLSv1.3 or newer, got TLSv1.2 negotiated" in run.message(NEGOTIATED, "tls12")
    assert run.outcome(DOWNGRADE, "tls12") == "failed"
    assert "expected handshakes below TLSv1.3 refused, got TLSv1.2 accepted" in run.message(DOWNGRADE, "tls12")


def test_days_left_exactly_at_the_warning_and_critical_levels_pass_and_one_step_past_do_not(run_suite, demo):
    """A real certificate with 20.0 days left (to the 0.1 d the check reads): at a level is not past it."""
    env = {"tls": [
        {**demo.tls("edge", min_days={"warn": 20, "critical": 14}), "name": "at-warn"},
        {**demo.tls("edge", min_days={"warn": 20.1, "critical": 14}), "name": "past-warn"},
        {**demo.tls("edge", min_days={"warn": 30, "critical": 20}), "name": "at-critical"},
        {**demo.tls("edge", min_days={"warn": 30, "critical": 20.1}), "name": "past-critical"},
    ]}
    run = run_suite(env, "-k", "expiry")
    at_warn = run.record(EXPIRY, "at-warn")
    assert at_warn["outcome"] == "passed" and not at_warn.get("warnings"), at_warn
    past_warn = run.record(EXPIRY, "past-warn")
    assert past_warn["outcome"] == "passed", past_warn
    assert past_warn["warnings"][0].endswith("is 20 d, past the warning level 20.1 d"), past_warn["warnings"]
    at_critical = run.record(EXPIRY, "at-critical")
    assert at_critical["outcome"] == "passed" and "past the warning level 30 d" in at_critical["warnings"][0]
    assert run.outcome(EXPIRY, "past-critical") == "failed"
    assert "expires" in run.message(EXPIRY, "past-critical")
    assert ">= 20.1 d, got 20 d" in run.message(EXPIRY, "past-critical"), run.message(EXPIRY, "past-critical")


def test_tls_handshake_stall_and_refusal_are_errors(run_suite, demo):
    env = {"tls": [
        {"name": "stall", "host": "127.0.0.1", "port": demo.blackhole, "timeout_s": 1},
        {"name": "closed", "host": "127.0.0.1", "port": demo.closed},
        {"name": "plain-http", "host": "127.0.0.1", "port": demo.http},
    ]}
    run = run_suite(env, "-k", "expiry")
    assert run.outcome(EXPIRY, "stall") == "error"
    assert "TLS handshake with 127.0.0.1" in run.message(EXPIRY, "stall") and "stalled for 1 s" in run.message(EXPIRY, "stall")
    assert run.outcome(EXPIRY, "closed") == "error"
    assert "connection refused" in run.message(EXPIRY, "closed")
    assert run.outcome(EXPIRY, "plain-http") == "error"
    assert "TLS handshake with 127.0.0.1" in run.message(EXPIRY, "plain-http") and "failed" in run.message(EXPIRY, "plain-http")


def test_system_trust_store_rejects_a_private_ca(run_suite, demo):
    target = demo.tls("good")
    target.pop("ca_bundle")
    run = run_suite({"tls": [target]}, "-k", "chain")
    assert run.outcome(CHAIN, "good") == "failed"
    assert "against the system trust store" in run.message(CHAIN, "good")
