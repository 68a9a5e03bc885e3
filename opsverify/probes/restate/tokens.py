"""Restate authentication probes: whether its endpoints refuse a missing or wrong token, the
previous token during a rotation, and the age and secret of the current one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import secrets

from opsverify.config.restate import RestateTarget
from opsverify.engine import ProbeContext
from opsverify.probes.restate.client import _Client
from opsverify.probes.restate.facts import AuthEndpoint, PreviousToken, RestateAuth, TokenAge, TokenSecret


async def probe_auth(ctx: ProbeContext[RestateTarget]) -> RestateAuth:
    """Knock on admin ``/version`` and the ingress health endpoint with the configured token,
    without a token and with a made-up one."""
    target = ctx.target
    assert target.token is not None
    wrong = "opsverify-not-a-token-" + secrets.token_urlsafe(18)
    endpoints: list[AuthEndpoint] = []
    async with _Client(ctx) as client:
        _ = client.token  # a missing secret errors before anything is sent
        ctx.phase = "sending requests with, without and with a wrong bearer token"
        for name, url in target.auth_urls.items():
            with_token, without, wronged = await asyncio.gather(
                client.send("GET", url),
                client.send("GET", url, bearer=None),
                client.send("GET", url, bearer=wrong),
            )
            endpoints.append(AuthEndpoint(name, url, with_token, without, wronged))
    return RestateAuth(endpoints=endpoints, token_label=target.token.label)


async def probe_previous_token(ctx: ProbeContext[RestateTarget]) -> PreviousToken:
    """Knock on the same endpoints as :func:`probe_auth` with the previous (rotated-out) token."""
    target = ctx.target
    assert target.previous_token is not None
    previous = target.previous_token.reveal().strip()
    ctx.phase = "sending requests with the previous bearer token"
    async with _Client(ctx) as client:
        names = list(target.auth_urls)
        answers = await asyncio.gather(
            *(client.send("GET", target.auth_urls[name], bearer=previous) for name in names)
        )
    return PreviousToken(label=target.previous_token.label, answers=dict(zip(names, answers)))


async def probe_token_age(ctx: ProbeContext[RestateTarget]) -> TokenAge:
    """The current token's age from ``token_issued_at`` (no network: the file records the date)."""
    target = ctx.target
    issued = target.issued_at
    assert issued is not None
    age = (dt.datetime.now(dt.UTC) - issued).total_seconds() / 86400
    label = target.token.label if target.token is not None else "the bearer token"
    return TokenAge(label=label, issued_at=issued, age_days=age)


async def probe_token_secret(ctx: ProbeContext[RestateTarget]) -> TokenSecret:
    """Read the token reference (and ``previous_token``) and compare them (no network, no value shown)."""
    target = ctx.target
    assert target.token is not None
    token = target.token.reveal().strip()
    problem = ""
    if token.lower().startswith("bearer"):
        problem = "a value that starts with 'Bearer' (store the token alone: the header prefix is added)"
    elif any(ch.isspace() for ch in token):
        problem = "a value with whitespace inside (more than one line or word: not one bearer token)"
    same = False
    previous_label = None
    if target.previous_token is not None:
        previous_label = target.previous_token.label
        previous = target.previous_token.reveal().strip()
        same = hmac.compare_digest(token.encode(), previous.encode())
    return TokenSecret(target.token.label, problem, previous_label, same)
