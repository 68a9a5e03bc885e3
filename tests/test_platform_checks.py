"""WebSocket, rate-limit, auth and webhook checks against the real platform demo: healthy and faulted.

One demo process (``opsverify_sandbox.platform_demo``) with one listener per fault, each its own
instance (connection count, rate-limit buckets, revocation list); secrets, CA and certificate are
generated at run time. Nothing depends on timing: rate-limit listeners refill over a 600 s window
(so the first 429 comes at exactly limit + 1), the healthy WebSocket budget is 5 s and the slow
fault's 600 ms delay always exceeds its 500 ms budget. All targets go into one suite run (``suite``); each test asserts on one area.
The safety-class tests run the same checks in production-tier environments (``tiers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import SuiteRun, run_checks
from tests.platform_support import Demo, start_demo

CHECKS = ["checks/test_websocket.py", "checks/test_ratelimit.py", "checks/test_auth.py", "checks/test_webhooks.py"]

WS_HANDSHAKE = "test_websocket_handshake_is_accepted"
WS_REPLY = "test_websocket_reply_matches_the_message_sent"
WS_LATENCY = "test_websocket_reply_arrives_within_latency_budget"
WS_CLOSE = "test_websocket_closes_cleanly"
WS_CAP = "test_websocket_connection_beyond_cap_is_refused"
RL_BELOW = "test_requests_below_the_limit_are_accepted"
RL_429 = "test_burst_above_the_limit_is_rejected_with_429"
RL_RETRY = "test_rate_limited_answer_carries_retry_after"
REFRESH = "test_refresh_returns_a_new_valid_token"
REVOKE = "test_revoked_token_is_rejected"
ADMIN = "test_admin_endpoint_rejects_anonymous_calls"
KEY = "test_current_api_key_is_accepted"
RETIRED = "test_retired_api_key_is_rejected"
KIDS = "test_jwks_publishes_expected_kids"
NOT_RETIRED = "test_jwks_does_not_publish_retired_kids"
PUBLIC = "test_jwks_publishes_public_keys_only"
SIGNED = "test_signed_webhook_is_accepted"
WRONG_SIG = "test_webhook_with_wrong_signature_is_refused"
UNSIGNED = "test_webhook_without_signature_is_refused"
NO_TENANT = "test_webhook_without_tenant_header_is_refused"

LISTENERS = {
    "healthy": "ws-cap=3,rate=10,window=600",
    "tls": "tls",
    "ws-no-cap": "ws-cap=3,ws-no-cap",
    "ws-wrong-reply": "ws-wrong-reply",
    "ws-slow": "ws-slow,ws-delay=600",
    "ws-close-error": "ws-close-error",
    "ws-silent": "ws-slow,ws-delay=30000",
    "no-ratelimit": "no-ratelimit",
    "no-retry-after": "ratelimit-no-retry-after,rate=10,window=600",
    "tight": "rate=5,window=600",
    "revocation-ignored": "revocation-ignored",
    "admin-open": "admin-open",
    "refresh-bad-signature": "refresh-bad-signature",
    "jwks-missing-kid": "jwks-missing-kid",
    "jwks-keeps-retired": "jwks-keeps-retired",
    "jwks-private": "jwks-private",
    "retired-key-accepted": "retired-key-accepted",
    "hook-no-signature-check": "hook-no-signature-check",
    "hook-no-tenant-check": "hook-no-tenant-check",
    "hook-sha512": "alg=sha512",
    "hs256": "hs256",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(tmp_path_factory.mktemp("platform"), LISTENERS)
    yield running
    running.stop()


# -- environment sections ---------------------------------------------------------------------------
def _ws(demo: Demo, name: str, listener: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": demo.url(listener, "/ws/echo", "ws"), "send": '{"type": "ping", "id": "st"}',
            "reply_json": {"type": "pong", "id": "st"}, "max_latency_ms": {"warn": 2000, "critical": 5000}, **extra}


def _ratelimit(demo: Demo, name: str, listener: str) -> dict[str, Any]:
    return {"name": name, "url": demo.url(listener, "/api/jobs"), "limit": 10, "max_requests": 25,
            "client_id_header": "x-client-id", "retry_after_max_s": 120}


def _auth(demo: Demo, name: str, listener: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "base_url": demo.base(listener),
        "client": {"client_id": "opsverify-synthetic", "client_secret": demo.ref("client-secret")},
        "refresh_path": "/auth/refresh",
        "me_path": "/auth/me",
        "jwt": {"algorithms": ["RS256"], "issuer": "opsverify-sandbox", "audience": "platform-api"},
        "revoke": {"admin_token": demo.ref("admin-token")},
        "admin_paths": ["/admin/tokens", {"path": "/admin/tokens/revoke", "method": "POST"}],
        "api_key": {"path": "/v1/keys/check", "key": demo.ref("api-key-current")},
        "retired_api_keys": [{"name": "k2024", "key": demo.ref("api-key-retired")}],
        "jwks": {"kids": ["platform-2025-07"], "retired_kids": ["platform-2024-07"]},
        **extra,
    }


def _hook(demo: Demo, name: str, listener: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": demo.url(listener, "/v1/hooks/approval"), "secret": demo.ref("hook-secret"),
            "algorithm": "sha256", "signature_header": "x-omerta-signature", "tenant_header": "x-tenant-id",
            "accepted_status": [202], **extra}


@pytest.fixture(scope="module")
def suite(demo: Demo, closed_port: int, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """Every check against every healthy and faulted listener, in one dev-tier run."""
    refused = f"127.0.0.1:{closed_port}"
    env = {
        "websocket": [
            _ws(demo, "healthy", "healthy", connection_cap=3),
            {"name": "wss-secure", "url": demo.url("tls", "/ws/secure", "ws"), "ca_bundle": str(demo.ca),
             "headers": {"authorization": {**demo.ref("ws-token"), "prefix": "Bearer "}},
             "send": "hello", "reply_contains": "hello"},
            {"name": "wss-query-token", "url": demo.url("tls", "/ws/secure", "ws"), "ca_bundle": str(demo.ca),
             "token": demo.ref("ws-token"), "send": "hello", "reply_contains": "hello"},
            {"name": "wss-no-token", "url": demo.url("tls", "/ws/secure", "ws"), "ca_bundle": str(demo.ca),
             "send": "hello", "reply_contains": "hello"},
            {"name": "wss-untrusted", "url": demo.url("tls", "/ws/echo", "ws"), "send": "x", "reply_contains": "x"},
            _ws(demo, "no-cap", "ws-no-cap", connection_cap=3),
            _ws(demo, "wrong-reply", "ws-wrong-reply"),
            _ws(demo, "slow", "ws-slow", max_latency_ms={"critical": 500}),  # the fault delays by 600 ms
            _ws(demo, "close-error", "ws-close-error"),
            _ws(demo, "silent", "ws-silent", timeout_s=3),
            {"name": "refused", "url": f"ws://{refused}/ws/echo", "send": "x", "reply_contains": "x"},
        ],
        "ratelimit": [
            _ratelimit(demo, "healthy", "healthy"),
            _ratelimit(demo, "no-ratelimit", "no-ratelimit"),
            _ratelimit(demo, "no-retry-after", "no-retry-after"),
            _ratelimit(demo, "tight", "tight"),
        ],
        "auth": [
            _auth(demo, "healthy", "healthy"),
            _auth(demo, "tls", "tls", base_url=demo.base("tls"), ca_bundle=str(demo.ca)),
            _auth(demo, "revocation-ignored", "revocation-ignored"),
            _auth(demo, "admin-open", "admin-open"),
            _auth(demo, "refresh-bad-signature", "refresh-bad-signature"),
            _auth(demo, "jwks-missing-kid", "jwks-missing-kid"),
            _auth(demo, "jwks-keeps-retired", "jwks-keeps-retired"),
            _auth(demo, "jwks-private", "jwks-private"),
            _auth(demo, "retired-key-accepted", "retired-key-accepted"),
            {"name": "hs256", "base_url": demo.base("hs256"),
             "client": {"client_id": "opsverify-synthetic", "client_secret": demo.ref("client-secret"),
                        "encoding": "json"},
             "refresh_path": "/auth/refresh",
             "jwt": {"algorithms": ["HS256"], "hmac_secret": demo.ref("jwt-hs256.secret"),
                     "issuer": "opsverify-sandbox", "audience": "platform-api"}},
            {"name": "wrong-client-secret", "base_url": demo.base("healthy"),
             "client": {"client_id": "opsverify-synthetic", "client_secret": demo.ref("api-key-current")},
             "refresh_path": "/auth/refresh"},
            {"name": "refused", "base_url": f"http://{refused}", "jwks": {"kids": ["platform-2025-07"]},
             "admin_paths": ["/admin/tokens"]},
        ],
        "webhooks": [
            _hook(demo, "healthy", "healthy"),
            _hook(demo, "dry-run", "healthy", url=demo.url("healthy", "/v1/hooks/approval/verify"),
                  accepted_status=[200], dry_run=True),
            _hook(demo, "no-signature-check", "hook-no-signature-check"),
            _hook(demo, "no-tenant-check", "hook-no-tenant-check"),
            _hook(demo, "wrong-algorithm", "hook-sha512"),
            _hook(demo, "no-secret", "healthy", secret={"env": "SELFTEST_PLATFORM_UNSET"}),
        ],
    }
    return run_checks(tmp_path_factory.mktemp("suite"), env, paths=CHECKS)


# -- everything healthy passes ------------------------------------------------------------------------
def test_healthy_targets_pass_every_check_and_nothing_crashes(suite: SuiteRun) -> None:
    assert suite.ret == 1, suite.stdout[-3000:]  # the faulted targets fail
    healthy = [r for r in suite.records if r["target"] in ("healthy", "wss-secure", "wss-query-token", "tls", "dry-run")]
    assert len(healthy) >= 30, sorted(suite.outcomes())
    bad = {f"{r['check']}[{r['target']}]": (r["outcome"], r["message"]) for r in healthy if r["outcome"] != "passed"}
    assert not bad, bad
    assert "Traceback" not in suite.stdout and "ProbeCrashed" not in suite.stdout
    assert "check crashed" not in suite.stdout


def test_no_secret_value_reaches_the_output(suite: SuiteRun, demo: Demo) -> None:
    text = suite.stdout + suite.stderr + (suite.reports / "summary.json").read_text()
    for name in ("client-secret", "admin-token", "ws-token", "api-key-current", "api-key-retired", "hook-secret"):
        assert demo.secret(name) not in text, name


# -- WebSocket ----------------------------------------------------------------------------------------
def test_websocket_reply_latency_and_close_faults_fail(suite: SuiteRun) -> None:
    assert suite.outcome(WS_REPLY, "wrong-reply") == "failed"
    message = suite.message(WS_REPLY, "wrong-reply")
    assert ('expected a reply with {"type": "pong", "id": "st"}, got {"type": "error", "message": "handler '
            "unavailable\"} (type = 'error' (want 'pong'); id missing)") in message
    assert "[runbook websocket#message-flow]" in message
    assert suite.outcome(WS_LATENCY, "wrong-reply") == "passed"

    assert suite.outcome(WS_LATENCY, "slow") == "failed"
    assert "expected WebSocket reply latency <= 500 ms, got " in suite.message(WS_LATENCY, "slow")
    assert suite.outcome(WS_REPLY, "slow") == "passed"

    assert suite.outcome(WS_CLOSE, "close-error") == "failed"
    assert ("expected a normal close (code 1000), got close code 1011 (handler crashed)"
            in suite.message(WS_CLOSE, "close-error"))
    assert suite.outcome(WS_REPLY, "close-error") == "passed"

    assert suite.outcome(WS_REPLY, "silent") == "failed"  # a handler that never answers: data, not a timeout
    assert ('expected a reply to {"type": "ping", "id": "st"}, got no reply within '
            in suite.message(WS_REPLY, "silent"))
    assert suite.outcome(WS_LATENCY, "silent") == "failed"


def test_websocket_handshake_refused_without_token_fails_and_transport_problems_error(suite: SuiteRun) -> None:
    assert suite.outcome(WS_HANDSHAKE, "wss-no-token") == "failed"
    assert ('got HTTP 401 ({"error": "INVALID_TOKEN"})' in suite.message(WS_HANDSHAKE, "wss-no-token"))
    assert suite.outcome(WS_REPLY, "wss-no-token") == "failed"
    assert "websocket#handshake" in suite.message(WS_REPLY, "wss-no-token")
    assert suite.outcome(WS_HANDSHAKE, "wss-untrusted") == "error"
    assert "TLS certificate not trusted" in suite.message(WS_HANDSHAKE, "wss-untrusted")
    assert suite.outcome(WS_HANDSHAKE, "refused") == "error"
    assert suite.cause(WS_HANDSHAKE, "refused").endswith("connection refused")


def test_websocket_connection_cap_holds_and_fails_when_it_does_not(suite: SuiteRun) -> None:
    assert suite.outcome(WS_CAP, "healthy") == "passed"
    assert suite.outcome(WS_CAP, "no-cap") == "failed"
    message = suite.message(WS_CAP, "no-cap")
    assert "expected connection 4 refused (cap 3), got all 4 connections accepted" in message
    assert "[runbook websocket#connection-cap]" in message
    assert not [r for r in suite.records if r["check"] == WS_CAP and r["target"] == "wrong-reply"]  # no cap set


# -- rate limit ---------------------------------------------------------------------------------------
def test_rate_limit_faults_fail_with_their_messages(suite: SuiteRun) -> None:
    assert suite.outcome(RL_429, "no-ratelimit") == "failed"
    assert ("expected HTTP 429 within 25 requests (limit 10), got no 429 in 25 requests (25 x HTTP 200)"
            in suite.message(RL_429, "no-ratelimit"))
    assert suite.outcome(RL_BELOW, "no-ratelimit") == "passed"
    assert suite.outcome(RL_RETRY, "no-ratelimit") == "failed"

    assert suite.outcome(RL_429, "no-retry-after") == "passed"
    assert suite.outcome(RL_RETRY, "no-retry-after") == "failed"
    assert ("expected a Retry-After header on the 429, got none (headers seen: x-ratelimit-limit, "
            "x-ratelimit-remaining)" in suite.message(RL_RETRY, "no-retry-after"))

    assert suite.outcome(RL_BELOW, "tight") == "failed"
    assert ("expected the first 10 requests accepted (limit 10), got request 6 answered HTTP 429 "
            "(5 x HTTP 200, 1 x HTTP 429)" in suite.message(RL_BELOW, "tight"))
    assert "[runbook ratelimit#below-limit]" in suite.message(RL_BELOW, "tight")


# -- auth -------------------------------------------------------------------------------------------
def test_jwt_refresh_revocation_and_admin_faults_fail(suite: SuiteRun) -> None:
    assert suite.outcome(REFRESH, "hs256") == "passed"
    assert suite.outcome(REFRESH, "refresh-bad-signature") == "failed"
    assert ("got a signature that does not verify with the published key 'platform-2025-07'"
            in suite.message(REFRESH, "refresh-bad-signature"))
    assert suite.outcome(REFRESH, "jwks-missing-kid") == "failed"
    assert ("got signed with kid 'platform-2025-07', which the JWKS does not publish (it has no keys)"
            in suite.message(REFRESH, "jwks-missing-kid"))

    assert suite.outcome(REVOKE, "revocation-ignored") == "failed"
    assert ("expected HTTP 401 from /auth/me for a token revoked through /admin/tokens/revoke, got HTTP 200"
            in suite.message(REVOKE, "revocation-ignored"))
    assert "the revoked token still works" in suite.message(REVOKE, "revocation-ignored")

    for path in ("GET-/admin/tokens", "POST-/admin/tokens/revoke"):
        assert suite.outcome(ADMIN, "healthy", item=path) == "passed"
        assert suite.outcome(ADMIN, "admin-open", item=path) == "failed"
    assert ("expected an anonymous GET /admin/tokens refused with HTTP 401 or 403, got HTTP 200"
            in suite.message(ADMIN, "admin-open", item="GET-/admin/tokens"))
    assert "[runbook auth#admin-closed]" in suite.message(ADMIN, "admin-open", item="GET-/admin/tokens")


def test_login_problems_and_unreachable_servers_error_in_one_line(suite: SuiteRun) -> None:
    assert suite.outcome(REFRESH, "wrong-client-secret") == "error"
    assert suite.message(REFRESH, "wrong-client-secret").startswith(
        "LoginFailed: client opsverify-synthetic could not log in at /auth/token: HTTP 401")
    assert suite.outcome(KIDS, "refused") == "error"
    assert suite.message(KIDS, "refused").startswith("Unreachable: cannot connect to 127.0.0.1:")
    assert suite.outcome(ADMIN, "refused", item="GET-/admin/tokens") == "error"


def test_api_key_and_jwks_faults_fail(suite: SuiteRun) -> None:
    assert suite.outcome(KEY, "healthy") == "passed"
    assert suite.outcome(RETIRED, "retired-key-accepted", item="k2024") == "failed"
    assert ("expected the retired API key k2024 refused by /v1/keys/check (HTTP 401/403), got HTTP 200"
            in suite.message(RETIRED, "retired-key-accepted", item="k2024"))
    assert suite.outcome(KIDS, "jwks-missing-kid") == "failed"
    assert ("expected kids platform-2025-07 published, got missing platform-2025-07 (published: none)"
            in suite.message(KIDS, "jwks-missing-kid"))
    assert suite.outcome(NOT_RETIRED, "jwks-keeps-retired") == "failed"
    assert ("expected retired kids platform-2024-07 not published, got platform-2024-07 still published"
            in suite.message(NOT_RETIRED, "jwks-keeps-retired"))
    assert suite.outcome(PUBLIC, "jwks-private") == "failed"
    assert ("expected only public key material in the JWKS, got private key material published for "
            "platform-2025-07" in suite.message(PUBLIC, "jwks-private"))
    assert "[runbook auth#jwks-public-only]" in suite.message(PUBLIC, "jwks-private")


# -- webhooks ---------------------------------------------------------------------------------------
def test_webhook_faults_fail_and_a_missing_secret_errors(suite: SuiteRun) -> None:
    assert suite.outcome(WRONG_SIG, "no-signature-check") == "failed"
    assert ("expected a delivery signed with the wrong secret refused (HTTP 4xx), got HTTP 202"
            in suite.message(WRONG_SIG, "no-signature-check"))
    assert suite.outcome(UNSIGNED, "no-signature-check") == "failed"
    assert ("expected a delivery without x-omerta-signature refused (HTTP 4xx), got HTTP 202"
            in suite.message(UNSIGNED, "no-signature-check"))
    assert suite.outcome(NO_TENANT, "no-signature-check") == "passed"

    assert suite.outcome(NO_TENANT, "no-tenant-check") == "failed"
    assert ("expected a signed delivery without x-tenant-id refused (HTTP 4xx), got HTTP 202"
            in suite.message(NO_TENANT, "no-tenant-check"))
    assert suite.outcome(WRONG_SIG, "no-tenant-check") == "passed"

    assert suite.outcome(SIGNED, "wrong-algorithm") == "failed"
    assert ("expected a delivery signed with sha256 in x-omerta-signature accepted (HTTP 202), got HTTP 401 "
            '({"error": "signature mismatch"})' in suite.message(SIGNED, "wrong-algorithm"))
    assert "[runbook webhooks#signed-accepted]" in suite.message(SIGNED, "wrong-algorithm")

    assert suite.outcome(SIGNED, "no-secret") == "error"
    assert suite.cause(SIGNED, "no-secret") == "SecretMissing: secret SELFTEST_PLATFORM_UNSET is not set"
    assert suite.outcome(UNSIGNED, "no-secret") == "passed"  # needs no secret


def test_dry_run_verifier_is_read_only_and_real_deliveries_are_mutating(suite: SuiteRun) -> None:
    assert suite.record(SIGNED, "dry-run")["safety"] == "read_only"
    assert suite.record(SIGNED, "healthy")["safety"] == "mutating"
    assert suite.record(RL_429, "healthy")["safety"] == "disruptive"
    assert suite.record(REVOKE, "healthy")["safety"] == "mutating"
    assert suite.record(REFRESH, "healthy")["safety"] == "mutating"  # a login and a refresh are POSTs


def test_demo_test_controls_need_the_test_key(demo: Demo) -> None:
    for path in ("/_test/faults", "/_test/rotation", "/_test/state"):
        answer = httpx.get(demo.url("healthy", path), timeout=10)
        assert answer.status_code == 403, path


# -- safety classes by tier --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiers(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    """Production tier by default (read_only only) and with mutating allowed explicitly."""
    sections = {
        "websocket": [_ws(demo, "healthy", "healthy", connection_cap=3)],
        "ratelimit": [_ratelimit(demo, "healthy", "healthy")],
        "auth": [_auth(demo, "healthy", "healthy")],
        "webhooks": [_hook(demo, "healthy", "healthy"),
                     _hook(demo, "dry-run", "healthy", url=demo.url("healthy", "/v1/hooks/approval/verify"),
                           accepted_status=[200], dry_run=True)],
    }
    runs = {}
    for name, extra in (("prod", {}), ("prodmut", {"allow": ["read_only", "mutating"]})):
        env = {"tier": "production", **extra, **sections}
        runs[name] = run_checks(tmp_path_factory.mktemp(name), env, paths=CHECKS, env_name=name)
    return runs


def test_production_skips_mutating_and_disruptive_checks_unless_allowed(
    tiers: dict[str, SuiteRun], demo: Demo
) -> None:
    prod, prodmut = tiers["prod"], tiers["prodmut"]
    assert prod.ret == 0, prod.stdout[-3000:]
    for check, target in ((RL_429, "healthy"), (WS_CAP, "healthy"), (REVOKE, "healthy"), (SIGNED, "healthy")):
        assert prod.outcome(check, target) == "skipped", check
    assert "mutating checks are not allowed in prod (production tier allows: read_only)" in prod.message(
        SIGNED, "healthy")
    assert "disruptive checks are not allowed in prod" in prod.message(RL_429, "healthy")
    assert prod.message(REFRESH, "healthy").endswith("it sends a login and a refresh (POST): each issues a token")
    for check, target in ((WS_REPLY, "healthy"), (ADMIN, "healthy"), (SIGNED, "dry-run")):
        assert prod.outcome(check, target, **({"item": "GET-/admin/tokens"} if check == ADMIN else {})) == "passed"

    assert prodmut.ret == 0, prodmut.stdout[-3000:]
    assert prodmut.outcome(SIGNED, "healthy") == "passed"
    assert prodmut.outcome(REVOKE, "healthy") == "passed"
    assert prodmut.outcome(REFRESH, "healthy") == "passed"
    assert prodmut.outcome(RL_429, "healthy") == "skipped"
    assert prodmut.outcome(WS_CAP, "healthy") == "skipped"
