"""Auth probes: JWKS, token refresh and revocation, admin endpoints, API keys, rotation phases.

Tokens are verified with PyJWT: against the key the JWKS publishes under the token's ``kid``
(asymmetric algorithms) or against the shared ``jwt.hmac_secret`` (HS*), with issuer, audience and
expiry when configured. Every answer a check judges is data; errors are for "could not verify":
unreachable (:class:`~opsverify.errors.Unreachable`), the synthetic client cannot log in
(:class:`LoginFailed`), a precondition of the revocation test does not hold (:class:`RevocationUntestable`).

Example::

    jwks = await jwks(ctx)              # ctx.target is an AuthTarget
    jwks.kids, jwks.private_kids
    refreshed = await refresh(ctx)
    refreshed.valid, refreshed.problem
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsverify.config.auth import AdminPath, AuthTarget, RetiredApiKey
from opsverify.config.secrets import SecretRef
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, LoginFailed, RevocationUntestable
from opsverify.lazy import lazy_module
from opsverify.net.http import HttpAnswer
from opsverify.probes.api_client import Endpoint, call, client, snippet

if TYPE_CHECKING:
    import jwt
else:
    jwt = lazy_module("jwt")

PRIVATE_JWK_FIELDS = ("d", "p", "q", "dp", "dq", "qi", "k")


# -- facts ----------------------------------------------------------------------------------------
@dataclass
class Jwks:
    """The JWKS document: key ids, keys that carry private material, or what was wrong with it."""

    url: str
    status: int
    keys: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""

    @property
    def kids(self) -> list[str]:
        return [str(k.get("kid")) for k in self.keys if k.get("kid") is not None]

    @property
    def private_kids(self) -> list[str]:
        """Key ids (or ``#index``) of keys that publish private or symmetric key material."""
        return [str(k.get("kid", f"#{i}")) for i, k in enumerate(self.keys) if any(f in k for f in PRIVATE_JWK_FIELDS)]

    def key(self, kid: str | None) -> dict[str, Any] | None:
        return next((k for k in self.keys if kid is not None and k.get("kid") == kid), None)


@dataclass
class TokenCheck:
    """Whether a token verifies: ``problem`` is empty when it does."""

    kid: str | None = None
    algorithm: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    problem: str = ""

    @property
    def valid(self) -> bool:
        return not self.problem


@dataclass
class Refreshed:
    """The refresh call: its status, and the verification of the access token it returned."""

    status: int
    answer: str = ""
    token: TokenCheck | None = None
    same_token: bool = False

    @property
    def valid(self) -> bool:
        return self.status // 100 == 2 and self.token is not None and self.token.valid and not self.same_token

    @property
    def problem(self) -> str:
        if self.status // 100 != 2:
            return f"HTTP {self.status} from the refresh endpoint ({self.answer})"
        if self.token is None:
            return f"no access_token in the answer ({self.answer})"
        if self.same_token:
            return "the same access token as before the refresh"
        return self.token.problem


@dataclass
class Revocation:
    """The revocation test: status of the protected call before and after revoking the token."""

    before: int
    revoke_status: int
    after: int
    after_answer: str = ""


@dataclass
class Answer:
    """One request's status and the start of its body."""

    method: str
    url: str
    status: int
    body: str = ""

    @property
    def accepted(self) -> bool:
        return self.status // 100 == 2

    @property
    def shown(self) -> str:
        return f"HTTP {self.status}" + (f" ({self.body})" if self.body else "")


@dataclass
class KeyRotation:
    """How the API answered the old and the new key of a rotation."""

    old: Answer
    new: Answer


@dataclass
class SigningRotation:
    """The JWKS kids, and the kid the server signs new tokens with (``None`` without a client)."""

    jwks: Jwks
    issued_kid: str | None


# -- helpers --------------------------------------------------------------------------------------
def _answer(method: str, url: str, response: HttpAnswer) -> Answer:
    return Answer(method, url, response.status, snippet(response, 80))


def _json(response: HttpAnswer) -> dict[str, Any]:
    data = response.json_or_none()
    return data if isinstance(data, dict) else {}


async def _login(ctx: ProbeContext[AuthTarget], http: Endpoint, target: AuthTarget) -> dict[str, Any]:
    """The token pair of the synthetic client; raises :class:`LoginFailed` when refused."""
    assert target.client is not None
    creds = target.client
    body = {"client_id": creds.client_id, "client_secret": creds.client_secret.reveal().strip(),
            "grant_type": "client_credentials"}
    url = target.url(creds.token_path)
    kwargs: dict[str, Any] = {"json": body} if creds.encoding == "json" else {"data": body}
    response = await call(ctx, http, "POST", url, what=f"login at {creds.token_path}", **kwargs)
    data = _json(response)
    if response.status // 100 != 2 or not data.get("access_token"):
        raise LoginFailed(
            f"client {creds.client_id} could not log in at {creds.token_path}: "
            f"HTTP {response.status} ({snippet(response, 80)})"
        )
    return data


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def verify_token(token: str, target: AuthTarget, jwks: Jwks | None) -> TokenCheck:
    """Verify ``token`` as the target's configuration says (JWKS or shared secret, iss, aud, exp)."""
    settings = target.jwt
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        return TokenCheck(problem=f"not a JWT ({exc})")
    kid = header.get("kid")
    alg = str(header.get("alg"))
    check = TokenCheck(kid=kid, algorithm=alg)
    if alg not in settings.algorithms:
        check.problem = f"signed with {alg}, not one of the accepted algorithms {', '.join(settings.algorithms)}"
        return check
    key: Any
    if settings.hmac_secret is not None:
        key = settings.hmac_secret.reveal().strip()
    else:
        assert jwks is not None
        jwk = jwks.key(kid)
        if jwk is None:
            check.problem = f"signed with kid {kid!r}, which the JWKS does not publish (it has {', '.join(jwks.kids) or 'no keys'})"
            return check
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
            if hasattr(key, "private_numbers"):  # a JWKS that leaks private material: verify with its public half
                key = key.public_key()
        except jwt.PyJWTError as exc:
            check.problem = f"the JWKS key {kid!r} cannot be used ({exc})"
            return check
    try:
        check.claims = dict(jwt.decode(
            token, key, algorithms=[alg], audience=settings.audience, issuer=settings.issuer,
            options={"require": ["exp"], "verify_aud": settings.audience is not None},
        ))
    except jwt.InvalidSignatureError:
        source = "the shared secret" if settings.hmac_secret is not None else f"the published key {kid!r}"
        check.problem = f"a signature that does not verify with {source}"
    except jwt.ExpiredSignatureError:
        check.problem = "an expired token"
    except jwt.PyJWTError as exc:
        check.problem = f"an invalid token ({exc})"
    return check


# -- probes ---------------------------------------------------------------------------------------
async def jwks(ctx: ProbeContext[AuthTarget]) -> Jwks:
    """``GET`` the JWKS document."""
    target = ctx.target
    url = target.url(target.jwks_path)
    async with client(ctx, target) as http:
        response = await call(ctx, http, "GET", url, what=f"GET {target.jwks_path}")
    result = Jwks(url, response.status)
    if response.status != 200:
        result.problem = f"HTTP {response.status} ({snippet(response, 80)})"
        return result
    keys = _json(response).get("keys")
    if not isinstance(keys, list):
        result.problem = f"no 'keys' list in the answer ({snippet(response, 80)})"
        return result
    result.keys = [k for k in keys if isinstance(k, dict)]
    return result


async def refresh(ctx: ProbeContext[AuthTarget]) -> Refreshed:
    """Log in, refresh the pair, and verify the new access token."""
    target = ctx.target
    published = None if target.jwt.symmetric else await ctx.depend("auth_jwks")
    if published is not None and published.problem:
        raise CouldNotVerify(f"the JWKS to verify tokens with is unusable: {published.problem}")
    async with client(ctx, target) as http:
        pair = await _login(ctx, http, target)
        refresh_token = pair.get("refresh_token")
        if not refresh_token:
            raise LoginFailed(f"the login answer carries no refresh_token (keys: {', '.join(sorted(pair))})")
        assert target.refresh_path is not None and target.client is not None
        body = {"refresh_token": refresh_token, "grant_type": "refresh_token"}
        kwargs: dict[str, Any] = {"json": body} if target.client.encoding == "json" else {"data": body}
        response = await call(ctx, http, "POST", target.url(target.refresh_path), what=f"refresh at {target.refresh_path}",
                              **kwargs)
    result = Refreshed(response.status, snippet(response, 80))
    token = _json(response).get("access_token")
    if response.status // 100 == 2 and token:
        result.same_token = token == pair["access_token"]
        result.token = verify_token(str(token), target, published)
    return result


async def revocation(ctx: ProbeContext[AuthTarget]) -> Revocation:
    """Mint a token, see it accepted, revoke it with the admin token, and call again with it."""
    target = ctx.target
    assert target.revoke is not None and target.me_path is not None
    me = target.url(target.me_path)
    async with client(ctx, target) as http:
        token = str((await _login(ctx, http, target))["access_token"])
        before = await call(ctx, http, "GET", me, headers=_bearer(token), what=f"GET {target.me_path} before revoking")
        if before.status // 100 != 2:
            raise RevocationUntestable(
                f"a freshly issued token is already refused by {target.me_path} "
                f"(HTTP {before.status}), so revocation cannot be tested"
            )
        admin = target.revoke.admin_token.reveal().strip()
        revoked = await call(ctx, http, "POST", target.url(target.revoke.path), json={target.revoke.field: token},
                             headers=_bearer(admin), what=f"POST {target.revoke.path}")
        if revoked.status // 100 != 2:
            raise RevocationUntestable(
                f"the revoke endpoint {target.revoke.path} refused the request with the admin token "
                f"({target.revoke.admin_token.label}): HTTP {revoked.status} ({snippet(revoked, 80)})"
            )
        after = await call(ctx, http, "GET", me, headers=_bearer(token), what=f"GET {target.me_path} after revoking")
    return Revocation(before.status, revoked.status, after.status, snippet(after, 80))


async def admin_anonymous(ctx: ProbeContext[AuthTarget]) -> Answer:
    """Call one admin endpoint without credentials (and without a body)."""
    target = ctx.target
    item: AdminPath = ctx.item
    url = target.url(item.path)
    async with client(ctx, target) as http:
        response = await call(ctx, http, item.method, url, what=f"anonymous {item.method} {item.path}")
    return _answer(item.method, url, response)


async def _try_key(ctx: ProbeContext[AuthTarget], http: Endpoint, target: AuthTarget, ref: SecretRef, label: str) -> Answer:
    assert target.api_key is not None
    endpoint = target.api_key
    url = target.url(endpoint.path)
    headers = {endpoint.header: endpoint.prefix + ref.reveal().strip()}
    response = await call(ctx, http, "GET", url, headers=headers, what=f"GET {endpoint.path} with the {label}")
    return _answer("GET", url, response)


async def api_key(ctx: ProbeContext[AuthTarget]) -> Answer:
    """The answer to the current API key."""
    target = ctx.target
    assert target.api_key is not None
    async with client(ctx, target) as http:
        return await _try_key(ctx, http, target, target.api_key.key, "current API key")


async def retired_api_key(ctx: ProbeContext[AuthTarget]) -> Answer:
    """The answer to one retired API key."""
    target = ctx.target
    item: RetiredApiKey = ctx.item
    async with client(ctx, target) as http:
        return await _try_key(ctx, http, target, item.key, f"retired API key {item.name}")


async def api_key_rotation(ctx: ProbeContext[AuthTarget]) -> KeyRotation | None:
    """The answers to the old and the new key of the API-key rotation (``None``: no API key rotates)."""
    target = ctx.target
    if target.rotation is None or target.rotation.api_key is None:
        return None
    keys = target.rotation.api_key
    async with client(ctx, target) as http:
        old = await _try_key(ctx, http, target, keys.old, "old API key")
        new = await _try_key(ctx, http, target, keys.new, "new API key")
    return KeyRotation(old, new)


async def signing_key_rotation(ctx: ProbeContext[AuthTarget]) -> SigningRotation | None:
    """The JWKS kids, and (with a client) the kid of a freshly issued token (``None``: no key rotates)."""
    target = ctx.target
    if target.rotation is None or target.rotation.signing_key is None:
        return None
    published: Jwks = await ctx.depend("auth_jwks")
    if published.problem:
        raise CouldNotVerify(f"the JWKS cannot be read: {published.problem}")
    issued_kid = None
    if target.client is not None:
        async with client(ctx, target) as http:
            token = str((await _login(ctx, http, target))["access_token"])
        try:
            issued_kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise CouldNotVerify(f"the issued access token is not a JWT ({exc})") from None
    return SigningRotation(published, None if issued_kid is None else str(issued_kid))
