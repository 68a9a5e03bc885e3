"""The sandbox's platform demo (:mod:`opsverify_sandbox.platform_demo`): WebSocket, rate limit, JWT, API
keys, JWKS and HMAC webhooks, healthy, on three listeners of one process.

Ports (fixed, as ``environments/local.yaml`` names them):

* 18090 - plain HTTP / ws: every check of the ``websocket``, ``ratelimit``, ``auth`` and ``webhooks``
  sections (rate limit 20 requests per 10 s per client id);
* 18091 - HTTPS / wss with a certificate from the sandbox CA (``ca.pem``), for ``wss://``;
* 18092 - plain ws with a connection cap of 3, for the disruptive connection-cap check (its own
  instance, so holding its cap never refuses the other checks' connections).

Secrets (RSA signing keys, client secret, admin and WebSocket tokens, API keys, webhook secret) are
generated at the first start into ``<state>/platform/secrets`` (mode 0600) and kept across restarts;
the environment file refers to them by ``{file: ...}``.
"""

from __future__ import annotations

from pathlib import Path

from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.platform_demo import start_platform_demo
from opsverify_sandbox.services.demo import ensure_ca

HTTP_PORT = 18090
TLS_PORT = 18091
CAP_PORT = 18092
CAP = 3


@service("platform", order=15)
def start_platform(directory: Path) -> Started:
    """Platform demo: WebSocket, rate limit, JWT/JWKS, API keys, HMAC webhooks (18090-18092)."""
    workdir = directory / "platform"
    ca = ensure_ca(directory)
    cert, key = ca.issue(["localhost", "127.0.0.1"], days=90).write(workdir / "server.pem", workdir / "server.key")
    demo = start_platform_demo(
        workdir,
        {"http": (HTTP_PORT, ""), "tls": (TLS_PORT, "tls"), "cap": (CAP_PORT, f"ws-cap={CAP}")},
        cert=cert,
        key=key,
        log_name="../logs/platform.log",
    )
    return Started([demo.process], {"http": HTTP_PORT, "https": TLS_PORT, "ws-cap": CAP_PORT},
                   {"secrets": str(demo.secrets_dir), "ws_cap": CAP})
