"""GluedFlake: one service's NixOS flake (``services/<svc>/flake.nix``) in the construct tree.

A glued flake is the unit of deployment of a service (see the convention in
``services/lib/flake.nix``). The construct emits no OpenTofu resource: it checks, when the
stack is built (which is synth time), that the service can be composed onto its nodes, and
raises `ConstructError` naming its path when it cannot:

- the folder ``services/<svc>`` or its ``flake.nix`` is missing;
- the service is not among the `services` given, or is a Cloudflare Worker (no flake);
- the service is placed on no node (`placement`: node → service names).

The placement is recorded for the check rules (`edgekit.constructs.facts`), which report at
synth, with every other problem: a port taken twice on a node (EK121), a service placed
twice (EK122), a node that is not one of the stack's (EK123), a name that is not a service
that runs on nodes (EK124), no private path to Postgres (EK181).

What each node then runs is composed by ``nix/compose.nix`` (mirrored by
`edgekit.nix.compose`) from the CUE estate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from edgekit.constructs.base import listed, validated
from edgekit.constructs.facts import PlacementFact, Where, layout_of
from edgekit.constructs.props import GluedFlakeProps
from edgekit.constructs.values import Service, checked_services
from edgekit.core.construct import Construct
from edgekit.core.errors import ConstructError

FLAKE_FILE = "flake.nix"


class GluedFlake(Construct):
    """A service's glued flake (``services/<svc>/flake.nix`` under `root`), checked against
    its `Service` (one of `services`, by the folder's name) and the nodes `placement`
    puts it on.

    >>> from pathlib import Path
    >>> from edgekit import App, GluedFlake, LocalState, Service, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> flake = GluedFlake(stack, "flake-api", path="services/api", root=Path("."),
    ...                    services={"api": Service(name="api", port=8080)},
    ...                    placement={"edge-1": ["api"], "edge-2": ["api"]})
    >>> flake.nodes, flake.port
    (['edge-1', 'edge-2'], 8080)
    """
    def __init__(self, scope: Construct, id: str, *, path: str, root: Path,
                 services: Mapping[str, Service],
                 placement: Mapping[str, Sequence[str]]) -> None:
        super().__init__(scope, id)
        where = self.node.path
        name = path.rstrip("/").rsplit("/", 1)[-1]
        self.props = validated(self, "GluedFlake", GluedFlakeProps,
                               {"service": name, "path": path})
        folder = root / self.props.path
        if not folder.is_dir():
            raise ConstructError(
                f"[{where}] glued flake folder {self.props.path} does not exist "
                f"(expected {folder} with {FLAKE_FILE}, app.py and edgekit.json)")
        flake = folder / FLAKE_FILE
        if not flake.is_file():
            raise ConstructError(
                f"[{where}] glued flake {self.props.path} has no {FLAKE_FILE} "
                f"(expected {flake})")
        self.folder = folder
        self.flake = flake
        services = checked_services(where, services)
        placement = {node: listed(self, "placement", names) for node, names in placement.items()}
        layout = layout_of(self)
        layout.add_services(Where(path=where), services)
        layout.placements.append(PlacementFact(
            placement={node: tuple(names) for node, names in placement.items()},
            services=services, nodes=None, where=Where(path=where, pointer="$.placement")))
        self.service: Service = self._service(services)
        self.nodes: list[str] = self._placed_nodes(placement)

    def _service(self, services: Mapping[str, Service]) -> Service:
        where, name = self.node.path, self.props.service
        if name not in services:
            known = ", ".join(sorted(services))
            raise ConstructError(
                f"[{where}] service '{name}' is not among the services (known: {known})")
        service = services[name]
        if service.kind == "worker":
            raise ConstructError(
                f"[{where}] service '{name}' is a worker (it runs on Cloudflare); "
                "it has no glued flake")
        return service

    def _placed_nodes(self, placement: Mapping[str, Sequence[str]]) -> list[str]:
        name = self.props.service
        nodes = [node for node, names in sorted(placement.items()) if name in names]
        if not nodes:
            raise ConstructError(
                f"[{self.node.path}] service '{name}' is placed on no node; add it to the "
                "placement (node → services) of at least one node")
        return nodes

    @property
    def port(self) -> int | None:
        return self.service.port
