"""The platform demo: a real API edge (WebSocket, rate limit, JWT auth, API keys, webhooks), faultable.

It stands in for the "Swifty"-style FastAPI + WebSocket service and the gateway of the source
runbooks, so the ``websocket``, ``ratelimit``, ``auth`` and ``webhooks`` checks run against real
HTTP, real WebSocket handshakes, real RS256 / HS256 JWTs and real HMAC signatures.

Run as a process (the sandbox and the self-tests start it through :func:`start_platform_demo`)::

    python -m opsverify_sandbox.platform_demo --secrets DIR \\
        --listen 18090 --listen 18091:tls,ws-cap=3 --listen 18092:no-ratelimit+revocation-ignored \\
        --cert server.pem --key server.key

Every ``--listen PORT[:OPTIONS]`` is an independent instance (its own connection count, rate-limit
buckets, revocation list and refresh-token ledger) sharing the secrets in ``--secrets``. OPTIONS
are ``,``- or ``+``-separated:

* settings: ``tls`` (serve HTTPS / wss with ``--cert``/``--key``), ``ws-cap=N`` (default 20),
  ``rate=N`` and ``window=S`` (token bucket: N requests per S seconds per client, default 20 / 10),
  ``alg=sha256|sha1|sha512`` (webhook HMAC), ``hs256`` (sign JWTs with the shared HS256 secret
  instead of the RSA keys), ``ws-delay=MS`` (delay of the ``ws-slow`` fault, default 800),
  ``apikey-phase=before|overlap|after`` and ``jwt-phase=before|overlap|after`` (rotation phases,
  default ``after``);
* faults: ``ws-no-cap``, ``ws-wrong-reply``, ``ws-slow``, ``ws-close-error``, ``no-ratelimit``,
  ``ratelimit-no-retry-after``, ``revocation-ignored``, ``admin-open``, ``refresh-bad-signature``,
  ``jwks-missing-kid`` (the kid that signs is not published), ``jwks-keeps-retired``, ``jwks-private``
  (private key members in the JWKS), ``retired-key-accepted``, ``hook-no-signature-check``,
  ``hook-no-tenant-check``.

Faults can also be switched at run time: ``POST /_test/faults {"faults": ["ws-slow"]}`` with the
header ``x-test-key: <secrets>/test-key`` (``GET`` shows them). Without the key: 403.

Routes:

* ``GET /ws/echo`` (anonymous) and ``GET /ws/secure`` (needs a valid access token, as
  ``Authorization: Bearer`` or ``?token=``): WebSocket. A text ``{"type": "ping", "id": X}`` is
  answered ``{"type": "pong", "id": X}``; anything else is echoed verbatim. **Connection cap**: when
  ``ws-cap`` connections are open, the next handshake is refused with **HTTP 503** and
  ``Retry-After: 5`` (before the upgrade: a client sees an HTTP status, not a close code).
* ``GET /api/jobs``: rate limited, token bucket per client (``x-client-id`` header, else
  ``x-api-key``, else the peer address); over the limit: **429** with ``Retry-After`` (whole seconds
  until a token is back), ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` on every answer.
* ``POST /auth/token`` (OAuth2 client credentials, form or JSON: ``client_id``, ``client_secret``)
  → ``{"access_token", "refresh_token", "token_type", "expires_in"}``; ``POST /auth/refresh``
  (``refresh_token``, form or JSON) → a new pair; a refresh token works once.
* ``GET /auth/me``: 200 ``{"sub", "role"}`` with a valid, unrevoked access token, else 401
  (``{"error": "INVALID_TOKEN"}``).
* ``POST /admin/tokens/revoke`` ``{"token": JWT}`` or ``{"jti": ID}`` (admin role) and
  ``GET /admin/tokens`` (admin role): 401 without a token, 403 with a non-admin one.
* ``GET /.well-known/jwks.json``: the public keys the instance trusts in its signing-key rotation
  phase (below); ``platform-2024-07`` is retired and never published.
* ``GET /v1/keys/check`` with ``x-api-key``: 200 for a key valid in the API-key rotation phase
  (below), 401 otherwise (always for the retired key).
* ``POST /v1/hooks/approval``: HMAC webhook receiver. Needs ``x-tenant-id`` (else 400) and
  ``x-omerta-signature: <alg>=<hex HMAC of the body>`` (else 401); 202 when both are right.
  ``POST /v1/hooks/approval/verify``: the same verification as a dry run (200 ``{"valid": true}``,
  nothing recorded).
* ``GET /healthz``; ``GET /_test/state`` (with ``x-test-key``): counters (deliveries, revocations,
  open WebSockets) and rotation phases for the self-tests.

Rotation phases (a real rotation from the *old* credential to the *new* one; options ``apikey-phase=``
and ``jwt-phase=``, or at run time ``POST /_test/rotation {"api_key": "overlap", "signing_key":
"after"}`` with ``x-test-key``). The old API key is ``api-key-previous``, the new one
``api-key-current``; the old signing key is ``platform-2025-01``, the new one ``platform-2025-07``.

=========  ===============================  ==============================================
phase      API keys accepted                signing keys (JWKS, trusted; tokens signed by)
=========  ===============================  ==============================================
before     old                              old; signed by old
overlap    old and new                      old and new; signed by new
after      new (the default)                new; signed by new
=========  ===============================  ==============================================

The admin and WebSocket tokens in the secrets directory are signed by the new key: they are refused
while the signing key is in its ``before`` phase (as they would be by a server not yet rotated).

Secrets (:func:`write_secrets`, made at run time, mode 0600): RSA signing keys, the HS256 secret,
the synthetic client's secret, an admin token, a user token for the WebSocket, three API keys
(current, previous, retired), the webhook secret and the test key.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import secrets
import ssl
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import WSCloseCode, WSMsgType, web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from opsverify_sandbox.files import write_private

ISSUER = "opsverify-sandbox"
AUDIENCE = "platform-api"
CLIENT_ID = "opsverify-synthetic"
CURRENT_KID = "platform-2025-07"
PREVIOUS_KID = "platform-2025-01"
RETIRED_KID = "platform-2024-07"
ACCESS_TTL_S = 900
REFRESH_TTL_S = 86400
LONG_TTL_S = 30 * 86400
HOOK_HEADER = "x-omerta-signature"
TENANT_HEADER = "x-tenant-id"
PHASES = ("before", "overlap", "after")
FAULTS = frozenset({
    "ws-no-cap", "ws-wrong-reply", "ws-slow", "ws-close-error", "no-ratelimit", "ratelimit-no-retry-after",
    "revocation-ignored", "admin-open", "refresh-bad-signature", "jwks-missing-kid", "jwks-keeps-retired",
    "jwks-private", "retired-key-accepted", "hook-no-signature-check", "hook-no-tenant-check",
})
SECRET_FILES = (
    "jwt-current.key", "jwt-previous.key", "jwt-retired.key", "jwt-hs256.secret", "client-secret",
    "admin-token", "ws-token", "api-key-current", "api-key-previous", "api-key-retired", "hook-secret",
    "test-key",
)


# -- secrets ---------------------------------------------------------------------------------------
def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_secrets(directory: Path) -> Path:
    """Generate every secret the demo and its checks use under ``directory`` (mode 0600); returns it.

    The admin and WebSocket tokens are RS256 JWTs signed with the new current key, valid 30 days.
    """
    directory.mkdir(parents=True, exist_ok=True)
    keys = {name: rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for name in ("current", "previous", "retired")}
    for name, key in keys.items():
        write_private(directory / f"jwt-{name}.key", _pem(key))
    write_private(directory / "jwt-hs256.secret", secrets.token_urlsafe(48))
    write_private(directory / "client-secret", "cs-" + secrets.token_urlsafe(24))
    for name in ("current", "previous", "retired"):
        write_private(directory / f"api-key-{name}", f"ak-{name[:3]}-" + secrets.token_urlsafe(24))
    write_private(directory / "hook-secret", "whsec-" + secrets.token_urlsafe(32))
    write_private(directory / "test-key", "tk-" + secrets.token_urlsafe(24))
    now = int(time.time())
    for name, sub, role in (("admin-token", "opsverify-admin", "admin"), ("ws-token", CLIENT_ID, "user")):
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": role, "typ": "access",
                  "jti": uuid.uuid4().hex, "iat": now, "exp": now + LONG_TTL_S}
        token = jwt.encode(claims, keys["current"], algorithm="RS256", headers={"kid": CURRENT_KID})
        write_private(directory / name, token)
    return directory


@dataclass
class Secrets:
    """The secrets one demo process serves with (read once at start)."""

    signing: dict[str, rsa.RSAPrivateKey]  # kid -> key, current and previous
    retired: rsa.RSAPrivateKey
    hs_secret: str
    client_secret: str
    api_keys: dict[str, str]  # current / previous / retired
    hook_secret: bytes
    test_key: str

    @classmethod
    def load(cls, directory: Path) -> Secrets:
        def text(name: str) -> str:
            return (directory / name).read_text().strip()

        def rsa_key(name: str) -> rsa.RSAPrivateKey:
            key = serialization.load_pem_private_key((directory / name).read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            return key

        return cls(
            signing={CURRENT_KID: rsa_key("jwt-current.key"), PREVIOUS_KID: rsa_key("jwt-previous.key")},
            retired=rsa_key("jwt-retired.key"),
            hs_secret=text("jwt-hs256.secret"),
            client_secret=text("client-secret"),
            api_keys={n: text(f"api-key-{n}") for n in ("current", "previous", "retired")},
            hook_secret=text("hook-secret").encode(),
            test_key=text("test-key"),
        )


# -- one instance (listener) -------------------------------------------------------------------------
@dataclass
class Instance:
    """The state of one listener: settings, faults, and what clients did to it."""

    secrets: Secrets
    faults: set[str] = field(default_factory=set)
    ws_cap: int = 20
    rate: int = 20
    window_s: float = 10.0
    hook_alg: str = "sha256"
    hs256: bool = False
    ws_delay_ms: float = 800
    apikey_phase: str = "after"
    jwt_phase: str = "after"
    ws_open: int = 0
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # client -> (tokens, at)
    revoked: set[str] = field(default_factory=set)
    used_refresh: set[str] = field(default_factory=set)
    deliveries: int = 0
    rate_limited: int = 0
    _stranger: rsa.RSAPrivateKey | None = None

    # rotation -----------------------------------------------------------------------------------
    @property
    def signing_kid(self) -> str:
        """The kid new tokens are signed with: the old key before the rotation, else the new one."""
        return PREVIOUS_KID if self.jwt_phase == "before" else CURRENT_KID

    @property
    def trusted_kids(self) -> list[str]:
        """Kids whose tokens verify (and that the JWKS publishes) in this signing-key phase."""
        return {"before": [PREVIOUS_KID], "overlap": [CURRENT_KID, PREVIOUS_KID]}.get(self.jwt_phase, [CURRENT_KID])

    @property
    def valid_api_keys(self) -> list[str]:
        """API keys accepted in this API-key phase (plus the retired one under its fault)."""
        names = {"before": ["previous"], "overlap": ["current", "previous"]}.get(self.apikey_phase, ["current"])
        if "retired-key-accepted" in self.faults:
            names.append("retired")
        return [self.secrets.api_keys[n] for n in names]

    # tokens -----------------------------------------------------------------------------------
    def issue(self, sub: str, role: str, typ: str, ttl_s: int, *, bad_signature: bool = False) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": role, "typ": typ,
                  "jti": uuid.uuid4().hex, "iat": now, "exp": now + ttl_s}
        if self.hs256:
            secret = ("not-" + self.secrets.hs_secret) if bad_signature else self.secrets.hs_secret
            return jwt.encode(claims, secret, algorithm="HS256")
        if bad_signature:  # signed by a key nobody published, under the kid of the real one
            if self._stranger is None:
                self._stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key = self._stranger
        else:
            key = self.secrets.signing[self.signing_kid]
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.signing_kid})

    def verify(self, token: str, typ: str = "access") -> dict[str, Any] | None:
        """The token's claims when it is valid, of type ``typ`` and not revoked; else ``None``."""
        try:
            if self.hs256:
                claims = jwt.decode(token, self.secrets.hs_secret, algorithms=["HS256"],
                                    audience=AUDIENCE, issuer=ISSUER)
            else:
                kid = str(jwt.get_unverified_header(token).get("kid"))
                if kid not in self.trusted_kids:
                    return None
                key = self.secrets.signing[kid]
                claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != typ:
            return None
        if claims.get("jti") in self.revoked and "revocation-ignored" not in self.faults:
            return None
        return dict(claims)

    def jwks(self) -> dict[str, Any]:
        published = {kid: self.secrets.signing[kid] for kid in self.trusted_kids}
        if "jwks-missing-kid" in self.faults:  # the key that signs is not published
            published.pop(self.signing_kid, None)
        if "jwks-keeps-retired" in self.faults:
            published[RETIRED_KID] = self.secrets.retired
        keys = []
        for kid, key in published.items():
            source: Any = key if "jwks-private" in self.faults else key.public_key()
            jwk = dict(RSAAlgorithm.to_jwk(source, as_dict=True))  # type: ignore[arg-type]
            jwk.pop("key_ops", None)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    # rate limit -------------------------------------------------------------------------------
    def take_token(self, client: str) -> tuple[bool, float, float]:
        """Take one token from ``client``'s bucket: (allowed, tokens left, seconds until the next)."""
        now = time.monotonic()
        refill = self.rate / self.window_s
        tokens, at = self.buckets.get(client, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - at) * refill)
        if tokens >= 1:
            self.buckets[client] = (tokens - 1, now)
            return True, tokens - 1, 0.0
        self.buckets[client] = (tokens, now)
        return False, tokens, (1 - tokens) / refill


INSTANCE = web.AppKey("instance", Instance)


def _inst(request: web.Request) -> Instance:
    return request.app[INSTANCE]


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.query.get("token") or None


def _invalid_token(status: int = 401) -> web.Response:
    return web.json_response({"error": "INVALID_TOKEN"}, status=status,
                             headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _params(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except json.JSONDecodeError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    form = await request.post()
    return {k: str(v) for k, v in form.items()}


# -- routes ----------------------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def websocket(request: web.Request) -> web.StreamResponse:
    inst = _inst(request)
    if request.path.endswith("/secure"):
        token = _bearer(request)
        if token is None or inst.verify(token) is None:
            return _invalid_token()
    if inst.ws_open >= inst.ws_cap and "ws-no-cap" not in inst.faults:
        return web.json_response({"error": "websocket connection cap reached", "cap": inst.ws_cap},
                                 status=503, headers={"Retry-After": "5"})
    inst.ws_open += 1  # counted before the upgrade: concurrent handshakes cannot overshoot the cap
    ws = web.WebSocketResponse(heartbeat=None)
    try:
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            if "ws-slow" in inst.faults:
                await asyncio.sleep(inst.ws_delay_ms / 1000)
            await ws.send_str(_reply(msg.data, wrong="ws-wrong-reply" in inst.faults))
            if "ws-close-error" in inst.faults:
                await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"handler crashed")
                break
    finally:
        inst.ws_open -= 1
    return ws


def _reply(text: str, *, wrong: bool) -> str:
    if wrong:
        return json.dumps({"type": "error", "message": "handler unavailable"})
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(data, dict) and data.get("type") == "ping":
        return json.dumps({"type": "pong", "id": data.get("id")})
    return text


async def jobs(request: web.Request) -> web.Response:
    inst = _inst(request)
    client = request.headers.get("x-client-id") or request.headers.get("x-api-key") or request.remote or "?"
    headers = {"X-RateLimit-Limit": str(inst.rate)}
    if "no-ratelimit" not in inst.faults:
        allowed, left, wait_s = inst.take_token(client)
        headers["X-RateLimit-Remaining"] = str(int(left))
        if not allowed:
            inst.rate_limited += 1
            if "ratelimit-no-retry-after" not in inst.faults:
                headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
            return web.json_response({"error": "rate_limited"}, status=429, headers=headers)
    return web.json_response({"jobs": [{"id": 1, "title": "demo"}]}, headers=headers)


def _pair(inst: Instance, sub: str, role: str, *, bad_signature: bool = False) -> web.Response:
    return web.json_response({
        "access_token": inst.issue(sub, role, "access", ACCESS_TTL_S, bad_signature=bad_signature),
        "refresh_token": inst.issue(sub, role, "refresh", REFRESH_TTL_S),
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_S,
    }, headers={"Cache-Control": "no-store"})


async def auth_token(request: web.Request) -> web.Response:
    inst = _inst(request)
    params = await _params(request)
    secret = params.get("client_secret", "")
    if params.get("client_id") != CLIENT_ID or not hmac.compare_digest(secret, inst.secrets.client_secret):
        return web.json_response({"error": "invalid_client"}, status=401)
    return _pair(inst, CLIENT_ID, "user")


async def auth_refresh(request: web.Request) -> web.Response:
    inst = _inst(request)
    token = (await _params(request)).get("refresh_token", "")
    claims = inst.verify(token, typ="refresh")
    if claims is None or claims["jti"] in inst.used_refresh:
        return web.json_response({"error": "invalid_grant"}, status=401)
    inst.used_refresh.add(claims["jti"])
    return _pair(inst, claims["sub"], claims["role"], bad_signature="refresh-bad-signature" in inst.faults)


async def auth_me(request: web.Request) -> web.Response:
    token = _bearer(request)
    claims = _inst(request).verify(token) if token else None
    if claims is None:
        return _invalid_token()
    return web.json_response({"sub": claims["sub"], "role": claims["role"]})


def _admin(request: web.Request) -> web.Response | None:
    """``None`` when the caller may use admin routes, else the refusal to return."""
    inst = _inst(request)
    if "admin-open" in inst.faults:
        return None
    token = _bearer(request)
    claims = inst.verify(token) if token else None
    if claims is None:
        return _invalid_token()
    if claims.get("role") != "admin":
        return web.json_response({"error": "forbidden", "required_role": "admin"}, status=403)
    return None


async def admin_tokens(request: web.Request) -> web.Response:
    refused = _admin(request)
    return refused or web.json_response({"revoked": len(_inst(request).revoked)})


async def admin_revoke(request: web.Request) -> web.Response:
    refused = _admin(request)
    if refused:
        return refused
    inst = _inst(request)
    params = await _params(request)
    jti = params.get("jti")
    if not jti and params.get("token"):
        try:
            jti = jwt.decode(params["token"], options={"verify_signature": False}).get("jti")
        except jwt.PyJWTError:
            jti = None
    if not jti:
        return web.json_response({"error": "give 'token' or 'jti'"}, status=400)
    inst.revoked.add(str(jti))
    return web.json_response({"revoked": jti})


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(_inst(request).jwks(), headers={"Cache-Control": "max-age=300"})


async def api_key_check(request: web.Request) -> web.Response:
    inst = _inst(request)
    given = request.headers.get("x-api-key", "")
    if given and any(hmac.compare_digest(given, k) for k in inst.valid_api_keys):
        return web.json_response({"ok": True})
    return web.json_response({"error": "invalid api key"}, status=401)


def sign(secret: bytes, body: bytes, algorithm: str = "sha256") -> str:
    """The signature header value the receiver expects: ``<alg>=<hex HMAC of the body>``."""
    return f"{algorithm}={hmac.new(secret, body, algorithm).hexdigest()}"


async def _verify_hook(request: web.Request) -> tuple[web.Response | None, bytes]:
    inst = _inst(request)
    body = await request.read()
    if not request.headers.get(TENANT_HEADER) and "hook-no-tenant-check" not in inst.faults:
        return web.json_response({"error": f"missing {TENANT_HEADER}"}, status=400), body
    if "hook-no-signature-check" not in inst.faults:
        given = request.headers.get(HOOK_HEADER, "")
        if not given:
            return web.json_response({"error": f"missing {HOOK_HEADER}"}, status=401), body
        if not hmac.compare_digest(given, sign(inst.secrets.hook_secret, body, inst.hook_alg)):
            return web.json_response({"error": "signature mismatch"}, status=401), body
    return None, body


async def hook_approval(request: web.Request) -> web.Response:
    refused, _ = await _verify_hook(request)
    if refused:
        return refused
    _inst(request).deliveries += 1
    return web.json_response({"accepted": True}, status=202)


async def hook_verify(request: web.Request) -> web.Response:
    refused, _ = await _verify_hook(request)
    return refused or web.json_response({"valid": True, "dry_run": True})


def _test_key_ok(request: web.Request) -> bool:
    return hmac.compare_digest(request.headers.get("x-test-key", ""), _inst(request).secrets.test_key)


async def test_faults(request: web.Request) -> web.Response:
    if not _test_key_ok(request):
        return web.json_response({"error": "x-test-key required"}, status=403)
    inst = _inst(request)
    if request.method == "POST":
        try:
            wanted = set((await request.json()).get("faults", []))
        except (json.JSONDecodeError, AttributeError, TypeError):
            return web.json_response({"error": 'send {"faults": [...]}'}, status=400)
        unknown = wanted - FAULTS
        if unknown:
            return web.json_response({"error": f"unknown faults {sorted(unknown)}"}, status=400)
        inst.faults = wanted
    return web.json_response({"faults": sorted(inst.faults)})


async def test_rotation(request: web.Request) -> web.Response:
    """``POST {"api_key": PHASE, "signing_key": PHASE}`` (either key optional); ``GET`` shows them."""
    if not _test_key_ok(request):
        return web.json_response({"error": "x-test-key required"}, status=403)
    inst = _inst(request)
    if request.method == "POST":
        try:
            wanted = dict(await request.json())
        except (json.JSONDecodeError, TypeError, ValueError):
            return web.json_response({"error": 'send {"api_key": PHASE, "signing_key": PHASE}'}, status=400)
        bad = {k: v for k, v in wanted.items() if k not in ("api_key", "signing_key") or v not in PHASES}
        if bad:
            return web.json_response({"error": f"unknown keys or phases {bad} (phases: {PHASES})"}, status=400)
        inst.apikey_phase = wanted.get("api_key", inst.apikey_phase)
        inst.jwt_phase = wanted.get("signing_key", inst.jwt_phase)
    return web.json_response({"api_key": inst.apikey_phase, "signing_key": inst.jwt_phase})


async def test_state(request: web.Request) -> web.Response:
    if not _test_key_ok(request):
        return web.json_response({"error": "x-test-key required"}, status=403)
    inst = _inst(request)
    return web.json_response({"deliveries": inst.deliveries, "revoked": len(inst.revoked),
                              "ws_open": inst.ws_open, "rate_limited": inst.rate_limited,
                              "api_key_phase": inst.apikey_phase, "signing_key_phase": inst.jwt_phase})


def make_app(instance: Instance) -> web.Application:
    """One instance's aiohttp application."""
    app = web.Application()
    app[INSTANCE] = instance
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws/echo", websocket)
    app.router.add_get("/ws/secure", websocket)
    app.router.add_get("/api/jobs", jobs)
    app.router.add_post("/auth/token", auth_token)
    app.router.add_post("/auth/refresh", auth_refresh)
    app.router.add_get("/auth/me", auth_me)
    app.router.add_get("/admin/tokens", admin_tokens)
    app.router.add_post("/admin/tokens/revoke", admin_revoke)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_get("/v1/keys/check", api_key_check)
    app.router.add_post("/v1/hooks/approval", hook_approval)
    app.router.add_post("/v1/hooks/approval/verify", hook_verify)
    app.router.add_route("*", "/_test/faults", test_faults)
    app.router.add_route("*", "/_test/rotation", test_rotation)
    app.router.add_get("/_test/state", test_state)
    return app


def parse_listener(spec: str, keys: Secrets) -> tuple[int, bool, Instance]:
    """``PORT[:opt,opt+opt]`` -> (port, tls, instance). Unknown options are errors."""
    port_text, _, opts = spec.partition(":")
    inst = Instance(secrets=keys)
    tls = False
    for opt in filter(None, opts.replace("+", ",").split(",")):
        name, _, value = opt.partition("=")
        if name == "tls":
            tls = True
        elif name == "ws-cap":
            inst.ws_cap = int(value)
        elif name == "rate":
            inst.rate = int(value)
        elif name == "window":
            inst.window_s = float(value)
        elif name == "alg":
            hashlib.new(value)
            inst.hook_alg = value
        elif name == "hs256":
            inst.hs256 = True
        elif name == "ws-delay":
            inst.ws_delay_ms = float(value)
        elif name in ("apikey-phase", "jwt-phase") and value in PHASES:
            setattr(inst, name.replace("-", "_"), value)
        elif name in FAULTS:
            inst.faults.add(name)
        else:
            raise SystemExit(f"--listen {spec}: unknown option {name!r}")
    return int(port_text), tls, inst


async def serve(args: argparse.Namespace) -> None:
    keys = Secrets.load(Path(args.secrets))
    runners = []
    for spec in args.listen:
        port, tls, inst = parse_listener(spec, keys)
        context = None
        if tls:
            if not (args.cert and args.key):
                raise SystemExit(f"--listen {spec}: tls needs --cert and --key")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(args.cert, args.key)
        runner = web.AppRunner(make_app(inst), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.host, port, ssl_context=context).start()
        runners.append(runner)
    print(f"platform demo ready ({len(runners)} listeners)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secrets", required=True, help="directory written by write_secrets()")
    parser.add_argument("--listen", action="append", default=[], metavar="PORT[:OPTIONS]")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args(argv)
    if not args.listen:
        parser.error("give at least one --listen")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


# -- launcher ------------------------------------------------------------------------------------
@dataclass
class PlatformDemo:
    """A running platform demo process: its listeners by name, and the secrets directory."""

    process: Any  # ManagedProcess
    ports: dict[str, int]
    secrets_dir: Path
    tls: set[str] = field(default_factory=set)

    def url(self, name: str, path: str = "/", scheme: str = "http") -> str:
        secure = name in self.tls
        if scheme == "ws":
            scheme = "wss" if secure else "ws"
        elif secure:
            scheme = "https"
        return f"{scheme}://{'localhost' if secure else '127.0.0.1'}:{self.ports[name]}{path}"

    def secret(self, name: str) -> Path:
        return self.secrets_dir / name

    def stop(self) -> None:
        self.process.stop()


def start_platform_demo(
    workdir: Path,
    listeners: dict[str, tuple[int, str]],
    *,
    secrets_dir: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    log_name: str = "platform-demo.log",
) -> PlatformDemo:
    """Start the demo with ``listeners`` (name -> (port, options)); wait until every port listens.

    Secrets are generated into ``secrets_dir`` (default ``workdir/secrets``) unless already there.

    Example::

        demo = start_platform_demo(tmp, {"healthy": (free_port(), ""), "open": (free_port(), "admin-open")})
        demo.url("healthy", "/auth/me")        # http://127.0.0.1:PORT/auth/me
    """
    from opsverify_sandbox.process import ManagedProcess

    secrets_dir = secrets_dir or workdir / "secrets"
    if not all((secrets_dir / name).exists() for name in SECRET_FILES):
        write_secrets(secrets_dir)
    argv = [sys.executable, "-m", "opsverify_sandbox.platform_demo", "--secrets", str(secrets_dir)]
    tls = set()
    for name, (port, options) in listeners.items():
        argv += ["--listen", f"{port}:{options}" if options else str(port)]
        if "tls" in options.replace("+", ",").split(","):
            tls.add(name)
    if cert and key:
        argv += ["--cert", str(cert), "--key", str(key)]
    proc = ManagedProcess.start(argv, log_path=workdir / log_name, name="platform-demo")
    for port, _ in listeners.values():
        proc.wait_for_port("127.0.0.1", port, timeout_s=20)
    return PlatformDemo(proc, {n: p for n, (p, _) in listeners.items()}, secrets_dir, tls)


def hook_signature(secret_file: Path, body: bytes, algorithm: str = "sha256") -> str:
    """Sign ``body`` as the receiver expects (for manual tests: ``curl -H "x-omerta-signature: ..."``)."""
    return sign(secret_file.read_text().strip().encode(), body, algorithm)


if __name__ == "__main__":
    main()
