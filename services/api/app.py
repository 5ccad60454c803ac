"""The `api` service: items in Postgres over HTTP, with OpenTelemetry logs and traces.

What every service shares (configuration from ``edgekit.json`` and the environment, the
Postgres password, telemetry, the HTTP server) is ``services/lib/edgekit_service.py``, which
the glued flake packages with this file; from the repository:
``PYTHONPATH=services/lib python services/api/app.py``.

Routes: ``GET <health_path>`` → 200 ``{"status": "ok"}`` (503 when Postgres is configured and
unreachable); ``GET /items`` → ``{"items": [{"id", "name"}]}`` from ``app.items``;
``POST /items`` with ``{"name": "..."}`` → 201 and the new row. Tables are made by the
database owner (``schema.sql``), never by the service's login role.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgekit_service import Database, HttpError, Reply, ServiceHandler, json_reply, serve

HERE = Path(__file__).resolve().parent
MAX_BODY = 64 * 1024
MAX_NAME = 200


class Items(Database):
    def add(self, name: str) -> dict[str, Any]:
        with self.connect() as conn:
            row = conn.execute("INSERT INTO app.items (name) VALUES (%s) RETURNING id, name",
                               (name,)).fetchone()
        assert row is not None
        return {"id": row[0], "name": row[1]}


class Handler(ServiceHandler):
    server_version = "edgekit-api"
    db: Items
    allowed = "GET, POST"

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise HttpError(413, f"body larger than {MAX_BODY} bytes")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "body is not JSON") from None

    def route(self, method: str, path: str) -> Reply:
        if path == self.config["health_path"] and method == "GET":
            return self.health()
        if path == "/items":
            if method not in {"GET", "POST"}:
                raise HttpError(405, f"{method} is not allowed on /items")
            if not self.db.configured:
                raise HttpError(503, "database not configured (set PGHOST)")
            if method == "GET":
                return json_reply(200, {"items": self.db.items()})
            data = self._body()
            name = data.get("name") if isinstance(data, dict) else None
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
                raise HttpError(400, f'expected {{"name": "<1..{MAX_NAME} characters>"}}')
            return json_reply(201, self.db.add(name.strip()))
        raise HttpError(404, f"no route for {method} {path}")


if __name__ == "__main__":
    sys.exit(serve(Handler, HERE, Items))
