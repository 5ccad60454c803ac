"""VpsNode: one API for a closed execution node on Hetzner, Linode or Vultr.

The node gets public addresses for outbound traffic only: its firewall (its own closed
`Firewall` unless one is given) drops all inbound from the internet. It joins its private
networks, boots with the one user-data document (`edgekit.constructs.boot`), and exposes
its private address for the services that need it.

    hetzner  hcloud_server (+ hcloud_server_network per network)
    linode   linode_instance (VPC interface, metadata.user_data base64, firewall_id)
    vultr    vultr_instance (vpc_ids, firewall_group_id)

The firewall is attached when the server is created (hcloud ``firewall_ids``, linode
``firewall_id``, vultr ``firewall_group_id``): no node boots unprotected. User data is
first-boot only: every provider replaces a server when it changes, so later changes are
ignored (`FIRST_BOOT_ONLY`) and nothing a deploy changes is in it (`boot`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgekit.constructs.base import label, listed, located, validated
from edgekit.constructs.boot import boot_document, cloud_config, user_data_expression
from edgekit.constructs.catalog import CatalogError, resolve_image, resolve_region, resolve_size
from edgekit.constructs.firewall import Firewall
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.props import VpsNodeProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Local, Module, Resource, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref

FIRST_BOOT_ONLY = {"hetzner": ["user_data"], "linode": ["metadata"], "vultr": ["user_data"]}
"""The arguments holding a node's user data, per provider: all force a new server (hcloud
``user_data``: hetznercloud/terraform-provider-hcloud issues 338 and 372, "forces
replacement"; linode ``metadata``: linode/instance/schema_resource.go, ForceNew; vultr
``user_data``: vultr/resource_vultr_instance.go, ForceNew), so `lifecycle.ignore_changes`
keeps a changed document from replacing the server."""

NIXOS_ANYWHERE_MODULE = (
    "github.com/nix-community/nixos-anywhere//terraform/all-in-one?ref=1.13.0")
"""Pinned. The module brings its own hashicorp/null and hashicorp/external providers, which
`tofu init` fetches from the registry: a stack that opts in cannot be initialised offline."""


class VpsNode(Construct):
    """A closed execution node: the server, its own closed `Firewall` (unless one is given),
    its private networks and the boot document; ``provider`` is ``hetzner``, ``linode`` or
    ``vultr``, ``region``/``size`` native or portable aliases (``tokyo``, ``small``).

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PrivateNetwork, VpsNode
    >>> net = PrivateNetwork(stack, "net", provider="hetzner", region="nbg1")
    >>> node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small",
    ...                roles=["edge"], networks=[net], admin_ssh_cidrs=["203.0.113.7/32"])
    >>> node.resource.type, node.private_ip
    ('hcloud_server', '10.0.1.10')

    Other options: ``image`` (default ``debian-12``), ``firewall``, ``backups``,
    ``placement`` (the stack's placement `Variable`), ``deploy`` (the pull-deploy section
    of the boot document), ``push_deploy`` (nixos-anywhere over SSH; ADR 0005).
    """
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        provider: str,
        region: str,
        size: str,
        image: str = "debian-12",
        roles: Sequence[str] = (),
        networks: Sequence[PrivateNetwork] = (),
        firewall: Firewall | None = None,
        admin_ssh_cidrs: Sequence[str] = (),
        backups: bool = False,
        deploy: Mapping[str, Any] | None = None,
        push_deploy: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "VpsNode", VpsNodeProps, {
            "name": id, "provider": provider, "region": region, "size": size, "image": image,
            "roles": listed(self, "roles", roles),
            "admin_ssh_cidrs": listed(self, "admin_ssh_cidrs", admin_ssh_cidrs),
            "backups": backups,
            "private_network": networks[0].node.id if networks else None,
        })
        try:
            self.region = resolve_region(provider, region)
            self.size = resolve_size(provider, size)
            self.image = resolve_image(provider, image)
        except CatalogError as err:
            raise located(self, err) from err
        self.provider = self.props.provider
        self.name = id
        self._check_name()
        self.networks = self._check_networks(networks)
        self.firewall = firewall or Firewall(
            self, "firewall", provider=provider, admin_ssh_cidrs=admin_ssh_cidrs,
            private_cidrs=[n.cidr for n in self.networks])
        stack = stack_of(self)
        self.boot: dict[str, Any] = boot_document(
            stack=stack.node.id, node=id, provider=provider, roles=list(self.props.roles))
        if deploy is not None:
            self.boot["deploy"] = dict(deploy)
        self.boot_local = Local(self, "boot", value=self.boot)
        self.cloud_local = Local(self, "cloud-config",
                                 value=cloud_config(self.boot_local.logical_id,
                                                    provider if deploy is not None else None))
        self.resource = self._server()
        self.private_ip: Ref | str | None = self._join_networks()
        if push_deploy:
            self._push_deploy()
        self._names()[self.name] = self.node.path

    # -- checks -----------------------------------------------------------------------

    def _names(self) -> dict[str, str]:
        names: dict[str, str] = stack_of(self).__dict__.setdefault("_edgekit_node_names", {})
        return names

    def _check_name(self) -> None:
        other = self._names().get(self.name)
        if other is not None:
            raise ConstructError(
                f"[{self.node.path}] duplicate node name {self.name!r}: {other} already uses "
                "it; node names are hostnames and placement keys, so they must be unique "
                "in a stack")

    def _check_networks(self, networks: Sequence[PrivateNetwork]) -> list[PrivateNetwork]:
        foreign = [n for n in networks if n.provider != self.props.provider]
        if foreign or len({n.provider for n in networks}) > 1:
            listed = ", ".join(f"{n.node.path} ({n.provider})" for n in networks)
            raise ConstructError(
                f"[{self.node.path}] joins private networks of different providers: {listed}; "
                f"a {self.props.provider} node can only join {self.props.provider} networks")
        elsewhere = [n for n in networks if n.region != self.region and
                     self.props.provider != "hetzner"]
        if elsewhere:
            raise ConstructError(
                f"[{self.node.path}] network {elsewhere[0].node.path} is in "
                f"{elsewhere[0].region}, the node in {self.region}; "
                f"{self.props.provider} networks are regional")
        return list(networks)

    # -- resources ----------------------------------------------------------------------

    def _server(self) -> Resource:
        name = label(self)
        labels = {"stack": stack_of(self).node.id, "node": self.name}
        firewall_id = self.firewall.id_ref
        lifecycle = {"ignore_changes": FIRST_BOOT_ONLY[self.provider]}
        if self.provider == "hetzner":
            return Resource(self, "Resource", type="hcloud_server", config={
                "name": self.name, "server_type": self.size, "image": self.image,
                "location": self.region, "labels": labels, "backups": self.props.backups,
                "firewall_ids": [firewall_id],
                "public_net": {"ipv4_enabled": True, "ipv6_enabled": True},
                "user_data": user_data_expression(self.cloud_local.logical_id),
            }, lifecycle=lifecycle)
        if self.provider == "linode":
            interfaces: list[dict[str, Any]] = [{"purpose": "public"}]
            for network in self.networks:
                interfaces.append({"purpose": "vpc", "subnet_id": network.subnet.attr("id"),
                                   "ipv4": {"vpc": network.allocate(self.name)}})
            return Resource(self, "Resource", type="linode_instance", config={
                "label": name, "region": self.region, "type": self.size,
                "image": self.image, "tags": [f"{k}:{v}" for k, v in sorted(labels.items())],
                "backups_enabled": self.props.backups, "firewall_id": firewall_id,
                "metadata": {"user_data": user_data_expression(self.cloud_local.logical_id,
                                                               base64=True)},
                "interface": interfaces,
            }, lifecycle=lifecycle)
        return Resource(self, "Resource", type="vultr_instance", config={
            "label": name, "hostname": self.name, "region": self.region, "plan": self.size,
            "os_id": self.image, "tags": [f"{k}:{v}" for k, v in sorted(labels.items())],
            "backups": "enabled" if self.props.backups else "disabled",
            "enable_ipv6": True, "firewall_group_id": firewall_id,
            "vpc_ids": [n.id_ref for n in self.networks],
            "user_data": user_data_expression(self.cloud_local.logical_id),
        }, lifecycle=lifecycle)

    def _join_networks(self) -> Ref | str | None:
        if not self.networks:
            return None
        first = self.networks[0]
        if self.provider == "hetzner":
            for index, network in enumerate(self.networks):
                Resource(self, f"network-{index}", type="hcloud_server_network",
                         config={"server_id": self.resource.attr("id"),
                                 "subnet_id": network.subnet.attr("id"),
                                 "ip": network.allocate(self.name)})
            return first.allocate(self.name)
        if self.provider == "linode":
            return first.allocate(self.name)
        return self.resource.attr("internal_ip")

    def _push_deploy(self) -> None:
        """Opt-in push deployment with nixos-anywhere's OpenTofu module (ADR 0005).

        It installs NixOS over SSH from the machine running `tofu apply`, so SSH must be
        open to that machine: an explicit exception to the closed firewall.
        """
        if not self.props.admin_ssh_cidrs:
            raise ConstructError(
                f"[{self.node.path}] push_deploy installs NixOS over SSH from the deployer, "
                "so list the deployer's address in admin_ssh_cidrs; the default (pull) "
                "deployment opens nothing")
        public_ip = {"hetzner": "ipv4_address", "linode": "ip_address",
                     "vultr": "main_ip"}[self.provider]
        attr = f".#nixosConfigurations.{self.name}.config.system.build"
        Module(self, "nixos-anywhere", source=NIXOS_ANYWHERE_MODULE, inputs={
            "nixos_system_attr": f"{attr}.toplevel",
            "nixos_partitioner_attr": f"{attr}.diskoScript",
            "target_host": self.resource.attr(public_ip),
            "instance_id": self.resource.attr("id"),
        })

    @property
    def static_private_ip(self) -> str | None:
        """The private address when it is fixed before apply (hetzner, linode).

        Vultr assigns VPC addresses itself: then None, and the node finds its address at
        boot. The boot document must never reference the node's own attributes (a cycle).
        """
        return self.private_ip if isinstance(self.private_ip, str) else None

    @property
    def id_ref(self) -> Ref:
        return self.resource.attr("id")

    def add_secret(self, name: str, value: Any) -> None:
        """Put a secret (a reference; never a literal) into the node's boot document."""
        if isinstance(value, str) and "${" not in value:
            raise ConstructError(f"[{self.node.path}] secret {name!r} must be a reference "
                                 "to a sensitive value, not a literal string")
        self.boot["secrets"][name] = value
