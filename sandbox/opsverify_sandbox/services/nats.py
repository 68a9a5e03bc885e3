"""The sandbox's NATS: operator (JWT) mode, TLS, JetStream, one application credential.

Ports (fixed, as ``environments/local.yaml`` names them): client 14222 (TLS), monitoring 18222.

Every start generates a fresh trust chain under ``<state>/nats/`` (mode 0600 for secrets):

* ``trust/`` - operator, system account and the ``APP`` account (JetStream enabled);
* ``app.creds`` - the credential the checks use: user ``app`` of account ``APP``, valid 30 days,
  publish ``app.>`` (not ``app.admin.>``), ``$JS.API.>`` and ``$SYS.REQ.USER.INFO``; subscribe
  ``app.>`` (not ``app.admin.>``) and ``_INBOX.>``;
* ``admin.creds`` - an unrestricted user of ``APP`` (valid one day), used only here to provision.

The server certificate is issued by the sandbox CA (``<state>/ca.pem``, shared with the demo
service). After start, stream ``APP_EVENTS`` (``app.events.>``, file storage) with the durable
pull consumer ``worker`` is created and three events are published, so the consumer has a backlog.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import ssl
from pathlib import Path

from opsverify.errors import SandboxError
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.nats import NatsServer, Permissions, TlsFiles, make_jwt_trust, start_nats
from opsverify_sandbox.services.demo import ensure_ca

CLIENT_PORT = 14222
MONITORING_PORT = 18222
STREAM, SUBJECTS, CONSUMER = "APP_EVENTS", ["app.events.>"], "worker"
APP_PERMISSIONS = Permissions(
    publish_allow=("app.>", "$JS.API.>", "$SYS.REQ.USER.INFO"),
    publish_deny=("app.admin.>",),
    subscribe_allow=("app.>", "_INBOX.>"),
    subscribe_deny=("app.admin.>",),
)


async def _provision(server: NatsServer, admin_creds: Path) -> None:
    import nats

    import opsverify.probes.nats  # noqa: F401 - installs the filter for asyncio's TLS-close noise

    context = ssl.create_default_context(cafile=str(server.ca_path))
    nc = await nats.connect(
        f"tls://127.0.0.1:{server.port}", tls=context, user_credentials=str(admin_creds),
        allow_reconnect=False, max_reconnect_attempts=1, connect_timeout=5,
    )
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(name=STREAM, subjects=SUBJECTS, storage="file", num_replicas=1)
        await js.add_consumer(STREAM, durable_name=CONSUMER, ack_policy="explicit")
        for number in range(3):
            await js.publish(f"app.events.{number}", b"sandbox event")
    finally:
        await nc.close()


@service("nats", order=20)
def start_nats_sandbox(directory: Path) -> Started:
    """NATS (JWT auth, TLS, JetStream): app.creds, stream APP_EVENTS, consumer worker."""
    base = directory / "nats"
    shutil.rmtree(base / "server" / "jetstream", ignore_errors=True)  # its account changes every start
    trust = make_jwt_trust(base / "trust", account_name="APP")
    now = dt.datetime.now(dt.UTC)
    trust.write_user_creds(
        "app", path=base / "app.creds", expires_at=now + dt.timedelta(days=30), permissions=APP_PERMISSIONS
    )
    admin = trust.write_user_creds("admin", path=base / "admin.creds", expires_at=now + dt.timedelta(days=1))
    cert, key = ensure_ca(directory).issue(["localhost", "127.0.0.1"], days=90).write(
        base / "tls" / "server.pem", base / "tls" / "server.key"
    )
    server = start_nats(
        base / "server",
        jwt_trust=trust,
        tls=TlsFiles(directory / "ca.pem", cert, key),
        port=CLIENT_PORT,
        monitoring_port=MONITORING_PORT,
        server_name="opsverify-sandbox",
    )
    try:
        asyncio.run(asyncio.wait_for(_provision(server, admin), 20))
    except Exception as exc:  # noqa: BLE001 - whatever failed, the sandbox stops the server and says so
        server.stop()
        raise SandboxError(f"provisioning JetStream failed: {exc}") from None
    return Started(
        [server.process],
        {"client": CLIENT_PORT, "monitoring": MONITORING_PORT},
        {"account": trust.account_public, "creds": str(base / "app.creds")},
    )
