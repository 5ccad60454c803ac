"""The `web` service: read-only, cacheable HTML pages, with OpenTelemetry logs and traces.

What every service shares (configuration from ``edgekit.json`` and the environment, the
Postgres password, telemetry, the HTTP server) is ``services/lib/edgekit_service.py``, which
the glued flake packages with this file; from the repository:
``PYTHONPATH=services/lib python services/web/app.py``. Besides the shared settings,
``CACHE_MAX_AGE`` (seconds, default 300: CUE's ``services.web.cache.ttl_seconds``).

Routes (GET and HEAD only; anything else is 405): ``GET <health_path>`` → 200
``{"status": "ok"}`` (503 when Postgres is configured and unreachable); ``GET /`` → the home
page, listing ``app.items`` of the web database when Postgres is configured; ``GET /docs/``
and ``GET /docs/<page>`` → documentation pages. Pages carry
``Cache-Control: public, max-age=300`` so Cloudflare caches them. The service connects with
its read-only role (``svc_web_ro``, ``default_transaction_read_only``) and has no code path
that writes.
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path

from edgekit_service import HttpError, Reply, ServiceHandler, serve

HERE = Path(__file__).resolve().parent
MAX_AGE = int(os.environ.get("CACHE_MAX_AGE", "300"))
DOCS = {
    "getting-started": ("Getting started", "Everything here is read-only and cached at the edge."),
    "api": ("The api service", "Items are written through api.edgekit.example, not here."),
}
HTML = "text/html; charset=utf-8"


def _page(title: str, body: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head>\n<body><h1>{html.escape(title)}</h1>\n"
            f"{body}\n</body></html>\n")


class Handler(ServiceHandler):
    server_version = "edgekit-web"

    def _home(self) -> str:
        parts = ["<p>edgekit reference web service.</p>",
                 '<p><a href="/docs/">Documentation</a></p>']
        if self.db.configured:
            items = "".join(f"<li>{html.escape(str(item['name']))}</li>"
                            for item in self.db.items())
            parts.append(f"<h2>Items</h2>\n<ul>{items}</ul>")
        return _page("edgekit", "\n".join(parts))

    def route(self, method: str, path: str) -> Reply:
        if method not in {"GET", "HEAD"}:
            raise HttpError(405, f"{method} is not allowed: the web service is read-only")
        cached = f"public, max-age={MAX_AGE}"
        if path == self.config["health_path"]:
            return self.health()
        if path == "/":
            return Reply(200, self._home(), HTML, cached)
        if path in {"/docs", "/docs/"}:
            links = "".join(f'<li><a href="/docs/{slug}">{html.escape(title)}</a></li>'
                            for slug, (title, _) in sorted(DOCS.items()))
            return Reply(200, _page("Documentation", f"<ul>{links}</ul>"), HTML, cached)
        if path.startswith("/docs/") and path[len("/docs/"):].rstrip("/") in DOCS:
            title, text = DOCS[path[len("/docs/"):].rstrip("/")]
            return Reply(200, _page(title, f"<p>{html.escape(text)}</p>"), HTML, cached)
        raise HttpError(404, f"no page at {path}")


if __name__ == "__main__":
    sys.exit(serve(Handler, HERE))
