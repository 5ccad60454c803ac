"""PrivateNetwork: one private network per provider and region that nodes join.

hetzner: ``hcloud_network`` + ``hcloud_network_subnet``; linode: ``linode_vpc`` +
``linode_vpc_subnet``; vultr: ``vultr_vpc``.
"""

from __future__ import annotations

import ipaddress

from edgekit.constructs.base import label, located, validated
from edgekit.constructs.catalog import CatalogError, resolve_region
from edgekit.constructs.props import PrivateNetworkProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref

# Hetzner subnets live in a network zone that spans several locations.
HETZNER_ZONES = {"fsn1": "eu-central", "nbg1": "eu-central", "hel1": "eu-central",
                 "ash": "us-east", "hil": "us-west", "sin": "ap-southeast"}


class PrivateNetwork(Construct):
    """A private network of one provider in one region (the whole ``cidr`` is one subnet);
    nodes that join it get fixed private addresses.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PrivateNetwork
    >>> net = PrivateNetwork(stack, "net", provider="vultr", region="tokyo", cidr="10.2.0.0/16")
    >>> net.region, net.cidr
    ('nrt', '10.2.0.0/16')
    """
    def __init__(self, scope: Construct, id: str, *, provider: str, region: str,
                 cidr: str = "10.0.0.0/16") -> None:
        super().__init__(scope, id)
        self.props = validated(self, "PrivateNetwork", PrivateNetworkProps,
                               {"name": id, "provider": provider, "region": region,
                                "cidr": cidr})
        try:
            self.region = resolve_region(provider, region)
            self.network = ipaddress.ip_network(cidr)
        except (CatalogError, ValueError) as err:
            raise located(self, err) from err
        self.provider = self.props.provider
        self.cidr = str(self.network)
        self._members: list[str] = []
        name = label(self)
        if self.provider == "hetzner":
            self.resource = Resource(self, "Resource", type="hcloud_network",
                                     config={"name": name, "ip_range": self.cidr})
            self.subnet = Resource(self, "subnet", type="hcloud_network_subnet", config={
                "network_id": self.resource.attr("id"), "type": "cloud",
                "network_zone": HETZNER_ZONES[self.region], "ip_range": self.cidr,
            })
        elif self.provider == "linode":
            self.resource = Resource(self, "Resource", type="linode_vpc",
                                     config={"label": name, "region": self.region})
            self.subnet = Resource(self, "subnet", type="linode_vpc_subnet", config={
                "vpc_id": self.resource.attr("id"), "label": f"{name}-subnet",
                "ipv4": self.cidr,
            })
        else:
            self.resource = Resource(self, "Resource", type="vultr_vpc", config={
                "region": self.region, "description": name,
                "v4_subnet": str(self.network.network_address),
                "v4_subnet_mask": self.network.prefixlen,
            })
            self.subnet = self.resource

    @property
    def id_ref(self) -> Ref:
        return self.resource.attr("id")

    def allocate(self, node: str) -> str:
        """A fixed private address for `node`, in the order nodes join (10.0.1.10, ...).

        Fixed addresses keep the Postgres address stable across node replacements.
        """
        if node not in self._members:
            self._members.append(node)
        return str(self.network.network_address + 256 + 10 + self._members.index(node))
