"""An EMULATOR of Cloudflare's token verify endpoint (``GET /client/v4/user/tokens/verify``), for sandbox and self-tests.

The real endpoint is on the public internet and needs a real Cloudflare account, which neither the
sandbox nor the self-tests may use; this aiohttp server answers with Cloudflare's documented
envelope (``success``, ``errors[{code, message}]``, ``messages``, ``result``):

* a known, active token: 200 ``{"success": true, "result": {"id", "status": "active", "not_before",
  "expires_on"}, "messages": [{"code": 10000, "message": "This API Token is valid and active"}]}``
  (``expires_on`` left out for a token without expiry, as Cloudflare does);
* a known token that was switched off: 200 with ``result.status`` ``disabled`` (or ``expired``);
* an unknown (wrong, deleted, revoked) token: 401 ``{"success": false, "errors": [{"code": 1000,
  "message": "Invalid API Token"}], "result": null}``;
* no ``Authorization`` header: 400 with code 9106.

Tokens come from a JSON file (``--tokens``): ``{"<token value>": {"id": "...", "status": "active",
"expires_in_days": 40}}`` (``expires_in_days`` is relative to the server's start, so tests stay
valid on any date; ``null`` = no expiry). The file is re-read at every request, so a test can
revoke a token by rewriting it.

Run: ``python -m opsverify_sandbox.servers.token_verify --port 18310 --tokens tokens.json``.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from opsverify_sandbox.files import write_private
from opsverify_sandbox.process import ManagedProcess, start_python_server

VERIFY_PATH = "/client/v4/user/tokens/verify"


def _envelope(success: bool, result: Any, errors: list[dict[str, Any]], messages: list[dict[str, Any]],
              status: int) -> web.Response:
    body = {"success": success, "errors": errors, "messages": messages, "result": result}
    return web.json_response(body, status=status)


def make_app(tokens_file: Path) -> web.Application:
    """The emulator: verifies ``Authorization: Bearer <token>`` against ``tokens_file``."""
    started = datetime.now(timezone.utc).replace(microsecond=0)

    async def verify(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header:
            return _envelope(False, None, [{"code": 9106, "message": "Missing X-Auth-Key, X-Auth-Email or "
                                            "Authorization headers"}], [], 400)
        token = header.removeprefix("Bearer ").strip()
        known: dict[str, Any] = json.loads(tokens_file.read_text())
        record = known.get(token)
        if record is None:
            return _envelope(False, None, [{"code": 1000, "message": "Invalid API Token"}], [], 401)
        result: dict[str, Any] = {"id": record["id"], "status": record.get("status", "active"),
                                  "not_before": (started - timedelta(days=1)).isoformat().replace("+00:00", "Z")}
        if record.get("expires_in_days") is not None:
            expires = started + timedelta(days=float(record["expires_in_days"]))
            result["expires_on"] = expires.isoformat().replace("+00:00", "Z")
        if "expires_on" in record:  # an explicit (possibly malformed) value wins
            result["expires_on"] = record["expires_on"]
        messages = [{"code": 10000, "message": "This API Token is valid and active"}] \
            if result["status"] == "active" else []
        return _envelope(True, result, [], messages, 200)

    app = web.Application()
    app.router.add_get(VERIFY_PATH, verify)
    return app


def write_tokens(path: Path, tokens: dict[str, dict[str, Any]]) -> None:
    """Write the token table (mode 0600: it holds token values)."""
    write_private(path, json.dumps(tokens, indent=2) + "\n")


def start_token_verify(workdir: Path, tokens: dict[str, dict[str, Any]], *, port: int,
                       name: str = "token-verify") -> tuple[ManagedProcess, Path]:
    """Start the emulator on 127.0.0.1:``port``; returns the process and the token table's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    table = workdir / f"{name}.json"
    write_tokens(table, tokens)
    proc = start_python_server("opsverify_sandbox.servers.token_verify", "--tokens", str(table),
                               port=port, workdir=workdir, name=name)
    return proc, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cloudflare token-verify endpoint emulator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tokens", type=Path, required=True)
    args = parser.parse_args(argv)
    web.run_app(make_app(args.tokens), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
