"""The demo web service of the sandbox: HTTP health endpoints, HTTPS with a run-time CA, a TCP port.

Ports (fixed, as ``environments/local.yaml`` names them): HTTP 18080, HTTPS 18443.
"""

from __future__ import annotations

import sys
from pathlib import Path

from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.process import ManagedProcess

HTTP_PORT = 18080
HTTPS_PORT = 18443


def ensure_ca(directory: Path) -> CertificateAuthority:
    """The sandbox CA (``ca.pem``), created on first use. Its key never leaves the state directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return CertificateAuthority(cert=cert, key=key)  # type: ignore[arg-type]
    ca = CertificateAuthority.create("opsverify sandbox CA")
    ca.write(cert_path)
    from opsverify_sandbox.pki import _write_private

    _write_private(key_path, ca.key)
    return ca


@service("demo", order=10)
def start_demo(directory: Path) -> Started:
    """Demo web service: /healthz, /api/admin/health over HTTP and HTTPS."""
    ca = ensure_ca(directory)
    cert, key = ca.issue(["localhost", "127.0.0.1"], days=90).write(
        directory / "demo" / "server.pem", directory / "demo" / "server.key"
    )
    proc = ManagedProcess.start(
        [sys.executable, "-m", "opsverify_sandbox.demo", "--http", str(HTTP_PORT),
         "--https", f"{HTTPS_PORT}:{cert}:{key}"],
        log_path=directory / "logs" / "demo.log",
        name="demo",
    )
    proc.wait_for_port("127.0.0.1", HTTP_PORT, timeout_s=15)
    proc.wait_for_port("127.0.0.1", HTTPS_PORT, timeout_s=5)
    return Started([proc], {"http": HTTP_PORT, "https": HTTPS_PORT})
