"""What `edgekit up` waits for, and how it asks: pluggable probes and one bounded wait.

A probe answers "ready yet?" with a `Seen` (ready, and a line saying what it saw). `wait_for`
asks until ready or until its deadline, sleeping between questions on an injected `Clock`.
A probe that cannot ask at all (refused credentials, a missing bucket) raises `ProbeError`:
that is a failure of the step, not something to wait out.

The primary is up when (ADR 0031):

* ``status`` (the default) — its deploy agent's report ``status/<env>/<node>.json`` in the
  logs bucket, read and judged as ``edgekit status`` does it (`StatusProbe`): fresh, running
  the pushed commit or one after it (``running == wanted``), switched ``ok``, every health
  check ok, ``postgresql`` among them;
* ``postgres`` — Postgres answers on the address the probe reaches, through the Postgres
  tunnel (``cloudflared access tcp`` with the Access service token read from the
  environment's state) or an address the operator forwards.

The primary's authority (ADR 0025) is there once its object exists (`ObjectProbe`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

import attrs

from edgekit.deploy.refs import status_key
from edgekit.deploy.reports import Report as NodeReport
from edgekit.deploy.reports import Unreadable
from edgekit.deploy.view import ago, judge, short
from edgekit.ops.tofu import OpsError

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

ReadReport = Callable[[], NodeReport]
"""The node's report as `edgekit.deploy.reports.read_reports` reads it (None: none yet)."""
Now = Callable[[], datetime]


@attrs.frozen
class StatusProbe:
    """The node's own report, read and judged as `edgekit status` does (one reader,
    `edgekit.deploy.reports`, CUE ``#NodeStatus``; one judgement, `edgekit.deploy.view.judge`,
    with the environment's ``deploy.stale_after_seconds``): up when a fresh report says it
    runs the pushed commit or a later one, switched to it, every check passing, and the
    checks in `required` among them."""

    read: ReadReport
    env: str
    node: str
    revision: str
    """The commit `edgekit up` pushed: the node must run it or a later one."""
    descends: Callable[[str, str], bool]
    """``descends(later, earlier)``: whether commit `later` contains `earlier`."""
    stale_after: float
    now: Now
    required: tuple[str, ...] = ("postgresql",)
    """Checks the report must hold: on the primary, Postgres accepting connections."""

    @property
    def what(self) -> str:
        return (f"the primary {self.node} to report it runs {self.revision[:12]} "
                f"({status_key(self.env, self.node)})")

    def check(self) -> Seen:
        report = self.read()
        if report is None:
            return Seen(False, "no status object yet (the node writes it after its first switch)")
        if isinstance(report, Unreadable):
            raise ProbeError(f"{report.key}: {report.reason} (not what cue/status.cue "
                             "#NodeStatus says a node reports)")
        if (report.env, report.node) != (self.env, self.node):
            raise ProbeError(f"{status_key(self.env, self.node)} is the status of "
                             f"{report.env}/{report.node}")
        wanted = report.wanted
        later = wanted is not None and (wanted == self.revision
                                        or self.descends(wanted, self.revision))
        state, detail = judge(wanted if later else self.revision, report, self.now(),
                              self.stale_after)
        if state == "pending" and wanted is not None and not later and \
                report.running == wanted:
            detail = (f"runs {short(wanted)}, which is not {short(self.revision)} or after "
                      "it: the node has not pulled the pushed commit yet")
        if state != "ok":
            return Seen(False, f"{state}: {detail}")
        absent = [c for c in self.required if c not in report.health]
        if absent:
            return Seen(False, f"runs {short(wanted)} but reports no {', '.join(absent)} "
                        "check: not the primary's deploy agent settings?")
        age = (self.now() - report.written()).total_seconds()
        return Seen(True, f"runs {short(wanted)}, healthy "
                    f"({', '.join(sorted(report.health))}); reported {ago(age)}")


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


@attrs.frozen
class ObjectProbe:
    """One object of the logs bucket exists (the primary's authority certificate,
    ``pg-tls/<env>/<node>.crt``, which its edgekit-pg-tls-publish unit PUTs at boot)."""

    list_keys: Lister
    key: str
    waits_for: str

    @property
    def what(self) -> str:
        return self.waits_for

    def check(self) -> Seen:
        if self.key in self.list_keys(self.key):
            return Seen(True, f"{self.key} is there")
        return Seen(False, f"nothing at {self.key} yet")


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
