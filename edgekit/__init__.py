"""edgekit: Python classes in, OpenTofu JSON out.

The public surface is what this module exports; everything else is internal. The core
(App, Stack, Resource, ...) is imported with the package; the constructs a stack is
written with (VpsNode, Tunnel, ...) and the plain values they take (Service,
CloudflareZone, ...) load on first use, so ``import edgekit`` stays cheap. Each has a
docstring with a call that works (the tests run them). The reference estate's CUE wiring
(L3) is `edgekit.estate`.
"""

from typing import TYPE_CHECKING

import edgekit.core  # noqa: F401  (first: its code cache is in place before attrs loads, ADR 0042)
from edgekit.app import App, SynthReport
from edgekit.core.aspects import Aspect
from edgekit.core.construct import Construct, Node
from edgekit.core.elements import (
    DataSource,
    Element,
    Local,
    Module,
    Output,
    Provider,
    Resource,
    Variable,
)
from edgekit.core.errors import (
    ConstructError,
    EdgekitError,
    OutputError,
    Problem,
    SynthError,
)
from edgekit.core.overrides import DELETE
from edgekit.core.refs import Ref
from edgekit.core.stack import LocalState, R2State, S3State, Stack, StateEncryption

_LAZY = {
    "VpsNode": "edgekit.constructs.node",
    "PrivateNetwork": "edgekit.constructs.network",
    "Firewall": "edgekit.constructs.firewall",
    "Volume": "edgekit.constructs.storage",
    "Snapshot": "edgekit.constructs.storage",
    "FloatingIp": "edgekit.constructs.addresses",
    "LoadBalancer": "edgekit.constructs.load_balancer",
    "PgPrimary": "edgekit.constructs.pg_primary",
    "Tunnel": "edgekit.constructs.tunnel",
    "EdgeWorker": "edgekit.constructs.edge_worker",
    "EdgeSecurity": "edgekit.constructs.edge_security",
    "Hyperdrive": "edgekit.constructs.hyperdrive",
    "GluedFlake": "edgekit.constructs.glued_flake",
    "Mesh": "edgekit.constructs.mesh",
    "R2Bucket": "edgekit.constructs.r2",
    "R2LogSink": "edgekit.constructs.r2",
    "Service": "edgekit.constructs.values",
    "Needs": "edgekit.constructs.values",
    "Cache": "edgekit.constructs.values",
    "RateLimit": "edgekit.constructs.values",
    "CloudflareZone": "edgekit.constructs.values",
    "PROVIDERS": "edgekit.clouds",
    "CloudName": "edgekit.clouds",
    "Role": "edgekit.constructs.values",
    "TunnelStrategy": "edgekit.constructs.values",
    "R2Location": "edgekit.constructs.values",
}
"""Public names imported on first use: name → module."""

if TYPE_CHECKING:
    from edgekit.clouds import PROVIDERS, CloudName
    from edgekit.constructs.addresses import FloatingIp
    from edgekit.constructs.edge_security import EdgeSecurity
    from edgekit.constructs.edge_worker import EdgeWorker
    from edgekit.constructs.firewall import Firewall
    from edgekit.constructs.glued_flake import GluedFlake
    from edgekit.constructs.hyperdrive import Hyperdrive
    from edgekit.constructs.load_balancer import LoadBalancer
    from edgekit.constructs.mesh import Mesh
    from edgekit.constructs.network import PrivateNetwork
    from edgekit.constructs.node import VpsNode
    from edgekit.constructs.pg_primary import PgPrimary
    from edgekit.constructs.r2 import R2Bucket, R2LogSink
    from edgekit.constructs.storage import Snapshot, Volume
    from edgekit.constructs.tunnel import Tunnel
    from edgekit.constructs.values import (
        Cache,
        CloudflareZone,
        Needs,
        R2Location,
        RateLimit,
        Role,
        Service,
        TunnelStrategy,
    )

    __version__: str


def __getattr__(name: str) -> object:
    if name == "__version__":  # read from the distribution's metadata, when first asked
        from edgekit.core.version import edgekit_version

        return edgekit_version()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


__all__ = [
    "DELETE",
    "PROVIDERS",
    "App",
    "Aspect",
    "Cache",
    "CloudName",
    "CloudflareZone",
    "Construct",
    "ConstructError",
    "DataSource",
    "EdgeSecurity",
    "EdgeWorker",
    "EdgekitError",
    "Element",
    "Firewall",
    "FloatingIp",
    "GluedFlake",
    "Hyperdrive",
    "LoadBalancer",
    "Local",
    "LocalState",
    "Mesh",
    "Module",
    "Needs",
    "Node",
    "Output",
    "OutputError",
    "PgPrimary",
    "PrivateNetwork",
    "Problem",
    "Provider",
    "R2Bucket",
    "R2Location",
    "R2LogSink",
    "R2State",
    "RateLimit",
    "Ref",
    "Resource",
    "Role",
    "S3State",
    "Service",
    "Snapshot",
    "Stack",
    "StateEncryption",
    "SynthError",
    "SynthReport",
    "Tunnel",
    "TunnelStrategy",
    "Variable",
    "Volume",
    "VpsNode",
    "__version__",
]
