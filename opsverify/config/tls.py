"""``tls:`` section: certificates served by TLS endpoints.

Its keys: ``docs/environment/reference.md#tls``;
an example and its checks: ``docs/environment/tls.md``.

``client_cert`` / ``client_key`` (:class:`ClientCertificate`) are taken by every section that speaks
TLS to a server that may demand a client certificate: ``http``, ``tls``, ``nats``, ``kafka``,
``postgres`` and ``redis``.
"""

from __future__ import annotations

from typing import Any, Literal


from pydantic import Field, model_validator

from opsverify.config.base import Strict, Target, section, threshold_or
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MinDays
from opsverify.config.values import Host, Port


class ClientCertificate(Strict):
    """Mutual TLS: the certificate the checker presents and its private key (a secret reference).

    ``client_cert`` is a PEM file (the leaf, optionally followed by intermediates; relative to the
    environment file); ``client_key`` is a secret reference to the PEM private key (``{file: ...}``
    or ``{env: ...}`` holding the PEM text). Both or neither.
    """

    client_cert: str | None = Field(default=None, min_length=1, description="PEM client certificate (mutual TLS)")
    client_key: SecretRef | None = Field(default=None, description="secret reference to its PEM private key")
    client_min_days: MinDays | None = Field(
        default=None, description="days the client certificate must have left (default: defaults.tls_min_days)"
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> ClientCertificate:
        if (self.client_cert is None) != (self.client_key is None):
            missing = "client_key" if self.client_key is None else "client_cert"
            raise ValueError(f"mutual TLS needs client_cert and client_key: {missing} is missing")
        return self

TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class TlsTarget(Target, ClientCertificate):
    """A TLS endpoint whose certificate must be valid, trusted, for the right name and not expiring."""

    host: Host = Field(description="the server's host name or address")
    port: Port = Field(default=443, description="the TLS port")
    server_name: str | None = Field(default=None,
                                    description="SNI and the name the certificate must be valid for; default: host")
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    min_days: MinDays | None = Field(default=None,
                                     description="days the certificate must have left; default: defaults.tls_min_days")
    min_version: TlsVersion = Field(default="TLSv1.2",
                                    description="oldest protocol the server may negotiate; older ones must be refused")

    @property
    def sni(self) -> str:
        return self.server_name or self.host

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.min_days = threshold_or(self.min_days, defaults.tls_min_days)
        self.client_min_days = threshold_or(self.client_min_days, self.min_days)


section("tls", TlsTarget, doc="TLS certificates: expiry, hostname, chain, protocol version")
