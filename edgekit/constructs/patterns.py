"""L3 patterns: the reference estate's pieces, composed from the L2 constructs."""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.constructs.catalog import catalog
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.pg_primary import PgPrimary
from edgekit.core.construct import Construct
from edgekit.core.elements import Provider, Variable
from edgekit.cue.model import Estate

# How each provider's API token reaches OpenTofu: a sensitive variable (TF_VAR_<name>).
TOKEN_ARGUMENT = {"hetzner": "token", "linode": "token", "vultr": "api_key"}


class EstateNodes(Construct):
    """Every node of a CUE environment: provider configuration, one private network per
    provider, the closed nodes, and the Postgres primary on the node with that role."""

    def __init__(self, scope: Construct, id: str, *, estate: Estate,
                 placement: Variable | None = None,
                 admin_ssh_cidrs: Sequence[str] = ()) -> None:
        super().__init__(scope, id)
        env = estate.env
        providers = sorted({n.provider for n in env.nodes.values()})
        self.networks: dict[str, PrivateNetwork] = {}
        for index, provider in enumerate(providers):
            tofu_name = catalog(provider).tofu_provider
            token = Variable(scope, f"{tofu_name}_token", type="string", sensitive=True,
                             description=f"{provider} API token (TF_VAR_{tofu_name}_token).")
            Provider(scope, tofu_name, type=tofu_name,
                     config={TOKEN_ARGUMENT[provider]: token.ref()})
            first = next(n for n in env.nodes.values() if n.provider == provider)
            self.networks[provider] = PrivateNetwork(
                self, f"net-{provider}", provider=provider, region=first.region,
                cidr=f"10.{index}.0.0/16")
        self.nodes: dict[str, VpsNode] = {}
        for name, spec in sorted(env.nodes.items()):
            self.nodes[name] = VpsNode(
                self, name, provider=spec.provider, region=spec.region, size=spec.size,
                roles=spec.roles, networks=[self.networks[spec.provider]],
                admin_ssh_cidrs=admin_ssh_cidrs, placement=placement)
        pg_nodes = [n for n, spec in sorted(env.nodes.items()) if "postgres" in spec.roles]
        self.postgres = [PgPrimary(self, "postgres", node=self.nodes[pg_nodes[0]],
                                   services=estate.services)] if pg_nodes else []
