"""``websocket:`` section: synthetic WebSocket checks (message flow, latency, clean close, connection cap).

A target is one WebSocket endpoint. The checker connects (``ws://`` or ``wss://`` with a CA bundle),
optionally authenticated by a header or a token in the query string, sends one message, expects a
matching reply within the latency budget and closes with code 1000. ``connection_cap`` turns on the
``disruptive`` cap check: it opens ``connection_cap + 1`` connections and expects the server to refuse
one of them (point it at a canary instance: while it holds the connections, real clients may be
refused too).

Its keys: ``docs/environment/reference.md#websocket``;
an example and its checks: ``docs/environment/websocket.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from opsverify.config.base import Target, section, threshold_or
from opsverify.config.http import HeaderValue
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MaxMs
from opsverify.config.values import WsUrl


class WebSocketTarget(Target):
    """A WebSocket endpoint, the message to send and the reply a healthy service gives."""

    url: WsUrl = Field(pattern=r"^wss?://", description="ws:// or wss:// URL of the endpoint")
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    headers: dict[str, str | HeaderValue] = Field(
        default_factory=dict, description="handshake headers; values may be secret references (with prefix)"
    )
    token: SecretRef | None = Field(default=None, description="a token sent in the query string")
    token_param: str = Field(default="token", pattern=r"^[A-Za-z0-9_.-]+$")
    send: str = Field(default='{"type": "ping", "id": "opsverify"}', min_length=1)
    reply_json: dict[str, Any] | None = Field(default=None, description="path -> value the JSON reply must have")
    reply_contains: str | None = None
    max_latency_ms: MaxMs | None = Field(default=None, description="latency budget; default: defaults.http_latency_ms")
    connection_cap: int | None = Field(default=None, ge=1, le=1000,
                                       description="the server's connection cap (enables the disruptive cap check)")

    @model_validator(mode="after")
    def _some_reply_expectation(self) -> WebSocketTarget:
        if self.reply_json is None and self.reply_contains is None:
            self.reply_contains = self.send if not self.send.lstrip().startswith("{") else None
            if self.reply_contains is None:
                raise ValueError("say what the reply must be: reply_json and/or reply_contains")
        return self

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.max_latency_ms = threshold_or(self.max_latency_ms, defaults.http_latency_ms)


section(
    "websocket",
    WebSocketTarget,
    system="websocket",
    doc="WebSocket endpoints: handshake, message round trip and latency, clean close, connection cap",
)
