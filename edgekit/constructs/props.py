"""Typed properties of edgekit's constructs, one attrs class per CUE definition.

Each class mirrors ``cue/constructs.cue``; `PROPS` maps the CUE definition name to
its class, and a test keeps the two in agreement field by field. Defaults here are
the defaults in CUE; each optional field says what its default does.
"""

from __future__ import annotations

from typing import Literal

import attrs

from edgekit.constructs.values import R2Location, Role

Provider = str
"""A cloud's name: a key of `edgekit.clouds.CLOUDS` (CUE's ``#Provider`` lists the same
names, and the JSON Schema refuses any other; a test keeps the two equal)."""


@attrs.frozen(kw_only=True)
class VpsNodeProps:
    name: str
    provider: Provider
    region: str
    """Native region of the provider, or a portable alias such as ``tokyo``."""
    size: str
    """Native size of the provider, or a portable alias such as ``small``."""
    image: str = "debian-12"
    """The image the node boots before it turns itself into NixOS."""
    roles: tuple[Role, ...] = ()
    """What the node is for; no roles means a plain node."""
    private_network: str | None = None
    """Private network to join; none means the node has only its public interface."""
    admin_ssh_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to reach SSH; empty (the default) means SSH is closed too."""
    backups: bool = False
    """Provider-side backups; off by default (R2 and Postgres snapshots are the backups)."""


@attrs.frozen(kw_only=True)
class GluedFlakeProps:
    service: str
    path: str


@attrs.frozen(kw_only=True)
class TunnelProps:
    name: str
    nodes: tuple[str, ...]
    strategy: Literal["replicas", "per_node"] = "replicas"
    """``replicas``: one tunnel on every node, failover only; ``per_node``: weighted."""
    weights: dict[str, int] = attrs.field(factory=dict)
    """Per-node weights for ``per_node``; empty means equal weights."""


@attrs.frozen(kw_only=True)
class R2LogSinkProps:
    bucket: str
    retention_days: int = 30
    """Objects older than this are deleted by a lifecycle rule."""
    location_hint: R2Location = "apac"
    """Where R2 places the bucket; near the nodes by default (Asia-Pacific)."""


@attrs.frozen(kw_only=True)
class PgPrimaryProps:
    node: str
    version: Literal[15, 16, 17] = 17
    """PostgreSQL major version."""
    data_volume_gb: int = 50
    """Size of the separate data volume."""


@attrs.frozen(kw_only=True)
class EdgeWorkerProps:
    name: str
    script_path: str
    compatibility_date: str
    hostnames: tuple[str, ...] = ()
    """Public hostnames routed to the Worker; none means no routes yet."""


@attrs.frozen(kw_only=True)
class PrivateNetworkProps:
    name: str
    provider: Provider
    region: str
    cidr: str = "10.0.0.0/16"
    """The network's range; the provider's subnet takes all of it."""


@attrs.frozen(kw_only=True)
class FirewallProps:
    name: str
    provider: Provider
    admin_ssh_cidrs: tuple[str, ...] = ()
    """Where admin SSH may come from; empty (default): SSH is closed as well."""
    private_cidrs: tuple[str, ...] = ()
    """Private ranges whose nodes may talk to each other; empty: none."""
    private_ports: tuple[int, ...] = ()
    """Ports opened to `private_cidrs` only; empty: all ports between private nodes."""


@attrs.frozen(kw_only=True)
class FloatingIpProps:
    name: str
    provider: Provider
    region: str


@attrs.frozen(kw_only=True)
class VolumeProps:
    name: str
    size_gb: int
    region: str


@attrs.frozen(kw_only=True)
class SnapshotProps:
    name: str
    description: str = ""
    """Free text shown in the provider's console; empty by default."""


@attrs.frozen(kw_only=True)
class LoadBalancerProps:
    name: str
    provider: Provider
    region: str
    listen_port: int
    target_port: int


PROPS: dict[str, type] = {
    "VpsNode": VpsNodeProps,
    "GluedFlake": GluedFlakeProps,
    "Tunnel": TunnelProps,
    "R2LogSink": R2LogSinkProps,
    "PgPrimary": PgPrimaryProps,
    "EdgeWorker": EdgeWorkerProps,
    "PrivateNetwork": PrivateNetworkProps,
    "Firewall": FirewallProps,
    "FloatingIp": FloatingIpProps,
    "Volume": VolumeProps,
    "Snapshot": SnapshotProps,
    "LoadBalancer": LoadBalancerProps,
}
