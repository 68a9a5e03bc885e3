"""The sandbox's third-party token provider: the Cloudflare token-verify EMULATOR of
:mod:`opsverify_sandbox.servers.token_verify` (the real endpoint needs a Cloudflare account).

Port (fixed, as ``environments/local.yaml`` names it): 18310. At every start a fresh API token is
generated into ``<state>/tokens/cloudflare-token`` (mode 0600), known to the emulator as active and
expiring 60 days after the start.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from opsverify_sandbox.files import write_private
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.token_verify import start_token_verify

PORT = 18310
EXPIRES_IN_DAYS = 60


@service("token-verify", order=81)
def start_token_sandbox(directory: Path) -> Started:
    """Cloudflare token-verify emulator with one active token (expires in 60 days)."""
    workdir = directory / "tokens"
    workdir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(30)
    path = workdir / "cloudflare-token"
    write_private(path, token + "\n")
    tokens = {token: {"id": secrets.token_hex(16), "status": "active", "expires_in_days": EXPIRES_IN_DAYS}}
    proc, _ = start_token_verify(workdir, tokens, port=PORT)
    return Started([proc], {"http": PORT}, {"verify_url": f"http://127.0.0.1:{PORT}/client/v4/user/tokens/verify",
                                            "emulator": True})
