"""The sandbox's Restate: a real server with the demo ``Greeter`` service, behind a token-checking proxy.

Ports (fixed, as ``environments/local.yaml`` names them): ingress 18070, admin 19070 - both are the
host-side proxy of :mod:`opsverify_sandbox.servers.restate`. The server itself runs ONLY inside its
own network namespace (``unshare -rn``; it phones GitHub at every start and cannot be told not to),
as does the demo service it reaches; the proxy forwards to the server's unix sockets and demands
``Authorization: Bearer <token>`` on both ports, like the auth proxy of Restate Cloud and its tunnels.

Every start is fresh: new data directory, new demo deployment, and a new token written to
``<state>/restate/token`` (mode 0600) for the local environment file to reference. Every start is
also a finished token rotation: the token of the previous start (or, the first time, one made up
and never accepted) goes to ``<state>/restate/previous-token``, which the proxy no longer accepts -
so the local ``previous_token`` check sees what it should after a rotation.

Restate comes from npm (``bash scripts/tools/restate.sh``); when it (or ``unshare``/``ip``/``nsenter``)
is missing, ``sandbox up`` says how to install it and starts the other services.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
from pathlib import Path

from opsverify.errors import SandboxError
from opsverify_sandbox.files import write_private
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.process import port_is_open
from opsverify_sandbox.servers.restate import find_restate_server, start_restate

INGRESS_PORT = 18070
ADMIN_PORT = 19070
INSTALL = "bash scripts/tools/restate.sh"


def _missing_tools() -> str | None:
    try:
        find_restate_server()
    except SandboxError:
        return "restate-server is not installed"
    absent = [name for name in ("unshare", "ip", "nsenter") if shutil.which(name) is None]
    if absent:
        return f"{', '.join(absent)} (util-linux / iproute2) not found"
    return None


@service("restate", order=70)
def start_restate_sandbox(directory: Path) -> Started:
    """Restate (own network namespace) + demo Greeter service, behind a bearer-token proxy."""
    missing = _missing_tools()
    if missing:
        note = (
            f"{missing}, so not started: install it with `{INSTALL}` (npm package into "
            ".opsverify/tools, never run outside `unshare -rn`), then run `opsverify sandbox up` "
            "again; until then the restate: checks of --env local error"
        )
        print(f"  {'restate':<12} {note}", flush=True)
        return Started([], {}, {"skipped": note})
    busy = [str(port) for port in (INGRESS_PORT, ADMIN_PORT) if port_is_open("127.0.0.1", port)]
    if busy:
        raise SandboxError(
            f"port {' and '.join(busy)} already in use - another sandbox (another OPSVERIFY_SANDBOX_DIR?) "
            "may run restate: see `opsverify sandbox status`, or stop that one first"
        )
    workdir = directory / "restate"
    shutil.rmtree(workdir / "restate-data", ignore_errors=True)  # a fresh server (and deployment) per start
    token = secrets.token_urlsafe(32)
    token_path = workdir / "token"
    try:
        previous = token_path.read_text().strip()
    except OSError:
        previous = ""
    write_private(workdir / "previous-token", (previous or secrets.token_urlsafe(32)) + "\n")
    write_private(token_path, token + "\n")
    server = start_restate(workdir, auth_token=token, admin_port=ADMIN_PORT, ingress_port=INGRESS_PORT)
    # The launcher stops everything when this process exits; the sandbox keeps it running until
    # `opsverify sandbox down`, which stops the recorded PIDs.
    atexit.unregister(server.stop)
    processes = [p for p in (server.demo, server.process, server.proxy) if p is not None]
    return Started(
        processes,
        {"ingress": INGRESS_PORT, "admin": ADMIN_PORT},
        {"token": str(token_path), "deployment": server.deployment_id, "base_dir": str(server.base_dir),
         "netns": server.netns},
    )
