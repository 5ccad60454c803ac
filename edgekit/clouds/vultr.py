"""Vultr (``vultr/vultr``).

    server        vultr_instance (vpc_ids, firewall_group_id at creation); Vultr assigns
                  the VPC address (``internal_ip``), so the node discovers it at boot
    network       vultr_vpc (regional; no separate subnet)
    firewall      vultr_firewall_group + one vultr_firewall_rule per CIDR (a group drops
                  what no rule accepts)
    volume        vultr_block_storage (attached_to_instance)
    floating IP   vultr_reserved_ip (instance_id)
    snapshot      vultr_snapshot
    load balancer vultr_load_balancer (attached_instances, vpc)
    mesh          vultr_firewall_rule(s) in the node's firewall group
    managed pg    vultr_database (engine pg, trusted_ips, vpc_id) + vultr_database_db and
                  vultr_database_user per service
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
from edgekit.clouds.kinds import (
    HOSTNAME,
    Inbound,
    Kind,
    NameRule,
    PortFormat,
    reference_target,
)
from edgekit.clouds.managed import ManagedDb, ManagedRequest, admin_url, random_passwords
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref
from edgekit.core.synth import ProviderPin

CATALOG = Catalog(
    provider="vultr", tofu_provider="vultr",
    regions={"nrt": "Tokyo", "itm": "Osaka", "sgp": "Singapore", "fra": "Frankfurt",
             "ewr": "New Jersey", "lax": "Los Angeles"},
    region_aliases={"tokyo": "nrt", "osaka": "itm", "singapore": "sgp",
                    "frankfurt": "fra", "new-jersey": "ewr"},
    sizes={"vc2-1c-2gb": "1 vCPU, 2 GB", "vc2-2c-4gb": "2 vCPU, 4 GB",
           "vc2-4c-8gb": "4 vCPU, 8 GB"},
    size_aliases={"small": "vc2-1c-2gb", "medium": "vc2-2c-4gb", "large": "vc2-4c-8gb"},
    images={"debian-12": 2136},  # Vultr os_id of Debian 12 x64
    sources={
        "regions": "Vultr API GET /v2/regions",
        "sizes": "Vultr API GET /v2/plans (type vc2)",
        "images": "Vultr API GET /v2/os: 2136 = Debian 12 x64 (bookworm)",
        "retired": "none",
    },
)


PORT = re.compile(r"^[0-9]{1,5}(:[0-9]{1,5})?$")
INSTANCE = "vultr 2.32.0 vultr/resource_vultr_instance.go"
RULE = "vultr 2.32.0 vultr/resource_vultr_firewall_rule.go"


def inbound(body: Mapping[str, Any]) -> Iterator[Inbound]:
    """A vultr_firewall_rule is one inbound rule of its group (a group drops the rest)."""
    subnet, size, port = body.get("subnet"), body.get("subnet_size"), body.get("port")
    if isinstance(subnet, str) and isinstance(size, int):
        yield Inbound(pointer="$.subnet", cidrs=(f"{subnet}/{size}",),
                      port=port.replace(":", "-") if isinstance(port, str) else None,
                      firewall=reference_target(body.get("firewall_group_id")))


KINDS: dict[str, Kind] = {
    "vultr_instance": Kind(
        role="server", region="region", size="plan",
        names=(NameRule(attribute=("hostname",), min=1, max=63, pattern=HOSTNAME,
                        expected="a hostname (RFC 1123)",
                        source=f"{INSTANCE} (hostname, ForceNew)"),),
        replace_forcing=(("user_data",), ("hostname",), ("region",)),
        enums={("backups",): ("enabled", "disabled")},
        mock={"main_ip": "203.0.113.31"},
        source=f"{INSTANCE} (user_data ForceNew; backups StringInSlice)"),
    "vultr_firewall_group": Kind(role="firewall"),
    "vultr_firewall_rule": Kind(
        role="firewall-rule", inbound=inbound,
        ports=(PortFormat(block=None, field="port", pattern=PORT, form="'22' or '1:65535'"),),
        enums={("ip_type",): ("v4", "v6"),
               ("protocol",): ("icmp", "tcp", "udp", "gre", "ah", "esp")},
        source=f"{RULE} (port '22' or '1:65535'; StringInSlice)"),
    "vultr_vpc": Kind(role="network", region="region"),
    "vultr_block_storage": Kind(role="volume", region="region"),
    "vultr_reserved_ip": Kind(role="address"),
    "vultr_snapshot": Kind(role="snapshot"),
    "vultr_load_balancer": Kind(role="load-balancer"),
    "vultr_database": Kind(role="database"),
    "vultr_database_db": Kind(role="database"),
    "vultr_database_user": Kind(role="database"),
}


NODE_FACTS = NodeFacts(
    metadata_addresses=("169.254.169.254",),
    boot=Boot(grub_device="/dev/vda", root_device="/dev/vda1",
              second_disk="/dev/disk/by-id/virtio-*"),
    network=Network(method="dhcp"),
    sources={
        "metadata": "cloud-init doc/rtd/reference/datasources/vultr.rst (\"served over HTTP "
                    "from the address 169.254.169.254\")",
        "boot": "Vultr's Debian 12 image: virtio-blk /dev/vda, root on its first partition, "
                "BIOS GRUB",
        "second_disk": "vultr 2.32.0 website/docs/r/block_storage.html.markdown and "
                       "https://docs.vultr.com/reference/terraform/data-sources/block_storage: "
                       "mount_id, \"An ID associated with the instance, when mounted the ID "
                       "can be found in /dev/disk/by-id prefixed with virtio\". mount_id is "
                       "Computed (vultr/resource_vultr_block_storage.go) and "
                       "attached_to_instance takes the instance's id, while the instance's "
                       "user_data is written at creation (ForceNew), so the boot document "
                       "cannot name virtio-<mount_id> (vultr_instance.block_devices, which "
                       "could, is for VX1 plans only: website/docs/r/instance.html.markdown). "
                       "It carries the pattern and the node takes the one disk matching it "
                       "that is not its root disk. No Vultr document found names /dev/vdb",
        "network": "cloud-init's Vultr datasource (public interface dhcp4 from the metadata)",
    },
    unverified=("boot", "network: the VPC interface (eth1) gets its address by DHCP"),
)


class Vultr(Cloud):
    name = "vultr"
    catalog = CATALOG
    pin = ProviderPin(name="vultr", source="vultr/vultr", version="2.32.0")
    kinds = KINDS
    node_facts = NODE_FACTS
    token_argument = "api_key"
    public_ip_attribute = "main_ip"
    first_boot_only = ("user_data",)
    """vultr ``user_data``: vultr/resource_vultr_instance.go, ForceNew."""
    infect_provider = "vultr"
    has_managed_postgres = True

    def private_ip(self, server: Resource, networks: Sequence[NetworkLike],
                   node: str) -> Ref | str | None:
        return server.attr("internal_ip") if networks else None

    def network(self, scope: Construct, *, label: str, region: str,
                cidr: str) -> tuple[Resource, Resource]:
        network = ipaddress.ip_network(cidr)
        vpc = Resource(scope, "Resource", type="vultr_vpc", config={
            "region": region, "description": label,
            "v4_subnet": str(network.network_address), "v4_subnet_mask": network.prefixlen,
        })
        return vpc, vpc

    def firewall(self, scope: Construct, *, label: str, rules: Sequence[Rule]) -> FirewallParts:
        group = Resource(scope, "Resource", type="vultr_firewall_group",
                         config={"description": label})
        parts = FirewallParts(resource=group)
        for i, rule in enumerate(rules):
            for j, cidr in enumerate(rule.cidrs):
                net = ipaddress.ip_network(cidr)
                parts.rules.append(Resource(
                    scope, f"rule-{i}-{j}", type="vultr_firewall_rule", config={
                        "firewall_group_id": group.attr("id"),
                        "protocol": rule.protocol, "port": rule.port.replace("-", ":"),
                        "ip_type": "v6" if net.version == 6 else "v4",
                        "subnet": str(net.network_address), "subnet_size": net.prefixlen,
                        "notes": rule.why,
                    }))
        return parts

    def no_source_is(self, parts: FirewallParts, cidrs: Sequence[str]) -> str:
        rules = ", ".join(r.address for r in parts.rules)
        return (f"alltrue([for r in [{rules}] : !contains({hcl_list(cidrs)}, "
                f"format(\"%s/%d\", r.subnet, r.subnet_size))])")

    def private_only(self, parts: FirewallParts, private: Sequence[str]) -> str:
        rules = ", ".join(r.address for r in parts.rules)
        return (f"alltrue([for r in [{rules}] : r.port == \"22\" || "
                f"contains({hcl_list(private)}, format(\"%s/%d\", r.subnet, r.subnet_size))])")

    def server(self, scope: Construct, id: str, spec: ServerSpec) -> Resource:
        return Resource(scope, id, type="vultr_instance", config={
            "label": spec.label, "hostname": spec.name, "region": spec.region,
            "plan": spec.size, "os_id": spec.image, "tags": tag_list(spec.labels),
            "backups": "enabled" if spec.backups else "disabled",
            "enable_ipv6": True, "firewall_group_id": spec.firewall.resource.attr("id"),
            "vpc_ids": [n.resource.attr("id") for n in spec.networks],
            "user_data": user_data(spec.cloud_local),
        }, lifecycle={"ignore_changes": list(self.first_boot_only)})

    def volume(self, scope: Construct, *, label: str, region: str, size_gb: int,
               server_id: Ref) -> tuple[Resource, str]:
        volume = Resource(scope, "Resource", type="vultr_block_storage", config={
            "label": label, "region": region, "size_gb": size_gb,
            "attached_to_instance": server_id, "live": True,
        })
        # The volume's /dev/disk/by-id/virtio-<mount_id> cannot be named: the volume
        # attaches to the instance, so it comes after the user data. The node resolves the
        # pattern to the one matching disk that is not its root disk (NODE_FACTS).
        return volume, self.node_facts.boot.second_disk

    def floating_ip(self, scope: Construct, *, label: str, region: str,
                    server_id: Ref) -> tuple[Resource, Ref]:
        address = Resource(scope, "Resource", type="vultr_reserved_ip", config={
            "label": label, "region": region, "ip_type": "v4", "instance_id": server_id,
        })
        return address, address.attr("subnet")

    def snapshot(self, scope: Construct, *, label: str, server: Resource,
                 description: str) -> Resource | None:
        return Resource(scope, "Resource", type="vultr_snapshot", config={
            "instance_id": server.attr("id"), "description": description,
        })

    def load_balancer(self, scope: Construct, spec: LoadBalancerSpec) -> Resource:
        return Resource(scope, "Resource", type="vultr_load_balancer", config={
            "label": spec.label, "region": spec.region,
            "forwarding_rules": [{"frontend_protocol": "tcp", "frontend_port": spec.listen_port,
                                  "backend_protocol": "tcp", "backend_port": spec.target_port}],
            "attached_instances": [server_id for _, server_id, _ in spec.targets],
            "vpc": spec.network.resource.attr("id")})

    def open_mesh(self, scope: Construct, *, id: str, label: str, server: Resource,
                  firewall: FirewallParts, port: str, sources: Sequence[str],
                  why: str, promise: str) -> None:
        rules = [Resource(scope, f"{id}-rule-{index}", type="vultr_firewall_rule", config={
            "firewall_group_id": firewall.resource.attr("id"), "protocol": "udp",
            "port": port, "ip_type": "v4", "subnet": f"${{{expr}}}",
            "subnet_size": 32, "notes": why}) for index, expr in enumerate(sources)]
        addresses = ", ".join(r.address for r in rules)
        rules[0].node.add_assertion("mesh-peers-only", (
            f'alltrue([for r in [{addresses}] : r.protocol == "udp" && r.port == "{port}" '
            f"&& r.subnet_size == 32 && contains([{', '.join(sources)}], r.subnet)])"),
            promise)

    def managed_postgres(self, scope: Construct, request: ManagedRequest) -> ManagedDb:
        passwords = random_passwords(scope, request)
        allow = list(request.client_ips)  # addresses, as in the provider's docs
        config: dict[str, object] = {
            "label": request.label, "region": request.region, "plan": request.plan,
            "database_engine": "pg", "database_engine_version": str(request.version),
            "trusted_ips": allow,
        }
        if request.network is not None:
            config["vpc_id"] = request.network.resource.attr("id")
        db = Resource(scope, "Resource", type="vultr_database", config=config)
        for service, (role, database) in request.roles.items():
            Resource(scope, f"db-{service}", type="vultr_database_db", config={
                "database_id": db.attr("id"), "name": database})
            Resource(scope, f"user-{service}", type="vultr_database_user", config={
                "database_id": db.attr("id"), "username": role,
                "password": passwords[service]})
        return ManagedDb(
            resource=db, host=db.attr("host"), port=db.attr("port"), passwords=passwords,
            allow_list=allow,
            admin_url=admin_url(db.attr("user").expression, db.attr("password").expression,
                                db.attr("host").expression, db.attr("port").expression,
                                db.attr("dbname").expression))


CLOUD = Vultr()
