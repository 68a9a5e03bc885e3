"""The arguments of ``opsverify serve``, validated into one typed value before anything runs.

Example::

    settings = ServeSettings.from_args(args)   # raises ConfigError("--interval", "", "...") on bad input
    settings.interval_s, settings.host, settings.port

Every problem is one line naming the argument (or the file and key of a bad environment file).
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from opsverify.durations import parse_duration
from opsverify.errors import ConfigError
from opsverify.history import DEFAULT_KEEP_DAYS, keep_days

SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")
"""Most severe first (Allure's order); a check without a ``severity`` marker counts as ``normal``."""
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 7 * 86400.0


@dataclass(frozen=True)
class ServeSettings:
    """What ``opsverify serve`` was asked to do."""

    root: Path
    envs: tuple[str, ...]
    env_files: tuple[str, ...]
    interval_s: float
    host: str
    port: int
    markexpr: str | None = None
    healthz_severity: str = "trivial"
    history: Path | None = None
    history_keep_days: float = DEFAULT_KEEP_DAYS
    extra: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeSettings:
        """Validate the parsed command line; raises :class:`ConfigError` naming the argument."""
        envs, files = tuple(args.env or ()), tuple(str(p) for p in (args.env_file or ()))
        if not envs and not files:
            raise ConfigError("--env", "", "no environment given: add --env NAME or --env-file PATH")
        root = Path(args.root).resolve()
        if not (root / "checks").is_dir():
            raise ConfigError("--root", "", f"{root} holds no checks/ directory (run from the project root "
                              "or pass --root DIR)")
        for path in files:
            if not Path(path).is_file():
                raise ConfigError("--env-file", "", f"{path}: no such file")
        if args.healthz_severity not in SEVERITIES:
            raise ConfigError("--healthz-severity", "", f"{args.healthz_severity!r} is not one of {', '.join(SEVERITIES)}")
        try:
            keep = keep_days(str(args.history_keep_days))
        except argparse.ArgumentTypeError as exc:
            raise ConfigError("--history-keep-days", "", str(exc)) from None
        host, port = parse_listen(args.listen)
        return cls(root=root, envs=envs, env_files=files, interval_s=parse_interval(args.interval), host=host,
                   port=port, markexpr=args.markexpr, healthz_severity=args.healthz_severity,
                   history=Path(args.history) if args.history else None,
                   history_keep_days=keep)


def parse_interval(text: str) -> float:
    """Seconds between run starts: ``60s``, ``5m``, ``1h`` (at least 1 s, at most 168 h)."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError("--interval", "", str(exc)) from None
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise ConfigError("--interval", "", f"{text!r} is outside 1s .. 168h")
    return seconds


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``127.0.0.1:9464``, ``0.0.0.0:9464``, ``[::1]:9464``) -> ``(host, port)``."""
    host, sep, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    problem = None
    if not sep or not host:
        problem = "expected HOST:PORT, e.g. 127.0.0.1:9464"
    elif not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        problem = f"port {port_text!r} is not a number between 1 and 65535"
    else:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                problem = f"{host!r} is not an IP address (or localhost)"
    if problem:
        raise ConfigError("--listen", "", f"{text!r}: {problem}")
    return host, int(port_text)
