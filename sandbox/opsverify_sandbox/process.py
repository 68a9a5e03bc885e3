"""Start, wait for and stop local server processes (sandbox and self-tests).

Every real server the sandbox or a self-test needs is started through
:class:`ManagedProcess`: its own process group, its output in a log file, a
bounded wait until it is ready, and a stop that kills only what it started.

Example::

    port = free_port()
    proc = ManagedProcess.start(
        ["nats-server", "-a", "127.0.0.1", "-p", str(port)],
        log_path=tmp / "nats.log",
    )
    proc.wait_for_port("127.0.0.1", port, timeout_s=10)
    ...
    proc.stop()
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from opsverify.errors import SandboxError


# Ports handed to servers we start: below Linux's ephemeral range (32768-60999), where outgoing
# connections take their local ports, and above the sandbox's fixed ports (< 20000). A port the kernel
# picks (bind to 0) comes from the ephemeral range, so a busy test run's client sockets could take it
# between this call and the server's own bind ("address already in use").
SERVER_PORTS = range(20000, 32768)
RECENT = 2000
_handed: deque[int] = deque(maxlen=RECENT)


def _worker_share() -> range:
    """This test worker's share of ``SERVER_PORTS`` (all of it outside pytest-xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1:
        return SERVER_PORTS[int(worker[2:]) % int(count)::int(count)]
    return SERVER_PORTS


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now, outside the ephemeral range.

    A port is checked free, then bound later by the server it is handed to; two servers must not be
    handed the same one meanwhile. So a port is never handed out twice within the last ``RECENT``
    calls of this process (a server with 17 listeners picks all its ports before binding any), and
    parallel test workers (pytest-xdist's ``PYTEST_XDIST_WORKER``) each draw from their own share of
    the range.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    share = _worker_share()
    for _ in range(200):
        port = random.choice(share)
        if port in _handed:
            continue
        with socket.socket(family) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed.append(port)
        return port
    with socket.socket(family) as sock:  # the range is crowded: let the kernel choose
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when a TCP connect to ``host:port`` succeeds within ``timeout_s``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _listening_inodes(port: int) -> set[str] | None:
    """Inodes of the sockets listening on TCP ``port`` (any address) in this network namespace, from
    ``/proc/net/tcp{,6}``; None where neither table can be read (not Linux)."""
    found: set[str] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            # sl local_address rem_address st ... inode; st 0A is LISTEN
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found if readable else None


def _group_socket_inodes(group: int) -> set[str]:
    """Inodes of the sockets open in any process of process group ``group``."""
    inodes: set[str] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            # after "(comm)": state ppid pgrp ...
            if int(stat.rsplit(")", 1)[1].split()[2]) != group:
                continue
            for fd in os.scandir(f"{entry.path}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:["):-1])
        except (OSError, ValueError, IndexError):
            continue
    return inodes


def venv_bin(name: str) -> str:
    """Path of an executable installed in the running interpreter's environment.

    Falls back to the bare name (found on ``PATH``) when it is not there.
    """
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@dataclass
class ManagedProcess:
    """A started server process, stopped by its process group id."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        log_path: Path,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> ManagedProcess:
        """Start ``argv`` in a new session with stdout/stderr appended to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with open(log_path, "ab") as log:
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=full_env,
                    cwd=str(cwd) if cwd else None,
                    start_new_session=True,
                    preexec_fn=preexec,
                )
            except OSError as exc:
                raise SandboxError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        return cls(name=name or Path(argv[0]).name, popen=popen, log_path=log_path)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the process log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise SandboxError(
                f"{self.name} exited with code {code} before it was ready; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str | Callable[[], str]) -> None:
        """Poll ``ready`` every 20 ms until it is true, the process dies, or time runs out (``what``:
        what it was waiting for, or a function saying so as things stand when time ran out)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - readiness probes may fail while starting
                pass
            time.sleep(0.02)
        self._check_alive()
        awaited = what() if callable(what) else what
        self.stop()
        raise SandboxError(
            f"{self.name} was not {awaited} within {timeout_s:g} s; log {self.log_path}:\n{self.log_tail()}"
        )

    def listens_on(self, port: int) -> bool:
        """True when a process of this one's group holds a socket listening on TCP ``port`` (where
        ``/proc`` cannot tell, true)."""
        listening = _listening_inodes(port)
        if listening is None:
            return True
        return bool(listening and listening & _group_socket_inodes(self.popen.pid))

    def wait_for_port(self, host: str, port: int, timeout_s: float = 15.0) -> None:
        """Wait until ``host:port`` accepts TCP connections on a socket this process (or one it
        started) listens on: a port another process holds is not this one being ready."""
        foreign = False

        def ready() -> bool:
            nonlocal foreign
            if not port_is_open(host, port):
                foreign = False
                return False
            foreign = not self.listens_on(port)
            return not foreign

        self.wait_until(ready, timeout_s, lambda: f"listening on {host}:{port}"
                        + (" (another process holds that port)" if foreign else ""))

    def stop(self, grace_s: float = 5.0) -> None:
        """Terminate the process group, then kill it if it outlives ``grace_s``."""
        stop_pid(self.popen.pid, grace_s)
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass


def start_python_server(module: str, *args: str, port: int, workdir: Path, name: str) -> ManagedProcess:
    """Run ``python -m <module> --port <port> <args>`` (this interpreter), its output in
    ``workdir/<name>.log``; return once it listens on 127.0.0.1:``port``."""
    argv = [sys.executable, "-m", module, "--port", str(port), *args]
    proc = ManagedProcess.start(argv, log_path=workdir / f"{name}.log", name=name)
    proc.wait_for_port("127.0.0.1", port)
    return proc


class ServerProcess:
    """Base of a started server that owns a :class:`ManagedProcess` (its ``process`` field).

    ``stop()`` stops the process group; a server that must do more overrides it. ``with server:``
    stops it on the way out.
    """

    process: ManagedProcess

    def stop(self) -> None:
        """Stop the server process group."""
        self.process.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (and is not a zombie we own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_pid(pid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL it if still alive after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
