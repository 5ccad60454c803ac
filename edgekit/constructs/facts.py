"""What the constructs of a stack say about the estate they build, for the check rules
(ADR 0029).

A `Layout` is one environment as the rules see it: its nodes, private networks, services
and where they are placed, tunnels, Workers, Postgres and WireGuard mesh. The L2
constructs record into their stack's layout while they are built (`layout_of`); the CUE
adapter makes the same layout from an environment of the reference estate
(`edgekit.cue.layout`). The rules read layouts, never the CUE model or a construct, so a
Python stack and the CUE estate are held to one rule set, with one message per fault.
Only where a fact was written differs (`Where`):

    path      the construct's path (``shop/tunnel``), or the environment's stack for CUE
    address   empty for a construct; ``cue/export/<env>.json`` for CUE
    pointer   inside what was given: ``$.placement.web-1[0]`` / ``$.env.placement.edge-1[0]``

and which file the user edits to fix it (`Layout.file`): the Python file that built the
stack, or ``cue/envs.cue``. Recording never raises: a fault becomes a finding at synth,
reported with every other one.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from edgekit.constructs.values import CloudflareZone, Service
from edgekit.core.construct import Construct
from edgekit.core.elements import stack_of

PACKAGE = Path(__file__).resolve().parent.parent


@attrs.frozen(kw_only=True)
class Where:
    """Where a fact was written (see the module docstring)."""

    path: str
    pointer: str = ""
    address: str = ""

    def at(self, suffix: str) -> Where:
        """The same place, deeper: ``where.at(".web-1[0]")``."""
        return attrs.evolve(self, pointer=(self.pointer or "$") + suffix)


@attrs.frozen(kw_only=True)
class NodeFact:
    name: str
    provider: str
    region: str
    roles: tuple[str, ...]
    networks: tuple[str, ...] = ()
    """Keys of the private networks it joins (`NetworkFact.key`)."""
    firewall: str | None = None
    """The address of its firewall resource (whose inbound rules the rules read)."""
    where: Where


@attrs.frozen(kw_only=True)
class NetworkFact:
    key: str
    provider: str
    region: str
    cidr: str | None
    """None where the source does not say (CUE: the L3 wiring chooses the range)."""
    where: Where


@attrs.frozen(kw_only=True)
class PlacementFact:
    """Node → service names, as given to one construct (or written in CUE)."""

    placement: Mapping[str, tuple[str, ...]]
    services: Mapping[str, Service]
    """The services given with it."""
    nodes: tuple[str, ...] | None
    """The nodes it may name: None, the environment's; else the construct's own (a
    tunnel's)."""
    where: Where
    """Where the placement itself is (its pointer is the placement's, e.g. ``$.placement``)."""


@attrs.frozen(kw_only=True)
class TunnelFact:
    nodes: tuple[str, ...]
    placement: Mapping[str, tuple[str, ...]]
    strategy: str
    weights: Mapping[str, int]
    token: str | None
    """The Access service token its origins admit (an address), None when unknown."""
    hostnames: tuple[str, ...]
    """The origin hostnames it serves."""
    where: Where


@attrs.frozen(kw_only=True)
class WorkerFact:
    routes: Mapping[str, str]
    """Public hostname → the service it routes to (services that run on nodes)."""
    origins: Mapping[str, tuple[str, ...]]
    """Service → the origin hostnames it sends requests to."""
    token: str | None
    """The Access service token it presents at origins (an address); None: none."""
    where: Where


@attrs.frozen(kw_only=True)
class PostgresFact:
    node: str | None
    """The node the primary runs on; None: a cloud's managed database."""
    where: Where


@attrs.frozen(kw_only=True)
class MeshFact:
    nodes: tuple[str, ...]
    where: Where


@attrs.frozen(kw_only=True)
class PlanFact:
    """The Cloudflare plan a zone is declared on, and its account's Workers plan."""

    zone_id: str
    zone: str
    account_id: str
    plan: str
    addons: tuple[str, ...]
    workers_paid: bool
    where: Where


@attrs.frozen(kw_only=True)
class BucketFact:
    """A bucket nodes write to and must not be able to erase (ADR 0037): R2 tokens have no
    write-only permission, so the keys under each of `prefixes` must be locked at least
    `lock_seconds`; `keep` are keys the nodes rewrite (never locked nor expired); a lock
    longer than `longest_lock_seconds` would meet pgBackRest's expire (`why_longest`)."""

    what: str
    bucket: str
    prefixes: tuple[str, ...]
    lock_seconds: float
    keep: tuple[str, ...] = ()
    longest_lock_seconds: float | None = None
    why_longest: str = ""
    where: Where


@attrs.frozen(kw_only=True)
class EdgeLogsFact:
    """How the edge's side of each request reaches R2, as CUE declares it (ADR 0035)."""

    edge: str
    http_requests: bool
    where: Where


@attrs.frozen(kw_only=True)
class WavesFact:
    """The rollout waves an environment declares, in order (ADR 0033)."""

    waves: tuple[tuple[str, ...], ...]
    where: Where


@attrs.define(kw_only=True)
class Layout:
    """One environment as the check rules see it."""

    stack: str
    origin: Literal["cue", "constructs"] = "constructs"
    file: str = ""
    """The file the user edits for nodes and placement."""
    services_file: str = ""
    """The file the user edits for services."""
    delivers_env: bool = False
    """True when a service's ``env`` and ``secrets`` reach its process (the CUE estate's
    generated ``services/<svc>/edgekit.json``); no L2 construct delivers them."""
    nodes_where: Where | None = None
    nodes: dict[str, NodeFact] = attrs.field(factory=dict)
    networks: dict[str, NetworkFact] = attrs.field(factory=dict)
    services: dict[str, tuple[Service, Where]] = attrs.field(factory=dict)
    """Service name → the service and where it was first given."""
    given: dict[str, list[str]] = attrs.field(factory=dict)
    """Service name → the constructs it was given to."""
    placements: list[PlacementFact] = attrs.field(factory=list)
    tunnels: list[TunnelFact] = attrs.field(factory=list)
    workers: list[WorkerFact] = attrs.field(factory=list)
    postgres: list[PostgresFact] = attrs.field(factory=list)
    meshes: list[MeshFact] = attrs.field(factory=list)
    zones: dict[str, str] = attrs.field(factory=dict)
    """Zone id → zone name."""
    plans: list[PlanFact] = attrs.field(factory=list)
    """The zones' declared plans (none for a zone whose `CloudflareZone.plan` is None)."""
    buckets: list[BucketFact] = attrs.field(factory=list)
    """The log and backup buckets the stack's constructs made (R2LogSink, PgBackups)."""
    edge_logs: EdgeLogsFact | None = None
    waves: WavesFact | None = None
    """The rollout waves the environment declares (CUE ``deploy.waves``); None: the default
    order (one canary per service, then the rest)."""

    def add_services(self, where: Where, services: Mapping[str, Service]) -> None:
        for name, service in sorted(services.items()):
            self.services.setdefault(name, (service, where.at(f".services.{name}")))
            self.given.setdefault(name, [])
            if where.path not in self.given[name]:
                self.given[name].append(where.path)


_LAYOUTS: weakref.WeakKeyDictionary[Construct, Layout] = weakref.WeakKeyDictionary()


def layout_of(scope: Construct) -> Layout:
    """The layout of `scope`'s stack, begun on first use (the file the user edits is the
    first file outside edgekit on the call stack: the one building the stack)."""
    stack = stack_of(scope)
    found = _LAYOUTS.get(stack)
    if found is None:
        here = user_file()
        found = _LAYOUTS[stack] = Layout(stack=stack.node.id, file=here, services_file=here,
                                         nodes_where=Where(path=stack.node.path))
    return found


def layouts_in(root: Construct) -> list[Layout]:
    """The layouts of the stacks below `root` that any construct recorded into."""
    return [found for child in root.node.children
            if (found := _LAYOUTS.get(child)) is not None]


def user_file() -> str:
    """The first source file on the call stack outside the edgekit package, relative to
    the working directory when it is inside it (``stacks/shop.py``)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.suffix == ".py" and PACKAGE not in path.resolve().parents:
            try:
                return str(path.resolve().relative_to(Path(os.getcwd()).resolve()))
            except ValueError:
                return str(path)
        frame = frame.f_back  # type: ignore[assignment]
    return "your stack's Python file"


def record_services(construct: Construct, services: Mapping[str, Service]) -> None:
    layout_of(construct).add_services(Where(path=construct.node.path), services)


def record_bucket(construct: Construct, fact: BucketFact) -> None:
    layout_of(construct).buckets.append(fact)


def record_zone(construct: Construct, zone: CloudflareZone) -> None:
    """The zone `construct` works on, and the plan it is declared on (when it is)."""
    layout = layout_of(construct)
    layout.zones[zone.zone_id] = zone.zone
    if zone.plan is not None and not any(p.zone_id == zone.zone_id for p in layout.plans):
        layout.plans.append(PlanFact(
            zone_id=zone.zone_id, zone=zone.zone, account_id=zone.account_id,
            plan=zone.plan, addons=zone.addons, workers_paid=zone.workers_paid,
            where=Where(path=construct.node.path)))
