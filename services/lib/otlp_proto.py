"""OTLP/HTTP requests in protobuf: what the node's Vector accepts.

Vector 0.45's ``opentelemetry`` source takes OTLP/HTTP only as protobuf (it answers
``application/json`` with HTTP 500), so services encode their batches here. The input is the
OTLP/JSON shape (hex trace and span ids, nanoseconds as decimal strings, ``AnyValue`` dicts),
which keeps the rest of the service library readable; the output is the wire format of
opentelemetry-proto's ``ExportLogsServiceRequest`` / ``ExportTraceServiceRequest`` for the
fields a service sets. Python stdlib only: a service has no protobuf runtime, and these few
messages do not need one. Field numbers are those of opentelemetry-proto v1 (common, resource,
logs and trace ``.proto`` files).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

CONTENT_TYPE = "application/x-protobuf"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values are sent as their two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _message(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _text(field: int, text: str) -> bytes:
    return _message(field, text.encode()) if text else b""


def _uint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value) if value else b""


def _fixed64(field: int, value: int) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<Q", value) if value else b""


def _hex_id(field: int, value: str | None) -> bytes:
    return _message(field, bytes.fromhex(value)) if value else b""


def any_value(value: Mapping[str, Any]) -> bytes:
    """``AnyValue`` from its OTLP/JSON form (one of string/bool/int/double)."""
    if "stringValue" in value:
        return _message(1, str(value["stringValue"]).encode())
    if "boolValue" in value:
        return _varint(2 << 3) + _varint(int(bool(value["boolValue"])))
    if "intValue" in value:
        return _varint(3 << 3) + _varint(int(value["intValue"]))
    if "doubleValue" in value:
        return _varint(4 << 3 | 1) + struct.pack("<d", float(value["doubleValue"]))
    raise ValueError(f"unsupported AnyValue {sorted(value)}")


def _attributes(field: int, attributes: Sequence[Mapping[str, Any]]) -> bytes:
    """Repeated ``KeyValue{key = 1, value = 2}``."""
    return b"".join(_message(field, _text(1, a["key"]) + _message(2, any_value(a["value"])))
                    for a in attributes)


def log_record(record: Mapping[str, Any]) -> bytes:
    """``LogRecord`` (logs.proto): time 1, severity number 2 and text 3, body 5,
    attributes 6, trace id 9, span id 10, observed time 11."""
    return (_fixed64(1, int(record.get("timeUnixNano", 0)))
            + _uint(2, int(record.get("severityNumber", 0)))
            + _text(3, record.get("severityText", ""))
            + (_message(5, any_value(record["body"])) if "body" in record else b"")
            + _attributes(6, record.get("attributes", ()))
            + _hex_id(9, record.get("traceId")) + _hex_id(10, record.get("spanId"))
            + _fixed64(11, int(record.get("observedTimeUnixNano", 0))))


def span(item: Mapping[str, Any]) -> bytes:
    """``Span`` (trace.proto): trace id 1, span id 2, parent 4, name 5, kind 6, start 7,
    end 8, attributes 9, status 15 (``Status{message = 2, code = 3}``)."""
    status = item.get("status") or {}
    return (_hex_id(1, item["traceId"]) + _hex_id(2, item["spanId"])
            + _hex_id(4, item.get("parentSpanId")) + _text(5, item.get("name", ""))
            + _uint(6, int(item.get("kind", 0)))
            + _fixed64(7, int(item.get("startTimeUnixNano", 0)))
            + _fixed64(8, int(item.get("endTimeUnixNano", 0)))
            + _attributes(9, item.get("attributes", ()))
            + (_message(15, _text(2, status.get("message", ""))
                        + _uint(3, int(status.get("code", 0)))) if status else b""))


def export_request(kind: str, resource: Sequence[Mapping[str, Any]], scope: Mapping[str, str],
                   items: Sequence[Mapping[str, Any]]) -> bytes:
    """``Export{Logs,Trace}ServiceRequest`` with one resource and one scope holding `items`
    (``kind`` is ``logs`` or ``traces``, the OTLP/HTTP path segment)."""
    encode = {"logs": log_record, "traces": span}[kind]
    scoped = (_message(1, _text(1, scope.get("name", "")) + _text(2, scope.get("version", "")))
              + b"".join(_message(2, encode(item)) for item in items))
    return _message(1, _message(1, _attributes(1, resource)) + _message(2, scoped))
