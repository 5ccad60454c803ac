"""FloatingIp: an address that survives replacing its node.

The resources are the node's cloud adapter's (`Cloud.floating_ip`: the reserved address
and its assignment to the node). Nothing is reachable through it from the internet unless
a firewall allows it, and edgekit's firewalls do not.
"""

from __future__ import annotations

from edgekit.constructs.base import label, validated
from edgekit.constructs.node import VpsNode
from edgekit.constructs.props import FloatingIpProps
from edgekit.core.construct import Construct
from edgekit.core.refs import Ref


class FloatingIp(Construct):
    """A floating (reserved) IPv4 address of the node's cloud, assigned to the node.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, FloatingIp, VpsNode
    >>> node = VpsNode(stack, "edge-1", provider=PROVIDERS[0], region="singapore",
    ...                size="small")
    >>> FloatingIp(stack, "ip", node=node).node.path
    'prod/ip'
    """
    def __init__(self, scope: Construct, id: str, *, node: VpsNode) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "FloatingIp", FloatingIpProps,
                               {"name": id, "provider": node.provider, "region": node.region})
        self.address: Ref
        self.resource, self.address = node.cloud.floating_ip(
            self, label=label(self), region=node.region, server_id=node.id_ref)
