"""DigitalOcean (``digitalocean/digitalocean`` 2.99.1), the fourth cloud, through the seam.

    server        digitalocean_droplet (vpc_uuid; user_data ForceNew, so ignored after the
                  first boot; tagged with its firewall's tag and created after the firewall,
                  so it is protected from its first boot)
    network       digitalocean_vpc (regional; ip_range RFC 1918, /16 to /24); DigitalOcean
                  assigns the droplet's VPC address (``ipv4_address_private``), so the node
                  discovers it at boot
    firewall      digitalocean_firewall + digitalocean_tag: a cloud firewall drops every
                  inbound and outbound packet no rule accepts, so outbound is opened
                  explicitly (tcp, udp, icmp to anywhere); it applies to droplets by tag
                  (``droplet_ids`` would need the droplet first: a window unprotected)
    volume        digitalocean_volume + digitalocean_volume_attachment
    floating IP   digitalocean_reserved_ip + digitalocean_reserved_ip_assignment
    snapshot      digitalocean_droplet_snapshot: one copy of the droplet's disk taken at
                  apply, like hcloud_snapshot and vultr_snapshot (a volume snapshot would copy
                  a volume, not the node; droplet backups are a weekly/daily policy, which
                  `backups=True` on the node turns on)
    load balancer digitalocean_loadbalancer (vpc_uuid, droplet_ids, tcp forwarding rule)
    mesh          a digitalocean_firewall of its own with droplet_ids (as on Hetzner: a rule
                  on the node's firewall would read the peers' addresses while they read
                  theirs: a cycle)
    managed pg    digitalocean_database_cluster (private_network_uuid) +
                  digitalocean_database_firewall (ip_addr rules) + _db and _user per service

Sources for the apply-time rules: digitalocean 2.99.1 droplet/resource_droplet.go
(user_data, image, region ForceNew), vpc/resource_vpc.go and docs/resources/vpc.md (ip_range),
firewall/firewalls.go (protocol tcp|udp|icmp, port_range "1-65535" for all ports),
docs/resources/volume.md (name: lowercase letters, digits, '-', starts with a letter, at most
64), tag/tags.go (tags ``^[a-zA-Z0-9:\\-_]{1,255}$``), reservedip/
resource_reserved_ip_assignment.go (ip_address IsIPv4Address).
"""

from __future__ import annotations

import ipaddress
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
    tag_list,
    user_data,
)
from edgekit.clouds.facts import Boot, Network, NodeFacts
from edgekit.clouds.kinds import Inbound, Kind, NameRule, PortFormat, blocks, text_list
from edgekit.clouds.managed import ManagedDb, ManagedRequest
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref
from edgekit.core.synth import ProviderPin

CATALOG = Catalog(
    provider="digitalocean", tofu_provider="digitalocean",
    regions={"sgp1": "Singapore 1", "fra1": "Frankfurt 1", "ams3": "Amsterdam 3",
             "lon1": "London 1", "nyc3": "New York 3", "sfo3": "San Francisco 3",
             "tor1": "Toronto 1", "blr1": "Bangalore 1", "syd1": "Sydney 1"},
    region_aliases={"singapore": "sgp1", "frankfurt": "fra1", "amsterdam": "ams3",
                    "london": "lon1", "new-york": "nyc3", "san-francisco": "sfo3",
                    "toronto": "tor1", "bangalore": "blr1", "sydney": "syd1"},
    sizes={"s-1vcpu-1gb": "1 vCPU, 1 GB", "s-1vcpu-2gb": "1 vCPU, 2 GB",
           "s-2vcpu-4gb": "2 vCPU, 4 GB", "s-4vcpu-8gb": "4 vCPU, 8 GB"},
    size_aliases={"small": "s-1vcpu-2gb", "medium": "s-2vcpu-4gb", "large": "s-4vcpu-8gb"},
    images={"debian-12": "debian-12-x64"},
    sources={
        "regions": "DigitalOcean API GET /v2/regions (slugs; VPCs and cloud-init user data "
                   "in every region: https://docs.digitalocean.com/platform/"
                   "regional-availability/); sgp1 is ADR 0001's Singapore option",
        "sizes": "DigitalOcean API GET /v2/sizes (Basic shared-CPU s-* slugs)",
        "images": "https://docs.digitalocean.com/products/droplets/details/image-deprecation/ "
                  "(Debian 12 x64; slug debian-<major>-x64). Confirm with `doctl compute "
                  "image list-distribution --public` before the first apply: a third-party "
                  "list of October 2026 shows debian-13-x64 only",
        "retired": "none",
    },
)

ANYWHERE = ["0.0.0.0/0", "::/0"]
RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


NAME = re.compile(r"^[A-Za-z0-9.-]+$")
VOLUME = re.compile(r"^[a-z][a-z0-9-]*$")
TAG = re.compile(r"^[a-zA-Z0-9:\-_]+$")
PORT = re.compile(r"^(all|[0-9]{1,5}(-[0-9]{1,5})?)$")
API = "https://docs.digitalocean.com/reference/api/digitalocean/#tag"


def inbound(body: Mapping[str, Any]) -> Iterator[Inbound]:
    for i, rule in enumerate(blocks(body.get("inbound_rule"))):
        port = rule.get("port_range")
        yield Inbound(pointer=f"$.inbound_rule[{i}].source_addresses",
                      cidrs=tuple(text_list(rule.get("source_addresses"))),
                      port=port if isinstance(port, str) and port != "all" else None)


def database_inbound(body: Mapping[str, Any]) -> Iterator[Inbound]:
    """The managed database's allow-list: ``ip_addr`` rules admit an address or range."""
    for i, rule in enumerate(blocks(body.get("rule"))):
        if rule.get("type") == "ip_addr":
            yield Inbound(pointer=f"$.rule[{i}].value", cidrs=tuple(text_list(rule.get("value"))))


def named(max: int, pattern: re.Pattern[str], expected: str, source: str) -> tuple[NameRule]:
    return (NameRule(attribute=("name",), min=1, max=max, pattern=pattern, expected=expected,
                     source=source),)


KINDS: dict[str, Kind] = {
    "digitalocean_droplet": Kind(
        role="server", region="region", size="size",
        names=named(255, NAME, "hostname characters: letters, digits, '.', '-'",
                    f"{API}/Droplets/operation/droplets_create"),
        replace_forcing=(("user_data",), ("region",), ("image",)),
        mock={"ipv4_address": "203.0.113.41"},
        source="digitalocean 2.99.1 digitalocean/droplet/resource_droplet.go (user_data "
        "ForceNew)"),
    "digitalocean_vpc": Kind(
        role="network", region="region",
        names=named(255, NAME, "alphanumeric characters, dashes and periods",
                    "digitalocean 2.99.1 docs/resources/vpc.md")),
    "digitalocean_volume": Kind(
        role="volume", region="region",
        names=named(64, VOLUME, "lowercase letters, digits and '-', starting with a letter",
                    "digitalocean 2.99.1 docs/resources/volume.md")),
    "digitalocean_volume_attachment": Kind(role="attachment"),
    "digitalocean_firewall": Kind(
        role="firewall", inbound=inbound,
        names=named(255, NAME, "alphanumeric characters, dashes and periods",
                    f"{API}/Firewalls/operation/firewalls_create"),
        ports=(PortFormat(block="inbound_rule", field="port_range", pattern=PORT,
                          form="'22', '1-65535' or 'all'"),),
        source="digitalocean 2.99.1 docs/resources/firewall.md (port_range)"),
    "digitalocean_tag": Kind(
        role="tag", names=named(255, TAG, "letters, digits, ':', '-' and '_'",
                                "digitalocean 2.99.1 digitalocean/tag/tags.go (tagNameRe)")),
    # reserved IP assignments validate ip_address as IPv4 (IsIPv4Address)
    "digitalocean_reserved_ip": Kind(role="address", mock={"ip_address": "203.0.113.42"}),
    "digitalocean_reserved_ip_assignment": Kind(role="attachment"),
    "digitalocean_droplet_snapshot": Kind(role="snapshot"),
    "digitalocean_loadbalancer": Kind(role="load-balancer"),
    "digitalocean_database_cluster": Kind(role="database"),
    "digitalocean_database_firewall": Kind(role="firewall", inbound=database_inbound),
    "digitalocean_database_db": Kind(role="database"),
    "digitalocean_database_user": Kind(role="database"),
    "digitalocean_spaces_bucket": Kind(role="bucket"),
}


NODE_FACTS = NodeFacts(
    metadata_addresses=("169.254.169.254",),
    boot=Boot(grub_device="/dev/vda", root_device="/dev/vda1",
              second_disk="/dev/disk/by-id/scsi-0DO_Volume_<name>"),
    network=Network(method="metadata",
                    metadata_url="http://169.254.169.254/metadata/v1.json",
                    nameservers=("1.1.1.1", "1.0.0.1", "2606:4700:4700::1111")),
    sources={
        "metadata": "https://docs.digitalocean.com/reference/api/metadata/ "
                    "(http://169.254.169.254/metadata/v1.json)",
        "boot": "nixos-infect, written for droplets: GRUB on /dev/vda, root /dev/vda1",
        "second_disk": "https://docs.digitalocean.com/products/volumes/how-to/mount/ "
                       "(/dev/disk/by-id/scsi-0DO_Volume_<name>)",
        "network": "no DHCP on droplets: nixos-infect PR 26 (\"DigitalOcean uses static "
                   "IPs\") and PROVIDER=digitalocean setting doNetConf; addresses, netmasks "
                   "and gateways of interfaces.public/private in the metadata (its API "
                   "reference); resolvers: Cloudflare's 1.1.1.1 "
                   "(https://developers.cloudflare.com/1.1.1.1/ip-addresses/)",
    },
    unverified=("boot",),
)


class DigitalOcean(Cloud):
    name = "digitalocean"
    catalog = CATALOG
    pin = ProviderPin(name="digitalocean", source="digitalocean/digitalocean", version="2.99.1")
    kinds = KINDS
    mock_defaults = {"id": "1003"}
    """droplet ids are numbers where other resources take them (droplet_id, droplet_ids);
    its other ids are strings, which "1003" also is."""
    node_facts = NODE_FACTS
    token_argument = "token"
    public_ip_attribute = "ipv4_address"
    first_boot_only = ("user_data",)
    """digitalocean ``user_data``: droplet/resource_droplet.go, ForceNew."""
    max_networks = 1
    """A droplet has one ``vpc_uuid``."""
    infect_provider = "digitalocean"
    """nixos-infect: ``[ "$PROVIDER" = "digitalocean" ] && doNetConf=y`` ("digitalocean
    requires detailed network config to be generated"): it writes the droplet's static
    addresses and routes into networking.nix (read in elitak/nixos-infect, not at the pinned
    commit); its grubdev is the first of /dev/vda, /dev/sda, as in nix/base.nix."""
    has_managed_postgres = True

    def private_ip(self, server: Resource, networks: Sequence[NetworkLike],
                   node: str) -> Ref | str | None:
        return server.attr("ipv4_address_private") if networks else None

    def check_network(self, cidr: str) -> str | None:
        network = ipaddress.ip_network(cidr)
        if not 16 <= network.prefixlen <= 24:
            return (f"a DigitalOcean VPC range must be /16 to /24, got /{network.prefixlen} "
                    "(docs/resources/vpc.md)")
        if network.version != 4 or not any(network.subnet_of(r) for r in RFC1918):  # type: ignore[arg-type]
            return f"a DigitalOcean VPC range must be RFC 1918 private, got {cidr}"
        return None

    def network(self, scope: Construct, *, label: str, region: str,
                cidr: str) -> tuple[Resource, Resource]:
        vpc = Resource(scope, "Resource", type="digitalocean_vpc",
                       config={"name": label, "region": region, "ip_range": cidr})
        return vpc, vpc

    def firewall(self, scope: Construct, *, label: str, rules: Sequence[Rule]) -> FirewallParts:
        tag = Resource(scope, "tag", type="digitalocean_tag", config={"name": label})
        firewall = Resource(scope, "Resource", type="digitalocean_firewall", config={
            "name": label, "tags": [tag.attr("name")],
            "inbound_rule": [{"protocol": r.protocol, "port_range": r.port,
                              "source_addresses": list(r.cidrs)} for r in rules],
            "outbound_rule": [
                {"protocol": "tcp", "port_range": "1-65535", "destination_addresses": ANYWHERE},
                {"protocol": "udp", "port_range": "1-65535", "destination_addresses": ANYWHERE},
                {"protocol": "icmp", "destination_addresses": ANYWHERE},
            ],
        })
        return FirewallParts(resource=firewall, tag=tag)

    def no_source_is(self, parts: FirewallParts, cidrs: Sequence[str]) -> str:
        return (f"alltrue([for r in {parts.resource.address}.inbound_rule : length("
                f"setintersection(r.source_addresses == null ? [] : r.source_addresses, "
                f"{hcl_list(cidrs)})) == 0])")

    def private_only(self, parts: FirewallParts, private: Sequence[str]) -> str:
        return (f"alltrue([for r in {parts.resource.address}.inbound_rule : "
                f"r.port_range == \"22\" || length(setsubtract(r.source_addresses == null ? "
                f"[] : r.source_addresses, {hcl_list(private)})) == 0])")

    def server(self, scope: Construct, id: str, spec: ServerSpec) -> Resource:
        tags: list[Any] = tag_list(spec.labels)
        if spec.firewall.tag is not None:
            tags.append(spec.firewall.tag.attr("name"))
        config: dict[str, Any] = {
            "name": spec.name, "region": spec.region, "size": spec.size, "image": spec.image,
            "tags": tags, "backups": spec.backups, "ipv6": True,
            "user_data": user_data(spec.cloud_local),
        }
        if spec.networks:
            config["vpc_uuid"] = spec.networks[0].resource.attr("id")
        return Resource(scope, id, type="digitalocean_droplet", config=config,
                        depends_on=[spec.firewall.resource],
                        lifecycle={"ignore_changes": list(self.first_boot_only)})

    def volume(self, scope: Construct, *, label: str, region: str, size_gb: int,
               server_id: Ref) -> tuple[Resource, str]:
        volume = Resource(scope, "Resource", type="digitalocean_volume", config={
            "name": label, "region": region, "size": size_gb,
        })
        Resource(scope, "attachment", type="digitalocean_volume_attachment", config={
            "volume_id": volume.attr("id"), "droplet_id": server_id,
        })
        # DigitalOcean names the attached volume by its name: known before the droplet boots.
        return volume, self.node_facts.boot.second_disk_of(label)

    def floating_ip(self, scope: Construct, *, label: str, region: str,
                    server_id: Ref) -> tuple[Resource, Ref]:
        address = Resource(scope, "Resource", type="digitalocean_reserved_ip",
                           config={"region": region})
        Resource(scope, "assignment", type="digitalocean_reserved_ip_assignment", config={
            "ip_address": address.attr("ip_address"), "droplet_id": server_id,
        })
        return address, address.attr("ip_address")

    def snapshot(self, scope: Construct, *, label: str, server: Resource,
                 description: str) -> Resource | None:
        return Resource(scope, "Resource", type="digitalocean_droplet_snapshot", config={
            "droplet_id": server.attr("id"), "name": label,
        })

    def load_balancer(self, scope: Construct, spec: LoadBalancerSpec) -> Resource:
        return Resource(scope, "Resource", type="digitalocean_loadbalancer", config={
            "name": spec.label, "region": spec.region,
            "vpc_uuid": spec.network.resource.attr("id"),
            "forwarding_rule": [{"entry_protocol": "tcp", "entry_port": spec.listen_port,
                                 "target_protocol": "tcp", "target_port": spec.target_port}],
            "healthcheck": {"protocol": "tcp", "port": spec.target_port},
            "droplet_ids": [server_id for _, server_id, _ in spec.targets]})

    def open_mesh(self, scope: Construct, *, id: str, label: str, server: Resource,
                  firewall: FirewallParts, port: str, sources: Sequence[str],
                  why: str, promise: str) -> None:
        cidrs = [f"${{{expr}}}/32" for expr in sources]
        peers = ", ".join(f'format("%s/32", {expr})' for expr in sources)
        own = Resource(scope, f"{id}-firewall", type="digitalocean_firewall", config={
            "name": label, "droplet_ids": [server.attr("id")],
            "inbound_rule": [{"protocol": "udp", "port_range": port,
                              "source_addresses": cidrs}]})
        own.node.add_assertion("mesh-peers-only", (
            f'alltrue([for r in {own.address}.inbound_rule : r.protocol == "udp" && '
            f'r.port_range == "{port}" && length(setsubtract(r.source_addresses, '
            f"[{peers}])) == 0])"), promise)

    def managed_postgres(self, scope: Construct, request: ManagedRequest) -> ManagedDb:
        config: dict[str, object] = {
            "name": request.label, "engine": "pg", "version": str(request.version),
            "size": request.plan, "region": request.region, "node_count": 1,
        }
        if request.network is not None:
            config["private_network_uuid"] = request.network.resource.attr("id")
        db = Resource(scope, "Resource", type="digitalocean_database_cluster", config=config)
        allow = list(request.client_ips)  # addresses, as in the provider's docs
        if allow:
            Resource(scope, "firewall", type="digitalocean_database_firewall", config={
                "cluster_id": db.attr("id"),
                "rule": [{"type": "ip_addr", "value": ip} for ip in allow]})
        passwords: dict[str, Ref] = {}
        for service, (role, database) in request.roles.items():
            Resource(scope, f"db-{service}", type="digitalocean_database_db", config={
                "cluster_id": db.attr("id"), "name": database})
            user = Resource(scope, f"user-{service}", type="digitalocean_database_user",
                            config={"cluster_id": db.attr("id"), "name": role})
            passwords[service] = user.attr("password")  # generated by the provider
        private = request.network is not None
        return ManagedDb(resource=db, host=db.attr("private_host" if private else "host"),
                         port=db.attr("port"), passwords=passwords, allow_list=allow,
                         admin_url=db.attr("private_uri" if private else "uri"))


CLOUD = DigitalOcean()
