"""NATS credentials: reading a ``.creds`` file (its user JWT's unverified claims and its nkey
seed), the connect options of each credential mode (:func:`load_material`), and the credential probe.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsverify.config.nats import NatsCredentials, NatsTarget
from opsverify.config.secrets import REDACTOR, SecretRef
from opsverify.engine import ProbeContext
from opsverify.errors import SecretMissing
from opsverify.lazy import lazy_module, needs

if TYPE_CHECKING:
    import nats
    import nats.aio.client as nats_client
    import nats.errors
    import nats.js.errors
else:
    nats = lazy_module("nats")  # nats.errors and nats.js.errors are imported by the package itself
    nats_client = lazy_module("nats.aio.client")


needs("nkeys")  # imported inside functions; loaded before the wave


def _short_key(key: str | None) -> str:
    return f"{key[:10]}…" if key else "?"


def _utc(epoch: Any) -> dt.datetime | None:
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and epoch > 0:
        return dt.datetime.fromtimestamp(float(epoch), dt.UTC)
    return None


# ---------------------------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------------------------


@dataclass
class CredsFile:
    """The two parts of a ``.creds`` file and the (unverified) claims of its user JWT."""

    jwt: str = field(repr=False)
    seed: str = field(repr=False)
    claims: dict[str, Any]
    seed_public: str | None

    @property
    def user_public(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def user_name(self) -> str | None:
        name = self.claims.get("name")
        return name if isinstance(name, str) and name else None

    @property
    def issuer_account(self) -> str | None:
        """The account that issued the user: ``nats.issuer_account`` (signing keys) or ``iss``."""
        nats_claim = self.claims.get("nats")
        via_signing_key = nats_claim.get("issuer_account") if isinstance(nats_claim, dict) else None
        issuer = via_signing_key or self.claims.get("iss")
        return issuer if isinstance(issuer, str) else None

    @property
    def issued_at(self) -> dt.datetime | None:
        return _utc(self.claims.get("iat"))

    @property
    def expires_at(self) -> dt.datetime | None:
        return _utc(self.claims.get("exp"))

    def canonical(self) -> str:
        """The file in the exact layout nats-py's reader expects."""
        return (
            f"-----BEGIN NATS USER JWT-----\n{self.jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{self.seed}\n------END USER NKEY SEED------\n"
        )


def _block_after(lines: list[str], marker: str) -> str | None:
    for index, line in enumerate(lines):
        if marker in line:
            for following in lines[index + 1 :]:
                if following.strip():
                    return following.strip()
    return None


def _decode_jwt(token: str, label: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise SecretMissing(f"{label}: the user JWT in the creds cannot be decoded") from None
    if not isinstance(claims, dict):
        raise SecretMissing(f"{label}: the user JWT's payload is not a JSON object")
    return claims


def read_creds(ref: SecretRef) -> CredsFile:
    """Resolve a ``creds`` reference: the content of a ``.creds`` file, or a path to one."""
    text = ref.reveal()
    label = f"secret {ref.label}"
    if "BEGIN NATS USER JWT" not in text:
        candidate = text.strip()
        path = Path(os.path.expandvars(os.path.expanduser(candidate))) if "\n" not in candidate else None
        if path is not None and not path.is_absolute() and ref.base_dir:
            path = Path(ref.base_dir) / path
        if path is None or not path.is_file():
            raise SecretMissing(f"{label} is not a .creds file (no NATS USER JWT block) nor a path to one")
        label = f"creds file {path}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise SecretMissing(f"{label} cannot be read ({exc.strerror or exc})") from None
        REDACTOR.add(text)
    lines = text.splitlines()
    token = _block_after(lines, "BEGIN NATS USER JWT")
    seed = _block_after(lines, "BEGIN USER NKEY SEED")
    if not token or token.startswith("---"):
        raise SecretMissing(f"{label} has no user JWT")
    if not seed or not seed.startswith("SU"):
        raise SecretMissing(f"{label} has no user nkey seed")
    return CredsFile(token, seed, _decode_jwt(token, label), _seed_public(seed))


def _seed_public(seed: str) -> str | None:
    import nkeys

    try:
        public: bytes = nkeys.from_seed(bytearray(seed.encode())).public_key
    except Exception:  # noqa: BLE001 - any malformed seed
        return None
    return public.decode()


@dataclass
class Material:
    """What ``nats.connect`` needs for one credential, and how to name it in messages."""

    mode: str
    identity: str
    options: dict[str, Any] = field(repr=False)
    creds: CredsFile | None = None


def load_material(credentials: NatsCredentials) -> Material:
    """Reveal the credential's secrets (``SecretMissing`` when absent) and build connect options."""
    mode = credentials.mode
    if credentials.creds is not None:
        creds = read_creds(credentials.creds)
        who = f"user {creds.user_name or '?'} ({_short_key(creds.user_public)})"
        return Material(mode, who, {"user_credentials": nats_client.RawCredentials(creds.canonical())}, creds)
    if credentials.nkey_seed is not None:
        seed = credentials.nkey_seed.reveal().strip()
        public = _seed_public(seed)
        if public is None:
            raise SecretMissing(f"secret {credentials.nkey_seed.label} is not an nkey seed")
        return Material(mode, f"nkey user {_short_key(public)}", {"nkeys_seed_str": seed})
    if credentials.user is not None and credentials.password is not None:
        password = credentials.password.reveal()
        return Material(mode, f"user {credentials.user}", {"user": credentials.user, "password": password})
    if credentials.token is not None:
        token = credentials.token.reveal().strip()
        return Material(mode, f"token user ({credentials.token.label})", {"token": token})
    return Material(mode, "anonymous user (no credential configured)", {})


# ---------------------------------------------------------------------------------------------
# the credential itself
# ---------------------------------------------------------------------------------------------


@dataclass
class CredentialFacts:
    """The user JWT of a ``.creds`` credential (read locally, not verified)."""

    source: str
    user_name: str | None
    user_public: str | None
    issuer_account: str | None
    issued_at: dt.datetime | None
    expires_at: dt.datetime | None

    def days_left(self, now: dt.datetime | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return (self.expires_at - (now or dt.datetime.now(dt.UTC))).total_seconds() / 86400

    def age_days(self, now: dt.datetime | None = None) -> float | None:
        if self.issued_at is None:
            return None
        return ((now or dt.datetime.now(dt.UTC)) - self.issued_at).total_seconds() / 86400

    @property
    def who(self) -> str:
        return f"user {self.user_name or '?'} ({_short_key(self.user_public)})"


async def probe_credential(ctx: ProbeContext[NatsTarget]) -> CredentialFacts:
    """Decode the user JWT of the target's ``.creds`` (no network)."""
    target = ctx.target
    assert target.creds is not None
    ctx.phase = f"reading {target.creds.label}"
    creds = read_creds(target.creds)
    return CredentialFacts(
        source=target.creds.label,
        user_name=creds.user_name,
        user_public=creds.user_public,
        issuer_account=creds.issuer_account,
        issued_at=creds.issued_at,
        expires_at=creds.expires_at,
    )
