"""The HTTP side of ``opsverify serve``: aiohttp on its own thread and event loop.

Example::

    web = start_web(state, "127.0.0.1", 9464)      # raises ConfigError("--listen", ...) if it cannot bind
    ...
    web.stop()

Routes: ``/metrics``, ``/healthz``, ``/livez``, ``/status`` (the ``status_page`` callable, when one
is given: it returns the page's HTML; without one, 404 saying so) and ``/`` (what is served here).
Handlers only copy what :class:`~opsverify.serve.state.ServeState` holds: no work on the probe loop.
aiohttp comes with the ``serve`` extra (``pip install 'opsverify[serve]'``); without it, importing
this module raises an :class:`~opsverify.errors.OpsverifyError` saying so.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST

from opsverify.config.secrets import REDACTOR
from opsverify.errors import ConfigError, OpsverifyError
from opsverify.serve.state import ServeState

try:
    from aiohttp import web
except ImportError:
    raise OpsverifyError("needs aiohttp, which the serve extra installs: pip install 'opsverify[serve]'") from None

StatusPage = Callable[[], str]


def make_app(state: ServeState, status_page: StatusPage | None = None) -> web.Application:
    """The aiohttp application answering every route."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=state.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        verdict = state.verdict()
        return web.Response(status=verdict.status, text=verdict.text + "\n")

    async def livez(_: web.Request) -> web.Response:
        alive, text = state.liveness()
        return web.Response(status=200 if alive else 503, text=text + "\n")

    async def status(_: web.Request) -> web.Response:
        if status_page is None:
            return web.Response(status=404, text="no status page: start serve with --history PATH to have one\n")
        try:
            html = await asyncio.to_thread(status_page)
        except OpsverifyError as exc:
            return web.Response(status=503, text=f"the status page cannot be read: {REDACTOR.redact(str(exc))}\n")
        return web.Response(text=html, content_type="text/html")

    async def index(_: web.Request) -> web.Response:
        return web.Response(text="opsverify serve: /metrics /healthz /livez /status\n")

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics), web.get("/healthz", healthz), web.get("/livez", livez),
                    web.get("/status", status), web.get("/", index)])
    return app


@dataclass
class WebServer:
    """A running server (its loop thread and aiohttp runner)."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    runner: web.AppRunner

    def stop(self) -> None:
        """Close the listener and end the thread (bounded)."""
        future = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop)
        try:
            future.result(timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


def start_web(state: ServeState, host: str, port: int, status_page: StatusPage | None = None) -> WebServer:
    """Listen on ``host:port`` in a background thread; a bind failure is a usage error naming --listen."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="opsverify-serve-web", daemon=True)
    thread.start()
    runner = web.AppRunner(make_app(state, status_page), access_log=None, handle_signals=False)

    async def begin() -> None:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()

    try:
        asyncio.run_coroutine_threadsafe(begin(), loop).result(timeout=10)
    except OSError as exc:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        raise ConfigError("--listen", "", f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return WebServer(loop, thread, runner)
