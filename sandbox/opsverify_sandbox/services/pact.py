"""The sandbox's Pact Broker: the broker EMULATOR of :mod:`opsverify_sandbox.servers.pact_broker`.

Port (fixed, as ``environments/local.yaml`` names it): 18300. No real Pact Broker can be installed
here (it is a Ruby application with a database); the emulator serves the broker's real JSON shapes
for the heartbeat and the can-i-deploy matrix from the data below: version ``2.4.0`` of
``auth-edge-service`` is verified by every consumer version deployed to ``production`` (deployable),
while ``2.5.0-rc1`` broke the ``web-console`` pact (not deployable).
"""

from __future__ import annotations

from pathlib import Path

from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.pact_broker import start_pact_broker

PORT = 18300

DATA = {
    "environments": ["production", "staging"],
    "pacts": [
        {"consumer": "web-console", "consumer_version": "7.1.0", "provider": "auth-edge-service",
         "verifications": [{"provider_version": "2.4.0", "success": True},
                           {"provider_version": "2.5.0-rc1", "success": False}]},
        {"consumer": "auth-edge-service", "consumer_version": "2.4.0", "provider": "token-service",
         "verifications": [{"provider_version": "3.0.2", "success": True}]},
    ],
    "deployed": {
        "production": {"web-console": "7.1.0", "token-service": "3.0.2", "auth-edge-service": "2.3.9"},
        "staging": {"web-console": "7.1.0", "token-service": "3.0.2"},
    },
}


@service("pact-broker", order=80)
def start_pact_sandbox(directory: Path) -> Started:
    """Pact Broker emulator (heartbeat, matrix, can-i-deploy) with a deployable and a broken release."""
    proc = start_pact_broker(directory / "pact", DATA, port=PORT)
    return Started([proc], {"http": PORT}, {"url": f"http://127.0.0.1:{PORT}", "emulator": True})
