"""Client certificates for the mutual-TLS self-tests, generated at run time.

A CA the servers trust for client certificates (``ca.pem``, which also signs ``server.pem`` for
127.0.0.1) and one they do not; leaves ``good`` (90 days), ``soon`` (5 days), ``expired`` (2 days ago)
and ``untrusted`` (from the stranger CA)::

    @pytest.fixture(scope="module")
    def pki(tmp_path_factory):
        return make_client_pki(tmp_path_factory.mktemp("mtls"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from opsverify_sandbox.pki import CertificateAuthority


@dataclass
class Pki:
    """Where the files are (``<name>.pem``/``<name>.key``), the client CA, and each leaf's key as PEM."""

    directory: Path
    ca: Path
    key_pem: dict[str, str]  # name -> PEM private key (for {env: ...} references)

    def cert(self, name: str) -> str:
        return str(self.directory / f"{name}.pem")

    def key(self, name: str) -> str:
        return str(self.directory / f"{name}.key")


def make_client_pki(directory: Path) -> Pki:
    """Write the CAs, the server certificate and every client leaf into ``directory``."""
    trusted, stranger = CertificateAuthority.create("opsverify client CA"), CertificateAuthority.create("stranger CA")
    ca = trusted.write(directory / "ca.pem")
    trusted.issue(["127.0.0.1"], days=90).write(directory / "server.pem", directory / "server.key")
    issued = {
        "good": trusted.issue(["opsverify-checker"], days=90, client=True),
        "soon": trusted.issue(["opsverify-soon"], days=5, client=True),
        "expired": trusted.issue(["opsverify-expired"], days=-2, client=True),
        "untrusted": stranger.issue(["opsverify-stranger"], days=90, client=True),
    }
    pems = {}
    for name, leaf in issued.items():
        leaf.write(directory / f"{name}.pem", directory / f"{name}.key")
        pems[name] = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
    return Pki(directory, ca, pems)
