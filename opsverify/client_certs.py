"""The checker's own mutual-TLS client certificates: read from their files, dated, and listed.

Every section that takes ``client_cert`` (``http``, ``tls``, ``nats``, ``kafka``, ``postgres``,
``redis``) presents that certificate; its expiry is a fact of a local file, so it is read without any
network and judged against ``client_min_days`` (default: ``defaults.tls_min_days``). The credential
inventory (``opsverify credentials``) lists one row per certificate; the ``tls:`` section's checks
also judge whether the server accepts it.

Example::

    info = read_client_certificate("certs/client.pem", base_dir="/etc/opsverify")
    info.subject, info.days_left
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from opsverify.config.tls import ClientCertificate
from opsverify.errors import ClientCertUnusable
from opsverify.net.tls import base_dir, resolve

if TYPE_CHECKING:
    from opsverify.inventory import Credential
    from opsverify.session import OvSession

SECTIONS = ("http", "tls", "nats", "kafka", "postgres", "redis")
RUNBOOK = "certs#client-certificate"


@dataclass
class ClientCertInfo:
    """A client certificate as its file holds it."""

    path: str
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def days_left(self) -> float:
        return (self.not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400


def read_client_certificate(client_cert: str, base: str | None) -> ClientCertInfo:
    """The first certificate of the PEM file ``client_cert``; raises :class:`ClientCertUnusable`."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    path = resolve(client_cert, base)
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise ClientCertUnusable(f"client certificate {path} cannot be read ({exc.strerror or exc})") from None
    except ValueError:
        raise ClientCertUnusable(f"client certificate {path} is not a PEM certificate") from None

    def name(value: Any) -> str:
        common = value.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(common[0].value) if common else value.rfc4514_string()

    return ClientCertInfo(str(path), name(cert.subject), name(cert.issuer),
                          cert.not_valid_before_utc, cert.not_valid_after_utc)


CERT_ALERTS = ("certificate required", "unknown ca", "certificate expired", "bad certificate",
               "certificate revoked", "certificate unknown", "unsupported certificate", "access denied")


def certificate_alert(exc: object) -> str | None:
    """The TLS alert about a client certificate in ``exc`` (an exception and its causes, or a
    library's error text), if any: ``certificate expired``, ``unknown ca`` ..."""
    seen: object = exc
    for _ in range(10):
        if seen is None:
            return None
        text = f"{getattr(seen, 'reason', '') or ''} {seen}".lower().replace("_", " ")
        for alert in CERT_ALERTS:
            if alert in text:
                return alert
        seen = (seen.__cause__ or seen.__context__) if isinstance(seen, BaseException) else None
    return None


def expiry_hint(target: Any, base: str | None) -> str:
    """``; the client certificate … expired …`` when the target's client certificate has expired, else ``""``."""
    if not getattr(target, "client_cert", None):
        return ""
    try:
        info = read_client_certificate(target.client_cert, base)
    except ClientCertUnusable:
        return ""
    if info.days_left >= 0:
        return ""
    return (f"; the client certificate {info.subject} ({target.client_cert}) expired "
            f"{info.not_after:%Y-%m-%d %H:%M} UTC, {-info.days_left:.1f} d ago")


def inventory_rows(session: OvSession) -> tuple[list[Credential], set[tuple[str, str, str, str]]]:
    """One inventory row per configured client certificate, and the ``client_key`` fields they cover."""
    from opsverify.inventory import Credential, judge

    rows: list[Credential] = []
    covered: set[tuple[str, str, str, str]] = set()
    for env in session.environments.values():
        for section in SECTIONS:
            for target in env.targets(section):
                if not isinstance(target, ClientCertificate) or not target.client_cert:
                    continue
                covered.add((env.name, section, target.name, "client_key"))
                case: Any = SimpleNamespace(env=env.name, section=section, target=target.name)
                threshold = target.client_min_days or env.defaults.tls_min_days
                try:
                    info = read_client_certificate(target.client_cert, base_dir(env))
                except ClientCertUnusable as exc:
                    rows.append(Credential(kind="TLS client certificate", env=env.name,
                                           owner=f"{section}/{target.name}", name=target.client_cert,
                                           status="unknown", reason=f"could not read: {exc}", runbook=RUNBOOK))
                    continue
                rows.append(judge("TLS client certificate", case, f"{info.subject} (issued by {info.issuer})",
                                  runbook=RUNBOOK, issued=info.not_before, expires=info.not_after,
                                  min_left=threshold))
    return rows, covered
