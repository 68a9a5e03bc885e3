"""The sandbox's SLO demo service: a prometheus_client-instrumented aiohttp app with real traffic.

Run as a process (the sandbox and the self-tests start it through ``ManagedProcess``)::

    python -m opsverify_sandbox.slo_demo --port 19100 --load-rps 20 --route /api/fast

Routes:

- ``GET /jobs`` and ``GET /api/<name>`` — a jobs list behind a real in-memory cache (key: route and
  ``page``; ``--cache-ttl``) and a real per-client token-bucket rate limiter (client: ``client``
  query parameter or ``x-client-id`` header; ``--rate-limit`` requests per second, same burst).
  ``delay_ms=N`` makes the answer take N ms longer; ``status=5xx`` makes it fail with that status.
- ``GET /ws`` — a WebSocket echo; open sessions are the connection gauge.
- ``GET /metrics`` — Prometheus text format; ``GET /healthz`` — ``{"status": "ok"}``.

Metrics (named like the platforms the runbooks describe):

- ``http_request_duration_seconds{method, route}`` histogram; ``http_requests_total{method, route, status}``
- ``cache_hits_total{cache}`` / ``cache_misses_total{cache}`` (``cache`` = the route)
- ``active_websocket_connections`` (the CONNECTION_GAUGE), ``websocket_messages_total`` (MESSAGE_COUNTER)
- ``app_errors_total{type}`` (the ERROR_COUNTER: ``INTERNAL`` for 5xx, ``RATE_LIMITED`` for 429)

Every ``--route`` (and ``/jobs``) has its series created at 0 at start, so that Prometheus' ``rate()``
sees every request, including the first.

With ``--load-rps N`` (the sandbox uses 20) the process drives itself: N fast requests per second to
``/jobs`` (8 pages, 10 clients, 5–30 ms each, no errors) and ``--ws-clients`` WebSocket sessions that
send a message every half second — so the local environment's SLO checks have real numbers to judge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0)
STATUSES = ("200", "429", "500")


@dataclass
class Metrics:
    """The app's instruments, in their own registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.duration = Histogram(
            "http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
            buckets=BUCKETS, registry=r,
        )
        self.requests = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"], registry=r)
        self.cache_hits = Counter("cache_hits_total", "Lookups served from the cache", ["cache"], registry=r)
        self.cache_misses = Counter("cache_misses_total", "Lookups the cache could not serve", ["cache"], registry=r)
        self.connections = Gauge("active_websocket_connections", "Open WebSocket sessions", registry=r)
        self.messages = Counter("websocket_messages_total", "WebSocket messages received", registry=r)
        self.errors = Counter("app_errors_total", "Errors by type", ["type"], registry=r)
        for kind in ("INTERNAL", "RATE_LIMITED"):
            self.errors.labels(kind)

    def prepare(self, route: str) -> None:
        """Create the route's series at 0."""
        self.duration.labels("GET", route)
        for status in STATUSES:
            self.requests.labels("GET", route, status)
        self.cache_hits.labels(route)
        self.cache_misses.labels(route)


class TokenBucket:
    """Per-client token buckets: ``rate`` tokens per second, at most ``rate`` stored (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[client] = (tokens, now)
            return False
        self.buckets[client] = (tokens - 1, now)
        return True


@dataclass
class State:
    metrics: Metrics
    limiter: TokenBucket
    cache_ttl: float
    cache: dict[tuple[str, int], tuple[float, list[dict[str, Any]]]] = field(default_factory=dict)


STATE_KEY = web.AppKey("state", State)


def _jobs_page(page: int) -> list[dict[str, Any]]:
    return [{"id": page * 20 + i, "title": f"job {page * 20 + i}", "status": "open"} for i in range(20)]


async def jobs(request: web.Request) -> web.Response:
    """A jobs list: rate-limited per client, cached per page, optionally slow or failing."""
    state = request.app[STATE_KEY]
    route = request.path
    started = time.perf_counter()
    status = 500
    try:
        client = request.query.get("client") or request.headers.get("x-client-id") or request.remote or "-"
        if not state.limiter.allow(client):
            status = 429
            state.metrics.errors.labels("RATE_LIMITED").inc()
            return web.json_response({"error": "rate limited"}, status=status)
        delay_ms = min(float(request.query.get("delay_ms", "0")), 10_000.0)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        forced = int(request.query.get("status", "200"))
        if forced >= 500:
            status = forced
            state.metrics.errors.labels("INTERNAL").inc()
            return web.json_response({"error": "internal error"}, status=status)
        page = int(request.query.get("page", "0"))
        now = time.monotonic()
        cached = state.cache.get((route, page))
        if cached and cached[0] > now:
            state.metrics.cache_hits.labels(route).inc()
            items = cached[1]
        else:
            state.metrics.cache_misses.labels(route).inc()
            items = _jobs_page(page)
            state.cache[(route, page)] = (now + state.cache_ttl, items)
        status = 200
        return web.json_response({"page": page, "jobs": items})
    except ValueError:
        status = 400
        return web.json_response({"error": "bad query parameter"}, status=status)
    finally:
        state.metrics.duration.labels("GET", route).observe(time.perf_counter() - started)
        state.metrics.requests.labels("GET", route, str(status)).inc()


async def websocket(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE_KEY]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    state.metrics.connections.inc()
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                state.metrics.messages.inc()
                await ws.send_str(message.data)
    finally:
        state.metrics.connections.dec()
    return ws


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE_KEY].metrics.registry)
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(rate_limit: float = 20, cache_ttl: float = 2.0, routes: tuple[str, ...] = ()) -> web.Application:
    """The app, with the series of ``/jobs`` and ``routes`` created at 0."""
    state = State(Metrics(), TokenBucket(rate_limit), cache_ttl)
    for route in ("/jobs", *routes):
        state.metrics.prepare(route)
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_get("/jobs", jobs)
    app.router.add_get("/api/{name}", jobs)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def drive_load(base: str, rps: float, ws_clients: int, stop: asyncio.Event) -> None:
    """Fast, healthy traffic to ``/jobs`` at ``rps`` plus ``ws_clients`` chatty WebSocket sessions."""
    async with ClientSession(timeout=ClientTimeout(total=10)) as session:
        in_flight = asyncio.Semaphore(50)
        tasks: set[asyncio.Task[None]] = set()

        async def one(i: int) -> None:
            try:
                url = f"{base}/jobs?page={i % 8}&client=loadgen-{i % 10}&delay_ms={5 + (i * 7) % 25}"
                async with session.get(url) as response:
                    await response.read()
            except Exception:  # noqa: BLE001 - load traffic is best effort
                pass
            finally:
                in_flight.release()

        async def chat(n: int) -> None:
            while not stop.is_set():
                try:
                    async with session.ws_connect(f"{base}/ws") as ws:
                        while not stop.is_set():
                            await ws.send_str(f"hello from {n}")
                            await ws.receive(timeout=5)
                            with contextlib.suppress(asyncio.TimeoutError):
                                await asyncio.wait_for(stop.wait(), 0.5)
                except Exception:  # noqa: BLE001 - reconnect after a bounded pause
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1)

        chatters = [asyncio.create_task(chat(n)) for n in range(ws_clients)]
        i = 0
        period = 1 / rps if rps > 0 else 0
        next_at = time.monotonic()
        while rps > 0 and not stop.is_set():
            if in_flight.locked():
                pass  # the service is too slow to keep up: skip this beat
            else:
                await in_flight.acquire()
                task = asyncio.create_task(one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
            next_at += period
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        if rps <= 0:
            await stop.wait()
        for task in (*chatters, *tasks):
            task.cancel()


async def serve(args: argparse.Namespace) -> None:
    app = make_app(args.rate_limit, args.cache_ttl, tuple(args.route))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    stop = asyncio.Event()
    load = None
    if args.load_rps > 0 or args.ws_clients > 0:
        load = asyncio.create_task(drive_load(f"http://{args.host}:{args.port}", args.load_rps, args.ws_clients, stop))
    print(f"slo demo service ready on {args.host}:{args.port} (load {args.load_rps:g} rps)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        stop.set()
        if load is not None:
            load.cancel()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19100)
    parser.add_argument("--load-rps", type=float, default=0, help="self-driven requests per second to /jobs")
    parser.add_argument("--ws-clients", type=int, default=0, help="self-driven WebSocket sessions")
    parser.add_argument("--rate-limit", type=float, default=20, help="requests per second per client (0: off)")
    parser.add_argument("--cache-ttl", type=float, default=2.0, help="seconds a cached page stays fresh")
    parser.add_argument("--route", action="append", default=[], help="create this route's series at start")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
