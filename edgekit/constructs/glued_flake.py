"""GluedFlake: one service's NixOS flake (``services/<svc>/flake.nix``) in the construct tree.

A glued flake is the unit of deployment of a service (see the convention in
``services/lib/flake.nix``). The construct emits no OpenTofu resource: it checks, when the
stack is built (which is synth time), that what the top-level ``flake.nix`` will compose for
this environment can work, and raises `ConstructError` naming its path when it cannot:

- the folder ``services/<svc>`` or its ``flake.nix`` is missing;
- the service is not in ``cue/services.cue``, or is a Cloudflare Worker (no flake);
- the service is placed on no node of the environment (it would never run);
- a node of its placement runs another service on the same port.

It exposes the service's composed view (`nodes`, `port`, `composed`) from
`edgekit.nix.compose`, which ``nix/compose.nix`` mirrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.constructs.base import validated
from edgekit.constructs.props import GluedFlakeProps
from edgekit.core.construct import Construct
from edgekit.core.errors import ConstructError
from edgekit.cue.model import Estate, Service
from edgekit.nix.compose import ComposeError, compose_estate

FLAKE_FILE = "flake.nix"


class GluedFlake(Construct):
    """A service's glued flake (``services/<svc>/flake.nix``), checked against its CUE
    service and placed on nodes by the estate's placement.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from pathlib import Path
    >>> from edgekit import Estate, GluedFlake
    >>> estate = Estate.load(Path("."), "staging", refresh=False)  # from the project root
    >>> GluedFlake(stack, "flake-api", path="services/api", root=Path("."),
    ...            estate=estate).node.id
    'flake-api'
    """
    def __init__(self, scope: Construct, id: str, *, path: str, root: Path,
                 estate: Estate) -> None:
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
        self.service: Service = self._service(estate)
        self.estate = estate
        self.nodes: list[str] = self._placed_nodes(estate)
        self._check_ports(estate)

    def _service(self, estate: Estate) -> Service:
        where, name = self.node.path, self.props.service
        if name not in estate.services:
            known = ", ".join(sorted(estate.services))
            raise ConstructError(
                f"[{where}] service '{name}' is not in cue/services.cue (known: {known})")
        service = estate.services[name]
        if service.kind == "worker":
            raise ConstructError(
                f"[{where}] service '{name}' is a worker (it runs on Cloudflare); "
                "it has no glued flake")
        return service

    def _placed_nodes(self, estate: Estate) -> list[str]:
        env, name = estate.env, self.props.service
        nodes = [node for node, names in sorted(env.placement.items()) if name in names]
        if not nodes:
            raise ConstructError(
                f"[{self.node.path}] service '{name}' is placed on no node of env "
                f"'{env.name}'; add it to envs.{env.name}.placement in cue/envs.cue")
        return nodes

    def _check_ports(self, estate: Estate) -> None:
        name, port = self.props.service, self.service.port
        for node in self.nodes:
            for other in estate.env.placement[node]:
                theirs = estate.services.get(other)
                if other != name and theirs is not None and theirs.port == port:
                    raise ConstructError(
                        f"[{self.node.path}] service '{name}' and service '{other}' both use "
                        f"port {port} on node '{node}' (ports come from cue/services.cue)")

    @property
    def port(self) -> int | None:
        return self.service.port

    def composed(self) -> dict[str, dict[str, Any]]:
        """Per node of this service's placement: the node's composition (edgekit.nix)."""
        try:
            nodes = compose_estate(self.estate)
        except ComposeError as error:
            raise ConstructError(f"[{self.node.path}] {error}") from None
        return {node: nodes[node] for node in self.nodes}

