"""Launch a real Restate server - ONLY ever inside its own network namespace - for the self-tests.

``restate-server`` (npm ``@restatedev/restate-server`` 1.7.x, installed by
``scripts/tools/restate.sh``) contacts GitHub for a release check at every start and no setting
turns that off. So it is started exclusively as::

    unshare -rn sh -c 'ip link set lo up && exec restate-server --no-logo --config-file F'

(a new user + network namespace: only a loopback, no route out; works without root). Nothing else
in this module starts it. The host reaches it through the unix sockets it creates under its
base-dir (``<workdir>/restate-data/<node>/admin.sock`` and ``ingress.sock``; the file system is
shared, only the network is not): a small aiohttp reverse proxy in the host namespace listens on
two free 127.0.0.1 ports and forwards to them, so plain ``httpx`` against
``http://127.0.0.1:<port>`` works. With ``auth_token`` the proxy demands
``Authorization: Bearer <token>`` on every path of both ports (401 otherwise): the auth proxy that
Restate Cloud and tunnels put in front, which the open-source server does not have. The demo
service (:mod:`opsverify_sandbox.servers.restate_demo_service`) runs INSIDE the same namespace
(``nsenter --target <server pid> --user --net``), because the server can only reach deployments
there; it is registered with ``POST /deployments {"uri": "http://127.0.0.1:9080/"}``.

Example::

    with start_restate(tmp_path / "restate", auth_token="t0ken") as restate:
        httpx.get(f"{restate.admin_url}/health", headers=restate.auth_headers())   # 200
        restate.call("Greeter", "greet", "Ada")                                     # "Hello, Ada!"
        restate.set_token("n3w", keep_old=True)     # rotation overlap: both tokens accepted
        restate.set_token("n3w")                    # only the new one

    # fixed host-side ports (the sandbox: admin 19070, ingress 18070)
    start_restate(workdir, auth_token=token, admin_port=19070, ingress_port=18070)
    # one more proxy, e.g. without a token in front of the same server, or to absent sockets (502)
    start_proxy(tmp, admin_socket=restate.admin_socket, ingress_socket=restate.ingress_socket)
    # faults: the registered deployment stopped, or another service put behind its URI
    restate.demo.stop(); restate.replace_demo("Billing")

Endpoints (verified on 1.7.12; all bodies JSON unless said otherwise):

* admin ``GET /health`` -> 200, EMPTY body (``content-length: 0``).
* admin ``GET /version`` -> 200 ``{"version": "1.7.12", "min_admin_api_version": 2,
  "max_admin_api_version": 4, "ingress_endpoint": "<ingress advertised-address>",
  "features": {"<name>": bool, ...}}``; ``ingress_endpoint`` is set here to the host-side
  ingress proxy URL (``[ingress] advertised-address``).
* admin ``GET /deployments`` -> 200 ``{"deployments": [{"id": "dp_...", "uri":
  "http://127.0.0.1:9080/", "protocol_type": "BidiStream", "http_version": "HTTP/2.0",
  "created_at": "...Z", "min_protocol_version": 5, "max_protocol_version": 7,
  "sdk_version": "restate-sdk-python/1.3.0", "services": [{"name": "Greeter", "revision": 1}]}]}``.
* admin ``POST /deployments {"uri": ...}`` -> 201 ``{"id": "dp_...", "services": [<service>],
  "min_protocol_version": 5, "max_protocol_version": 7, "sdk_version": ...}``; unreachable URI ->
  500 ``{"message": "[META0003] ... Connection refused ...", "restate_code": "META0003"}`` after
  ~1.7 s of internal retries.
* admin ``GET /services`` -> 200 ``{"services": [{"name": "Greeter", "ty": "Service",
  "handlers": [{"name": "greet", "input_json_schema": {"type": "string"}, ...}],
  "deployment_id": "dp_...", "revision": 1, "public": true, "idempotency_retention": "1d",
  "journal_retention": "1d", "inactivity_timeout": "1m", "abort_timeout": "10m",
  "retry_policy": {...}, ...}]}``.
* admin ``POST /deployments {"uri": ..., "dry_run": true, "force": true}`` -> 200 with the
  discovered services, nothing registered or changed; an unreachable URI -> 500 ``META0003``
  after ~1.8 s. With ``"force": false`` a dry run of an ALREADY REGISTERED URI is answered from
  Restate's records without contacting the deployment (200 even when it is down); ``force``
  defaults to true.
* ingress ``GET /restate/health`` -> 200 ``{"services": ["Greeter"]}`` (``{"services": []}``
  before any registration).
* ingress ``POST /Greeter/greet`` body ``"Ada"`` -> 200 ``"Hello, Ada!"``; unknown handler or
  service -> 404 ``{"code": 404, "message": "...", "source": "ingress"}``.
* proxy with a missing/wrong token -> 401 ``{"message": "..."}`` + ``WWW-Authenticate: Bearer``;
  socket not there (server down) -> 502 ``{"message": "restate <admin|ingress> unreachable: ..."}``.

Measured here (2 CPUs): ready (admin ``/health`` 200 through the socket) ~0.5 s after the spawn;
with the demo service registered ~1.5 s in total; RSS ~135-150 MB for the server (independent of
the RocksDB budget between 16 and 64 MiB - it is the baseline), ~45 MB for the demo service,
~40 MB for the proxy. ``stop()`` takes ~1 s (demo service: 1 s graceful timeout; server ~0.1 s).

Facts that bite (restate-server 1.7.12, restate-sdk 1.3.0):

* The release check cannot be disabled: never run the binary outside ``unshare -rn`` - not even
  ``--help`` or ``--dump-config``.
* Unknown config keys are silently ignored (no warning): a typo just keeps the default. The keys
  used here were checked with ``--dump-config`` (run under ``unshare -rn``).
* Unix socket paths are limited to 107 bytes; the server logs them relative to its working
  directory, so it is started with ``cwd=workdir``; the host-side proxy needs the absolute path to
  fit, which :func:`start_restate` checks up front.
* ``nsenter`` needs the PID of a process already inside the namespace: the Popen PID is the
  ``unshare`` process that ``exec``s ``sh`` and then ``restate-server`` (same PID), but only after
  the unshare succeeded - so the demo service is entered only once the admin socket answers, and
  the launcher checks that the server's ``/proc/<pid>/ns/net`` differs from the host's.
* ``POST /deployments`` to a URI nobody listens on is not instant (~1.7 s of retries, then 500
  META0003): the launcher waits for the demo service's "Running on" log line first.
* SDK handler input/output is JSON: send ``"Ada"`` (quoted) with ``content-type:
  application/json``; the result is the JSON string ``"Hello, Ada!"``.
* Env vars ``RESTATE_*`` override the config file (``RESTATE_BIND_IP``...); the launcher removes
  none of them, but the namespace keeps any binding private anyway.
* hypercorn warns "ASGI Framework Lifespan error" for the SDK app: harmless (no lifespan support).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hmac
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web

from opsverify.errors import SandboxError
from opsverify_sandbox.files import write_private
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port, pid_alive
from opsverify_sandbox.tools import find_tool

HOST = "127.0.0.1"
NODE_NAME = "n1"
DEMO_PORT = 9080  # inside the server's private namespace: no clash with anything on the host
DEFAULT_TIMEOUT_S = 10.0
START_TIMEOUT_S = 30.0
RESTATE_BINARY_RELPATH = "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
_UNIX_PATH_MAX = 107
# sh script run by `unshare -rn`: loopback up inside the new namespace, then become the server.
_NS_SCRIPT = 'ip link set lo up && exec "$0" --no-logo --config-file "$1"'
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def find_restate_server() -> str:
    """Path of the ``restate-server`` binary (run it ONLY under ``unshare -rn``)."""
    return find_tool("restate-server", RESTATE_BINARY_RELPATH)


def _require_commands(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise SandboxError(
            f"restate needs {', '.join(missing)} (iproute2/util-linux): run "
            "`bash scripts/tools/restate.sh`"
        )


def _netns_id(pid: int | str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def pids_in_netns(netns: str) -> list[int]:
    """PIDs of all processes whose network namespace is ``netns`` (e.g. ``"net:[4026532178]"``)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _netns_id(entry.name) == netns:
            found.append(int(entry.name))
    return found


def pids_with_arg(needle: str) -> list[int]:
    """PIDs whose command line contains ``needle`` (e.g. a server's config path)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _rss_bytes(pid: int, key: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _write_tokens(path: Path, tokens: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    write_private(tmp, "".join(f"{token}\n" for token in tokens))
    os.replace(tmp, path)


def write_config(path: Path, *, base_dir: Path, admin_url: str, ingress_url: str) -> None:
    """Write the TOML config: loopback only, data in ``base_dir``, no telemetry, small budgets."""
    path.write_text(
        f"""# written by opsverify_sandbox.servers.restate - run only under `unshare -rn`
node-name = "{NODE_NAME}"
base-dir = "{base_dir}"
bind-ip = "{HOST}"
listen-mode = "all"
disable-telemetry = true
log-disable-ansi-codes = true
log-filter = "warn,restate=info"
default-num-partitions = 1
shutdown-timeout = "5s"
rocksdb-total-memory-size = "64 MiB"

[worker]
data-service-memory-limit = "16 MiB"

[admin]
advertised-address = "{admin_url}/"

[admin.query-engine]
memory-size = "32 MiB"

[ingress]
advertised-address = "{ingress_url}/"

[bifrost]
record-cache-memory-size = "16 MiB"
"""
    )


@dataclass
class RestateServer(ServerProcess):
    """A Restate server in its own network namespace, reached through a host-side proxy."""

    process: ManagedProcess
    proxy: ManagedProcess
    workdir: Path
    base_dir: Path
    config_path: Path
    admin_port: int
    ingress_port: int
    netns: str
    tokens_file: Path | None = None
    demo: ManagedProcess | None = None
    deployment_id: str | None = None
    startup_s: float = 0.0
    tokens: list[str] = field(default_factory=list)
    _stopped: bool = False

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def admin_url(self) -> str:
        """Host-side admin base URL, e.g. ``http://127.0.0.1:41234`` (proxy to ``admin.sock``)."""
        return f"http://{HOST}:{self.admin_port}"

    @property
    def ingress_url(self) -> str:
        """Host-side ingress base URL (proxy to ``ingress.sock``)."""
        return f"http://{HOST}:{self.ingress_port}"

    @property
    def admin_socket(self) -> Path:
        return self.base_dir / NODE_NAME / "admin.sock"

    @property
    def ingress_socket(self) -> Path:
        return self.base_dir / NODE_NAME / "ingress.sock"

    @property
    def token(self) -> str | None:
        """The newest accepted bearer token (``None`` when the proxy does not check tokens)."""
        return self.tokens[-1] if self.tokens else None

    @property
    def demo_uri(self) -> str:
        """Deployment URI of the demo service as the server sees it (inside the namespace)."""
        return f"http://{HOST}:{DEMO_PORT}/"

    def auth_headers(self, token: str | None = None) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` (default: the current token), or ``{}``."""
        chosen = token if token is not None else self.token
        return {"Authorization": f"Bearer {chosen}"} if chosen else {}

    # -- measurements ------------------------------------------------------------------------------

    def rss_bytes(self) -> int:
        """Current resident memory of the ``restate-server`` process."""
        return _rss_bytes(self.process.pid)

    def peak_rss_bytes(self) -> int:
        """Peak resident memory (VmHWM) of the ``restate-server`` process."""
        return _rss_bytes(self.process.pid, "VmHWM")

    # -- HTTP --------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        token: str | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send ``method url`` through the proxy with the current token; check the status."""
        try:
            response = httpx.request(
                method,
                url,
                json=json_body,
                headers=self.auth_headers(token),
                timeout=DEFAULT_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            raise SandboxError(f"restate {method} {url}: {exc}") from exc
        if expect and response.status_code not in expect:
            raise SandboxError(
                f"restate {method} {url}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of an admin API call (``{}`` for an empty body)."""
        response = self.request(method, f"{self.admin_url}/{path.lstrip('/')}", **kwargs)
        return response.json() if response.content else {}

    def register_deployment(self, uri: str) -> dict[str, Any]:
        """``POST /deployments {"uri": uri}`` (the URI is resolved INSIDE the namespace)."""
        result: dict[str, Any] = self.admin(
            "POST", "/deployments", json_body={"uri": uri}, expect=(200, 201)
        )
        return result

    def call(self, service: str, handler: str, payload: Any) -> Any:
        """Invoke ``service/handler`` through the ingress proxy; return the decoded JSON result."""
        url = f"{self.ingress_url}/{service}/{handler}"
        response = self.request("POST", url, json_body=payload)
        return response.json()

    # -- tokens ------------------------------------------------------------------------------------

    def set_token(self, new: str, *, keep_old: bool = False) -> None:
        """Make the proxy accept ``new``; with ``keep_old`` the previous tokens stay valid too.

        Takes effect on the next request (the proxy reads the tokens file every time).
        """
        if self.tokens_file is None:
            raise SandboxError("restate was started without auth_token: the proxy checks no tokens")
        if not new or any(ch.isspace() for ch in new):
            raise SandboxError("restate token must be non-empty and contain no whitespace")
        kept = [t for t in self.tokens if t != new] if keep_old else []
        self.tokens = [*kept, new]
        _write_tokens(self.tokens_file, self.tokens)

    # -- faults for the self-tests -------------------------------------------------------------------

    def replace_demo(self, service_name: str) -> None:
        """Put a service named ``service_name`` behind the registered demo URI, without registering
        it: Restate's records still list the old service there (a deploy that replaced it)."""
        if self.demo is not None:
            self.demo.stop(grace_s=3.0)
        _start_demo(self, service_name, register=False)

    # -- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop demo service, server and proxy; SIGKILL anything left in the namespace."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        own = self.netns and self.netns != _netns_id("self")
        # Listed while the namespace is alive: once the server exits, the kernel may hand the same
        # namespace id to the next server started (another test, another worker), whose processes
        # a later lookup would then kill.
        leftovers = pids_in_netns(self.netns) if own else []
        if self.demo is not None:
            self.demo.stop(grace_s=3.0)
        self.process.stop(grace_s=8.0)
        self.proxy.stop(grace_s=3.0)
        for pid in leftovers:
            if _netns_id(pid) != self.netns:
                continue  # already gone (or the id is someone else's now)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.workdir not in self.base_dir.parents:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _uds_get(socket_path: Path, path: str) -> httpx.Response:
    transport = httpx.HTTPTransport(uds=str(socket_path))
    with httpx.Client(transport=transport, timeout=1.0) as client:
        return client.get(f"http://restate{path}")


def _start_namespaced_server(workdir: Path, config_path: Path) -> ManagedProcess:
    binary = find_restate_server()
    # The ONLY way this module runs restate-server: inside a fresh user+network namespace.
    argv = ["unshare", "-rn", "sh", "-c", _NS_SCRIPT, binary, str(config_path)]
    return ManagedProcess.start(
        argv, log_path=workdir / "restate.log", name="restate-server", cwd=workdir
    )


def _start_proxy(
    workdir: Path, base_dir: Path, ports: tuple[int, int], tokens: Path | None
) -> ManagedProcess:
    node_dir = base_dir / NODE_NAME
    return _spawn_proxy(
        workdir / "proxy.log", node_dir / "admin.sock", node_dir / "ingress.sock", ports, tokens
    )


def _spawn_proxy(
    log_path: Path,
    admin_socket: Path,
    ingress_socket: Path,
    ports: tuple[int, int],
    tokens: Path | None,
    any_token: bool = False,
    delay_ms: float = 0.0,
) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        __name__,
        "--admin-port",
        str(ports[0]),
        "--admin-socket",
        str(admin_socket),
        "--ingress-port",
        str(ports[1]),
        "--ingress-socket",
        str(ingress_socket),
    ]
    if tokens is not None:
        argv += ["--tokens-file", str(tokens)]
    if any_token:
        argv.append("--accept-any-token")
    if delay_ms:
        argv += ["--delay-ms", str(delay_ms)]
    return ManagedProcess.start(
        argv, log_path=log_path, name="restate-proxy", env=_pythonpath_env()
    )


@dataclass
class RestateProxy(ServerProcess):
    """An extra host-side proxy (see :func:`start_proxy`): no server of its own."""

    process: ManagedProcess
    admin_port: int
    ingress_port: int
    tokens_file: Path | None = None

    @property
    def admin_url(self) -> str:
        return f"http://{HOST}:{self.admin_port}"

    @property
    def ingress_url(self) -> str:
        return f"http://{HOST}:{self.ingress_port}"

    def set_tokens(self, *tokens: str) -> None:
        """Accept exactly ``tokens`` from the next request on (e.g. old and new during a rotation)."""
        if self.tokens_file is None:
            raise SandboxError("this proxy was started without auth_token: it checks no tokens")
        if not tokens or any(not t or any(ch.isspace() for ch in t) for t in tokens):
            raise SandboxError("restate tokens must be non-empty and contain no whitespace")
        _write_tokens(self.tokens_file, list(tokens))

    def stop(self) -> None:
        self.process.stop(grace_s=3.0)


def start_proxy(
    workdir: Path,
    *,
    admin_socket: Path,
    ingress_socket: Path,
    auth_token: str | None = None,
    admin_port: int | None = None,
    ingress_port: int | None = None,
    accept_any_token: bool = False,
    delay_ms: float = 0.0,
) -> RestateProxy:
    """Start one more host-side proxy to the given unix sockets (no server is started).

    For the self-tests: a second proxy without a token in front of a running server (a proxy that
    does not enforce tokens), one with ``accept_any_token`` (it demands a bearer token but lets any
    value through), a proxy that holds every answer ``delay_ms`` before it sends it (a congested
    gateway: slow, but healthy), or a proxy whose sockets do not exist (server down, proxy up: every
    request answers 502).
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ports = (admin_port or free_port(HOST), ingress_port or free_port(HOST))
    tokens_file = None
    if auth_token is not None:
        if not auth_token or any(ch.isspace() for ch in auth_token):
            raise SandboxError("restate auth_token must be non-empty and contain no whitespace")
        tokens_file = workdir / f"proxy-{ports[0]}-tokens"
        _write_tokens(tokens_file, [auth_token])
    process = _spawn_proxy(
        workdir / f"proxy-{ports[0]}.log",
        admin_socket,
        ingress_socket,
        ports,
        tokens_file,
        accept_any_token,
        delay_ms,
    )
    proxy = RestateProxy(process, ports[0], ports[1], tokens_file)
    try:
        process.wait_for_port(HOST, ports[0], timeout_s=START_TIMEOUT_S)
        process.wait_for_port(HOST, ports[1], timeout_s=START_TIMEOUT_S)
    except BaseException:
        proxy.stop()
        raise
    return proxy


def _pythonpath_env() -> dict[str, str]:
    """``PYTHONPATH`` for a child that runs a module of this package: the directories this process
    imported :mod:`opsverify_sandbox` and :mod:`opsverify` from come first (an uninstalled checkout)."""
    import opsverify

    imported_from = [str(Path(__file__).resolve().parents[2]), str(Path(opsverify.__file__).resolve().parents[1])]
    current = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join(p for p in (*imported_from, current) if p)}


def _start_demo(server: RestateServer, service_name: str | None = None, register: bool = True) -> None:
    argv = [
        "nsenter",
        "--target",
        str(server.process.pid),
        "--user",
        "--net",
        "--preserve-credentials",
        sys.executable,
        "-m",
        "opsverify_sandbox.servers.restate_demo_service",
        "--host",
        HOST,
        "--port",
        str(DEMO_PORT),
        *(["--service", service_name] if service_name else []),
    ]
    log_path = server.workdir / "demo.log"
    # the log is appended to (a restart in the same workdir, a replaced demo): only what this
    # process writes counts, or an old banner would announce a service that is not listening yet
    offset = log_path.stat().st_size if log_path.exists() else 0
    demo = ManagedProcess.start(argv, log_path=log_path, name="restate-demo", env=_pythonpath_env())
    server.demo = demo
    banner = f"Running on http://{HOST}:{DEMO_PORT}".encode()

    def serving() -> bool:
        with open(log_path, "rb") as log:
            log.seek(offset)
            return banner in log.read()

    demo.wait_until(
        serving,
        START_TIMEOUT_S,
        f"serving on {HOST}:{DEMO_PORT} inside the namespace",
    )
    if register:
        server.deployment_id = str(server.register_deployment(server.demo_uri).get("id"))


def _wait_ready(server: RestateServer) -> None:
    proc = server.process
    proc.wait_until(
        lambda: _uds_get(server.admin_socket, "/health").status_code == 200,
        START_TIMEOUT_S,
        f"answering GET /health on {server.admin_socket}",
    )
    proc.wait_until(
        lambda: _uds_get(server.ingress_socket, "/restate/health").status_code == 200,
        START_TIMEOUT_S,
        f"answering GET /restate/health on {server.ingress_socket}",
    )
    netns = _netns_id(proc.pid)
    if not netns or netns == _netns_id("self"):
        server.stop()
        raise SandboxError(f"restate-server (pid {proc.pid}) is not in its own network namespace")
    server.netns = netns
    server.proxy.wait_for_port(HOST, server.admin_port, timeout_s=START_TIMEOUT_S)
    server.proxy.wait_for_port(HOST, server.ingress_port, timeout_s=START_TIMEOUT_S)


def start_restate(
    workdir: Path,
    *,
    with_demo_service: bool = True,
    auth_token: str | None = None,
    admin_port: int | None = None,
    ingress_port: int | None = None,
) -> RestateServer:
    """Start restate-server under ``unshare -rn`` (+ proxy, + demo service) and wait until ready.

    ``workdir`` holds the config, ``restate-data/`` (base-dir, sockets), logs and the tokens file.
    With ``auth_token`` both proxied ports demand ``Authorization: Bearer <token>``.
    ``admin_port`` / ``ingress_port`` fix the host-side proxy ports (default: free ports), e.g. for
    the sandbox; the server itself listens only inside its namespace either way.
    """
    _require_commands("unshare", "ip", "nsenter")
    if auth_token is not None and (not auth_token or any(ch.isspace() for ch in auth_token)):
        raise SandboxError("restate auth_token must be non-empty and contain no whitespace")
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    base_dir = workdir / "restate-data"
    if len(os.fsencode(base_dir / NODE_NAME / "ingress.sock")) > _UNIX_PATH_MAX:
        # deep temp dirs (pytest-xdist's popen-gwN/…) overflow the unix socket path limit: keep
        # the data (and its sockets) in a short private dir instead, removed again by stop()
        base_dir = Path(tempfile.mkdtemp(prefix="opsv-restate-"))
    longest = base_dir / NODE_NAME / "ingress.sock"
    if len(os.fsencode(longest)) > _UNIX_PATH_MAX:
        raise SandboxError(f"restate workdir path too long for a unix socket ({longest})")
    ports = (admin_port or free_port(HOST), ingress_port or free_port(HOST))
    config_path = workdir / "restate.toml"
    write_config(
        config_path,
        base_dir=base_dir,
        admin_url=f"http://{HOST}:{ports[0]}",
        ingress_url=f"http://{HOST}:{ports[1]}",
    )
    tokens_file = workdir / "proxy-tokens" if auth_token is not None else None
    if tokens_file is not None:
        _write_tokens(tokens_file, [auth_token] if auth_token else [])  # file mode 0600
    started = time.monotonic()
    proxy = _start_proxy(workdir, base_dir, ports, tokens_file)
    try:
        process = _start_namespaced_server(workdir, config_path)
    except SandboxError:
        proxy.stop()
        raise
    server = RestateServer(
        process=process,
        proxy=proxy,
        workdir=workdir,
        base_dir=base_dir,
        config_path=config_path,
        admin_port=ports[0],
        ingress_port=ports[1],
        netns="",
        tokens_file=tokens_file,
        tokens=[auth_token] if auth_token else [],
    )
    atexit.register(server.stop)
    try:
        _wait_ready(server)
        server.startup_s = time.monotonic() - started
        if with_demo_service:
            _start_demo(server)
    except BaseException:
        server.stop()
        raise
    return server


# -- the host-side proxy (run as `python -m opsverify_sandbox.servers.restate ...`) ----------------


def _read_tokens(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def _authorized(header: str, tokens: list[str]) -> bool:
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    given = presented.strip().encode()
    # compare against every token (no early exit) so timing does not tell which one matched
    matches = [hmac.compare_digest(given, token.encode()) for token in tokens]
    return any(matches)


def _json_error(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"message": message}),
        content_type="application/json",
        headers=headers,
    )


_SESSION = web.AppKey("session", aiohttp.ClientSession)


def _make_app(
    name: str, socket_path: Path, tokens_file: Path | None, any_token: bool = False, delay_ms: float = 0.0
) -> web.Application:
    async def on_startup(app: web.Application) -> None:
        app[_SESSION] = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(socket_path)),
            timeout=aiohttp.ClientTimeout(total=60),
            auto_decompress=False,
        )

    async def on_cleanup(app: web.Application) -> None:
        await app[_SESSION].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        if any_token:
            # the misconfigured gateway of the self-tests: it looks for a bearer token, not at it
            allowed = header.lower().startswith("bearer ") and bool(header[7:].strip())
        else:
            allowed = tokens_file is None or _authorized(header, _read_tokens(tokens_file))
        if not allowed:
            return _json_error(
                401,
                "missing or invalid bearer token",
                {"WWW-Authenticate": 'Bearer realm="restate"'},
            )
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() != "authorization"
        }
        body = await request.read()
        session = request.app[_SESSION]
        try:
            async with session.request(
                request.method, f"http://restate{request.path_qs}", headers=headers, data=body
            ) as upstream:
                payload = await upstream.read()
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                out_headers = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                }
                return web.Response(status=upstream.status, body=payload, headers=out_headers)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return _json_error(502, f"restate {name} unreachable: {type(exc).__name__}: {exc}")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def _run_proxy(args: argparse.Namespace) -> None:
    tokens = Path(args.tokens_file) if args.tokens_file else None
    runners: list[web.AppRunner] = []
    for name, port, sock in (
        ("admin", args.admin_port, args.admin_socket),
        ("ingress", args.ingress_port, args.ingress_socket),
    ):
        runner = web.AppRunner(
            _make_app(name, Path(sock), tokens, args.accept_any_token, args.delay_ms), access_log=None
        )
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        runners.append(runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"restate proxy: admin :{args.admin_port} ingress :{args.ingress_port}", flush=True)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def _proxy_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="host-side HTTP proxy to restate's unix sockets")
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--admin-socket", required=True)
    parser.add_argument("--ingress-port", type=int, required=True)
    parser.add_argument("--ingress-socket", required=True)
    parser.add_argument("--tokens-file", default=None)
    parser.add_argument(
        "--accept-any-token",
        action="store_true",
        help="accept any non-empty bearer token (a gateway that only checks the header is there)",
    )
    parser.add_argument("--delay-ms", type=float, default=0.0, help="hold every answer this long before sending it")
    asyncio.run(_run_proxy(parser.parse_args(argv)))


if __name__ == "__main__":
    _proxy_main()
