"""``tcp:`` and ``dns:`` sections: ports that must accept connections, names that must resolve.

Its keys: ``docs/environment/reference.md`` (#tcp, #dns);
an example and its checks: ``docs/environment/network.md``.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from opsverify.config.base import Target, section
from opsverify.config.values import Host, Port, shown


class TcpTarget(Target):
    """A TCP port that must accept a connection."""

    host: Host = Field(description="the host to connect to")
    port: Port = Field(description="the TCP port that must accept a connection")


class DnsTarget(Target):
    """A DNS name that must resolve (to exactly the ``expect`` set of addresses, when given)."""

    hostname: Host = Field(description="the DNS name to resolve")
    expect: list[str] | None = None
    nameserver: str | None = Field(
        default=None, description="ask this server (host or host:port) instead of the system resolver"
    )

    @field_validator("nameserver")
    @classmethod
    def _address_and_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.rpartition(":")  # as the probe reads it
        if not host:
            host, port = port, "53"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{shown(value)} is not an IP address with an optional :port") from None
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"{shown(value)}: the port is not a number between 1 and 65535")
        return value


section("tcp", TcpTarget, doc="TCP ports that must accept a connection")
section("dns", DnsTarget, doc="DNS names that must resolve, optionally to an expected set")
