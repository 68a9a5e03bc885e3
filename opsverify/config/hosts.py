"""``hosts:`` section: machines (or pods) inspected through pytest-testinfra's backends.

Its keys: ``docs/environment/reference.md#hosts``;
an example and its checks: ``docs/environment/hosts.md``.

Item names must be unique within each list. ``mode`` is an octal string: quote it (YAML reads an
unquoted 0644 as the number 420).
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import Strict, Target, section

BACKENDS = ("local", "ssh", "paramiko", "kubectl", "openshift", "docker", "podman", "ansible", "salt",
            "winrm", "lxc", "chroot")
BACKEND_LIBRARIES = {"paramiko": ("paramiko", "paramiko"), "ansible": ("ansible", "ansible"),
                     "salt": ("salt", "salt"), "winrm": ("winrm", "pywinrm")}
"""testinfra backends that import a library (module, package to install) when they first connect."""


class HostService(Strict):
    """A service (systemd, SysV, OpenRC, Upstart ... as testinfra detects it)."""

    name: str = Field(min_length=1)
    running: bool | None = True
    enabled: bool | None = True


class HostSocket(Strict):
    """A socket, in testinfra's spec: ``tcp://0.0.0.0:443``, ``udp://:53``, ``unix:///run/x.sock``."""

    name: str
    listening: bool = True

    @field_validator("name")
    @classmethod
    def _spec(cls, value: str) -> str:
        from testinfra.modules.socket import parse_socketspec

        try:
            parse_socketspec(value)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"not a socket spec like tcp://0.0.0.0:443 ({exc})") from None
        return value


class HostFile(Strict):
    """A path that must (or must not) exist, with an optional type, mode and ownership."""

    name: str = Field(min_length=1)
    path: str | None = Field(default=None, description="default: the name; ${VAR} and ~ expand")
    present: bool = True
    type: Literal["file", "directory", "symlink", "socket", "pipe"] | None = None
    mode: str | None = Field(default=None, description='octal, quoted: "0640"')
    owner: str | None = None
    group: str | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _octal(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3,4}", value):
            raise ValueError(f'mode must be a quoted octal string like "0640" (got {value!r})')
        return value

    @property
    def mode_bits(self) -> int | None:
        return int(self.mode, 8) if self.mode else None

    @property
    def target_path(self) -> str:
        return self.path or self.name


class HostPackage(Strict):
    """A package (dpkg, rpm, apk, pacman ... as testinfra detects it), optionally at a version."""

    name: str = Field(min_length=1)
    installed: bool = True
    version: str | None = Field(default=None, description="exact, or a prefix ending at . - + ~ :")


class HostProcess(Strict):
    """Processes matched by command name, command-line substring and/or user."""

    name: str = Field(min_length=1)
    comm: str | None = None
    args_contains: str | None = None
    user: str | None = None
    min_count: int = Field(default=1, ge=0)
    max_count: int | None = Field(default=None, ge=0)

    @property
    def match_comm(self) -> str | None:
        """The command name to match: ``comm``, else the item name unless ``args_contains`` is set."""
        return self.comm or (None if self.args_contains else self.name)


class HostsTarget(Target):
    """One machine or container, reached with ``testinfra.get_host(host, ...)``."""

    host: str
    sudo: bool = False
    sudo_user: str | None = None
    ssh_config: str | None = None
    ssh_identity_file: str | None = None
    services: list[HostService] = Field(default_factory=list)
    sockets: list[HostSocket] = Field(default_factory=list)
    files: list[HostFile] = Field(default_factory=list)
    packages: list[HostPackage] = Field(default_factory=list)
    processes: list[HostProcess] = Field(default_factory=list)

    @field_validator("host")
    @classmethod
    def _backend(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in BACKENDS:
            raise ValueError(
                f"a testinfra host spec like local://, ssh://user@host or kubectl://pod?namespace=ns "
                f"(backends: {', '.join(BACKENDS)})"
            )
        library = BACKEND_LIBRARIES.get(scheme)
        if library is not None and importlib.util.find_spec(library[0]) is None:
            raise ValueError(f"the {scheme}:// backend needs the Python package {library[1]}, which is not "
                             f"installed here (pip install {library[1]})")
        return value

    @model_validator(mode="after")
    def _unique(self) -> HostsTarget:
        for field in ("services", "sockets", "files", "packages", "processes"):
            seen: set[str] = set()
            for index, item in enumerate(getattr(self, field)):
                if item.name in seen:
                    raise ValueError(f"{field}[{index}]: {item.name!r} is listed twice")
                seen.add(item.name)
        return self


section(
    "hosts",
    HostsTarget,
    system="hosts",
    doc="Hosts via testinfra: services, listening sockets, files (mode/owner), packages, processes",
)
