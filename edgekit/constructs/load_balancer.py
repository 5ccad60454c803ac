"""LoadBalancer: an explicit opt-in, because it is a public entry beside Cloudflare.

ADR 0001 makes Cloudflare the only front door and defers provider load balancers. This
construct exists for the day that changes; it refuses to be created unless the caller
says so with ``public_ingress_acknowledged=True``. Targets are reached over the private
network.

hetzner: hcloud_load_balancer + _network + _service + _target per node; linode:
linode_nodebalancer + _config + _node per node; vultr: vultr_load_balancer.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.constructs.base import label, located, validated
from edgekit.constructs.catalog import CatalogError, resolve_region
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.props import LoadBalancerProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.errors import ConstructError


class LoadBalancer(Construct):
    """The provider's load balancer in front of nodes of one private network: an explicit
    opt-in, since Cloudflare Tunnel is the front door (`public_ingress_acknowledged`).

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import LoadBalancer, PrivateNetwork, VpsNode
    >>> net = PrivateNetwork(stack, "net", provider="hetzner", region="nbg1")
    >>> nodes = [VpsNode(stack, f"web-{i}", provider="hetzner", region="nbg1", size="small",
    ...                  networks=[net]) for i in (1, 2)]
    >>> lb = LoadBalancer(stack, "lb", provider="hetzner", region="nbg1", network=net,
    ...                   targets=nodes, public_ingress_acknowledged=True)
    """
    def __init__(self, scope: Construct, id: str, *, provider: str, region: str,
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
            self.region = resolve_region(provider, region)
        except CatalogError as err:
            raise located(self, err) from err
        others = [t.node.path for t in targets if t.provider != provider]
        if others:
            raise ConstructError(f"[{self.node.path}] targets on another provider than "
                                 f"{provider}: {', '.join(others)}")
        name = label(self)
        if provider == "hetzner":
            self.resource = Resource(self, "Resource", type="hcloud_load_balancer", config={
                "name": name, "load_balancer_type": "lb11", "location": self.region})
            Resource(self, "network", type="hcloud_load_balancer_network", config={
                "load_balancer_id": self.resource.attr("id"),
                "subnet_id": network.subnet.attr("id")})
            Resource(self, "service", type="hcloud_load_balancer_service", config={
                "load_balancer_id": self.resource.attr("id"), "protocol": "tcp",
                "listen_port": listen_port, "destination_port": target_port})
            for target in targets:
                Resource(self, f"target-{target.name}", type="hcloud_load_balancer_target",
                         config={"load_balancer_id": self.resource.attr("id"),
                                 "type": "server", "server_id": target.id_ref,
                                 "use_private_ip": True})
        elif provider == "linode":
            self.resource = Resource(self, "Resource", type="linode_nodebalancer", config={
                "label": name[:32], "region": self.region})
            config = Resource(self, "config", type="linode_nodebalancer_config", config={
                "nodebalancer_id": self.resource.attr("id"), "port": listen_port,
                "protocol": "tcp"})
            for target in targets:
                Resource(self, f"target-{target.name}", type="linode_nodebalancer_node",
                         config={"nodebalancer_id": self.resource.attr("id"),
                                 "config_id": config.attr("id"), "label": target.name,
                                 "address": f"{target.private_ip}:{target_port}"})
        else:
            self.resource = Resource(self, "Resource", type="vultr_load_balancer", config={
                "label": name, "region": self.region,
                "forwarding_rules": [{"frontend_protocol": "tcp", "frontend_port": listen_port,
                                      "backend_protocol": "tcp",
                                      "backend_port": target_port}],
                "attached_instances": [t.id_ref for t in targets],
                "vpc": network.id_ref})
