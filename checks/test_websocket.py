"""Synthetic WebSocket checks (runbook edge.md: scaling with WebSockets and rate limits)."""

from __future__ import annotations

import json

import pytest

from opsverify.errors import JsonPathError
from opsverify.jsonpath import lookup

NORMAL_CLOSURE = 1000


def _require_handshake(exchange, expect):
    __tracebackhide__ = True
    expect.that(exchange.accepted, expected="the WebSocket handshake accepted (101)", actual=exchange.handshake,
                action="the connection itself failed: see runbook websocket#handshake")


def _reply_mismatches(reply: str, target) -> list[str]:
    wrong = []
    if target.reply_contains is not None and target.reply_contains not in reply:
        wrong.append(f"no {target.reply_contains!r} in it")
    if target.reply_json:
        try:
            data = json.loads(reply)
        except ValueError:
            return wrong + ["not JSON"]
        for path, want in target.reply_json.items():
            try:
                seen = lookup(data, path)
            except JsonPathError:
                wrong.append(f"{path} missing")
                continue
            if seen != want:
                wrong.append(f"{path} = {seen!r} (want {want!r})")
    return wrong


def _shown(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat[:limit] + ("…" if len(flat) > limit else "")


@pytest.mark.smoke
@pytest.mark.runbook("websocket#handshake")
@pytest.mark.severity("critical")
def test_websocket_handshake_is_accepted(websocket_exchange, target, expect):
    expect.record("websocket connect", websocket_exchange.connect_ms, unit="ms")
    expect.that(websocket_exchange.accepted, expected=f"the WebSocket handshake to {target.url} accepted (101)",
                actual=websocket_exchange.handshake)


@pytest.mark.smoke
@pytest.mark.runbook("websocket#message-flow")
@pytest.mark.severity("critical")
def test_websocket_reply_matches_the_message_sent(websocket_exchange, target, expect):
    _require_handshake(websocket_exchange, expect)
    reply = websocket_exchange.reply
    expect.that(reply is not None, expected=f"a reply to {_shown(target.send)}", actual=websocket_exchange.reply_problem)
    wrong = _reply_mismatches(reply, target)
    wanted = " and ".join(
        ([f"containing {target.reply_contains!r}"] if target.reply_contains is not None else [])
        + ([f"with {json.dumps(target.reply_json)}"] if target.reply_json else [])
    )
    expect.that(not wrong, expected=f"a reply {wanted}", actual=f"{_shown(reply)} ({'; '.join(wrong)})")


@pytest.mark.smoke
@pytest.mark.runbook("websocket#latency")
def test_websocket_reply_arrives_within_latency_budget(websocket_exchange, websocket_reply_latency, target, expect):
    _require_handshake(websocket_exchange, expect)
    expect.that(websocket_exchange.reply_ms is not None, expected="a reply to time",
                actual=websocket_exchange.reply_problem)
    expect.latency_at_most(websocket_reply_latency, target.max_latency_ms, what="WebSocket reply latency")


@pytest.mark.smoke
@pytest.mark.runbook("websocket#clean-close")
def test_websocket_closes_cleanly(websocket_exchange, target, expect):
    _require_handshake(websocket_exchange, expect)
    code = websocket_exchange.close_code
    reason = f" ({websocket_exchange.close_reason})" if websocket_exchange.close_reason else ""
    expect.that(code == NORMAL_CLOSURE, expected="a normal close (code 1000)",
                actual=f"close code {code}{reason}" if code is not None else "no close code")


@pytest.mark.disruptive
@pytest.mark.configured("connection_cap")
@pytest.mark.runbook("websocket#connection-cap")
def test_websocket_connection_beyond_cap_is_refused(websocket_cap_test, target, expect):
    cap = websocket_cap_test
    if cap.refused_at is not None:
        expect.fact("refused_at", f"connection {cap.refused_at} of {cap.cap + 1}: {cap.refusal}")
    expect.that(
        cap.refused_at is not None,
        expected=f"connection {cap.cap + 1} refused (cap {cap.cap})",
        actual=f"all {cap.opened} connections accepted",
    )
