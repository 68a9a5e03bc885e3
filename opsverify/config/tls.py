"""``tls:`` section: certificates served by TLS endpoints.

Example::

    tls:
      - name: gateway
        host: gateway.staging.example.com
        port: 443
        server_name: gateway.staging.example.com   # SNI and hostname to verify (default: host)
        ca_bundle: certs/internal-ca.pem           # default: the system trust store
        min_days: {warn: 30, critical: 14}         # default: per tier
        min_version: TLSv1.2
"""

from __future__ import annotations

from typing import Any, Literal


from opsverify.config.base import Target, section, threshold_or
from opsverify.config.thresholds import MinDays
from opsverify.config.values import Host, Port

TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class TlsTarget(Target):
    """A TLS endpoint whose certificate must be valid, trusted, for the right name and not expiring."""

    host: Host
    port: Port = 443
    server_name: str | None = None
    ca_bundle: str | None = None
    min_days: MinDays | None = None
    min_version: TlsVersion = "TLSv1.2"

    @property
    def sni(self) -> str:
        return self.server_name or self.host

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.min_days = threshold_or(self.min_days, defaults.tls_min_days)


section("tls", TlsTarget, doc="TLS certificates: expiry, hostname, chain, protocol version")
