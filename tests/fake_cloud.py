"""A fifth cloud, "fakecloud", written the way a real one is: one module with its catalogue,
its resource kinds and its `Cloud` subclass (what `edgekit/clouds/<cloud>.py` holds). It
makes plain resources of an imaginary ``fake`` OpenTofu provider; `tests/test_fifth_cloud.py`
registers it and builds nodes on it with the public constructs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from edgekit.clouds.base import (
    Catalog,
    Cloud,
    FirewallParts,
    LoadBalancerSpec,
    Rule,
    ServerSpec,
    hcl_list,
    user_data,
)
from edgekit.clouds.facts import Boot, Network, NodeFacts
from edgekit.clouds.kinds import Inbound, Kind, NameRule, PortFormat, Unique, blocks, text_list
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref
from edgekit.core.synth import ProviderPin

CATALOG = Catalog(
    provider="fakecloud", tofu_provider="fake",
    regions={"fk-sin": "Singapore"}, region_aliases={"singapore": "fk-sin"},
    sizes={"f1": "1 vCPU"}, size_aliases={"small": "f1", "medium": "f1"},
    images={"debian-12": "debian12"},
    sources={"regions": "made up", "sizes": "made up", "images": "made up"},
)
SHORT = re.compile(r"^[a-z0-9-]+$")
PROJECT = Unique(attribute="name", scope="per fakecloud project")


def inbound(body: Mapping[str, Any]) -> Iterator[Inbound]:
    for i, rule in enumerate(blocks(body.get("allow"))):
        yield Inbound(pointer=f"$.allow[{i}].from", cidrs=tuple(text_list(rule.get("from"))),
                      port=rule.get("port"))


KINDS = {
    "fake_server": Kind(
        role="server", unique=PROJECT, region="zone", size="flavor",
        names=(NameRule(attribute=("name",), min=1, max=12, pattern=SHORT,
                        expected="lowercase letters, digits and '-'", source="fakecloud API"),),
        replace_forcing=(("boot_script",), ("zone",)), mock={"ip": "203.0.113.99"}),
    "fake_firewall": Kind(
        role="firewall", inbound=inbound,
        ports=(PortFormat(block="allow", field="port",
                          pattern=re.compile(r"^[0-9]{1,5}(-[0-9]{1,5})?$"),
                          form="'22' or '1-65535'"),)),
    "fake_network": Kind(role="network"),
}


class FakeCloud(Cloud):
    name = "fakecloud"
    catalog = CATALOG
    pin = ProviderPin(name="fake", source="example/fake", version="0.1.0")
    kinds = KINDS
    node_facts = NodeFacts(
        metadata_addresses=("169.254.169.254",),
        boot=Boot(grub_device="/dev/vda", root_device="/dev/vda1", second_disk="/dev/vdb"),
        network=Network(method="dhcp"), sources={"boot": "made up"})
    token_argument = "token"
    public_ip_attribute = "ip"
    first_boot_only = ("boot_script",)

    def network(self, scope: Construct, *, label: str, region: str,
                cidr: str) -> tuple[Resource, Resource]:
        net = Resource(scope, "Resource", type="fake_network", config={"name": label,
                                                                        "range": cidr})
        return net, net

    def firewall(self, scope: Construct, *, label: str, rules: Sequence[Rule]) -> FirewallParts:
        return FirewallParts(resource=Resource(scope, "Resource", type="fake_firewall", config={
            "name": label,
            "allow": [{"port": r.port, "from": list(r.cidrs)} for r in rules]}))

    def no_source_is(self, parts: FirewallParts, cidrs: Sequence[str]) -> str:
        return (f"alltrue([for r in {parts.resource.address}.allow : "
                f"length(setintersection(r.from, {hcl_list(cidrs)})) == 0])")

    def private_only(self, parts: FirewallParts, private: Sequence[str]) -> str:
        return (f"alltrue([for r in {parts.resource.address}.allow : r.port == \"22\" || "
                f"length(setsubtract(r.from, {hcl_list(private)})) == 0])")

    def server(self, scope: Construct, id: str, spec: ServerSpec) -> Resource:
        return Resource(scope, id, type="fake_server", config={
            "name": spec.name, "zone": spec.region, "flavor": spec.size, "image": spec.image,
            "firewall": spec.firewall.resource.attr("id"),
            "boot_script": user_data(spec.cloud_local),
        }, lifecycle={"ignore_changes": list(self.first_boot_only)})

    def volume(self, scope: Construct, *, label: str, region: str, size_gb: int,
               server_id: Ref) -> tuple[Resource, str]:
        raise NotImplementedError

    def floating_ip(self, scope: Construct, *, label: str, region: str,
                    server_id: Ref) -> tuple[Resource, Ref]:
        raise NotImplementedError

    def snapshot(self, scope: Construct, *, label: str, server: Resource,
                 description: str) -> Resource | None:
        raise NotImplementedError

    def load_balancer(self, scope: Construct, spec: LoadBalancerSpec) -> Resource:
        raise NotImplementedError

    def open_mesh(self, scope: Construct, *, id: str, label: str, server: Resource,
                  firewall: FirewallParts, port: str, sources: Sequence[str],
                  why: str, promise: str) -> None:
        raise NotImplementedError


CLOUD = FakeCloud()
