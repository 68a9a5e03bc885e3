"""The sandbox's telemetry backend: the OTLP/HTTP receiver of :mod:`opsverify_sandbox.servers.otlp_receiver`.

Port (fixed, as ``environments/local.yaml`` names it): 18320. It demands the header
``signoz-ingestion-key`` (SigNoz Cloud's) and accepts only the key generated at every start into
``<state>/telemetry/ingestion-key`` (mode 0600); a second key, ``<state>/telemetry/retired-key``, is
generated too but NOT accepted - the state after a finished rotation.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from opsverify_sandbox.files import write_private
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.otlp_receiver import start_otlp_receiver

PORT = 18320
KEY_HEADER = "signoz-ingestion-key"


def _secret(path: Path) -> str:
    value = secrets.token_urlsafe(30)
    write_private(path, value + "\n")
    return value


@service("otlp-receiver", order=82)
def start_telemetry_sandbox(directory: Path) -> Started:
    """OTLP/HTTP receiver (logs, traces) enforcing a signoz-ingestion-key; the retired key is refused."""
    workdir = directory / "telemetry"
    workdir.mkdir(parents=True, exist_ok=True)
    current = _secret(workdir / "ingestion-key")
    _secret(workdir / "retired-key")
    proc, _ = start_otlp_receiver(workdir, [current], port=PORT, key_header=KEY_HEADER)
    return Started([proc], {"http": PORT}, {"endpoint": f"http://127.0.0.1:{PORT}", "key_header": KEY_HEADER})
