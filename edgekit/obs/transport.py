"""GETs of presigned object URLs over one kept-alive connection per worker thread.

Why not botocore's ``get_object``: its request pipeline (hooks, endpoint rules, response
parsing) costs several ms of CPU per object, and with Vector's objects of a few hundred kB that
pipeline, not the network, bounded `edgekit logs sync`. Why not urllib3: it checks a URL
character by character in Python, about 0.6 ms per presigned URL. `http.client` sends the
path as it is. `Presigner` signs the URLs (see there why not botocore, and how it is held to
botocore's output).

Retries: a refused connection, a connection the server closed, 429 and 5xx are retried with
backoff; a body cut short is the caller's to retry (it restarts the object).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

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
_UNRESERVED = "-_.~"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class Presigner:
    """Presigned GET URLs of one bucket's objects (path style, as R2 wants): SigV4 query
    signing for the one request shape the sync sends (GET, only ``host`` signed, unsigned
    payload), with the client's credentials frozen once and the day's signing key kept.

    Why not botocore's signer: it was a fifth of the sync's Python time (0.1 ms a URL through
    `S3SigV4QueryAuth`, 0.26 ms through ``generate_presigned_url``); this takes 0.02 ms.
    `tests/test_logs_transport.py` holds it to botocore's output byte for byte, and the real
    server checks every signature. A client whose credentials cannot be read (botocore keeps
    them on a private attribute) falls back to ``generate_presigned_url``."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        endpoint = urlsplit(str(client.meta.endpoint_url))
        default_port = {"http": 80, "https": 443}.get(endpoint.scheme)
        host = (endpoint.hostname or "").lower()
        if endpoint.port is not None and endpoint.port != default_port:
            host = f"{host}:{endpoint.port}"
        self.host = host
        self.origin = f"{endpoint.scheme}://{endpoint.netloc}"
        self.path = f"{endpoint.path.rstrip('/')}/{quote(bucket, safe='')}/"
        self.region = client.meta.region_name or "auto"
        credentials: Any = getattr(getattr(client, "_request_signer", None), "_credentials",
                                   None)
        self.frozen: Any = None
        if credentials is not None and hasattr(credentials, "get_frozen_credentials"):
            self.frozen = credentials.get_frozen_credentials()
        self.day = ""
        self.signing_key = b""

    def url(self, key: str, now: datetime | None = None) -> str:
        if self.frozen is None:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=PRESIGN_SECONDS)
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        if day != self.day:
            key_ = _hmac(f"AWS4{self.frozen.secret_key}".encode(), day)
            for part in (self.region, "s3", "aws4_request"):
                key_ = _hmac(key_, part)
            self.day, self.signing_key = day, key_
        scope = f"{day}/{self.region}/s3/aws4_request"
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.frozen.access_key}/{scope}",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(PRESIGN_SECONDS),
            "X-Amz-SignedHeaders": "host",
        }
        if self.frozen.token:
            params["X-Amz-Security-Token"] = self.frozen.token
        encoded = [f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}"
                   for k, v in params.items()]
        query = "&".join(encoded)  # in botocore's order; the signature covers them sorted
        path = self.path + quote(key, safe="/~")
        request = (f"GET\n{path}\n{'&'.join(sorted(encoded))}\nhost:{self.host}\n\nhost\n"
                   "UNSIGNED-PAYLOAD")
        to_sign = (f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n"
                   f"{hashlib.sha256(request.encode()).hexdigest()}")
        signature = hmac.new(self.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self.origin}{path}?{query}&X-Amz-Signature={signature}"


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
