"""A small OTLP/HTTP receiver that enforces an ingestion key, for the sandbox and the self-tests.

No OpenTelemetry Collector binary is installable from the registries this project uses (PyPI, npm,
Debian), so this aiohttp server is the receiver. It is a real one as far as the protocol goes: it
decodes every export request with the official protobuf messages of PyPI ``opentelemetry-proto``
(``ExportLogsServiceRequest`` / ``ExportTraceServiceRequest``), from OTLP JSON (``application/json``,
with the JSON mapping's hex ``traceId``/``spanId``) or binary protobuf (``application/x-protobuf``),
and answers as the OTLP/HTTP spec says:

* ``POST /v1/logs`` / ``POST /v1/traces`` with an accepted key in ``--key-header`` -> 200 with an
  ``Export*ServiceResponse`` (``{"partialSuccess": {}}``), every record kept in memory;
* no key -> 401, a key not in the key file -> 403, both with a ``google.rpc.Status`` JSON body
  (``{"code": 16, "message": "..."}``), like SigNoz's and the collector's auth extensions;
* ``--drop``: 200 with ``partialSuccess.rejectedLogRecords`` = all (a backend over its quota);
* a body that does not decode -> 400 (``{"code": 3, "message": ...}``);
* ``GET /_receiver/records`` -> ``{"count": n, "records": [{"signal", "service", "body"}...]}`` (test aid).

Accepted keys are read from ``--keys-file`` (JSON list of key values) at every request, so a test or
a rotation drill can add the new key and retire the old one while the receiver runs.

Run: ``python -m opsverify_sandbox.servers.otlp_receiver --port 18320 --keys-file keys.json
--key-header signoz-ingestion-key``.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from opsverify_sandbox.files import write_private
from opsverify_sandbox.process import ManagedProcess, start_python_server

_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP JSON writes trace/span ids as hex; protobuf's JSON mapping wants base64 for bytes."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                out[key] = base64.b64encode(bytes.fromhex(value)).decode() if value else ""
            else:
                out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def decode(signal: str, content_type: str, body: bytes) -> Message:
    """The export request of ``signal`` decoded from ``body``; raises ``ValueError`` when it does not decode."""
    message: Message = ExportLogsServiceRequest() if signal == "logs" else ExportTraceServiceRequest()
    try:
        if content_type.startswith("application/x-protobuf"):
            message.ParseFromString(body)
        else:
            json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), message)
    except (DecodeError, json_format.ParseError, ValueError) as exc:
        raise ValueError(str(exc).splitlines()[0][:200]) from None
    return message


def _records(signal: str, message: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    resources = message.resource_logs if signal == "logs" else message.resource_spans
    for resource in resources:
        service = next((a.value.string_value for a in resource.resource.attributes if a.key == "service.name"), "")
        scopes = resource.scope_logs if signal == "logs" else resource.scope_spans
        for scope in scopes:
            for item in (scope.log_records if signal == "logs" else scope.spans):
                body = item.body.string_value if signal == "logs" else item.name
                found.append({"signal": signal, "service": service, "body": body})
    return found


def _status(code: int, message: str, http_status: int) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=http_status)


def make_app(keys_file: Path, key_header: str, key_prefix: str = "", *, open_: bool = False,
             drop: bool = False) -> web.Application:
    """The receiver as an aiohttp application (see the module docstring).

    Faults: ``open_`` (``--open``) - key enforcement switched off, a request without any key is
    ingested too; ``drop`` (``--drop``) - every request is answered 200 with a ``partialSuccess``
    rejecting all its records (what a backend over its quota does).
    """

    def handler(signal: str) -> Any:
        response_type = ExportLogsServiceResponse if signal == "logs" else ExportTraceServiceResponse

        async def export(request: web.Request) -> web.Response:
            presented = request.headers.get(key_header)
            if not presented and not open_:
                return _status(16, f"missing ingestion key header {key_header}", 401)
            keys: list[str] = json.loads(keys_file.read_text())
            if presented and (not presented.startswith(key_prefix) or presented[len(key_prefix):] not in keys):
                return _status(7, "invalid ingestion key", 403)
            content_type = request.headers.get("Content-Type", "application/json")
            try:
                message = decode(signal, content_type, await request.read())
            except ValueError as exc:
                return _status(3, f"cannot decode the export request: {exc}", 400)
            records = _records(signal, message)
            if not records:
                return _status(3, "the export request holds no records", 400)
            if drop:
                kind = "rejectedLogRecords" if signal == "logs" else "rejectedSpans"
                return web.json_response({"partialSuccess": {kind: str(len(records)),
                                                              "errorMessage": "ingestion quota exceeded"}})
            request.app["records"].extend(records)
            answer = json_format.MessageToDict(response_type())
            return web.json_response({"partialSuccess": answer.get("partialSuccess", {})})

        return export

    async def records(request: web.Request) -> web.Response:
        kept = request.app["records"]
        return web.json_response({"count": len(kept), "records": kept[-50:]})

    app = web.Application()
    app["records"] = []
    app.router.add_post("/v1/logs", handler("logs"))
    app.router.add_post("/v1/traces", handler("traces"))
    app.router.add_get("/_receiver/records", records)
    return app


def write_keys(path: Path, keys: list[str]) -> None:
    """Write the accepted keys (mode 0600)."""
    write_private(path, json.dumps(keys) + "\n")


def start_otlp_receiver(workdir: Path, keys: list[str], *, port: int, key_header: str = "authorization",
                        key_prefix: str = "", name: str = "otlp-receiver",
                        open_: bool = False, drop: bool = False) -> tuple[ManagedProcess, Path]:
    """Start the receiver on 127.0.0.1:``port``; returns the process and the key file (rewrite it to rotate)."""
    workdir.mkdir(parents=True, exist_ok=True)
    keys_file = workdir / f"{name}.keys.json"
    write_keys(keys_file, keys)
    proc = start_python_server(
        "opsverify_sandbox.servers.otlp_receiver", "--keys-file", str(keys_file), "--key-header", key_header,
        "--key-prefix", key_prefix, *(["--open"] if open_ else []), *(["--drop"] if drop else []),
        port=port, workdir=workdir, name=name,
    )
    return proc, keys_file


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OTLP/HTTP receiver enforcing an ingestion key")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--keys-file", type=Path, required=True)
    parser.add_argument("--key-header", default="authorization")
    parser.add_argument("--key-prefix", default="")
    parser.add_argument("--open", action="store_true", help="fault: also ingest requests without a key")
    parser.add_argument("--drop", action="store_true", help="fault: 200 with every record rejected")
    args = parser.parse_args(argv)
    web.run_app(make_app(args.keys_file, args.key_header, args.key_prefix, open_=args.open, drop=args.drop), host=args.host, port=args.port,
                print=None, access_log=None)


if __name__ == "__main__":
    main()
