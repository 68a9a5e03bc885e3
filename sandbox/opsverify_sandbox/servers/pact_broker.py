"""A Pact Broker EMULATOR (not the real broker) serving the broker's real JSON shapes, for the sandbox and self-tests.

Why an emulator: the real Pact Broker is a Ruby application (gem ``pact_broker`` + a database) and
no registry this project may use ships it (PyPI's ``pact-python-cli`` carries only the broker
*client*, ``pact broker ...``). So this small aiohttp server answers the read endpoints the checks
use, with the shapes of pact_broker's own decorators:

* ``GET /diagnostic/status/heartbeat`` -> ``{"ok": true, "_links": {"self": {"href": ...}}}``
  (``application/hal+json``); ``--heartbeat-delay-ms`` and ``--heartbeat-status`` make it slow or
  failing, the faults the heartbeat checks exist to catch.
* ``GET /matrix?q[][pacticipant]=P&q[][version]=V&latestby=cvp&environment=E`` and
  ``GET /can-i-deploy?pacticipant=P&version=V&environment=E`` -> the matrix decorator's shape:
  ``{"summary": {"deployable", "reason", "success", "failed", "unknown"}, "matrix": [{"consumer":
  {"name", "version": {"number", "branch", "tags"}}, "provider": {...} | version null, "pact":
  {"createdAt"}, "verificationResult": {"success", "verifiedAt"} | null}]}``; ``reason`` joins the
  reasons with newlines, worded like pact_broker's ReasonDecorator.
* ``GET /`` -> a HAL index with ``pb:latest-version`` ... links, enough for clients that start there.
* An unknown environment -> HTTP 400 ``{"errors": {"environment": ["..."]}}``.
* ``--token-file F``: every request must carry ``Authorization: Bearer <contents of F>`` (401
  otherwise), like PactFlow or a broker behind an auth proxy.

The matrix is computed from a JSON data file (``--data``), not from published pacts: there is no
publish / record-deployment API. Data file::

    {"environments": ["production"],
     "pacts": [{"consumer": "web-ui", "consumer_version": "c1", "provider": "auth-edge",
                "verifications": [{"provider_version": "p1", "success": true}]}],
     "deployed": {"production": {"auth-edge": "p1", "web-ui": "c0"}}}

Semantics (a simplification of ``latestby=cvp`` with an environment): for version V of P, every pact
in which V is the consumer is judged against the provider version deployed to E, and every pact
of a consumer version deployed to E with provider P is judged against V. A pair without a
verification result is unknown; deployable means every pair succeeded. A version the data file
never mentions is not deployable ("No pacts or verifications have been published ...").

Run: ``python -m opsverify_sandbox.servers.pact_broker --port 18300 --data broker.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from opsverify_sandbox.process import ManagedProcess, start_python_server

HAL = "application/hal+json"
CREATED_AT = "2026-01-01T00:00:00+00:00"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type=HAL)


def _version(number: str | None, base: str, name: str) -> dict[str, Any] | None:
    if number is None:
        return None
    return {"number": number, "branch": None, "tags": [],
            "_links": {"self": {"href": f"{base}/pacticipants/{name}/versions/{number}"}}}


def _row(base: str, pact: dict[str, Any], provider_version: str | None) -> dict[str, Any]:
    consumer, provider = pact["consumer"], pact["provider"]
    verification = None
    for result in pact.get("verifications", []):
        if result["provider_version"] == provider_version:
            verification = {
                "success": bool(result["success"]),
                "verifiedAt": result.get("verified_at", CREATED_AT),
                "_links": {"self": {"href": f"{base}/pacts/provider/{provider}/consumer/{consumer}"
                                            f"/verification-results/{provider_version}"}},
            }
    return {
        "consumer": {"name": consumer, "version": _version(pact["consumer_version"], base, consumer),
                     "_links": {"self": {"href": f"{base}/pacticipants/{consumer}"}}},
        "provider": {"name": provider, "version": _version(provider_version, base, provider),
                     "_links": {"self": {"href": f"{base}/pacticipants/{provider}"}}},
        "pact": {"createdAt": CREATED_AT, "_links": {"self": {
            "href": f"{base}/pacts/provider/{provider}/consumer/{consumer}/version/{pact['consumer_version']}"}}},
        "verificationResult": verification,
    }


def matrix(data: dict[str, Any], base: str, pacticipant: str, version: str, environment: str) -> dict[str, Any]:
    """The matrix decorator's answer for ``version`` of ``pacticipant`` going to ``environment``."""
    deployed: dict[str, str] = data.get("deployed", {}).get(environment, {})
    pacts: list[dict[str, Any]] = data.get("pacts", [])
    known = any(
        (p["consumer"] == pacticipant and p["consumer_version"] == version)
        or (p["provider"] == pacticipant and any(v["provider_version"] == version for v in p.get("verifications", [])))
        for p in pacts
    )
    rows: list[dict[str, Any]] = []
    reasons: list[str] = []
    for pact in pacts if known else []:
        if pact["consumer"] == pacticipant and pact["consumer_version"] == version:
            provider_version = deployed.get(pact["provider"])
            if provider_version is not None:
                rows.append(_row(base, pact, provider_version))
        elif pact["provider"] == pacticipant and deployed.get(pact["consumer"]) == pact["consumer_version"]:
            rows.append(_row(base, pact, version))
    counts = {"success": 0, "failed": 0, "unknown": 0}
    for row in rows:
        consumer, provider = row["consumer"], row["provider"]
        consumer_desc = f"version {consumer['version']['number']} of {consumer['name']}"
        provider_number = (provider["version"] or {}).get("number")
        provider_desc = f"version {provider_number} of {provider['name']}"
        result = row["verificationResult"]
        if result is None:
            counts["unknown"] += 1
            reasons.append(f"There is no verified pact between {consumer_desc} and {provider_desc}")
        elif result["success"]:
            counts["success"] += 1
        else:
            counts["failed"] += 1
            reasons.append(f"The verification for the pact between {consumer_desc} and {provider_desc} failed")
    if not known:
        reasons.insert(0, f"No pacts or verifications have been published for version {version} of {pacticipant}")
    deployable: bool | None = known and counts["failed"] == 0 and counts["unknown"] == 0
    if known and counts["failed"] == 0 and counts["unknown"] > 0:
        deployable = None  # the broker's "unknown": results are missing, not failed
    if deployable:
        reasons.append("All required verification results are published and successful" if rows
                       else "There are no missing dependencies")
    return {"summary": {"deployable": deployable, "reason": "\n".join(reasons), **counts}, "matrix": rows}


def make_app(data: dict[str, Any], *, token: str | None = None, heartbeat_delay_ms: int = 0,
             heartbeat_status: int = 200) -> web.Application:
    """The emulator as an aiohttp application (see the module docstring for what it serves)."""

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        request.app["requests"].append(str(request.rel_url))
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            return _json({"error": "Unauthorized"}, 401)
        response: web.StreamResponse = await handler(request)
        return response

    def base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def heartbeat(request: web.Request) -> web.Response:
        if heartbeat_delay_ms:
            await asyncio.sleep(heartbeat_delay_ms / 1000)
        if heartbeat_status != 200:
            return web.Response(text="upstream unavailable", status=heartbeat_status)
        return _json({"ok": True, "_links": {"self": {"href": str(request.url)}}})

    def answer(request: web.Request, pacticipant: str | None, version: str | None) -> web.Response:
        environment = request.query.get("environment")
        if not pacticipant or not version or not environment:
            return _json({"errors": {"q": ["Please provide a pacticipant, a version and an environment"]}}, 400)
        if environment not in data.get("environments", []):
            return _json({"errors": {"environment": [f"Environment with name '{environment}' does not exist"]}}, 400)
        return _json(matrix(data, base(request), pacticipant, version, environment))

    async def matrix_endpoint(request: web.Request) -> web.Response:
        return answer(request, request.query.get("q[][pacticipant]"), request.query.get("q[][version]"))

    async def can_i_deploy(request: web.Request) -> web.Response:
        return answer(request, request.query.get("pacticipant"), request.query.get("version"))

    async def index(request: web.Request) -> web.Response:
        root = base(request)
        return _json({"_links": {
            "self": {"href": root, "title": "Index"},
            "pb:latest-version": {"href": root + "/pacticipants/{pacticipant}/latest-version", "templated": True},
            "pb:pacticipant-version": {"href": root + "/pacticipants/{pacticipant}/versions/{version}",
                                       "templated": True},
            "pb:environments": {"href": root + "/environments"},
        }})

    async def requests_seen(request: web.Request) -> web.Response:
        return _json({"requests": request.app["requests"]})

    app = web.Application(middlewares=[auth])
    app["requests"] = []
    app.router.add_get("/", index)
    app.router.add_get("/diagnostic/status/heartbeat", heartbeat)
    app.router.add_get("/matrix", matrix_endpoint)
    app.router.add_get("/can-i-deploy", can_i_deploy)
    app.router.add_get("/_emulator/requests", requests_seen)
    return app


def start_pact_broker(
    workdir: Path, data: dict[str, Any], *, port: int, token: str | None = None,
    heartbeat_delay_ms: int = 0, heartbeat_status: int = 200, name: str = "pact-broker",
) -> ManagedProcess:
    """Start the emulator on 127.0.0.1:``port`` serving ``data``; returns once it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_file = workdir / f"{name}.json"
    data_file.write_text(json.dumps(data, indent=2) + "\n")
    args = ["--data", str(data_file), "--heartbeat-delay-ms", str(heartbeat_delay_ms),
            "--heartbeat-status", str(heartbeat_status)]
    if token is not None:
        token_file = workdir / f"{name}.token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        args += ["--token-file", str(token_file)]
    return start_python_server("opsverify_sandbox.servers.pact_broker", *args, port=port, workdir=workdir, name=name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pact Broker emulator (read endpoints, real JSON shapes)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data", type=Path, required=True, help="JSON: environments, pacts, deployed")
    parser.add_argument("--token-file", type=Path, help="require 'Authorization: Bearer <contents>'")
    parser.add_argument("--heartbeat-delay-ms", type=int, default=0)
    parser.add_argument("--heartbeat-status", type=int, default=200)
    args = parser.parse_args(argv)
    token = args.token_file.read_text().strip() if args.token_file else None
    app = make_app(json.loads(args.data.read_text()), token=token,
                   heartbeat_delay_ms=args.heartbeat_delay_ms, heartbeat_status=args.heartbeat_status)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
