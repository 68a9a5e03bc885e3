"""A real HTTP server for self-tests that records what it was asked: count, paths, methods, peak concurrency.

``python -m tests.recorder --port P [--delay-ms D]``; ``GET /_stats`` returns the record,
``POST /_reset`` clears it (``requests`` lists ``METHOD path?query`` of each). A path under
``/_echo`` answers with what it was sent (method, path and query, headers, body) as JSON, so a
self-test can see a secret come back in every form it was sent in. Every other path answers 200
after the delay.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

STATS = web.AppKey("stats", dict)


def make_app(delay_ms: float) -> web.Application:
    app = web.Application()
    app[STATS] = {"count": 0, "running": 0, "peak": 0, "paths": [], "requests": []}

    async def stats(request: web.Request) -> web.Response:
        data = dict(request.app[STATS])
        return web.json_response(data)

    async def reset(request: web.Request) -> web.Response:
        request.app[STATS].update({"count": 0, "running": 0, "peak": 0, "paths": [], "requests": []})
        return web.json_response({})

    async def anything(request: web.Request) -> web.Response:
        record = request.app[STATS]
        record["count"] += 1
        record["paths"].append(request.path_qs)
        record["requests"].append(f"{request.method} {request.path_qs}")
        record["running"] += 1
        record["peak"] = max(record["peak"], record["running"])
        try:
            await asyncio.sleep(delay_ms / 1000)
        finally:
            record["running"] -= 1
        if request.path.startswith("/_echo"):
            return web.json_response({"method": request.method, "path": request.path_qs,
                                      "headers": dict(request.headers), "body": await request.text()})
        return web.json_response({"status": "ok"})

    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    web.run_app(make_app(args.delay_ms), host="127.0.0.1", port=args.port, print=None, access_log=None,
                backlog=4096)


if __name__ == "__main__":
    main()
