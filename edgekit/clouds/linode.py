"""Linode (Akamai Cloud, ``linode/linode``).

    server        linode_instance (VPC interface with a fixed address, metadata.user_data
                  base64, firewall_id at creation)
    network       linode_vpc + linode_vpc_subnet (regional)
    firewall      linode_firewall, inbound_policy DROP, outbound_policy ACCEPT
    volume        linode_volume (linode_id)
    floating IP   linode_networking_ip with reserved = true
    snapshot      none: Linode has no snapshot resource, so a snapshot turns on the node's
                  managed backups (daily, weekly and bi-weekly copies kept by Linode,
                  restorable to a new instance) rather than one copy made at apply time. A
                  disk image (linode_image) would be a single copy of one disk, taken only
                  when applied.
    load balancer linode_nodebalancer + _config + _node per node
    mesh          an inbound rule on the node's linode_firewall
    managed pg    linode_database_postgresql_v2 (allow_list CIDRs, private_network
                  {vpc, subnet}); roles and databases by the bootstrap SQL (no user resource)
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
    Rule,
    ServerSpec,
    hcl_list,
    tag_list,
    user_data,
)
from edgekit.clouds.facts import Boot, Network, NodeFacts
from edgekit.clouds.kinds import (
    Inbound,
    Kind,
    NameRule,
    PortFormat,
    Unique,
    blocks,
    text_list,
)
from edgekit.clouds.managed import ManagedDb, ManagedRequest, admin_url, random_passwords
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref
from edgekit.core.synth import ProviderPin

CATALOG = Catalog(
    provider="linode", tofu_provider="linode",
    regions={"jp-tyo-3": "Tokyo 3", "jp-osa": "Osaka", "sg-sin-2": "Singapore 2",
             "de-fra-2": "Frankfurt 2", "us-iad": "Washington, DC",
             "us-ord": "Chicago"},
    region_aliases={"tokyo": "jp-tyo-3", "osaka": "jp-osa", "singapore": "sg-sin-2",
                    "frankfurt": "de-fra-2", "washington": "us-iad",
                    "chicago": "us-ord"},
    sizes={"g6-nanode-1": "1 vCPU, 1 GB", "g6-standard-1": "1 vCPU, 2 GB",
           "g6-standard-2": "2 vCPU, 4 GB", "g6-standard-4": "4 vCPU, 8 GB"},
    size_aliases={"small": "g6-standard-1", "medium": "g6-standard-2",
                  "large": "g6-standard-4"},
    images={"debian-12": "linode/debian12"},
    retired={
        old: f"{old} is a legacy Linode region ({name}) without the Metadata service "
             f"edgekit's first boot needs (cloud-init user data) and without VPCs; "
             f"use {new}"
        for old, name, new in (("ap-northeast", "Tokyo 2", "jp-tyo-3 (tokyo)"),
                               ("ap-south", "Singapore", "sg-sin-2 (singapore)"),
                               ("eu-central", "Frankfurt", "de-fra-2 (frankfurt)"),
                               ("us-east", "Newark", "us-iad"),
                               ("us-west", "Fremont", "us-ord"))
    },
    sources={
        "regions": "Linode API GET /v4/regions `capabilities` (VPCs, Metadata) as listed "
                   "by https://techdocs.akamai.com/cloud-computing/docs/"
                   "overview-of-the-metadata-service (availability) and "
                   "https://techdocs.akamai.com/cloud-computing/docs/vpc (availability)",
        "sizes": "https://techdocs.akamai.com/cloud-computing/docs/shared-cpu-compute-"
                 "instances",
        "images": "linode/debian12: Metadata-compatible (cloud-init) Debian 12 image",
        "retired": "Linode regions API: legacy regions lack the Metadata capability",
    },
)


LABEL = re.compile(r"^[A-Za-z0-9](?!.*(--|__|\.\.))[A-Za-z0-9._-]*[A-Za-z0-9]$")
LABEL_FORM = ("letters, digits, '-', '_', '.', starting and ending with a letter or digit, "
              "no '--', '__' or '..'")
LETTERS_DIGITS_DASHES = re.compile(r"^[A-Za-z0-9-]+$")
PORTS = re.compile(r"^[0-9]{1,5}(-[0-9]{1,5})?(, ?[0-9]{1,5}(-[0-9]{1,5})?)*$")
ACCOUNT = Unique(attribute="label", scope="per Linode account")
FIREWALL_SOURCE = "linode 3.13.0 linode/firewall/framework_schema_resource.go"


def inbound(body: Mapping[str, Any]) -> Iterator[Inbound]:
    if body.get("inbound_policy") == "ACCEPT":
        yield Inbound(pointer="$.inbound_policy", cidrs=("0.0.0.0/0",))
    for i, rule in enumerate(blocks(body.get("inbound"))):
        if rule.get("action") == "ACCEPT":
            port = rule.get("ports")
            yield Inbound(pointer=f"$.inbound[{i}]",
                          cidrs=(*text_list(rule.get("ipv4")), *text_list(rule.get("ipv6"))),
                          port=port if isinstance(port, str) else None)


def rule_problems(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """What linode_firewall's validators refuse at apply: a rule label outside 3-32
    characters, an empty ipv4/ipv6 list (FIREWALL_SOURCE: LengthBetween(3, 32),
    SizeAtLeast(1))."""
    for direction in ("inbound", "outbound"):
        for i, rule in enumerate(blocks(body.get(direction))):
            label = rule.get("label")
            if isinstance(label, str) and "${" not in label and not 3 <= len(label) <= 32:
                yield (f"$.{direction}[{i}].label", f"rule label {label!r} is {len(label)} "
                       "characters; expected 3-32")
            for family in ("ipv4", "ipv6"):
                if rule.get(family) == []:
                    yield (f"$.{direction}[{i}].{family}", f"{family} is an empty list; the "
                           f"provider wants at least one address (or no {family} at all)")


POLICY = ("ACCEPT", "DROP")
PROTOCOLS = ("TCP", "UDP", "ICMP", "IPENCAP")
KINDS: dict[str, Kind] = {
    "linode_instance": Kind(
        role="server", unique=ACCOUNT, region="region", size="type",
        names=(NameRule(attribute=("label",), min=3, max=50, pattern=LABEL, expected=LABEL_FORM,
                        source="linode 3.13.0 linode/instance/schema_resource.go "
                        "(StringLenBetween(3, 50)); https://techdocs.akamai.com/linode-api/"
                        "reference/post-linode-instance"),),
        replace_forcing=(("metadata", "user_data"), ("region",)),
        mock={"ipv4": ["203.0.113.21"]},
        source="linode 3.13.0 linode/instance/schema_resource.go (metadata.user_data "
        "ForceNew)"),
    "linode_firewall": Kind(
        role="firewall", unique=ACCOUNT, inbound=inbound, checks=(rule_problems,),
        names=(NameRule(attribute=("label",), min=3, max=32, pattern=LABEL, expected=LABEL_FORM,
                        source=f"{FIREWALL_SOURCE} (LengthBetween(3, 32))"),),
        ports=(PortFormat(block="inbound", field="ports", pattern=PORTS,
                          form="'22', '80, 443' or '1000-2000'"),),
        enums={("inbound_policy",): POLICY, ("outbound_policy",): POLICY,
               ("inbound", "action"): POLICY, ("outbound", "action"): POLICY,
               ("inbound", "protocol"): PROTOCOLS, ("outbound", "protocol"): PROTOCOLS},
        source=f"{FIREWALL_SOURCE} (OneOf); docs/resources/firewall.md (ports)"),
    "linode_vpc": Kind(
        role="network", unique=ACCOUNT, region="region",
        names=(NameRule(attribute=("label",), min=1, max=64, pattern=LETTERS_DIGITS_DASHES,
                        expected="ASCII letters, digits and dashes",
                        source="linode 3.13.0 docs/resources/vpc.md"),)),
    "linode_vpc_subnet": Kind(
        role="subnet",
        names=(NameRule(attribute=("label",), min=1, max=64, pattern=LETTERS_DIGITS_DASHES,
                        expected="ASCII letters, digits and dashes",
                        source="linode 3.13.0 docs/resources/vpc_subnet.md"),)),
    "linode_volume": Kind(role="volume"),
    "linode_networking_ip": Kind(role="address"),
    "linode_nodebalancer": Kind(role="load-balancer"),
    "linode_nodebalancer_config": Kind(role="load-balancer"),
    "linode_nodebalancer_node": Kind(role="attachment"),
    "linode_database_postgresql_v2": Kind(role="database"),
    "linode_object_storage_bucket": Kind(role="bucket"),
}


def firewall_rule(rule: Rule) -> dict[str, Any]:
    """One ``inbound`` block of a ``linode_firewall``. The provider's validators (run by
    ``tofu validate``) want a 3-32 character label and non-empty ``ipv4``/``ipv6`` lists
    when given, so an address family without CIDRs is left out."""
    body: dict[str, Any] = {
        "label": f"{rule.why.replace(' ', '-')}-{rule.port}",
        "action": "ACCEPT", "protocol": rule.protocol.upper(), "ports": rule.port,
    }
    for family, cidrs in (("ipv4", [c for c in rule.cidrs if ":" not in c]),
                          ("ipv6", [c for c in rule.cidrs if ":" in c])):
        if cidrs:
            body[family] = cidrs
    return body


NODE_FACTS = NodeFacts(
    metadata_addresses=("169.254.169.254", "fd00:a9fe:a9fe::1", "fe80::a9fe:a9fe"),
    boot=Boot(grub_device="nodev", root_device="/dev/sda", force_install=True,
              kernel_params=("console=ttyS0,19200n8",),
              second_disk="/dev/disk/by-id/scsi-0Linode_Volume_<name>"),
    network=Network(method="dhcp"),
    sources={
        "metadata": "https://techdocs.akamai.com/cloud-computing/docs/metadata-service-api "
                    "(IPv4 169.254.169.254; IPv6 fd00:a9fe:a9fe::1, fe80::a9fe:a9fe)",
        "boot": "linode/docs guides/tools-reference/custom-kernels-distros/"
                "install-nixos-on-linode: the \"GRUB 2\" kernel of the configuration "
                "profile runs on the host and reads /boot/grub/grub.cfg from the disk, which "
                "has no partition table (root /dev/sda): grub device nodev, forceInstall, "
                "console=ttyS0,19200n8 for LISH; that a Linode created from an image gets "
                "a configuration profile with kernel \"linode/grub2\": linodego 1.69.0 "
                "test/integration/fixtures, recorded API responses: "
                "TestNodeBalancerNode_Create_InVPC.yaml (POST /v4beta/linode/instances with "
                "image linode/ubuntu22.04, then GET …/configs: \"kernel\": \"linode/grub2\") "
                "and TestVLANs_GetIPAMAddress.yaml (image linode/debian9, the same); that "
                "GRUB 2 is Linode's default boot option: linode/docs docs/guides (slug "
                "dirty-frag-mitigation, published 2026-05-14, "
                "https://www.linode.com/docs/guides/dirty-frag-mitigation/), in its words: "
                "If you are using \"GRUB 2\" (default since August 2018), your Linode will "
                "boot with the kernel in the OS disk image",
        "second_disk": "linode 3.13.0 docs/resources/volume.md: filesystem_path is "
                       "\"/dev/disk/by-id/scsi-0Linode_Volume_\" + the volume label",
        "network": "the same guide: networking.interfaces.eth0.useDHCP with predictable "
                   "interface names off (Network Helper does nothing on NixOS)",
    },
    unverified=("boot: kernel linode/grub2 recorded for linode/ubuntu22.04 and "
                "linode/debian9 and documented as the default since August 2018; no "
                "recorded linode/debian12 profile",
                "network: the VPC interface (eth1) gets its address by DHCP"),
)


class Linode(Cloud):
    name = "linode"
    catalog = CATALOG
    pin = ProviderPin(name="linode", source="linode/linode", version="3.13.0")
    kinds = KINDS
    mock_defaults = {"id": "1002"}
    """linode ids are numbers too (vpc_id, firewall_id, linode_id take numbers)."""
    node_facts = NODE_FACTS
    token_argument = "token"
    public_ip_attribute = "ipv4"
    """`ipv4` is the set of the instance's IPv4 addresses (`ip_address` is deprecated); with
    a VPC interface the VPC address is not in it, so its one element is the public one."""
    first_boot_only = ("metadata",)
    """linode ``metadata``: linode/instance/schema_resource.go, ForceNew."""
    infect_provider = None
    # Linode disks are raw filesystems without a partition table, booted by the config
    # profile's "GRUB 2" from /boot/grub/grub.cfg: install no boot sector (nix/base.nix
    # says the same for the node).
    infect_boot = 'boot.loader.grub.device = lib.mkForce "nodev";'
    has_managed_postgres = True

    def public_ip_expression(self, server: Resource) -> str:
        return f"tolist({server.attr(self.public_ip_attribute).expression})[0]"

    def network(self, scope: Construct, *, label: str, region: str,
                cidr: str) -> tuple[Resource, Resource]:
        vpc = Resource(scope, "Resource", type="linode_vpc",
                       config={"label": label, "region": region})
        subnet = Resource(scope, "subnet", type="linode_vpc_subnet", config={
            "vpc_id": vpc.attr("id"), "label": f"{label}-subnet", "ipv4": cidr,
        })
        return vpc, subnet

    def firewall(self, scope: Construct, *, label: str, rules: Sequence[Rule]) -> FirewallParts:
        return FirewallParts(resource=Resource(scope, "Resource", type="linode_firewall", config={
            "label": label, "inbound_policy": "DROP", "outbound_policy": "ACCEPT",
            "inbound": [firewall_rule(r) for r in rules],
        }))

    def no_source_is(self, parts: FirewallParts, cidrs: Sequence[str]) -> str:
        address = parts.resource.address
        return (f'{address}.inbound_policy == "DROP" && alltrue([for r in '
                f"{address}.inbound : length(setintersection(concat(r.ipv4 == null ? [] "
                f": r.ipv4, r.ipv6 == null ? [] : r.ipv6), {hcl_list(cidrs)})) == 0])")

    def private_only(self, parts: FirewallParts, private: Sequence[str]) -> str:
        return (f"alltrue([for r in {parts.resource.address}.inbound : r.ports == \"22\" || "
                f"length(setsubtract(concat(r.ipv4 == null ? [] : r.ipv4, "
                f"r.ipv6 == null ? [] : r.ipv6), {hcl_list(private)})) == 0])")

    def server(self, scope: Construct, id: str, spec: ServerSpec) -> Resource:
        interfaces: list[dict[str, Any]] = [{"purpose": "public"}]
        for network in spec.networks:
            interfaces.append({"purpose": "vpc", "subnet_id": network.subnet.attr("id"),
                               "ipv4": {"vpc": network.allocate(spec.name)}})
        return Resource(scope, id, type="linode_instance", config={
            "label": spec.label, "region": spec.region, "type": spec.size,
            "image": spec.image, "tags": tag_list(spec.labels),
            "backups_enabled": spec.backups, "firewall_id": spec.firewall.resource.attr("id"),
            "metadata": {"user_data": user_data(spec.cloud_local, base64=True)},
            "interface": interfaces,
        }, lifecycle={"ignore_changes": list(self.first_boot_only)})

    def volume(self, scope: Construct, *, label: str, region: str, size_gb: int,
               server_id: Ref) -> tuple[Resource, str]:
        volume = Resource(scope, "Resource", type="linode_volume", config={
            "label": label[:32], "region": region, "size": size_gb, "linode_id": server_id,
        })
        return volume, self.node_facts.boot.second_disk_of(label[:32])

    def floating_ip(self, scope: Construct, *, label: str, region: str,
                    server_id: Ref) -> tuple[Resource, Ref]:
        address = Resource(scope, "Resource", type="linode_networking_ip", config={
            "type": "ipv4", "public": True, "reserved": True, "region": region,
            "linode_id": server_id,
        })
        return address, address.attr("address")

    def snapshot(self, scope: Construct, *, label: str, server: Resource,
                 description: str) -> Resource | None:
        server.config["backups_enabled"] = True  # managed backups instead (module doc)
        return None

    def load_balancer(self, scope: Construct, spec: LoadBalancerSpec) -> Resource:
        lb = Resource(scope, "Resource", type="linode_nodebalancer", config={
            "label": spec.label[:32], "region": spec.region})
        config = Resource(scope, "config", type="linode_nodebalancer_config", config={
            "nodebalancer_id": lb.attr("id"), "port": spec.listen_port, "protocol": "tcp"})
        for name, _, private_ip in spec.targets:
            Resource(scope, f"target-{name}", type="linode_nodebalancer_node",
                     config={"nodebalancer_id": lb.attr("id"),
                             "config_id": config.attr("id"), "label": name,
                             "address": f"{private_ip}:{spec.target_port}"})
        return lb

    def open_mesh(self, scope: Construct, *, id: str, label: str, server: Resource,
                  firewall: FirewallParts, port: str, sources: Sequence[str],
                  why: str, promise: str) -> None:
        resource = firewall.resource
        cidrs = [f"${{{expr}}}/32" for expr in sources]
        peers = ", ".join(f'format("%s/32", {expr})' for expr in sources)
        resource.config.setdefault("inbound", []).append(
            {"label": "wireguard-mesh", "action": "ACCEPT", "protocol": "UDP",
             "ports": port, "ipv4": cidrs})
        owner = resource.node.scope or resource  # the Firewall construct: its promise
        owner.node.add_assertion("mesh-peers-only", (
            f'alltrue([for r in {resource.address}.inbound : r.label != "wireguard-mesh" '
            f'|| (r.protocol == "UDP" && r.ports == "{port}" && length(setsubtract('
            f"r.ipv4 == null ? [] : r.ipv4, [{peers}])) == 0 && "
            "length(r.ipv6 == null ? [] : r.ipv6) == 0)])"), promise)

    def managed_postgres(self, scope: Construct, request: ManagedRequest) -> ManagedDb:
        passwords = random_passwords(scope, request)  # roles made by the bootstrap SQL
        allow = [f"{ip}/32" for ip in request.client_ips]
        config: dict[str, object] = {
            "label": request.label, "region": request.region, "type": request.plan,
            "engine_id": f"postgresql/{request.version}", "cluster_size": 1,
            "allow_list": allow,
        }
        if request.network is not None:
            config["private_network"] = {"vpc_id": request.network.resource.attr("id"),
                                         "subnet_id": request.network.subnet.attr("id"),
                                         "public_access": bool(allow)}
        db = Resource(scope, "Resource", type="linode_database_postgresql_v2", config=config)
        return ManagedDb(
            resource=db, host=db.attr("host_primary"), port=db.attr("port"),
            passwords=passwords, allow_list=allow,
            admin_url=admin_url(db.attr("root_username").expression,
                                db.attr("root_password").expression,
                                db.attr("host_primary").expression,
                                db.attr("port").expression, '"postgres"'))


CLOUD = Linode()
