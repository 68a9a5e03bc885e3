"""Certificates made at run time (never committed): a CA and leaf certificates, healthy or faulty.

Example::

    ca = CertificateAuthority.create("opsverify sandbox CA")
    ca.write(tmp / "ca.pem")
    leaf = ca.issue(["localhost", "127.0.0.1"], days=90)
    leaf.write(tmp / "server.pem", tmp / "server.key")
    expired = ca.issue(["localhost"], days=-1)            # expired yesterday
    other = CertificateAuthority.create("someone else").issue(["localhost"])   # untrusted chain
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from opsverify_sandbox.files import write_private

Key = ec.EllipticCurvePrivateKey


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, key: Key) -> None:
    write_private(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))


@dataclass
class IssuedCertificate:
    """A leaf certificate and its key."""

    cert: x509.Certificate
    key: Key
    chain: list[x509.Certificate]

    def write(self, cert_path: Path, key_path: Path) -> tuple[Path, Path]:
        """Write the certificate (with its chain) and the key (mode 0600)."""
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [self.cert, *self.chain])
        cert_path.write_bytes(pem)
        _write_private(key_path, self.key)
        return cert_path, key_path


@dataclass
class CertificateAuthority:
    """A self-signed root CA that issues leaf certificates."""

    cert: x509.Certificate
    key: Key

    @classmethod
    def create(cls, name: str = "opsverify test CA", days: int = 365) -> CertificateAuthority:
        key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert=cert, key=key)

    def write(self, path: Path) -> Path:
        """Write the CA certificate (PEM) — the bundle clients trust."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(
        self,
        names: list[str],
        *,
        days: float = 90,
        not_before_days: float = 30,
        client: bool = False,
    ) -> IssuedCertificate:
        """A leaf certificate for ``names`` (DNS names or IPs) valid until now + ``days``.

        A negative ``days`` makes an already expired certificate.
        """
        key = _key()
        now = datetime.now(UTC)
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        not_after = now + timedelta(days=days)
        not_before = min(now - timedelta(days=not_before_days), not_after - timedelta(days=1))
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return IssuedCertificate(cert=cert, key=key, chain=[])
