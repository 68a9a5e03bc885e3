"""TLS probe: what certificate an endpoint serves, whether it is trusted, and which protocol it speaks.

Two handshakes per target (both bounded by the probe's timeout):

1. without verification, to read the leaf certificate and the negotiated protocol even when the
   certificate is expired, for another host or from an unknown CA;
2. with chain verification (system store or the target's CA bundle) but without hostname checking,
   so a chain problem is told apart from a name problem. The name is matched against the
   certificate's subjectAltNames here (RFC 6125 wildcards).

A third, optional handshake offers only the versions below ``min_version`` to see whether the
server refuses them.

Example::

    seen = await handshake(ctx)
    seen.days_left, seen.chain_error, seen.hostname_matches, seen.protocol
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from opsverify.config.tls import TlsTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, Unreachable

VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
_SSL_VERSION = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass
class TlsCertificate:
    """What the endpoint presented and how the client judged it."""

    subject: str
    issuer: str
    not_after: datetime
    sans: list[str]
    protocol: str
    chain_error: str | None
    hostname: str
    downgrade_accepted: str | None = None  # the version below min_version the server accepted
    not_before: datetime | None = None  # issue time (the credential inventory shows its age)

    @property
    def days_left(self) -> float:
        return (self.not_after - datetime.now(UTC)).total_seconds() / 86400

    @property
    def hostname_matches(self) -> bool:
        return any(name_matches(pattern, self.hostname) for pattern in self.sans)


def name_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125 matching: exact (case-insensitive) or a left-most ``*`` label wildcard."""
    pattern, hostname = pattern.lower().rstrip("."), hostname.lower().rstrip(".")
    if pattern == hostname:
        return True
    if pattern.startswith("*.") and "." in hostname:
        return hostname.split(".", 1)[1] == pattern[2:] and not _is_ip(hostname)
    return False


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _cert_context(target: TlsTarget, base_dir: str | None) -> ssl.SSLContext:
    if target.ca_bundle:
        path = Path(os.path.expandvars(target.ca_bundle))
        if not path.is_absolute() and base_dir:
            path = Path(base_dir) / path
        try:
            ctx = ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(f"CA bundle {path} cannot be loaded: {exc}") from None
    else:
        ctx = ssl.create_default_context()
    ctx.check_hostname = False
    return ctx


def _insecure_context(max_version: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version:
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with warnings.catch_warnings():  # offering old versions on purpose, to see them refused
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = _SSL_VERSION[max_version]
    return ctx


async def _open(
    ctx: ProbeContext[TlsTarget], target: TlsTarget, sslctx: ssl.SSLContext, phase: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    where = f"{target.host}:{target.port}"
    ctx.phase = f"{phase} with {where}"
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                target.host, target.port, ssl=sslctx, server_hostname=target.sni,
                ssl_handshake_timeout=ctx.timeout,
            ),
            ctx.timeout,
        )
    except (asyncio.TimeoutError, TimeoutError):
        raise ProbeTimeout(f"{phase} with {where} stalled for {ctx.timeout:g} s") from None
    except ConnectionRefusedError:
        raise Unreachable(f"cannot connect to {where}: connection refused") from None
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise Unreachable(f"cannot connect to {where}: {reason}") from None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


def _name(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else name.rfc4514_string()


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    san: x509.SubjectAlternativeName = ext.value  # type: ignore[assignment]
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


async def handshake(ctx: ProbeContext[TlsTarget]) -> TlsCertificate:
    """Read the served certificate, judge its chain, and test the minimum protocol version."""
    target = ctx.target
    source = getattr(ctx.env, "source", "")
    base_dir = str(Path(source).resolve().parent) if source else None
    verify_ctx = _cert_context(target, base_dir)

    try:
        _, writer = await _open(ctx, target, _insecure_context(), "TLS handshake")
    except ssl.SSLError as exc:
        raise Unreachable(
            f"TLS handshake with {target.host}:{target.port} failed: {exc.reason or exc}"
        ) from None
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    protocol = ssl_object.version() if ssl_object else "unknown"
    await _close(writer)
    if not der:
        raise Unreachable(f"{target.host}:{target.port} presented no certificate")
    cert = x509.load_der_x509_certificate(der)

    chain_error: str | None = None
    try:
        _, writer = await _open(ctx, target, verify_ctx, "verifying TLS chain")
        await _close(writer)
    except ssl.SSLCertVerificationError as exc:
        chain_error = exc.verify_message or str(exc)
    except ssl.SSLError as exc:
        chain_error = exc.reason or str(exc)

    downgrade: str | None = None
    index = VERSIONS.index(target.min_version)
    if index > 0:
        below = VERSIONS[index - 1]
        try:
            _, writer = await _open(ctx, target, _insecure_context(below), f"offering only <= {below}")
            accepted = writer.get_extra_info("ssl_object")
            downgrade = accepted.version() if accepted else below
            await _close(writer)
        except (ssl.SSLError, Unreachable, ConnectionResetError):
            downgrade = None

    return TlsCertificate(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        not_after=cert.not_valid_after_utc,
        sans=_sans(cert),
        protocol=protocol or "unknown",
        chain_error=chain_error,
        hostname=target.sni,
        downgrade_accepted=downgrade,
        not_before=cert.not_valid_before_utc,
    )
