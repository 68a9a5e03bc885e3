"""A real HTTP webhook receiver with a correct and two faulty verification policies.

Every policy needs ``x-tenant-id`` and ``x-omerta-signature: sha256=<hex>`` over
``<x-omerta-timestamp>.<raw body>``:

* ``/strict``: verifies with the current secret only and refuses a timestamp more than
  ``TOLERANCE_S`` away from now (401 ``stale timestamp``): correct after a rotation;
* ``/both-secrets``: also verifies with the retired secret (correct during a rotation's overlap,
  a fault once the rotation is done);
* ``/no-age-check``: verifies the signature but not the timestamp's age: replays get through.

Example::

    with WebhookReceiver(current=b"k2", retired=b"k1") as hooks:
        hooks.url("/strict")
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300
POLICIES = ("/strict", "/both-secrets", "/no-age-check")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    current: bytes
    retired: bytes


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self, status: int, message: str) -> None:
        data = json.dumps({"result": message} if status < 400 else {"error": message}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path not in POLICIES:
            return self._answer(404, "no such hook")
        if not self.headers.get("x-tenant-id"):
            return self._answer(400, "missing tenant")
        stamp, given = self.headers.get("x-omerta-timestamp", ""), self.headers.get("x-omerta-signature", "")
        if not stamp.isdigit() or not given:
            return self._answer(401, "missing signature or timestamp")
        keys = [self.server.current] + ([self.server.retired] if self.path == "/both-secrets" else [])
        signed = stamp.encode() + b"." + body
        if not any(hmac.compare_digest(given, "sha256=" + hmac.new(k, signed, hashlib.sha256).hexdigest())
                   for k in keys):
            return self._answer(401, "signature mismatch")
        if self.path != "/no-age-check" and abs(time.time() - int(stamp)) > TOLERANCE_S:
            return self._answer(401, "stale timestamp")
        return self._answer(202, "accepted")

    def log_message(self, *args: Any) -> None:
        pass


class WebhookReceiver:
    """The receiver on 127.0.0.1 (a free port), verifying with ``current`` (and ``retired``)."""

    def __init__(self, current: bytes, retired: bytes) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.current, self._server.retired = current, retired
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
