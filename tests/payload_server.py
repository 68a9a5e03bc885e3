"""A real HTTP(S) server answering fixed payloads per path, for the content checks and mutual TLS.

Each route is ``path -> (status, content type, body)``. With an ``ssl.SSLContext`` it serves HTTPS
(a context with ``verify_mode = CERT_REQUIRED`` demands a client certificate, as a mutual-TLS
ingress does); the handshake happens in the handler thread, so a refused client certificate never
stops the server.

Example::

    with PayloadServer({"/healthz": (200, "application/json", '{"ok": true}')}) as server:
        server.url("/healthz")
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # a refused client certificate: the client sees the alert
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        status, content_type, body = self.server.routes.get(self.path, (404, "text/plain", "not found"))
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class PayloadServer:
    """Serves ``routes`` on 127.0.0.1 (a free port) until closed."""

    def __init__(self, routes: dict[str, Route], context: ssl.SSLContext | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.routes = routes
        self._server.context = context
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        scheme = "https" if self._server.context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PayloadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
