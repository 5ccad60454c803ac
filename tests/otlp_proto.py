"""OTLP/HTTP log requests in protobuf, the encoding Vector 0.45's ``opentelemetry`` source
accepts on HTTP (it refuses ``application/json``). Hand-written wire format for the few
fields the tests send (opentelemetry-proto, ``ExportLogsServiceRequest``); no dependency.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import attrs

CONTENT_TYPE = "application/x-protobuf"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _text(field: int, text: str) -> bytes:
    return _bytes(field, text.encode())


def _uint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _fixed64(field: int, value: int) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<Q", value)


def _attributes(field: int, values: Mapping[str, str]) -> bytes:
    """Repeated ``KeyValue`` (key = 1, value = 2 as ``AnyValue.string_value`` = 1)."""
    return b"".join(_bytes(field, _text(1, k) + _bytes(2, _text(1, v)))
                    for k, v in values.items())


@attrs.frozen
class LogRecord:
    """One ``LogRecord``: the fields an edgekit service sets."""

    body: str
    time_unix_nano: int
    severity_text: str = "INFO"
    severity_number: int = 9
    trace_id: bytes = b""
    span_id: bytes = b""
    attributes: Mapping[str, str] = attrs.field(factory=dict)

    def encode(self) -> bytes:
        return (_fixed64(1, self.time_unix_nano) + _uint(2, self.severity_number)
                + _text(3, self.severity_text) + _bytes(5, _text(1, self.body))
                + _attributes(6, self.attributes)
                + (_bytes(9, self.trace_id) if self.trace_id else b"")
                + (_bytes(10, self.span_id) if self.span_id else b"")
                + _fixed64(11, self.time_unix_nano))


def logs_request(records: Sequence[LogRecord], *, resource: Mapping[str, str],
                 scope: str = "edgekit.tests", scope_version: str = "0.1.0") -> bytes:
    """``ExportLogsServiceRequest{resource_logs: [ResourceLogs{resource, scope_logs}]}``."""
    scope_logs = (_bytes(1, _text(1, scope) + _text(2, scope_version))
                  + b"".join(_bytes(2, r.encode()) for r in records))
    resource_logs = _bytes(1, _attributes(1, resource)) + _bytes(2, scope_logs)
    return _bytes(1, resource_logs)
