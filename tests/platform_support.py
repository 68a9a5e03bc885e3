"""Shared by the platform self-tests: start the real platform demo on free ports, with a run-time CA.

Example::

    demo = start_demo(tmp, {"healthy": "", "slow": "ws-slow"})
    demo.url("healthy", "/auth/me")
    demo.ref("client-secret")       # {"file": ".../secrets/client-secret"} for an environment file
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from opsverify.errors import SandboxError
from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.platform_demo import PlatformDemo, start_platform_demo
from opsverify_sandbox.process import free_port

BIND_ATTEMPTS = 3


@dataclass
class Demo:
    """A running platform demo and the CA its TLS listeners' certificate comes from."""

    demo: PlatformDemo
    ca: Path

    def url(self, name: str, path: str = "", scheme: str = "http") -> str:
        return self.demo.url(name, path, scheme)

    def base(self, name: str) -> str:
        return self.demo.url(name, "")

    def ref(self, secret: str) -> dict[str, str]:
        """A ``{file: ...}`` secret reference to one of the demo's generated secrets."""
        return {"file": str(self.demo.secret(secret))}

    def secret(self, name: str) -> str:
        return self.demo.secret(name).read_text().strip()

    def control(self, name: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to a ``/_test/...`` endpoint of listener ``name`` (with the test key)."""
        response = httpx.post(self.url(name, path), json=body, headers={"x-test-key": self.secret("test-key")},
                              timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        self.demo.stop()


def start_demo(tmp: Path, listeners: dict[str, str]) -> Demo:
    """One demo process with a listener per entry (name -> options); TLS ones get a CA-issued cert."""
    ca = CertificateAuthority.create("platform selftest CA")
    ca_path = ca.write(tmp / "ca.pem")
    cert, key = ca.issue(["localhost", "127.0.0.1"], days=30).write(tmp / "server.pem", tmp / "server.key")

    def start() -> PlatformDemo:
        ports = {name: (free_port(), options) for name, options in listeners.items()}
        return start_platform_demo(tmp, ports, cert=cert, key=key)

    for _ in range(BIND_ATTEMPTS - 1):
        try:
            return Demo(start(), ca_path)
        except SandboxError as exc:  # a port found free was taken by another worker's server before the demo bound it
            if "address already in use" not in str(exc):
                raise
    return Demo(start(), ca_path)
