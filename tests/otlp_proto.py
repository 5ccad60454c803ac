"""Log records for tests that post to a real Vector, encoded by the services' own OTLP
encoder (services/lib/otlp_proto.py): what a service sends is what the tests send."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "services" / "lib"))
from otlp_proto import CONTENT_TYPE, export_request

__all__ = ["CONTENT_TYPE", "LogRecord", "logs_request"]


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

    def otlp_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "timeUnixNano": str(self.time_unix_nano),
            "observedTimeUnixNano": str(self.time_unix_nano),
            "severityNumber": self.severity_number, "severityText": self.severity_text,
            "body": {"stringValue": self.body},
            "attributes": [{"key": k, "value": {"stringValue": v}}
                           for k, v in self.attributes.items()]}
        if self.trace_id:
            record |= {"traceId": self.trace_id.hex(), "spanId": self.span_id.hex()}
        return record


def logs_request(records: Sequence[LogRecord], *, resource: Mapping[str, str],
                 scope: str = "edgekit.tests") -> bytes:
    """``ExportLogsServiceRequest`` with one resource and scope holding `records`."""
    return export_request("logs", [{"key": k, "value": {"stringValue": v}}
                                   for k, v in resource.items()],
                          {"name": scope, "version": "0.1.0"},
                          [r.otlp_json() for r in records])
