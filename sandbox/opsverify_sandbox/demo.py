"""The sandbox's demo service: a real HTTP(S) server that is healthy by default and faultable.

Run as a process (the sandbox and the self-tests start it through ``ManagedProcess``)::

    python -m opsverify_sandbox.demo --http 18080 \
        --https 18443:certs/server.pem:certs/server.key \
        --https 18444:certs/expired.pem:certs/expired.key:TLSv1.2 \
        --blackhole 18099

Routes:

- ``GET /healthz`` → ``{"status": "ok", "checks": [...]}`` (status/delay changeable at run time)
- ``GET /api/admin/health`` → the deploy runbook's admin health payload
- ``GET /status/{code}`` → answers with ``code``; ``GET /slow?ms=N`` → answers after N ms
- ``GET /redirect`` → 302 to ``/healthz`` (``?status=300`` … ``399`` for another redirect status);
  ``GET /echo`` → the request headers as JSON
- ``GET /maintenance`` → 200 with an HTML maintenance page (a proxy's, where JSON was expected)
- ``GET /big?kb=N`` → a JSON health payload padded to about N KiB
- ``POST /_fault`` ``{"healthz_status": 500, "delay_ms": 800}`` → fault the health endpoint;
  ``POST /_fault`` ``{}`` → healthy again

A ``--blackhole`` port accepts TCP connections and never answers (a stalled service).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from typing import Any

from aiohttp import web

STATE_KEY = web.AppKey("state", dict)


async def healthz(request: web.Request) -> web.Response:
    state: dict[str, Any] = request.app[STATE_KEY]
    if state.get("delay_ms"):
        await asyncio.sleep(state["delay_ms"] / 1000)
    status = int(state.get("healthz_status", 200))
    healthy = status < 400
    body = {
        "status": "ok" if healthy else "degraded",
        "version": "1.4.2",
        "checks": [{"name": "database", "healthy": healthy}, {"name": "cache", "healthy": True}],
    }
    return web.json_response(body, status=status, headers={"x-request-id": f"req-{time.monotonic_ns()}"})


async def admin_health(request: web.Request) -> web.Response:
    state: dict[str, Any] = request.app[STATE_KEY]
    healthy = int(state.get("healthz_status", 200)) < 400
    return web.json_response(
        {"ok": healthy, "db": "up" if healthy else "down", "redis": "up", "migrations": "applied"},
        status=200 if healthy else 503,
    )


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.json_response({"status": code}, status=code)


async def slow(request: web.Request) -> web.Response:
    delay_ms = float(request.query.get("ms", "500"))
    await asyncio.sleep(min(delay_ms, 60_000) / 1000)
    return web.json_response({"status": "ok", "delayed_ms": delay_ms})


async def echo(request: web.Request) -> web.Response:
    """Echo the request headers back (lets self-tests prove a secret never reaches a report)."""
    credentials = {k.lower(): v for k, v in request.headers.items() if k.lower() in {"authorization", "x-api-key"}}
    return web.json_response({**credentials, "headers": dict(request.headers)})


async def redirect(request: web.Request) -> web.Response:
    code = int(request.query.get("status", "302"))
    if not 300 <= code <= 399:
        raise web.HTTPBadRequest(text="status must be a redirect (300..399)")
    return web.Response(status=code, headers={"Location": "/healthz"})


async def maintenance(request: web.Request) -> web.Response:
    page = "<html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>"
    return web.Response(text=page, content_type="text/html")


async def big(request: web.Request) -> web.Response:
    size = max(1, min(int(request.query.get("kb", "300")), 4096)) * 1024
    return web.json_response({"padding": "x" * size, "status": "ok"})


async def fault(request: web.Request) -> web.Response:
    state: dict[str, Any] = request.app[STATE_KEY]
    try:
        wanted = await request.json()
    except json.JSONDecodeError:
        wanted = {}
    state.clear()
    state.update({k: v for k, v in wanted.items() if k in {"healthz_status", "delay_ms"}})
    return web.json_response({"fault": state})


def make_app() -> web.Application:
    """The demo service's aiohttp application (healthy state)."""
    app = web.Application()
    app[STATE_KEY] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/admin/health", admin_health)
    app.router.add_get("/status/{code:\\d{3}}", status)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/maintenance", maintenance)
    app.router.add_get("/big", big)
    app.router.add_get("/echo", echo)
    app.router.add_post("/_fault", fault)
    return app


def _server_ssl(cert: str, key: str, max_version: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if max_version:
        ctx.maximum_version = getattr(ssl.TLSVersion, max_version.replace(".", "_"))
    return ctx


async def _blackhole(port: int, host: str) -> asyncio.AbstractServer:
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, never answer

    return await asyncio.start_server(accept, host, port)


async def serve(args: argparse.Namespace) -> None:
    app = make_app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in args.http:
        await web.TCPSite(runner, args.host, port).start()
    for spec in args.https:
        parts = spec.split(":")
        port, cert, key = int(parts[0]), parts[1], parts[2]
        max_version = parts[3] if len(parts) > 3 else None
        await web.TCPSite(runner, args.host, port, ssl_context=_server_ssl(cert, key, max_version)).start()
    holes = [await _blackhole(port, args.host) for port in args.blackhole]
    print(f"demo service ready (http {args.http}, https {len(args.https)}, blackhole {args.blackhole})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for hole in holes:
            hole.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http", type=int, action="append", default=[])
    parser.add_argument("--https", action="append", default=[], metavar="PORT:CERT:KEY[:MAXVERSION]")
    parser.add_argument("--blackhole", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
