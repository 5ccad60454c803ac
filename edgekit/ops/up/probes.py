"""What `edgekit up` waits for, and how it asks: pluggable probes and one bounded wait.

A probe answers "ready yet?" with a `Seen` (ready, and a line saying what it saw). `wait_for`
asks until ready or until its deadline, sleeping between questions on an injected `Clock`.
A probe that cannot ask at all (refused credentials, a missing bucket) raises `ProbeError`:
that is a failure of the step, not something to wait out.

The primary is up when (ADR 0031):

* ``status`` — its status object ``status/<env>/<node>.json`` in the logs bucket (the
  shape fixed in the contract with the node's deploy agent: ``edgekit.status/v1``) says it
  runs what it was asked to run (``running == wanted``), the wanted revision is the pushed
  commit or one after it, the last switch was ``ok`` and every health entry is ok;
* ``postgres`` — until nodes write status objects: Postgres answers on the address the
  probe reaches, through the Postgres tunnel (``cloudflared access tcp`` with the Access
  service token read from the environment's state) or an address the operator forwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import attrs
import orjson

from edgekit.ops.tofu import OpsError

STATUS_SCHEMA = "edgekit.status/v1"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
"""PostgreSQL's SSLRequest: any server answers it with one byte, ``S`` or ``N``, before any
authentication (protocol docs, "SSL Session Encryption")."""


class ProbeError(OpsError):
    """The probe cannot ask (credentials refused, bucket missing, bad object)."""


@attrs.frozen
class Seen:
    ready: bool
    detail: str


class Probe(Protocol):
    @property
    def what(self) -> str:
        """What is waited for, for the progress line ("the primary staging-1 …")."""
        ...

    def check(self) -> Seen: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


Report = Callable[[Seen, float], None]
"""Called after every question with what was seen and the seconds waited so far."""


def wait_for(probe: Probe, *, timeout: float, interval: float, clock: Clock,
             report: Report) -> tuple[Seen, float]:
    """Ask until ready or `timeout` seconds passed; returns the last answer and the wait."""
    started = clock.now()
    while True:
        seen = probe.check()
        waited = clock.now() - started
        report(seen, waited)
        if seen.ready or waited >= timeout:
            return seen, waited
        clock.sleep(max(0.0, min(interval, timeout - waited)))


# -- the status object ----------------------------------------------------------------------

Reader = Callable[[str], "bytes | None"]
"""Reads one object of the logs bucket by key; None when there is no such object."""


def s3_reader(client: Any, bucket: str) -> Reader:
    """A `Reader` over a boto3 S3 client; refused keys or a missing bucket raise."""
    from botocore.exceptions import BotoCoreError, ClientError

    def read(key: str) -> bytes | None:
        try:
            body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404"):
                return None
            raise ProbeError(f"cannot read s3://{bucket}/{key}: {code or err} (the R2 keys "
                             "must be allowed to read the logs bucket)") from err
        except BotoCoreError as err:
            raise ProbeError(f"cannot read s3://{bucket}/{key}: {err}") from err
        return body

    return read


def status_key(env: str, node: str) -> str:
    return f"status/{env}/{node}.json"


def _is_ok(status: Mapping[str, Any]) -> tuple[bool, str]:
    switch = status.get("switch") or {}
    health = status.get("health") or {}
    running, wanted = status.get("running"), status.get("wanted")
    if running != wanted or not running:
        return False, (f"runs {_short(running)}, asked to run {_short(wanted)} "
                       f"(switch {switch.get('result', '?')}, attempt "
                       f"{switch.get('attempt', '?')}: {switch.get('message', '')})").strip()
    if switch.get("result") != "ok":
        return False, f"last switch {switch.get('result')}: {switch.get('message', '')}"
    sick = sorted(name for name, entry in health.items()
                  if not (isinstance(entry, Mapping) and entry.get("ok") is True))
    if sick:
        details = "; ".join(f"{n}: {health[n].get('detail', '')}" if isinstance(
            health[n], Mapping) else n for n in sick)
        return False, f"runs {_short(running)}, not healthy: {details}"
    return True, f"runs {_short(running)}, healthy ({', '.join(sorted(health)) or 'no checks'})"


def _short(revision: object) -> str:
    return str(revision)[:12] if revision else "nothing"


@attrs.frozen
class StatusProbe:
    """The node's own report (contract ``edgekit.status/v1``)."""

    read: Reader
    env: str
    node: str
    revision: str
    """The commit `edgekit up` pushed: the node must run it or a later one."""
    descends: Callable[[str, str], bool]
    """``descends(later, earlier)``: whether commit `later` contains `earlier`."""

    @property
    def what(self) -> str:
        return (f"the primary {self.node} to report it runs {self.revision[:12]} "
                f"({status_key(self.env, self.node)})")

    def check(self) -> Seen:
        key = status_key(self.env, self.node)
        raw = self.read(key)
        if raw is None:
            return Seen(False, "no status object yet (the node writes it after its first switch)")
        try:
            status = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise ProbeError(f"{key} is not JSON: {err}") from err
        if not isinstance(status, dict) or status.get("schema") != STATUS_SCHEMA:
            raise ProbeError(f"{key} is not an {STATUS_SCHEMA} object")
        if (status.get("env"), status.get("node")) != (self.env, self.node):
            raise ProbeError(f"{key} is the status of {status.get('env')}/{status.get('node')}")
        ok, detail = _is_ok(status)
        wanted = str(status.get("wanted") or "")
        if ok and not (wanted == self.revision or self.descends(wanted, self.revision)):
            return Seen(False, f"runs {_short(wanted)}, which is not {self.revision[:12]} or "
                        "after it: the node has not pulled the pushed commit yet")
        return Seen(ok, detail)


# -- Postgres answering ---------------------------------------------------------------------

Address = Callable[[], "contextlib.AbstractContextManager[tuple[str, int]]"]
"""Yields the host and port to ask while the context is open (a forward, or a plain address)."""


def postgres_answers(host: str, port: int, timeout: float = 5.0) -> Seen:
    """Send PostgreSQL's SSLRequest; any server answers one byte, ``S`` or ``N``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(SSL_REQUEST)
            answer = sock.recv(1)
    except OSError as err:
        return Seen(False, f"no answer from {host}:{port} ({err.strerror or err})")
    if answer in (b"S", b"N"):
        return Seen(True, f"Postgres answers on {host}:{port}")
    return Seen(False, f"{host}:{port} answered {answer!r}, not Postgres")


def direct(host: str, port: int) -> Address:
    @contextlib.contextmanager
    def open_() -> Iterator[tuple[str, int]]:
        yield host, port
    return open_


def cloudflared_forward(binary: str, hostname: str, token_id: str, token_secret: str,
                        *, settle: float = 15.0) -> Address:
    """``cloudflared access tcp --hostname H --url 127.0.0.1:P`` for one question. The
    service token goes in cloudflared's environment (``TUNNEL_SERVICE_TOKEN_ID`` /
    ``_SECRET``), never on its command line."""
    @contextlib.contextmanager
    def open_() -> Iterator[tuple[str, int]]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "TUNNEL_SERVICE_TOKEN_ID": token_id,
               "TUNNEL_SERVICE_TOKEN_SECRET": token_secret}
        try:
            proc = subprocess.Popen([binary, "access", "tcp", "--hostname", hostname,
                                     "--url", f"127.0.0.1:{port}"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        except OSError as err:
            raise ProbeError(f"cannot run {binary}: {err.strerror or err}; install "
                             "cloudflared or pass --pg-address") from err
        try:
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline and proc.poll() is None:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            yield "127.0.0.1", port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    return open_


@attrs.frozen
class PostgresProbe:
    address: Address
    where: str
    """How the address is reached, for the progress line."""

    @property
    def what(self) -> str:
        return f"Postgres on the primary to answer ({self.where})"

    def check(self) -> Seen:
        with self.address() as (host, port):
            return postgres_answers(host, port)


# -- the mesh keys --------------------------------------------------------------------------

Lister = Callable[[str], "list[str]"]
"""Keys of the logs bucket under a prefix."""


@attrs.frozen
class MeshKeysProbe:
    """Every mesh node published its WireGuard public key (``mesh/<env>/<node>.pub``)."""

    list_keys: Lister
    env: str
    nodes: tuple[str, ...]

    @property
    def what(self) -> str:
        return f"the mesh nodes {', '.join(self.nodes)} to publish their WireGuard keys"

    def check(self) -> Seen:
        prefix = f"mesh/{self.env}/"
        have = {k[len(prefix):-len(".pub")] for k in self.list_keys(prefix) if k.endswith(".pub")}
        missing = [n for n in self.nodes if n not in have]
        if missing:
            return Seen(False, f"no key yet from {', '.join(missing)}")
        return Seen(True, f"keys published by {', '.join(self.nodes)}")


def s3_lister(client: Any, bucket: str) -> Lister:
    from botocore.exceptions import BotoCoreError, ClientError

    def list_keys(prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix):
                keys += [str(o["Key"]) for o in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as err:
            raise ProbeError(f"cannot list s3://{bucket}/{prefix}: {err}") from err
        return keys

    return list_keys
