"""OTLP/HTTP ingestion probes: send one minimal log record (or span) as OTLP JSON, with or without a key.

The payload is an ``ExportLogsServiceRequest`` (or ``ExportTraceServiceRequest``) in OTLP's JSON
encoding (``Content-Type: application/json``): one resource with ``service.name``, one record
saying it is an opsverify canary. Per the OTLP/HTTP spec a receiver answers 200 with an
``Export*ServiceResponse`` (whose ``partialSuccess`` counts rejected records), 401/403 when the key
is missing or wrong, and a ``google.rpc.Status`` JSON (``{"code", "message"}``) with the reason.

Every status is data here: the checks decide whether 401 is the expected refusal or the fault.

Example::

    sent = await send_with_key(ctx)        # .status, .accepted, .rejected_records, .reason
    bare = await send_without_key(ctx)     # expected: .status in (401, 403)
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from opsverify.config.secrets import SecretRef
from opsverify.config.telemetry import TelemetryTarget
from opsverify.engine import ProbeContext
from opsverify.probes.webapi import WebApi

CANARY_BODY = "opsverify ingestion canary"


@dataclass
class IngestAnswer:
    """What the receiver answered to one export request."""

    url: str
    key_used: str  # "the key ($X)", "no key", "the retired key ($Y)"
    status: int
    reason: str
    rejected_records: int = 0

    @property
    def accepted(self) -> bool:
        """2xx, and no record rejected by a partial success."""
        return 200 <= self.status < 300 and self.rejected_records == 0


def _attribute(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def payload(target: TelemetryTarget, purpose: str) -> bytes:
    """The OTLP JSON export request for ``target.signal``: one record, tagged with ``purpose``."""
    now = str(time.time_ns())
    resource = {"attributes": [_attribute("service.name", target.service_name)]}
    scope = {"name": "opsverify", "version": "1"}
    tags = [_attribute("opsverify.canary", purpose)]
    if target.signal == "logs":
        record = {"timeUnixNano": now, "observedTimeUnixNano": now, "severityNumber": 9, "severityText": "INFO",
                  "body": {"stringValue": CANARY_BODY}, "attributes": tags}
        body: dict[str, Any] = {"resourceLogs": [{"resource": resource,
                                                  "scopeLogs": [{"scope": scope, "logRecords": [record]}]}]}
    else:
        span = {"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": CANARY_BODY,
                "kind": 1, "startTimeUnixNano": now, "endTimeUnixNano": now, "attributes": tags}
        body = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": [span]}]}]}
    return json.dumps(body).encode()


def _reason(answer_json: Any, text: str) -> str:
    if isinstance(answer_json, dict):
        for key in ("message", "error", "errorMessage"):
            if isinstance(answer_json.get(key), str) and answer_json[key]:
                return str(answer_json[key])[:300]
        partial = answer_json.get("partialSuccess")
        if isinstance(partial, dict) and partial.get("errorMessage"):
            return str(partial["errorMessage"])[:300]
    return text


def _rejected(answer_json: Any) -> int:
    partial = answer_json.get("partialSuccess") if isinstance(answer_json, dict) else None
    if not isinstance(partial, dict):
        return 0
    count = partial.get("rejectedLogRecords", partial.get("rejectedSpans", 0))
    try:
        return int(count or 0)
    except (TypeError, ValueError):
        return 0


async def _send(ctx: ProbeContext[TelemetryTarget], key: SecretRef | None, key_used: str, purpose: str) -> IngestAnswer:
    target = ctx.target
    api = WebApi(ctx, base_url=target.endpoint, ca_bundle=target.ca_bundle, verify_tls=target.verify_tls)
    headers = {"content-type": "application/json", "accept": "application/json"}
    if key is not None:
        headers[target.key_header] = target.key_prefix + key.reveal().strip()
    answer = await api.call("POST", target.path, headers=headers, content=payload(target, purpose))
    ok = 200 <= answer.status < 300
    reason = _reason(answer.json, "" if ok else answer.text)  # a 2xx body is a (partial) success, not a reason
    return IngestAnswer(url=target.url, key_used=key_used, status=answer.status,
                        reason=reason, rejected_records=_rejected(answer.json))


async def send_with_key(ctx: ProbeContext[TelemetryTarget]) -> IngestAnswer:
    """Export one record with the configured ingestion key."""
    target = ctx.target
    return await _send(ctx, target.key, f"the key ({target.key.label})", "with-key")


async def send_without_key(ctx: ProbeContext[TelemetryTarget]) -> IngestAnswer:
    """Export one record without any key header."""
    return await _send(ctx, None, "no key", "without-key")


async def send_with_retired_key(ctx: ProbeContext[TelemetryTarget]) -> IngestAnswer:
    """Export one record with the retired key (``retired_key``)."""
    target = ctx.target
    assert target.retired_key is not None  # the check runs only where it is configured
    return await _send(ctx, target.retired_key, f"the retired key ({target.retired_key.label})", "retired-key")
