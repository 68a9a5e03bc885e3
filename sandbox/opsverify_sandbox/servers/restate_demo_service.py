"""A tiny Restate service for the self-tests: ``Greeter.greet("Ada") -> "Hello, Ada!"``.

Built with the Python SDK (PyPI ``restate-sdk``) and served by hypercorn (HTTP/1.1 and h2c on the
same port; Restate talks HTTP/2 prior knowledge to ``http://`` deployments). The launcher in
:mod:`opsverify_sandbox.servers.restate` runs it INSIDE the Restate server's own network namespace
(``nsenter``), because the server can only reach deployments there.

Example (what the launcher runs, already inside the namespace)::

    python -m opsverify_sandbox.servers.restate_demo_service --port 9080

    # then, through the server's ingress:
    # POST /Greeter/greet  body "Ada" (JSON)  ->  200 "Hello, Ada!"

Facts that bite (restate-sdk 1.3.0, hypercorn 0.18):

* A handler's input and output are JSON by default: the ingress body must be the JSON string
  ``"Ada"`` (not ``Ada``), and the response body is ``"Hello, Ada!"`` with the quotes.
* SIGTERM handlers registered with ``loop.add_signal_handler`` BEFORE ``hypercorn.asyncio.serve``
  stopped firing once the server ran (SIGTERM silently swallowed, the process only died by SIGKILL
  after the stop grace): they are registered inside the shutdown trigger instead (stop ~0.5 s).
* ``restate.app([...])`` picks the bidirectional protocol only when served over HTTP/2; hypercorn
  accepts h2c prior knowledge without TLS, so no extra config is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config

SERVICE_NAME = "Greeter"
HANDLER_NAME = "greet"

def greeting_for(name: str) -> str:
    """The exact string ``Greeter.greet`` returns for ``name`` (tests compare against it)."""
    return f"Hello, {name}!"


def make_service(service_name: str = SERVICE_NAME) -> restate.Service:
    """A service named ``service_name`` with the ``greet`` handler (another name: a deploy that put
    a different service behind a registered URI, for the self-tests)."""
    service = restate.Service(service_name)

    @service.handler(HANDLER_NAME)
    async def greet(ctx: restate.Context, name: str) -> str:
        """Return :func:`greeting_for` ``name``."""
        del ctx
        return greeting_for(name)

    return service


greeter = make_service()
app = restate.app(services=[greeter])


async def _serve(host: str, port: int, service_name: str = SERVICE_NAME) -> None:
    served = app if service_name == SERVICE_NAME else restate.app(services=[make_service(service_name)])
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = asyncio.Event()

    async def shutdown_trigger() -> None:
        # Registered here, i.e. after hypercorn's startup: handlers added before serve() are lost
        # once the SDK app has answered the lifespan scope (SIGTERM was then silently swallowed).
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    await serve(served, config, shutdown_trigger=shutdown_trigger)


def main(argv: list[str] | None = None) -> None:
    """Serve :data:`app` on ``--host``/``--port`` until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9080)
    parser.add_argument("--service", default=SERVICE_NAME, help="the service's name (default Greeter)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.service))


if __name__ == "__main__":
    main()
