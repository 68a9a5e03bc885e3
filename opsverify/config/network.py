"""``tcp:`` and ``dns:`` sections: ports that must accept connections, names that must resolve.

Example::

    tcp:
      - {name: postgres, host: db.staging.internal, port: 5432}
    dns:
      - {name: gateway, hostname: gateway.staging.example.com, expect: [203.0.113.10]}
      - {name: internal, hostname: api.svc.internal, nameserver: 10.0.0.2:53}
"""

from __future__ import annotations

from pydantic import Field

from opsverify.config.base import Target, section


class TcpTarget(Target):
    """A TCP port that must accept a connection."""

    host: str
    port: int = Field(ge=1, le=65535)


class DnsTarget(Target):
    """A DNS name that must resolve (to exactly the ``expect`` set of addresses, when given)."""

    hostname: str
    expect: list[str] | None = None
    nameserver: str | None = Field(
        default=None, description="ask this server (host or host:port) instead of the system resolver"
    )


section("tcp", TcpTarget, doc="TCP ports that must accept a connection")
section("dns", DnsTarget, doc="DNS names that must resolve, optionally to an expected set")
