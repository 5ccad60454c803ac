"""The reference estate's environments, built from cue/envs.cue.

prod: two Hetzner edge nodes and one Linode Tokyo node running the glued flakes, the
Postgres primary on a Vultr Tokyo node with its data volume and snapshots, a private
network per provider. staging: one Hetzner node running everything, Postgres included.
Tunnels, the Worker and R2 arrive with the Cloudflare and observability work.
"""

from __future__ import annotations

from edgekit.constructs.env_stack import EnvStack
from edgekit.constructs.patterns import EstateNodes
from edgekit.core.construct import Construct
from edgekit.cue.model import Estate


class ProdStack(EnvStack):
    def __init__(self, scope: Construct, estate: Estate) -> None:
        super().__init__(scope, estate)
        self.estate_nodes = EstateNodes(self, "nodes", estate=estate,
                                        placement=self.placement)


class StagingStack(EnvStack):
    def __init__(self, scope: Construct, estate: Estate) -> None:
        super().__init__(scope, estate)
        self.estate_nodes = EstateNodes(self, "nodes", estate=estate,
                                        placement=self.placement)
