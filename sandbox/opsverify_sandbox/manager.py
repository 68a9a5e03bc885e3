"""``opsverify sandbox up|down|status``: real local services on loopback for ``--env local``.

Each service lives in a module of :mod:`opsverify_sandbox.services` that registers itself with
:func:`service`; ``up`` starts them in order on the fixed ports ``environments/local.yaml`` names,
records their PIDs in ``<state>/state.json``, and ``down`` stops exactly those PIDs.

The state directory is ``.opsverify/sandbox`` in the working directory, the project's root (or
``$OPSVERIFY_SANDBOX_DIR``); it holds the run-time CA, logs and secrets the local environment reads
by reference.

Example::

    services = up()          # starts every service not already running
    print(status())          # one line per service: running / stopped, ports
    down()                   # stops what up started
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsverify import local_state
from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, pid_alive, port_is_open, stop_pid


def state_dir() -> Path:
    """Where the sandbox keeps its state (PIDs, ports, CA, logs, generated secrets)."""
    return local_state.sandbox_dir(Path.cwd())


@dataclass
class Started:
    """What a service start returns: its processes and the ports it listens on."""

    processes: list[ManagedProcess]
    ports: dict[str, int]
    info: dict[str, Any] = field(default_factory=dict)


StartFn = Callable[[Path], Started]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    order: int
    start: StartFn
    doc: str


SERVICES: dict[str, ServiceSpec] = {}


def service(name: str, *, order: int = 50, doc: str = "") -> Callable[[StartFn], StartFn]:
    """Register a sandbox service starter (``order`` decides start order)."""

    def decorate(fn: StartFn) -> StartFn:
        SERVICES[name] = ServiceSpec(name, order, fn, doc or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return decorate


def _discover() -> list[ServiceSpec]:
    import opsverify_sandbox.services as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"opsverify_sandbox.services.{info.name}")
    return sorted(SERVICES.values(), key=lambda s: (s.order, s.name))


def _read_state(directory: Path) -> dict[str, Any]:
    path = directory / "state.json"
    if not path.exists():
        return {"services": {}}
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except json.JSONDecodeError as exc:
        raise SandboxError(f"{path} is corrupt ({exc.msg}); remove it after stopping stray processes") from None


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.json").write_text(json.dumps(state, indent=2) + "\n")


def _running(entry: dict[str, Any]) -> bool:
    return bool(entry.get("pids")) and all(pid_alive(p) for p in entry["pids"])


def up(only: list[str] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Start every (or each ``only``) service that is not running; returns the state."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    state = _read_state(directory)
    for spec in _discover():
        if only and spec.name not in only:
            continue
        entry = state["services"].get(spec.name)
        if entry and _running(entry):
            log(f"  {spec.name:<12} already running (pids {entry['pids']})")
            continue
        busy = [f"{k}={p}" for k, p in (entry or {}).get("ports", {}).items() if port_is_open("127.0.0.1", p)]
        if busy:
            raise SandboxError(f"{spec.name}: ports still in use by something else: {', '.join(busy)}")
        try:
            started = spec.start(directory)
        except SandboxError as exc:
            _write_state(directory, state)
            raise SandboxError(f"{spec.name}: {exc}") from None
        state["services"][spec.name] = {
            "pids": [p.pid for p in started.processes],
            "ports": started.ports,
            "info": started.info,
            "logs": [str(p.log_path) for p in started.processes],
        }
        _write_state(directory, state)
        ports = ", ".join(f"{k} {v}" for k, v in started.ports.items())
        log(f"  {spec.name:<12} started ({ports})")
    return state


def down(log: Callable[[str], None] = print, only: list[str] | None = None) -> None:
    """Stop every process ``up`` recorded (and nothing else); with ``only``, just those services'."""
    directory = state_dir()
    state = _read_state(directory)
    for name, entry in sorted(state["services"].items(), reverse=True):
        if only and name not in only:
            continue
        for pid in entry.get("pids", []):
            stop_pid(pid, grace_s=5)
        log(f"  {name:<12} stopped")
    state["services"] = {k: v for k, v in state["services"].items() if only and k not in only}
    _write_state(directory, state)


def status() -> list[str]:
    """One line per known service: running or not, and its ports."""
    directory = state_dir()
    state = _read_state(directory)
    lines = []
    for spec in _discover():
        entry = state["services"].get(spec.name)
        if not entry:
            lines.append(f"  {spec.name:<12} stopped")
            continue
        alive = _running(entry)
        ports = ", ".join(
            f"{k} {v}{'' if port_is_open('127.0.0.1', v) else ' (closed)'}" for k, v in entry["ports"].items()
        )
        lines.append(f"  {spec.name:<12} {'running' if alive else 'DEAD'} ({ports})")
    return lines
