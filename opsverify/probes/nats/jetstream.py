"""NATS JetStream: the streams and consumers the target expects, as the JetStream API reports them
(and whether JetStream is off on the server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opsverify.config.nats import NatsTarget
from opsverify.engine import ProbeContext
from opsverify.errors import NatsPublishDenied, ProbeTimeout, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module
from opsverify.probes.nats.connect import CLOSE_S, connected, guarded
from opsverify.probes.nats.monitoring import _monitor_get

if TYPE_CHECKING:
    import nats
    import nats.errors
    import nats.js.errors
else:
    nats = lazy_module("nats")  # nats.errors and nats.js.errors are imported by the package itself


# ---------------------------------------------------------------------------------------------
# JetStream
# ---------------------------------------------------------------------------------------------


@dataclass
class StreamFacts:
    name: str
    subjects: list[str]
    replicas: int
    storage: str
    messages: int
    consumers: int


@dataclass
class ConsumerFacts:
    stream: str
    name: str
    num_pending: int
    num_ack_pending: int
    num_redelivered: int
    num_waiting: int
    ack_floor: int = 0  # stream sequence below which every message is acknowledged


@dataclass
class JetStreamFacts:
    """JetStream as the credential's account sees it (and as ``/varz`` reports it, when known)."""

    enabled: bool
    disabled_reason: str | None = None
    streams: dict[str, StreamFacts | None] = field(default_factory=dict)
    consumers: dict[str, ConsumerFacts | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # item name -> why it is missing


def _api_text(exc: nats.js.errors.APIError) -> str:
    parts = [p for p in (exc.description, f"err_code {exc.err_code}" if exc.err_code else None) if p]
    return ", ".join(parts) or type(exc).__name__


async def probe_jetstream(ctx: ProbeContext[NatsTarget]) -> JetStreamFacts:
    """Account info, then each configured stream and consumer; ``/varz`` when monitoring is set."""
    target = ctx.target
    conn = await connected(ctx)
    try:
        js = conn.client.jetstream(timeout=ctx.left(reserve=CLOSE_S / 4))
        ctx.phase = "reading JetStream account info"
        server_off = await _varz_jetstream_off(ctx, target)
        try:
            await guarded(conn, js.account_info(), "$JS.API.INFO")
        except NatsPublishDenied as denied:
            raise UnexpectedResponse(f"{conn.identity} may not use the JetStream API: {denied}") from None
        except nats.js.errors.ServiceUnavailableError:
            reason = server_off or "JetStream is not enabled for this account or server (503, no JetStream responders)"
            return JetStreamFacts(False, reason)
        except nats.errors.NoRespondersError:
            return JetStreamFacts(False, server_off or "no JetStream responders ($JS.API.INFO)")
        except nats.js.errors.APIError as exc:
            if exc.err_code == 10039 or exc.code == 503:
                return JetStreamFacts(False, server_off or f"JetStream not enabled for the account ({_api_text(exc)})")
            raise UnexpectedResponse(f"JetStream account info failed: {_api_text(exc)}") from None
        except nats.errors.TimeoutError:
            raise ProbeTimeout(f"JetStream API did not answer within {ctx.timeout:g} s") from None
        facts = JetStreamFacts(True, None)
        if server_off:
            facts.enabled, facts.disabled_reason = False, server_off
        for stream in target.streams:
            ctx.phase = f"reading stream {stream.name}"
            try:
                info = await js.stream_info(stream.name)
            except nats.js.errors.NotFoundError:
                facts.streams[stream.name] = None
                facts.missing[stream.name] = f"stream {stream.name} does not exist"
                continue
            config = info.config
            storage = getattr(config.storage, "value", config.storage) or "?"  # an enum or a str
            facts.streams[stream.name] = StreamFacts(
                stream.name, list(config.subjects or []), int(config.num_replicas or 1), str(storage),
                int(info.state.messages), int(info.state.consumer_count),
            )
        for consumer in target.consumers:
            ctx.phase = f"reading consumer {consumer.name}"
            try:
                cinfo = await js.consumer_info(consumer.stream, consumer.consumer)
            except nats.js.errors.NotFoundError as exc:
                what = f"stream {consumer.stream}" if exc.err_code == 10059 else f"consumer {consumer.name}"
                facts.consumers[consumer.name] = None
                facts.missing[consumer.name] = f"{what} does not exist"
                continue
            facts.consumers[consumer.name] = ConsumerFacts(
                consumer.stream, consumer.consumer, int(cinfo.num_pending or 0),
                int(cinfo.num_ack_pending or 0), int(cinfo.num_redelivered or 0), int(cinfo.num_waiting or 0),
                int(getattr(cinfo.ack_floor, "stream_seq", 0) or 0),
            )
        return facts
    except nats.errors.TimeoutError:
        raise ProbeTimeout(f"JetStream API did not answer within {ctx.timeout:g} s ({ctx.phase})") from None
    finally:
        await conn.close()


async def _varz_jetstream_off(ctx: ProbeContext[NatsTarget], target: NatsTarget) -> str | None:
    """``/varz`` says JetStream is off (its ``jetstream`` has no ``config``); ``None`` when on or unknown."""
    if not target.monitoring_url:
        return None
    try:
        status, body, _ = await _monitor_get(ctx, target, "/varz")
    except (Unreachable, ProbeTimeout):
        return None  # the monitoring check reports that; JetStream is judged by the client alone
    if status != 200 or not isinstance(body, dict):
        return None
    js = body.get("jetstream")
    if isinstance(js, dict) and not js.get("config"):
        return f"JetStream is disabled on the server ({target.monitoring_url}/varz has no jetstream config)"
    return None
