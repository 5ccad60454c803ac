"""LoadBalancer: an explicit opt-in, because it is a public entry beside Cloudflare.

ADR 0001 makes Cloudflare the only front door and defers provider load balancers. This
construct exists for the day that changes; it refuses to be created unless the caller
says so with ``public_ingress_acknowledged=True``. Targets are reached over the private
network. The resources are the cloud adapter's (`Cloud.load_balancer`).
"""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.clouds import CatalogError, CloudName, cloud
from edgekit.clouds.base import LoadBalancerSpec
from edgekit.constructs.base import label, located, validated
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.props import LoadBalancerProps
from edgekit.core.construct import Construct
from edgekit.core.errors import ConstructError


class LoadBalancer(Construct):
    """The provider's load balancer in front of nodes of one private network: an explicit
    opt-in, since Cloudflare Tunnel is the front door (`public_ingress_acknowledged`).

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, LoadBalancer, PrivateNetwork, VpsNode
    >>> cloud = PROVIDERS[0]  # any supported cloud
    >>> net = PrivateNetwork(stack, "net", provider=cloud, region="singapore")
    >>> nodes = [VpsNode(stack, f"web-{i}", provider=cloud, region="singapore",
    ...                  size="small", networks=[net]) for i in (1, 2)]
    >>> lb = LoadBalancer(stack, "lb", provider=cloud, region="singapore", network=net,
    ...                   targets=nodes, public_ingress_acknowledged=True)
    """
    def __init__(self, scope: Construct, id: str, *, provider: CloudName, region: str,
                 network: PrivateNetwork, targets: Sequence[VpsNode], listen_port: int = 443,
                 target_port: int = 443, public_ingress_acknowledged: bool = False) -> None:
        super().__init__(scope, id)
        if not public_ingress_acknowledged:
            raise ConstructError(
                f"[{self.node.path}] a LoadBalancer is a public entry point beside "
                "Cloudflare, which ADR 0001 defers; pass public_ingress_acknowledged=True "
                "to opt in explicitly")
        self.props = validated(self, "LoadBalancer", LoadBalancerProps, {
            "name": id, "provider": provider, "region": region,
            "listen_port": listen_port, "target_port": target_port})
        try:
            adapter = cloud(provider)
            self.region = adapter.catalog.region(region)
        except CatalogError as err:
            raise located(self, err) from err
        others = [t.node.path for t in targets if t.provider != provider]
        if others:
            raise ConstructError(f"[{self.node.path}] targets on another provider than "
                                 f"{provider}: {', '.join(others)}")
        if network.provider != provider:
            raise ConstructError(f"[{self.node.path}] network {network.node.path} is a "
                                 f"{network.provider} network, the load balancer {provider}")
        self.resource = adapter.load_balancer(self, LoadBalancerSpec(
            label=label(self), region=self.region, listen_port=listen_port,
            target_port=target_port, network=network,
            targets=tuple((t.name, t.id_ref, t.private_ip) for t in targets)))
