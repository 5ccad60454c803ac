"""Hetzner Cloud (``hetznercloud/hcloud``).

    server        hcloud_server (firewall_ids at creation only: ignore_remote_firewall_ids)
                  + hcloud_server_network per network
    network       hcloud_network + hcloud_network_subnet (one network zone spans locations)
    firewall      hcloud_firewall (no inbound rule drops all inbound; no outbound rule
                  allows all outbound)
    volume        hcloud_volume + hcloud_volume_attachment
    floating IP   hcloud_floating_ip + hcloud_floating_ip_assignment
    snapshot      hcloud_snapshot
    load balancer hcloud_load_balancer + _network + _service + _target per node
    mesh          an hcloud_firewall of its own + hcloud_firewall_attachment (a rule on the
                  node's firewall would read the other servers' addresses while they read
                  its firewall: a cycle)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from edgekit.clouds.base import (
    Catalog,
    Cloud,
    FirewallParts,
    LoadBalancerSpec,
    NetworkLike,
    Rule,
    ServerSpec,
    hcl_list,
    user_data,
)
from edgekit.clouds.facts import Boot, Network, NodeFacts
from edgekit.clouds.kinds import (
    HOSTNAME,
    HOSTNAME_FORM,
    Inbound,
    Kind,
    NameRule,
    PortFormat,
    Unique,
    blocks,
    text_list,
)
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref
from edgekit.core.synth import ProviderPin

CATALOG = Catalog(
    provider="hetzner", tofu_provider="hcloud",
    regions={"fsn1": "Falkenstein", "nbg1": "Nuremberg", "hel1": "Helsinki",
             "ash": "Ashburn", "hil": "Hillsboro", "sin": "Singapore"},
    region_aliases={"falkenstein": "fsn1", "nuremberg": "nbg1", "helsinki": "hel1",
                    "germany": "fsn1", "finland": "hel1", "us-east": "ash",
                    "us-west": "hil", "singapore": "sin"},
    sizes={"cx23": "2 vCPU Intel/AMD shared, 4 GB", "cx33": "4 vCPU shared, 8 GB",
           "cx43": "8 vCPU shared, 16 GB", "cx53": "16 vCPU shared, 32 GB",
           "cpx22": "2 vCPU AMD, 4 GB", "cpx32": "4 vCPU AMD, 8 GB",
           "cax11": "2 vCPU Arm, 4 GB", "cax21": "4 vCPU Arm, 8 GB"},
    size_aliases={"small": "cx23", "medium": "cx33", "large": "cx43"},
    images={"debian-12": "debian-12"},
    retired={
        **{old: f"Hetzner deprecated {old} on 2025-10-16 and stopped selling it in "
                f"January 2026; use {new}" for old, new in
           (("cx22", "cx23"), ("cx32", "cx33"), ("cx42", "cx43"), ("cx52", "cx53"),
            ("cpx11", "cpx22"), ("cpx21", "cpx22"), ("cpx31", "cpx32"))},
    },
    sources={
        "sizes": "https://docs.hetzner.cloud/changelog#2025-10-16-server-types-deprecated "
                 "(cx22..cx52 and cpx11..cpx51 deprecated); hcloud provider docs "
                 "(data source hcloud_server_type example uses cx23)",
        "regions": "https://docs.hetzner.com/cloud/general/locations/",
        "images": "hcloud_server.image: the image name, `debian-12`",
        "retired": "https://docs.hetzner.cloud/changelog#2025-10-16-server-types-deprecated",
    },
)

ZONES = {"fsn1": "eu-central", "nbg1": "eu-central", "hel1": "eu-central",
         "ash": "us-east", "hil": "us-west", "sin": "ap-southeast"}
"""Hetzner subnets live in a network zone that spans several locations."""

API = "https://docs.hetzner.cloud/reference/cloud"
PROJECT = Unique(attribute="name", scope="per Hetzner project")
PORT = re.compile(r"^(any|[0-9]{1,5}(-[0-9]{1,5})?)$")


def inbound(body: Mapping[str, Any]) -> Iterator[Inbound]:
    for i, rule in enumerate(blocks(body.get("rule"))):
        if rule.get("direction") == "in":
            port = rule.get("port")
            yield Inbound(pointer=f"$.rule[{i}].source_ips",
                          cidrs=tuple(text_list(rule.get("source_ips"))),
                          port=port if isinstance(port, str) and port != "any" else None)


KINDS: dict[str, Kind] = {
    # Server names are the bare node id (a hostname), so two environments with the same
    # node id collide in one project.
    "hcloud_server": Kind(
        role="server", unique=PROJECT, region="location", size="server_type",
        names=(NameRule(attribute=("name",), min=1, max=63, pattern=HOSTNAME,
                        expected=HOSTNAME_FORM, source=f"{API}#servers-create-a-server"),),
        replace_forcing=(("user_data",), ("name",), ("location",), ("image",)),
        mock={"ipv4_address": "203.0.113.11"},
        source="hcloud docs/resources/server.md (a user_data change replaces the server)"),
    "hcloud_firewall": Kind(
        role="firewall", unique=PROJECT, inbound=inbound,
        names=(NameRule(attribute=("name",), min=1, max=128,
                        pattern=re.compile(r"^\S(.*\S)?$"),
                        expected="at most 128 characters, no leading or trailing space",
                        source=f"{API}#firewalls-create-a-firewall (name limited to 128 "
                        "characters)"),),
        ports=(PortFormat(block="rule", field="port", pattern=PORT,
                          form="'80', '80-85' or 'any'"),),
        enums={("rule", "direction"): ("in", "out"),
               ("rule", "protocol"): ("tcp", "udp", "icmp", "gre", "esp")},
        source="hcloud docs/resources/firewall.md (port '80' or '80-85'; direction in|out)"),
    "hcloud_firewall_attachment": Kind(role="attachment"),
    "hcloud_network": Kind(role="network", unique=PROJECT),
    "hcloud_network_subnet": Kind(role="subnet"),
    "hcloud_server_network": Kind(role="attachment"),
    "hcloud_volume": Kind(role="volume", unique=PROJECT, region="location"),
    "hcloud_volume_attachment": Kind(role="attachment"),
    "hcloud_floating_ip": Kind(role="address"),
    "hcloud_floating_ip_assignment": Kind(role="attachment"),
    "hcloud_snapshot": Kind(role="snapshot"),
    "hcloud_load_balancer": Kind(role="load-balancer"),
    "hcloud_load_balancer_network": Kind(role="attachment"),
    "hcloud_load_balancer_service": Kind(role="load-balancer"),
    "hcloud_load_balancer_target": Kind(role="attachment"),
}


NODE_FACTS = NodeFacts(
    metadata_addresses=("169.254.169.254",),
    boot=Boot(grub_device="/dev/sda", root_device="/dev/sda1",
              second_disk="/dev/disk/by-id/scsi-0HC_Volume_<name>"),
    network=Network(method="dhcp"),
    sources={
        "metadata": "https://docs.hetzner.cloud/ \"Server Metadata\" (curl "
                    "http://169.254.169.254/hetzner/v1/metadata; IPv4 only)",
        "boot": "Hetzner's Debian 12 image: one virtio-scsi disk /dev/sda, root on its "
                "first partition, BIOS GRUB (nixos-infect puts GRUB on the first of "
                "/dev/vda, /dev/sda)",
        "second_disk": "https://docs.hetzner.com/cloud/volumes/getting-started/"
                       "creating-a-volume/ (/dev/disk/by-id/scsi-0HC_Volume_<id>)",
        "network": "https://docs.hetzner.com/cloud/networks/server-configuration/ (public "
                   "IPv4 and the private network's address by DHCP); IPv6 is static and "
                   "not configured: every outbound path a node uses works over IPv4",
    },
    unverified=("boot",),
)


class Hetzner(Cloud):
    name = "hetzner"
    catalog = CATALOG
    pin = ProviderPin(name="hcloud", source="hetznercloud/hcloud", version="1.68.0")
    kinds = KINDS
    mock_defaults = {"id": "1001"}
    """hcloud ids are numbers that other resources take as numbers (server_id, network_id);
    `tofu test`'s random mock strings would not convert."""
    node_facts = NODE_FACTS
    token_argument = "token"
    public_ip_attribute = "ipv4_address"
    first_boot_only = ("user_data",)
    """hcloud ``user_data`` forces replacement: hetznercloud/terraform-provider-hcloud
    issues 338 and 372."""
    networks_span_regions = True
    infect_provider = "hetznercloud"

    def network(self, scope: Construct, *, label: str, region: str,
                cidr: str) -> tuple[Resource, Resource]:
        network = Resource(scope, "Resource", type="hcloud_network",
                           config={"name": label, "ip_range": cidr})
        subnet = Resource(scope, "subnet", type="hcloud_network_subnet", config={
            "network_id": network.attr("id"), "type": "cloud",
            "network_zone": ZONES[region], "ip_range": cidr,
        })
        return network, subnet

    def firewall(self, scope: Construct, *, label: str, rules: Sequence[Rule]) -> FirewallParts:
        return FirewallParts(resource=Resource(scope, "Resource", type="hcloud_firewall", config={
            "name": label,
            "rule": [{"direction": "in", "protocol": r.protocol, "port": r.port,
                      "source_ips": list(r.cidrs), "description": r.why} for r in rules],
        }))

    def no_source_is(self, parts: FirewallParts, cidrs: Sequence[str]) -> str:
        return (f"alltrue([for r in {parts.resource.address}.rule : length(setintersection("
                f"r.source_ips == null ? [] : r.source_ips, {hcl_list(cidrs)})) == 0])")

    def private_only(self, parts: FirewallParts, private: Sequence[str]) -> str:
        return (f"alltrue([for r in {parts.resource.address}.rule : r.port == \"22\" || "
                f"length(setsubtract(r.source_ips, {hcl_list(private)})) == 0])")

    def server(self, scope: Construct, id: str, spec: ServerSpec) -> Resource:
        # firewall_ids attaches the node's firewall before the first boot; the server then
        # ignores what the API reports there (ignore_remote_firewall_ids), so the mesh
        # firewall's hcloud_firewall_attachment is that attachment's one owner. Without it
        # every plan removes the mesh firewall and the next apply puts it back (the
        # provider's hcloud_firewall_attachment docs, "Ensure a server is attached to a
        # Firewall on first boot"; internal/server/resource.go reads every attached
        # firewall into firewall_ids). The node's firewall is never replaced (no
        # hcloud_firewall argument edgekit sets forces a new one), so its id stays.
        return Resource(scope, id, type="hcloud_server", config={
            "name": spec.name, "server_type": spec.size, "image": spec.image,
            "location": spec.region, "labels": spec.labels, "backups": spec.backups,
            "firewall_ids": [spec.firewall.resource.attr("id")],
            "ignore_remote_firewall_ids": True,
            "public_net": {"ipv4_enabled": True, "ipv6_enabled": True},
            "user_data": user_data(spec.cloud_local),
        }, lifecycle={"ignore_changes": list(self.first_boot_only)})

    def join_networks(self, scope: Construct, server: Resource, networks: Sequence[NetworkLike],
                      node: str) -> None:
        for index, network in enumerate(networks):
            Resource(scope, f"network-{index}", type="hcloud_server_network",
                     config={"server_id": server.attr("id"),
                             "subnet_id": network.subnet.attr("id"),
                             "ip": network.allocate(node)})

    def volume(self, scope: Construct, *, label: str, region: str, size_gb: int,
               server_id: Ref) -> tuple[Resource, str]:
        volume = Resource(scope, "Resource", type="hcloud_volume", config={
            "name": label, "size": size_gb, "location": region, "format": "ext4",
        })
        Resource(scope, "attachment", type="hcloud_volume_attachment", config={
            "volume_id": volume.attr("id"), "server_id": server_id, "automount": False,
        })
        # /dev/disk/by-id/scsi-0HC_Volume_<volume id> (the volume is created before the
        # server, so the server's boot document may name it: no cycle).
        return volume, self.node_facts.boot.second_disk_of(str(volume.attr("id")))

    def floating_ip(self, scope: Construct, *, label: str, region: str,
                    server_id: Ref) -> tuple[Resource, Ref]:
        address = Resource(scope, "Resource", type="hcloud_floating_ip", config={
            "name": label, "type": "ipv4", "home_location": region,
        })
        Resource(scope, "assignment", type="hcloud_floating_ip_assignment", config={
            "floating_ip_id": address.attr("id"), "server_id": server_id,
        })
        return address, address.attr("ip_address")

    def snapshot(self, scope: Construct, *, label: str, server: Resource,
                 description: str) -> Resource | None:
        return Resource(scope, "Resource", type="hcloud_snapshot", config={
            "server_id": server.attr("id"), "description": description,
        })

    def load_balancer(self, scope: Construct, spec: LoadBalancerSpec) -> Resource:
        lb = Resource(scope, "Resource", type="hcloud_load_balancer", config={
            "name": spec.label, "load_balancer_type": "lb11", "location": spec.region})
        Resource(scope, "network", type="hcloud_load_balancer_network", config={
            "load_balancer_id": lb.attr("id"), "subnet_id": spec.network.subnet.attr("id")})
        Resource(scope, "service", type="hcloud_load_balancer_service", config={
            "load_balancer_id": lb.attr("id"), "protocol": "tcp",
            "listen_port": spec.listen_port, "destination_port": spec.target_port})
        for name, server_id, _ in spec.targets:
            Resource(scope, f"target-{name}", type="hcloud_load_balancer_target",
                     config={"load_balancer_id": lb.attr("id"), "type": "server",
                             "server_id": server_id, "use_private_ip": True})
        return lb

    def open_mesh(self, scope: Construct, *, id: str, label: str, server: Resource,
                  firewall: FirewallParts, port: str, sources: Sequence[str],
                  why: str, promise: str) -> None:
        cidrs = [f"${{{expr}}}/32" for expr in sources]
        peers = ", ".join(f'format("%s/32", {expr})' for expr in sources)
        own = Resource(scope, f"{id}-firewall", type="hcloud_firewall", config={
            "name": label,
            "rule": [{"direction": "in", "protocol": "udp", "port": port,
                      "source_ips": cidrs, "description": why}]})
        Resource(scope, f"{id}-attachment", type="hcloud_firewall_attachment", config={
            "firewall_id": own.attr("id"), "server_ids": [server.attr("id")]})
        own.node.add_assertion("mesh-peers-only", (
            f'alltrue([for r in {own.address}.rule : r.protocol == "udp" && '
            f'r.port == "{port}" && length(setsubtract(r.source_ips, [{peers}])) == 0])'),
            promise)


CLOUD = Hetzner()
