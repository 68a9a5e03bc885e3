"""NATS permissions: the publish / subscribe permission matrix (the server's violations matched
to subjects), and the account and permissions the server reports for the connected user.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsverify.config.base import Safety
from opsverify.config.nats import NatsTarget
from opsverify.engine import ProbeContext
from opsverify.errors import NatsPublishDenied, ProbeTimeout, UnexpectedResponse
from opsverify.lazy import lazy_module
from opsverify.safety import permit
from opsverify.probes.nats.connect import (
    CLOSE_S,
    DENIAL_WAIT_S,
    SETTLE_S,
    Direction,
    NatsConnection,
    _probe_headers,
    concrete_subject,
    connected,
    guarded,
)

if TYPE_CHECKING:
    import nats
    import nats.errors
    import nats.js.errors
else:
    nats = lazy_module("nats")  # nats.errors and nats.js.errors are imported by the package itself


# ---------------------------------------------------------------------------------------------
# permission matrix
# ---------------------------------------------------------------------------------------------


@dataclass
class SubjectVerdict:
    """How the server treated one configured subject."""

    subject: str
    tested_as: str
    denied: bool
    server_said: str | None = None

    @property
    def shown(self) -> str:
        return self.subject if self.tested_as == self.subject else f"{self.subject} (as {self.tested_as})"


@dataclass
class PermissionFacts:
    """The server's verdict for every configured subject of one direction."""

    direction: Direction
    identity: str
    verdicts: dict[str, SubjectVerdict]
    waited_s: float

    def denied_among(self, subjects: list[str]) -> list[SubjectVerdict]:
        return [self.verdicts[s] for s in subjects if self.verdicts[s].denied]

    def allowed_among(self, subjects: list[str]) -> list[SubjectVerdict]:
        return [self.verdicts[s] for s in subjects if not self.verdicts[s].denied]


async def _await_violations(
    ctx: ProbeContext[NatsTarget], conn: NatsConnection, direction: Direction, must_deny: set[str]
) -> float:
    """Listen for violations: at least :data:`SETTLE_S`, up to :data:`DENIAL_WAIT_S` for denials."""
    started = time.monotonic()
    limit = min(DENIAL_WAIT_S, ctx.left(reserve=CLOSE_S / 4, floor=SETTLE_S))
    while True:
        elapsed = time.monotonic() - started
        seen = set(conn.errors.violations(direction))
        if elapsed >= SETTLE_S and {s.lower() for s in must_deny} <= seen:
            return elapsed
        if elapsed >= limit:
            return elapsed
        await asyncio.sleep(0.02)


async def probe_permissions(ctx: ProbeContext[NatsTarget], direction: Direction) -> PermissionFacts:
    """Publish to / subscribe on every allowed and denied subject; collect the server's verdicts."""
    target = ctx.target
    allow: list[str] = getattr(target, f"allow_{direction}")
    deny: list[str] = getattr(target, f"deny_{direction}")
    if direction == "publish":
        permit(ctx, Safety.mutating, f"publishes to {', '.join([*allow, *deny])}")
    conn = await connected(ctx)
    try:
        tested = {s: (concrete_subject(s) if direction == "publish" else s) for s in [*allow, *deny]}
        ctx.phase = f"testing {direction} permissions of {conn.identity}"
        for subject in tested.values():
            if direction == "publish":
                await conn.client.publish(subject, b"", headers=_probe_headers(conn, "permission-check"))
            else:
                await conn.client.subscribe(subject)
        await conn.client.flush(timeout=max(1, int(ctx.left())))
        waited = await _await_violations(ctx, conn, direction, {tested[s] for s in deny})
        seen = conn.errors.violations(direction)
        verdicts = {
            subject: SubjectVerdict(subject, concrete, concrete.lower() in seen, seen.get(concrete.lower()))
            for subject, concrete in tested.items()
        }
        return PermissionFacts(direction, conn.identity, verdicts, waited)
    except nats.errors.TimeoutError:
        raise ProbeTimeout(f"{conn.where} did not answer a flush within {ctx.timeout:g} s ({ctx.phase})") from None
    finally:
        await conn.close()


@dataclass
class AccountFacts:
    """The account a credential belongs to, and where we learned it."""

    public_key: str | None
    name: str | None
    source: str

    def matches(self, expected: str) -> bool:
        return expected in {self.public_key, self.name}

    @property
    def shown(self) -> str:
        parts = [p for p in (self.name, self.public_key) if p]
        return " / ".join(parts) or "unknown"


USER_INFO = "$SYS.REQ.USER.INFO"


async def probe_account(ctx: ProbeContext[NatsTarget]) -> AccountFacts:
    """The credential's account: from the user JWT when a public key is expected and the
    credential is a ``.creds``; otherwise as the server reports it (``$SYS.REQ.USER.INFO``)."""
    target = ctx.target
    if target.creds is not None and target.account_is_key:
        creds = await ctx.depend("nats_credential")
        return AccountFacts(creds.issuer_account, None, "the user JWT's issuer")
    conn = await connected(ctx)
    try:
        ctx.phase = f"asking {USER_INFO}"
        try:
            wait = ctx.left(reserve=CLOSE_S / 4)
            msg = await guarded(conn, conn.client.request(USER_INFO, b"", timeout=wait), USER_INFO)
        except (NatsPublishDenied, nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
            why = str(exc) if isinstance(exc, NatsPublishDenied) else "no answer"
            raise UnexpectedResponse(
                f"cannot read the account of {conn.identity}: {USER_INFO} failed ({why}); "
                "configure the account's public key to check it from the creds instead"
            ) from None
        try:
            data = json.loads(msg.data).get("data") or {}
        except (ValueError, AttributeError):
            raise UnexpectedResponse(f"{USER_INFO} answered with something that is not JSON") from None
        account = data.get("account")
        name = data.get("account_name") or (account if account and not account.startswith("A") else None)
        return AccountFacts(account if isinstance(account, str) else None, name, f"the server ({USER_INFO})")
    finally:
        await conn.close()
