"""The reference estate's environments, built from cue/envs.cue.

prod: two Hetzner edge nodes and one Linode Tokyo node running the glued flakes, the
Postgres primary on a Vultr Tokyo node with its data volume and snapshots, a private
network per provider. staging: one Hetzner node running everything, Postgres included.
Both: tunnels from the nodes, the edge Worker on every public hostname, WAF and rate
limits, Hyperdrive to Postgres, R2 for logs (prod also owns the shared state bucket).
"""

from __future__ import annotations

from pathlib import Path

from edgekit.constructs.env_stack import EnvStack
from edgekit.constructs.glued_flake import GluedFlake
from edgekit.constructs.patterns import EstateEdge, EstateNodes
from edgekit.core.construct import Construct
from edgekit.cue.model import Estate

ROOT = Path(__file__).resolve().parent.parent
WORKER_SCRIPT = ROOT / "services/edge-worker/src/index.js"


def glued_flakes(stack: EnvStack, estate: Estate) -> list[GluedFlake]:
    """One GluedFlake per service that runs on nodes: checked, and part of placement."""
    return [GluedFlake(stack, f"flake-{name}", path=f"services/{name}", root=ROOT,
                       estate=estate)
            for name, service in sorted(estate.services.items()) if service.kind == "vps"]


KNOWN_HOLES = {
    "EK132": "known: the zone's entrypoint rulesets move to one `zone` stack (issue 11)",
    "EK133": "known: the state bucket moves to a `bootstrap` stack (issue 11)",
    "EK161": "known: origin hostnames get protection and certificate cover (issue 11)",
    "EK171": "known: user_data becomes first-boot only (issue 11)",
}
"""Defects `edgekit check` finds in the reference estate today, tracked by issue 11; each
suppression is printed by every synth until its fix removes it from this table."""


class EstateStack(EnvStack):
    """One environment of cue/envs.cue: its glued flakes, nodes and edge."""

    manage_state_bucket = False

    def __init__(self, scope: Construct, estate: Estate) -> None:
        super().__init__(scope, estate)
        for rule_id, reason in KNOWN_HOLES.items():
            self.node.suppress(rule_id, reason=reason)
        self.flakes = glued_flakes(self, estate)
        self.estate_nodes = EstateNodes(self, "nodes", estate=estate,
                                        placement=self.placement,
                                        deploy_revision=self.deploy_revision)
        self.edge = EstateEdge(self, "edge", estate=estate, nodes=self.estate_nodes,
                               worker_script=WORKER_SCRIPT,
                               manage_state_bucket=self.manage_state_bucket)


class ProdStack(EstateStack):
    """prod owns the R2 bucket that holds every environment's state."""

    manage_state_bucket = True


class StagingStack(EstateStack):
    pass
