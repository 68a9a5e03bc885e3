"""``auth:`` section: JWT flows (refresh, revocation), admin protection, API keys, JWKS, key rotations.

A target is one API edge (its base URL). Every block is optional; a check runs only where its block
is set. Secrets are references; the checker's client secret and admin token should belong to
dedicated synthetic identities.

* ``client`` + ``refresh_path``: log in with client credentials, refresh, and verify the new access
  token's signature against the JWKS (RS256/ES256...) or the shared ``jwt.hmac_secret`` (HS256), its
  issuer, audience and expiry.
* ``revoke`` (``mutating``): mint a fresh token, confirm ``me_path`` accepts it, revoke it through the
  admin endpoint, expect ``me_path`` to answer 401.
* ``admin_paths``: each must refuse an anonymous call with 401 or 403.
* ``api_key`` + ``retired_api_keys``: the current key is accepted, each retired key refused.
* ``jwks``: the expected key ids are published, retired ones are not, and no private key material.
* ``rotation`` (checks marked ``rotation``): the API key and/or signing key being rotated. The phase
  verified is ``--phase``, else the environment's ``rotation:`` block, else ``rotation.phase`` here,
  else ``after``: ``before`` the old credential works; ``overlap`` old and new both work (the JWKS
  publishes both kids, new tokens are signed with the new one); ``after`` the new one works and the
  old one is refused.

Its keys: ``docs/environment/reference.md#auth``;
an example and its checks: ``docs/environment/auth.md``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import NAME_MAX, NAME_PATTERN, Strict, Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.values import HttpUrl

Phase = Literal["before", "overlap", "after"]
PATH = r"^/"


class ClientCredentials(Strict):
    """The synthetic client that logs in (OAuth2 client-credentials style)."""

    token_path: str = Field(default="/auth/token", pattern=PATH)
    client_id: str = Field(min_length=1)
    client_secret: SecretRef
    encoding: Literal["form", "json"] = Field(default="form", description="how login and refresh bodies are sent")


class JwtVerification(Strict):
    """How an issued access token is verified: JWKS (asymmetric) or a shared HMAC secret (HS*)."""

    algorithms: list[str] = Field(default_factory=lambda: ["RS256"], min_length=1)
    hmac_secret: SecretRef | None = Field(default=None, description="the shared secret for HS256/384/512")
    issuer: str | None = None
    audience: str | None = None

    @model_validator(mode="after")
    def _hs_needs_secret(self) -> JwtVerification:
        symmetric = [a for a in self.algorithms if a.upper().startswith("HS")]
        if symmetric and self.hmac_secret is None:
            raise ValueError(f"{', '.join(symmetric)} tokens are verified with a shared secret: set hmac_secret")
        if symmetric and len(symmetric) != len(self.algorithms):
            raise ValueError("do not mix HS* with asymmetric algorithms in one target")
        return self

    @property
    def symmetric(self) -> bool:
        return self.hmac_secret is not None


class RevokeEndpoint(Strict):
    """The admin endpoint that revokes a token (``POST {"token": JWT}``)."""

    path: str = Field(default="/admin/tokens/revoke", pattern=PATH)
    admin_token: SecretRef
    field: str = Field(default="token", description="the JSON body field that carries the token to revoke")


class AdminPath(Strict):
    """An admin endpoint that must refuse anonymous calls (sent without a body or credentials)."""

    path: str = Field(pattern=PATH)
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"

    @property
    def name(self) -> str:
        return f"{self.method}-{self.path}"


class ApiKeyEndpoint(Strict):
    """An endpoint that answers 2xx for a valid API key and 401/403 otherwise."""

    path: str = Field(pattern=PATH)
    header: str = Field(default="x-api-key", pattern=r"^[A-Za-z0-9-]+$")
    prefix: str = Field(default="", description='e.g. "Bearer " when the key goes into Authorization')
    key: SecretRef = Field(description="the current key (must be accepted)")


class RetiredApiKey(Strict):
    """A key that was retired and must be refused."""

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    key: SecretRef


class JwksExpectation(Strict):
    """What the JWKS endpoint must (and must not) publish."""

    path: str = Field(default="/.well-known/jwks.json", pattern=PATH)
    kids: list[str] = Field(default_factory=list, description="key ids that must be published")
    retired_kids: list[str] = Field(default_factory=list, description="key ids that must no longer be published")

    @model_validator(mode="after")
    def _disjoint(self) -> JwksExpectation:
        both = sorted(set(self.kids) & set(self.retired_kids))
        if both:
            raise ValueError(f"kid {both[0]!r} is listed both as expected and as retired")
        return self


class ApiKeyRotation(Strict):
    """The API key being rotated: ``old`` (being replaced) and ``new``."""

    old: SecretRef
    new: SecretRef


class SigningKeyRotation(Strict):
    """The JWT signing key being rotated, by key id."""

    old_kid: str = Field(min_length=1)
    new_kid: str = Field(min_length=1)

    @model_validator(mode="after")
    def _different(self) -> SigningKeyRotation:
        if self.old_kid == self.new_kid:
            raise ValueError("old_kid and new_kid must differ")
        return self


class Rotation(Strict):
    """A rotation of this target's credentials and the phase to verify.

    Which phase is verified: ``--phase``, else the environment's own ``rotation:`` block (when it
    covers this target), else ``phase`` here, else ``after`` (a finished rotation).
    """

    phase: Phase | None = None
    api_key: ApiKeyRotation | None = None
    signing_key: SigningKeyRotation | None = None

    @model_validator(mode="after")
    def _something_rotates(self) -> Rotation:
        if self.api_key is None and self.signing_key is None:
            raise ValueError("a rotation needs api_key and/or signing_key")
        return self


class AuthTarget(Target):
    """An API edge: where its auth endpoints are, and what its credentials must do."""

    base_url: HttpUrl = Field(pattern=r"^https?://[^/]+/?$", description="scheme://host[:port] of the API")
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    client: ClientCredentials | None = None
    refresh_path: str | None = Field(default=None, pattern=PATH)
    me_path: str | None = Field(default=None, pattern=PATH,
                                description="answers 2xx to a valid access token, 401 otherwise")
    jwt: JwtVerification = Field(default_factory=JwtVerification)
    revoke: RevokeEndpoint | None = None
    admin_paths: list[AdminPath] = Field(default_factory=list)
    api_key: ApiKeyEndpoint | None = None
    retired_api_keys: list[RetiredApiKey] = Field(default_factory=list)
    jwks: JwksExpectation | None = None
    rotation: Rotation | None = None

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("admin_paths", mode="before")
    @classmethod
    def _paths_as_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AuthTarget:
        if self.refresh_path and self.client is None:
            raise ValueError("refresh_path needs a client (the checker logs in first to get a refresh token)")
        if self.revoke is not None and (self.client is None or self.me_path is None):
            raise ValueError("revoke needs a client (to mint the token it revokes) and me_path (to see it refused)")
        if self.retired_api_keys and self.api_key is None:
            raise ValueError("retired_api_keys needs api_key (the path and header to try them on)")
        if self.rotation and self.rotation.api_key and self.api_key is None:
            raise ValueError("rotation.api_key needs api_key (the path and header to try the keys on)")
        names = [k.name for k in self.retired_api_keys]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"retired_api_keys: duplicate name {dupes[0]!r}")
        return self

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this API."""
        return self.base_url + path

    @property
    def jwks_path(self) -> str:
        return self.jwks.path if self.jwks else "/.well-known/jwks.json"


section(
    "auth",
    AuthTarget,
    system="auth",
    doc="auth flows: JWT refresh and revocation, admin endpoints closed, API keys, JWKS, key rotation phases",
)
