"""Value types the sections share: URLs, host names, ports, HTTP status codes.

Each is a pydantic-annotated ``str`` or ``int`` whose validator gives a one-line reason, so a bad
value is a usage error when the file is loaded, not a ``ProbeCrashed`` when the probe runs::

    class TcpTarget(Target):
        host: Host
        port: Port

    url: HttpUrl = Field(pattern=r"^https?://")   # rejects http://, http://[::1, port 99999, spaces
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

HOST_MAX = 253
URL_MAX = 4096
_HOST = re.compile(r"^\w(?:[\w.-]*\w)?$")


def shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for a one-line message, shortened when long."""
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return repr(text)


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\[\]-]{0,79}$")


def key_text(key: object) -> str:
    """A mapping key as it appears in a key path: plain when it reads as one, else quoted."""
    text = str(key)
    return text if _PLAIN_KEY.match(text) else shown(text, 40)


def check_host(value: str) -> str:
    """A DNS name (letters, digits, ``-``, ``_``, ``.``; a trailing dot allowed) or an IP address."""
    if not value:
        raise ValueError("the host is empty")
    if len(value) > HOST_MAX:
        raise ValueError(f"the host is {len(value)} characters long, more than {HOST_MAX}")
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(bare)
        return value
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not _HOST.match(name) or ".." in name:
        raise ValueError(f"{shown(value)} is not a host name or IP address")
    return value


def check_url(value: str, schemes: tuple[str, ...]) -> str:
    """An absolute URL with one of ``schemes``, a valid host and, if given, a port 1..65535."""
    if len(value) > URL_MAX:
        raise ValueError(f"the URL is {len(value)} characters long, more than {URL_MAX}")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{shown(value)} contains a space or a control character")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{shown(value)} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in schemes:
        raise ValueError(f"{shown(value)} does not start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname:
        raise ValueError(f"{shown(value)} names no host")
    check_host(parts.hostname)
    if port == 0:
        raise ValueError(f"{shown(value)}: port 0 is not a port to connect to")
    return value


def http_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL (see :func:`check_url`)."""
    return check_url(value, ("http", "https"))


def ws_url(value: str) -> str:
    """A ``ws://`` or ``wss://`` URL (see :func:`check_url`)."""
    return check_url(value, ("ws", "wss"))


HttpUrl = Annotated[str, AfterValidator(http_url)]
WsUrl = Annotated[str, AfterValidator(ws_url)]
Host = Annotated[str, AfterValidator(check_host)]
Port = Annotated[int, Field(ge=1, le=65535)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
