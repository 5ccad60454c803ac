"""Logs: the read side of the observability pipeline (R2 -> local files -> DuckDB).

The write side
--------------
Services speak OpenTelemetry (OTLP) to a Vector on their own node. Vector's ``opentelemetry``
source turns each log record into an event, a disk buffer holds it, and the ``aws_s3`` sink
ships batches to the R2 logs bucket. The Vector config that edgekit generates must keep to the
contract below; this package is the only reader of it.

The contract (what lands in the bucket)
---------------------------------------
Object keys::

    otel/<stack>/<node>/date=%Y-%m-%d/hour=%H/<unix-seconds>-<uuid>.log.gz
    e.g. otel/prod/edge-1/date=2026-11-29/hour=08/1764403200-0b6c...e1.log.gz

- ``key_prefix = "otel/<stack>/<node>/date=%Y-%m-%d/hour=%H/"`` (ends with ``/``, strftime in
  UTC); the sink appends ``<unix-seconds>-<uuid>`` and ``filename_extension = "log.gz"``.
- ``<stack>`` and ``<node>`` are edgekit ids: ``[A-Za-z0-9_.-]+``, never containing ``/``.
- The edge Worker writes its records (ADR 0035) in the same layout and line shape under
  ``edge/<stack>/<colo>/date=%Y-%m-%d/hour=%H/<unix-seconds>-<uuid>.log.gz``, the Cloudflare
  colo in place of the node; ``resources["service.name"]`` is ``edge-worker``.
- ``compression = "gzip"``, ``encoding.codec = "json"``, ``framing.method =
  "newline_delimited"``: each object is one gzip stream of NDJSON, one event per line.

Each line is a JSON object, one log event as the ``opentelemetry`` source emits it:

==================== ============ ==========================================================
field                JSON type    meaning
==================== ============ ==========================================================
``timestamp``        string       RFC 3339 time of the record (nanoseconds allowed, ``Z``)
``observed_timestamp`` string     RFC 3339 time the collector saw it
``message``          string       the log body
``severity_text``    string       ``INFO``, ``WARN``, ``ERROR``, ... (may be absent)
``severity_number``  integer      OTEL severity number 1-24 (may be absent)
``trace_id``         string       hex trace id, empty or absent when not in a trace
``span_id``          string       hex span id
``attributes``       object       record attributes (``http.route``, ...)
``resources``        object       resource attributes; ``resources["service.name"]`` is the
                                  service (``api``, ``web``, ...)
``source_type``      string       ``"opentelemetry"``
==================== ============ ==========================================================

Unknown fields are ignored; absent fields read as NULL.

The read side
-------------
- :mod:`edgekit.obs.sync` mirrors ``otel/<stack>/`` and ``edge/<stack>/`` into a local folder
  (same key layout below it), resumable and validated; ``status/`` and ``mesh/`` are never read.
- :mod:`edgekit.obs.query` exposes the local files as DuckDB views ``logs`` (one row per
  ``attributes."log.record.uid"``, ADR 0036) and ``logs_all``, in a sandbox that reads only
  the mirror (:mod:`edgekit.obs.sandbox`, ADR 0037).
- :mod:`edgekit.obs.cli` is ``edgekit logs sync|query|tail|trace|chart``.
"""

from __future__ import annotations

from edgekit.obs.contract import LogsError

__all__ = ["LogsError"]
