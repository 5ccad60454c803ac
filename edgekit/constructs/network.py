"""PrivateNetwork: one private network per cloud and region that nodes join.

The resources are the cloud adapter's (`edgekit.clouds`, `Cloud.network`): a network and the
subnet servers join (the same resource where the cloud has no separate subnet).
"""

from __future__ import annotations

import ipaddress

from edgekit.clouds import CatalogError, CloudName, cloud
from edgekit.constructs.base import label, located, validated
from edgekit.constructs.facts import NetworkFact, Where, layout_of
from edgekit.constructs.props import PrivateNetworkProps
from edgekit.core.construct import Construct
from edgekit.core.refs import Ref


class PrivateNetwork(Construct):
    """A private network of one provider in one region (the whole ``cidr`` is one subnet);
    nodes that join it get fixed private addresses.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, PrivateNetwork
    >>> cloud = PROVIDERS[0]  # any supported cloud: each has the alias "singapore"
    >>> net = PrivateNetwork(stack, "net", provider=cloud, region="singapore",
    ...                      cidr="10.2.0.0/16")
    >>> net.cidr, net.region == net.cloud.catalog.region("singapore")
    ('10.2.0.0/16', True)
    """
    def __init__(self, scope: Construct, id: str, *, provider: CloudName, region: str,
                 cidr: str = "10.0.0.0/16") -> None:
        super().__init__(scope, id)
        self.props = validated(self, "PrivateNetwork", PrivateNetworkProps,
                               {"name": id, "provider": provider, "region": region,
                                "cidr": cidr})
        try:
            self.cloud = cloud(self.props.provider)
            self.region = self.cloud.catalog.region(region)
            self.network = ipaddress.ip_network(cidr)
            problem = self.cloud.check_network(str(self.network))
            if problem:
                raise ValueError(problem)
        except (CatalogError, ValueError) as err:
            raise located(self, err) from err
        self.provider = self.props.provider
        self.cidr = str(self.network)
        self._members: list[str] = []
        self.resource, self.subnet = self.cloud.network(self, label=label(self),
                                                        region=self.region, cidr=self.cidr)
        layout_of(self).networks[self.node.path] = NetworkFact(
            key=self.node.path, provider=self.provider, region=self.region, cidr=self.cidr,
            where=Where(path=self.node.path, pointer="$.cidr"))

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
