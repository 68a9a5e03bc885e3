"""Host probes through pytest-testinfra: ``testinfra.get_host(spec)`` and its modules, nothing re-implemented.

testinfra is synchronous and runs shell commands (locally, over ssh, through ``kubectl exec`` ...):
every call runs in the engine's worker threads (``ctx.run_sync``). ssh/paramiko get the target's
timeout as their connect timeout; the engine bounds every probe as a whole (a local command that
hangs is abandoned at the probe's timeout; testinfra offers no per-command timeout).

Every item probe first awaits ``host_connection`` (one ``uname -n`` per host), so an unreachable
host errors each check once with the same cause. testinfra signals an unexpected command result
with ``AssertionError``; it is translated here (:class:`UnexpectedResponse`), never passed on as a
check failure.

Example::

    facts = await file_facts(ctx)        # ctx.target: HostsTarget, ctx.key.item: "/etc/nginx/nginx.conf"
    facts.exists, facts.mode, facts.owner
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from opsverify.config.hosts import HostFile, HostPackage, HostProcess, HostService, HostSocket, HostsTarget
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module

if TYPE_CHECKING:
    import testinfra
else:
    testinfra = lazy_module("testinfra")

CONNECTION_PROBE = "host_connection"
T = TypeVar("T")


@dataclass
class HostInfo:
    """The host was reached and ran ``uname -n``: its answer, or why the command failed there."""

    spec: str
    hostname: str
    failure: str | None = None  # reached, but the command did not run (exit code and last line)


@dataclass
class ServiceFacts:
    name: str
    running: bool | None
    enabled: bool | None
    implementation: str


@dataclass
class SocketFacts:
    spec: str
    listening: bool


@dataclass
class FileFacts:
    path: str
    exists: bool
    kind: str | None = None
    mode: int | None = None
    owner: str | None = None
    group: str | None = None

    @property
    def mode_text(self) -> str:
        return "?" if self.mode is None else f"{self.mode:04o}"


@dataclass
class PackageFacts:
    name: str
    installed: bool
    version: str | None = None

    def version_matches(self, wanted: str) -> bool:
        """Exact, or ``wanted`` is a prefix ending at a version separator (``1.24`` ~ ``1.24.0-2``)."""
        if self.version is None:
            return False
        if self.version == wanted:
            return True
        return self.version.startswith(wanted) and self.version[len(wanted)] in ".-+~:"


@dataclass
class ProcessFacts:
    count: int
    samples: list[str] = field(default_factory=list)


def shown(spec: str) -> str:
    """The host spec for messages, without a password (``ssh://user:pw@host`` -> ``ssh://user@host``)."""
    return re.sub(r"(://[^:/@?]+):[^@/?]*@", r"\1@", spec)


def _one_line(text: Any, limit: int = 240) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# The shell's own exit codes for a command it found but may not execute (126) or did not find (127):
# the host was reached and answered. Any other failure of ``uname -n`` is the transport's (ssh's 255,
# kubectl's 1 when the API server refuses): the host was not reached.
CANNOT_RUN = (126, 127)


def _last_line(result: Any) -> str:
    """The last non-empty line a command printed (stderr first): usually the reason it failed."""
    for stream in (getattr(result, "stderr", ""), getattr(result, "stdout", "")):
        lines = [line for line in str(stream or "").splitlines() if line.strip()]
        if lines:
            return _one_line(lines[-1])
    return f"exit code {getattr(result, 'exit_status', getattr(result, 'rc', '?'))}"


def _path(value: str) -> str:
    return os.path.expandvars(os.path.expanduser(value))


def _make_host(target: HostsTarget, timeout: float) -> Any:
    kwargs: dict[str, Any] = {}
    if target.sudo:
        kwargs["sudo"] = True
    if target.sudo_user:
        kwargs["sudo_user"] = target.sudo_user
    if target.ssh_config:
        kwargs["ssh_config"] = _path(target.ssh_config)
    if target.ssh_identity_file:
        kwargs["ssh_identity_file"] = _path(target.ssh_identity_file)
    if target.host.startswith(("ssh://", "paramiko://")):
        kwargs["timeout"] = max(1, math.ceil(timeout))
    return testinfra.get_host(target.host, **kwargs)


async def _host(ctx: ProbeContext[HostsTarget]) -> Any:
    target = ctx.target
    name = f"testinfra:{ctx.key.env}:{target.name}"
    ctx.phase = f"preparing the testinfra backend for {shown(target.host)}"
    return await ctx.run_sync(lambda: ctx.resource(name, lambda: _make_host(target, ctx.timeout)))


async def _call(ctx: ProbeContext[HostsTarget], what: str, fn: Callable[[], T]) -> T:
    """``fn()`` in a worker thread, testinfra's exceptions translated (one line)."""
    target = ctx.target
    ctx.phase = what
    try:
        value: T = await ctx.run_sync(fn)
        return value
    except CouldNotVerify:
        raise
    except NotImplementedError:  # (a RuntimeError: before the next clause)
        raise UnexpectedResponse(f"{shown(target.host)}: {what}: not supported by testinfra on this host") from None
    except RuntimeError as exc:  # ssh backend: exit 255 (ssh itself failed) raises RuntimeError(CommandResult)
        result = exc.args[0] if exc.args else None
        if result is not None and hasattr(result, "exit_status") and hasattr(result, "stderr"):
            raise Unreachable(f"{shown(target.host)}: {_last_line(result)} (exit {result.exit_status})") from None
        raise UnexpectedResponse(f"{shown(target.host)}: {what}: {_one_line(exc)}") from None
    except AssertionError as exc:  # testinfra: unexpected exit code of a command
        raise UnexpectedResponse(f"{shown(target.host)}: {what}: {_one_line(exc)}") from None
    except OSError as exc:
        raise Unreachable(f"{shown(target.host)}: {what}: {_one_line(exc.strerror or exc)}") from None
    except Exception as exc:  # noqa: BLE001 - any backend library (paramiko, winrm ...)
        raise UnexpectedResponse(f"{shown(target.host)}: {what}: {type(exc).__name__}: {_one_line(exc)}") from None


def _item(ctx: ProbeContext[HostsTarget], field_name: str) -> Any:
    """This probe's sub-item, by name in its own list (the same name may appear in several lists)."""
    target = ctx.target
    for item in getattr(target, field_name):
        if item.name == ctx.key.item:
            return item
    raise UnexpectedResponse(f"no {field_name} item named {ctx.key.item!r} in host {target.name}")


async def _ready(ctx: ProbeContext[HostsTarget]) -> Any:
    ctx.phase = "waiting for the host to answer a command"
    info: HostInfo = await ctx.depend(CONNECTION_PROBE)
    if info.failure is not None:
        raise UnexpectedResponse(f"{info.spec}: the host does not run commands (`uname -n`: {info.failure}), "
                                 "so nothing on it can be read")
    return await _host(ctx)


# -- probes ---------------------------------------------------------------------------------------------
async def connection(ctx: ProbeContext[HostsTarget]) -> HostInfo:
    """Run ``uname -n`` on the host: can it be reached and does it run commands?"""
    target = ctx.target
    host = await _host(ctx)
    result = await _call(ctx, "running `uname -n`", lambda: host.run("uname -n"))
    if result.rc in CANNOT_RUN:  # the host's shell answered: it cannot run the command
        return HostInfo(spec=shown(target.host), hostname="", failure=f"exit {result.rc}: {_last_line(result)}")
    if result.rc != 0:  # ssh / kubectl / docker themselves failed to get there
        raise Unreachable(f"{shown(target.host)}: {_last_line(result)} (exit {result.rc})")
    return HostInfo(spec=shown(target.host), hostname=result.stdout.strip())


async def service_facts(ctx: ProbeContext[HostsTarget]) -> ServiceFacts:
    """Whether a service is running / enabled (only the aspects the item asks about)."""
    item: HostService = _item(ctx, "services")
    host = await _ready(ctx)

    def read() -> ServiceFacts:
        service = host.service(item.name)
        return ServiceFacts(
            name=item.name,
            running=bool(service.is_running) if item.running is not None else None,
            enabled=bool(service.is_enabled) if item.enabled is not None else None,
            implementation=type(service).__name__,
        )

    return await _call(ctx, f"reading service {item.name}", read)


async def socket_facts(ctx: ProbeContext[HostsTarget]) -> SocketFacts:
    """Whether a socket is listening (``ss`` or ``netstat`` on the host)."""
    item: HostSocket = _item(ctx, "sockets")
    host = await _ready(ctx)
    listening = await _call(ctx, f"reading socket {item.name}", lambda: bool(host.socket(item.name).is_listening))
    return SocketFacts(spec=item.name, listening=listening)


async def file_facts(ctx: ProbeContext[HostsTarget]) -> FileFacts:
    """A path's existence, type, mode and ownership (``stat -L``: symlinks are followed)."""
    item: HostFile = _item(ctx, "files")
    path = _path(item.target_path)
    host = await _ready(ctx)

    def read() -> FileFacts:
        f = host.file(path)
        if not f.exists and not f.is_symlink:
            return FileFacts(path=path, exists=False)
        kind = next(
            (name for name, test in (("symlink", "is_symlink"), ("file", "is_file"), ("directory", "is_directory"),
                                     ("socket", "is_socket"), ("pipe", "is_pipe")) if getattr(f, test)),
            "other",
        )
        facts = FileFacts(path=path, exists=True, kind=kind)
        if item.mode is not None:
            facts.mode = int(f.mode)
        if item.owner is not None:
            facts.owner = str(f.user)
        if item.group is not None:
            facts.group = str(f.group)
        return facts

    return await _call(ctx, f"reading file {path}", read)


async def package_facts(ctx: ProbeContext[HostsTarget]) -> PackageFacts:
    """Whether a package is installed, and its version (the host's package manager)."""
    item: HostPackage = _item(ctx, "packages")
    host = await _ready(ctx)

    def read() -> PackageFacts:
        package = host.package(item.name)
        installed = bool(package.is_installed)
        return PackageFacts(name=item.name, installed=installed, version=str(package.version) if installed else None)

    return await _call(ctx, f"reading package {item.name}", read)


async def process_facts(ctx: ProbeContext[HostsTarget]) -> ProcessFacts:
    """The processes matching the item (``ps`` via testinfra; command name / user exact, args substring)."""
    item: HostProcess = _item(ctx, "processes")
    host = await _ready(ctx)
    exact = {k: v for k, v in (("comm", item.match_comm), ("user", item.user)) if v is not None}

    def read() -> ProcessFacts:
        found = host.process.filter(**exact)
        if item.args_contains:
            found = [p for p in found if item.args_contains in str(p.args)]
        samples = [f"pid {p.pid} {p.comm}: {_one_line(p.args, 80)}" for p in found[:3]]
        return ProcessFacts(count=len(found), samples=samples)

    return await _call(ctx, f"listing processes for {item.name}", read)
