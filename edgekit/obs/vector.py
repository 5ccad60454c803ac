"""Vector on every node: OpenTelemetry in on loopback, a disk buffer, R2 out.

Generated as plain data in the shape of NixOS ``services.vector.settings`` (rendered to
TOML by the module) and carried in the node's boot document. Pinned to Vector
`VECTOR_VERSION`: from 0.46 the S3 sink sends a second checksum header that R2 rejects
(vector issue 23029), and 0.57 turned off ``${VAR}`` interpolation in config files — so the
credentials come only from the environment the AWS SDK reads (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, set on the unit from the boot document's secrets), never from
the config.

Objects land as gzip NDJSON under ``otel/<stack>/<node>/date=%Y-%m-%d/hour=%H/`` (logs) and
``traces/<stack>/<node>/date=%Y-%m-%d/hour=%H/`` (traces); `edgekit logs` reads the former.
"""

from __future__ import annotations

from typing import Any

VECTOR_VERSION = "0.45.0"
OTLP_GRPC = "127.0.0.1:4317"
OTLP_HTTP = "127.0.0.1:4318"
DISK_BUFFER_BYTES = 268_435_488
"""The disk buffer's ``max_size``: Vector 0.45's smallest (two data files of
`VECTOR_DATA_FILE_BYTES` plus its 32-byte ledger; a byte less is refused at start)."""
VECTOR_DATA_FILE_BYTES = 128 * 1024 * 1024
"""Vector 0.45's disk buffer data file size (not configurable). The buffer blocks once the
records not yet acknowledged reach ``max_size`` minus one data file, so that its files never
exceed ``max_size`` (``lib/vector-buffers/src/variants/disk_v2/common.rs``)."""
BUFFER_HOLDS_BYTES = DISK_BUFFER_BYTES - VECTOR_DATA_FILE_BYTES
"""What the node's buffer holds before ``when_full = block`` stops the source (ADR 0036)."""
RETRY_BACKOFF_CAP_SECS = 10
"""The longest wait between two tries of an upload (Vector's default is 30 s): after an R2
outage the held batches leave at most this long after R2 answers again (ADR 0036)."""


def logs_prefix(stack: str, node: str) -> str:
    return f"otel/{stack}/{node}/date=%Y-%m-%d/hour=%H/"


def _s3_sink(inputs: list[str], *, endpoint: str, bucket: str, prefix: str) -> dict[str, Any]:
    return {
        "type": "aws_s3",
        "inputs": inputs,
        "endpoint": endpoint,
        "bucket": bucket,
        "region": "auto",
        "force_path_style": True,
        "key_prefix": prefix,
        "filename_extension": "log.gz",
        "filename_time_format": "%s",
        "compression": "gzip",
        "encoding": {"codec": "json"},
        "framing": {"method": "newline_delimited"},
        "batch": {"max_bytes": 10_000_000, "timeout_secs": 300},
        "buffer": {"type": "disk", "max_size": DISK_BUFFER_BYTES, "when_full": "block"},
        # End-to-end acknowledgements: the OTLP source answers a service only once its
        # events are in this disk buffer, so an answered record survives a crash (ADR 0036).
        "acknowledgements": {"enabled": True},
        # Retried without end (Vector's default attempts) with a shorter backoff cap.
        "request": {"retry_max_duration_secs": RETRY_BACKOFF_CAP_SECS},
    }


def vector_settings(*, stack: str, node: str, endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "data_dir": "/var/lib/vector",
        "sources": {
            "otel": {
                "type": "opentelemetry",
                "grpc": {"address": OTLP_GRPC},
                "http": {"address": OTLP_HTTP},
            },
        },
        "sinks": {
            "r2_logs": _s3_sink(["otel.logs"], endpoint=endpoint, bucket=bucket,
                                prefix=logs_prefix(stack, node)),
            "r2_traces": _s3_sink(["otel.traces"], endpoint=endpoint, bucket=bucket,
                                  prefix=f"traces/{stack}/{node}/date=%Y-%m-%d/hour=%H/"),
        },
    }
