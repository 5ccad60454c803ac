"""The reference estate's environments, built from cue/envs.cue.

prod: two Hetzner edge nodes and one Linode Tokyo node running the glued flakes, the
Postgres primary on a Vultr Tokyo node with its data volume, a private
network per provider. staging: one Hetzner node running everything, Postgres included.
Both: tunnels from the nodes, the edge Worker on every public hostname, WAF and rate
limits, Hyperdrive to Postgres, R2 for logs. The state bucket is the bootstrap stack's, the
zone's WAF, rate limits and settings the zone stack's (edgekit.estate.account_stacks).
"""

from __future__ import annotations

from pathlib import Path

from edgekit.constructs.glued_flake import GluedFlake
from edgekit.core.construct import Construct
from edgekit.cue.model import Estate
from edgekit.estate.env_stack import EnvStack
from edgekit.estate.patterns import EstateEdge, EstateNodes

ROOT = Path(__file__).resolve().parent.parent
WORKER_SCRIPT = ROOT / "services/edge-worker/src/index.js"


def glued_flakes(stack: EnvStack, estate: Estate) -> list[GluedFlake]:
    """One GluedFlake per service that runs on nodes: checked, and part of placement."""
    return [GluedFlake(stack, f"flake-{name}", path=f"services/{name}", root=ROOT,
                       services=estate.services, placement=estate.env.placement)
            for name, service in sorted(estate.services.items()) if service.kind == "vps"]


class EstateStack(EnvStack):
    """One environment of cue/envs.cue: its glued flakes, nodes and edge."""

    def __init__(self, scope: Construct, estate: Estate) -> None:
        super().__init__(scope, estate)
        self.flakes = glued_flakes(self, estate)
        self.estate_nodes = EstateNodes(self, "nodes", estate=estate)
        self.edge = EstateEdge(self, "edge", estate=estate, nodes=self.estate_nodes,
                               worker_script=WORKER_SCRIPT)
