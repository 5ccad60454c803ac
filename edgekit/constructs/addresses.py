"""FloatingIp: an address that survives replacing its node.

hetzner: hcloud_floating_ip + hcloud_floating_ip_assignment; linode: linode_networking_ip
with ``reserved = true``; vultr: vultr_reserved_ip. Nothing is reachable through it from
the internet unless a firewall allows it, and edgekit's firewalls do not.
"""

from __future__ import annotations

from edgekit.constructs.base import label, validated
from edgekit.constructs.node import VpsNode
from edgekit.constructs.props import FloatingIpProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref


class FloatingIp(Construct):
    """A floating (reserved) IPv4 address of the node's provider, assigned to the node.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import FloatingIp, VpsNode
    >>> node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small")
    >>> FloatingIp(stack, "ip", node=node).node.path
    'prod/ip'
    """
    def __init__(self, scope: Construct, id: str, *, node: VpsNode) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "FloatingIp", FloatingIpProps,
                               {"name": id, "provider": node.provider, "region": node.region})
        name = label(self)
        if node.provider == "hetzner":
            self.resource = Resource(self, "Resource", type="hcloud_floating_ip", config={
                "name": name, "type": "ipv4", "home_location": node.region,
            })
            Resource(self, "assignment", type="hcloud_floating_ip_assignment", config={
                "floating_ip_id": self.resource.attr("id"), "server_id": node.id_ref,
            })
            self.address: Ref = self.resource.attr("ip_address")
        elif node.provider == "linode":
            self.resource = Resource(self, "Resource", type="linode_networking_ip", config={
                "type": "ipv4", "public": True, "reserved": True, "region": node.region,
                "linode_id": node.id_ref,
            })
            self.address = self.resource.attr("address")
        else:
            self.resource = Resource(self, "Resource", type="vultr_reserved_ip", config={
                "label": name, "region": node.region, "ip_type": "v4",
                "instance_id": node.id_ref,
            })
            self.address = self.resource.attr("subnet")
