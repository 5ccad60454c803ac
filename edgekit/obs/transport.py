"""GETs of presigned object URLs over one kept-alive connection per worker thread.

Why not botocore's ``get_object``: its request pipeline (hooks, endpoint rules, response
parsing) costs several ms of CPU per object, and with Vector's objects of a few hundred kB that
pipeline, not the network, bounded `edgekit logs sync`. Why not urllib3: it checks a URL
character by character in Python, about 0.6 ms per presigned URL. `http.client` sends the
path as it is. botocore still signs (`Presigner`), so there is one SigV4 implementation.

Retries: a refused connection, a connection the server closed, 429 and 5xx are retried with
backoff; a body cut short is the caller's to retry (it restarts the object).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import EndpointConnectionError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 5
BACKOFF = 0.2
"""Seconds before the second attempt; doubled for each next one."""
TIMEOUT = 60.0
NETWORK_ERRORS = (http.client.HTTPException, ConnectionError, TimeoutError)
"""What a broken or closed connection raises (`ssl.SSLError` is an `OSError`, not these)."""


PRESIGN_SECONDS = 900


class Presigner:
    """Presigned GET URLs of one bucket's objects (path style, as R2 wants).

    botocore's own signer (`S3SigV4QueryAuth`) with the client's credentials, frozen once:
    0.1 ms a URL, where ``client.generate_presigned_url`` spends 0.26 ms mostly resolving the
    endpoint again for every key. A client without the (private) signer falls back to it."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.base = f"{str(client.meta.endpoint_url).rstrip('/')}/{quote(bucket, safe='')}/"
        credentials: Any = getattr(getattr(client, "_request_signer", None), "_credentials",
                                   None)
        self.auth: S3SigV4QueryAuth | None = None
        if credentials is not None and hasattr(credentials, "get_frozen_credentials"):
            self.auth = S3SigV4QueryAuth(credentials.get_frozen_credentials(), "s3",
                                         client.meta.region_name or "auto",
                                         expires=PRESIGN_SECONDS)

    def url(self, key: str) -> str:
        if self.auth is None:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=PRESIGN_SECONDS)
        request = AWSRequest(method="GET", url=self.base + quote(key, safe="/~"))
        self.auth.add_auth(request)
        return str(request.url)


class Transport:
    """Presigned GETs to one endpoint; `get` may run on many threads at once."""

    def __init__(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        self.endpoint = endpoint
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.context = ssl.create_default_context() if self.https else None
        self.local = threading.local()
        self.lock = threading.Lock()
        self.connections: list[http.client.HTTPConnection] = []

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None:
            if self.https:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT,
                                                   context=self.context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
            self.local.conn = conn
            with self.lock:
                self.connections.append(conn)
        return conn

    def drop(self) -> None:
        """Close this thread's connection (after an error part way through a body)."""
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
            self.local.conn = None

    def get(self, url: str) -> http.client.HTTPResponse:
        """The response to GET `url` (a presigned URL of this endpoint), its body unread.
        Read it to the end (or call `drop`) before this thread's next `get`."""
        parts = urlsplit(url)
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        delay = BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            try:
                conn = self._connection()
                conn.request("GET", target)
                response = conn.getresponse()
            except NETWORK_ERRORS as exc:
                self.drop()
                if attempt == ATTEMPTS:
                    raise EndpointConnectionError(endpoint_url=self.endpoint, error=exc) from exc
            else:
                if response.status not in RETRIED_STATUS or attempt == ATTEMPTS:
                    return response
                response.read()
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self.lock:
            for conn in self.connections:
                conn.close()
            self.connections.clear()
