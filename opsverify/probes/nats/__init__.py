"""NATS probes: connect with one credential, round trips, the permission matrix, the credential's
JWT claims, JetStream streams and consumers, and the monitoring endpoint.

What the server does is what we report (nats-py 2.16 against nats-server 2.15, see the launcher's
"Facts that bite" in :mod:`opsverify_sandbox.servers.nats`):

* a rejected credential makes ``nats.connect`` raise ``nats: 'Authorization Violation'``: the
  connect probe returns it as data (:attr:`NatsConnectFacts.auth_error`), so the *check* fails;
  refused / DNS / TLS / stalled connections are :class:`~opsverify.errors.Unreachable` or
  :class:`~opsverify.errors.ProbeTimeout` (the check errors);
* a denied publish or subscribe raises nothing: the server's ``permissions violation`` arrives
  only through ``error_cb`` (before the PONG of the next flush), so :class:`ErrorLog` collects
  them and the permission probes match them to subjects;
* probe messages (canary, allowed-publish tests) carry ``Nats-Expected-Stream`` naming a stream
  that does not exist: core subscribers still get them, but no JetStream stream stores them.

Every probe other than the connect and credential probes first awaits the connect probe
(``ctx.depend``), so an unreachable server or a rejected credential gives all of them the same
one-line cause.

:func:`open_connection` and :func:`probe_connect` take any :class:`NatsCredentials`, not only the
target's own, so the same probe can verify another credential of the same server.

Example::

    facts = await probe_connect(ctx)                  # NatsConnectFacts(connected=True, ...)
    conn = await open_connection(ctx)                 # NatsConnection: .client, .errors
    try:
        await conn.client.publish("orders.new", b"")
    finally:
        await conn.close()
"""

from __future__ import annotations

from opsverify.probes.nats.connect import (
    PROBE_TOKEN, NO_SUCH_STREAM, SETTLE_S, DENIAL_WAIT_S, CLOSE_S, Direction, concrete_subject, ErrorLog,
    tls_context, NatsConnection, open_connection, NatsConnectFacts, probe_connect, connected, guarded,
)
from opsverify.probes.nats.credentials import (
    CredsFile, read_creds, Material, load_material, CredentialFacts, probe_credential,
)
from opsverify.probes.nats.roundtrips import (
    RoundTrip, probe_request, probe_canary,
)
from opsverify.probes.nats.permissions import (
    SubjectVerdict, PermissionFacts, probe_permissions, AccountFacts, USER_INFO, probe_account,
)
from opsverify.probes.nats.jetstream import (
    StreamFacts, ConsumerFacts, JetStreamFacts, probe_jetstream,
)
from opsverify.probes.nats.monitoring import (
    MonitorHealth, probe_monitoring,
)

__all__ = [
    "PROBE_TOKEN", "NO_SUCH_STREAM", "SETTLE_S", "DENIAL_WAIT_S", "CLOSE_S", "Direction", "concrete_subject",
    "ErrorLog", "CredsFile", "read_creds", "Material", "load_material", "tls_context", "NatsConnection",
    "open_connection", "NatsConnectFacts", "probe_connect", "connected", "guarded", "RoundTrip",
    "probe_request", "probe_canary", "SubjectVerdict", "PermissionFacts", "probe_permissions",
    "CredentialFacts", "probe_credential", "AccountFacts", "USER_INFO", "probe_account", "StreamFacts",
    "ConsumerFacts", "JetStreamFacts", "probe_jetstream", "MonitorHealth", "probe_monitoring",
]
