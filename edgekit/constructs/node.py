"""VpsNode: one API for a closed execution node on any supported cloud (`edgekit.clouds`).

The node gets public addresses for outbound traffic only: its firewall (its own closed
`Firewall` unless one is given) drops all inbound from the internet. It joins its private
networks, boots with the one user-data document (`edgekit.constructs.boot`), and exposes
its private address for the services that need it. The server, how it joins its networks
and which arguments hold its user data are the cloud adapter's (`Cloud.server`,
`Cloud.join_networks`, `Cloud.first_boot_only`); the node declares the cloud's provider
block and token variable in its stack, once for all nodes (`Cloud.declare_provider`).

The firewall is attached when the server is created: no node boots unprotected. User data
is first-boot only: every cloud replaces a server when it changes, so later changes are
ignored (`Cloud.first_boot_only`) and nothing a deploy changes is in it (`boot`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgekit.clouds import CatalogError, CloudName, cloud
from edgekit.clouds.base import ServerSpec
from edgekit.constructs.base import label, listed, located, validated
from edgekit.constructs.boot import DEPLOY_KEYS, boot_document, cloud_config, deploy_section
from edgekit.constructs.facts import NodeFact, Where, layout_of
from edgekit.constructs.firewall import Firewall
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.props import VpsNodeProps
from edgekit.constructs.values import Role
from edgekit.core.construct import Construct
from edgekit.core.elements import Local, Module, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref

NIXOS_ANYWHERE_MODULE = (
    "github.com/nix-community/nixos-anywhere//terraform/all-in-one?ref=1.13.0")
"""Pinned. The module brings its own hashicorp/null and hashicorp/external providers, which
`tofu init` fetches from the registry: a stack that opts in cannot be initialised offline."""


class VpsNode(Construct):
    """A closed execution node: the server, its own closed `Firewall` (unless one is given),
    its private networks and the boot document; ``provider`` is any supported cloud
    (`edgekit.PROVIDERS`), ``region``/``size`` native or portable aliases (``singapore``,
    ``small``).

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, PrivateNetwork, VpsNode
    >>> cloud = PROVIDERS[0]  # any supported cloud: the same call works on each
    >>> net = PrivateNetwork(stack, "net", provider=cloud, region="singapore")
    >>> node = VpsNode(stack, "edge-1", provider=cloud, region="singapore", size="small",
    ...                roles=["edge"], networks=[net], admin_ssh_cidrs=["203.0.113.7/32"],
    ...                repository="github:example/estate", ref="deploy/prod")
    >>> node.boot["deploy"]["flake"]
    'github:example/estate?ref=deploy/prod#edge-1'

    A node with roles needs deploy settings (``repository`` and ``ref`` of its pull
    deployment, a complete ``deploy`` section, or ``push_deploy``): without them it would
    boot the stock image and never become its configuration, so it is refused. Other
    options: ``image`` (default ``debian-12``), ``firewall``, ``backups``, ``deploy`` (the
    pull-deploy section of the boot document, `boot.deploy_section`), ``push_deploy``
    (nixos-anywhere over SSH; ADR 0005).
    """
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        provider: CloudName,
        region: str,
        size: str,
        image: str = "debian-12",
        roles: Sequence[Role] = (),
        networks: Sequence[PrivateNetwork] = (),
        firewall: Firewall | None = None,
        admin_ssh_cidrs: Sequence[str] = (),
        backups: bool = False,
        deploy: Mapping[str, Any] | None = None,
        repository: str | None = None,
        ref: str | None = None,
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
            self.cloud = cloud(provider)
            self.region = self.cloud.catalog.region(region)
            self.size = self.cloud.catalog.size(size)
            self.image = self.cloud.catalog.image(image)
        except CatalogError as err:
            raise located(self, err) from err
        self.provider = self.props.provider
        self.name = id
        self._check_name()
        self.networks = self._check_networks(networks)
        deploy = self._deploy_settings(deploy, repository, ref, push_deploy)
        if firewall is not None and firewall.provider != self.provider:
            raise ConstructError(f"[{self.node.path}] firewall {firewall.node.path} is a "
                                 f"{firewall.provider} firewall; a {self.provider} node needs "
                                 f"one of its own cloud")
        self.firewall = firewall or Firewall(
            self, "firewall", provider=provider, admin_ssh_cidrs=admin_ssh_cidrs,
            private_cidrs=[n.cidr for n in self.networks])
        self.cloud.declare_provider(self)  # after every check: a refused node adds nothing
        stack = stack_of(self)
        self.boot: dict[str, Any] = boot_document(
            stack=stack.node.id, node=id, provider=provider, roles=list(self.props.roles))
        if deploy is not None:
            self.boot["deploy"] = dict(deploy)
        self.boot_local = Local(self, "boot", value=self.boot)
        self.cloud_local = Local(self, "cloud-config",
                                 value=cloud_config(self.boot_local.logical_id,
                                                    provider if deploy is not None else None))
        self.resource = self.cloud.server(self, "Resource", ServerSpec(
            name=self.name, label=label(self), region=self.region, size=self.size,
            image=self.image, labels={"stack": stack.node.id, "node": self.name},
            backups=self.props.backups, firewall=self.firewall.parts,
            networks=tuple(self.networks), cloud_local=self.cloud_local.logical_id))
        self.cloud.join_networks(self, self.resource, self.networks, self.name)
        self.private_ip: Ref | str | None = self.cloud.private_ip(
            self.resource, self.networks, self.name)
        if push_deploy:
            self._push_deploy()
        self._names()[self.name] = self.node.path
        layout_of(self).nodes.setdefault(self.name, NodeFact(
            name=self.name, provider=self.provider, region=self.region,
            roles=tuple(self.props.roles), networks=tuple(n.node.path for n in self.networks),
            firewall=self.firewall.resource.address, where=Where(path=self.node.path)))

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
        limit = self.cloud.max_networks
        if limit is not None and len(networks) > limit:
            raise ConstructError(
                f"[{self.node.path}] joins {len(networks)} private networks; a "
                f"{self.props.provider} server joins at most {limit}")
        elsewhere = [n for n in networks if n.region != self.region and
                     not self.cloud.networks_span_regions]
        if elsewhere:
            raise ConstructError(
                f"[{self.node.path}] network {elsewhere[0].node.path} is in "
                f"{elsewhere[0].region}, the node in {self.region}; "
                f"{self.props.provider} networks are regional")
        return list(networks)

    def _deploy_settings(self, deploy: Mapping[str, Any] | None, repository: str | None,
                         ref: str | None, push_deploy: bool) -> Mapping[str, Any] | None:
        """The node's deploy section: given whole, or made from `repository` and `ref`;
        refused when incomplete, or missing on a node with roles (it would boot empty)."""
        where = f"[{self.node.path}]"
        if repository is not None or ref is not None:
            if deploy is not None:
                raise ConstructError(f"{where} give either deploy or repository and ref, "
                                     "not both")
            if not repository or not ref:
                missing = "ref" if repository else "repository"
                raise ConstructError(
                    f"{where} pull deployment needs both repository and ref; {missing} is "
                    "missing (e.g. repository=\"github:you/estate\", ref=\"deploy/prod\")")
            return deploy_section(provider=self.provider, node=self.name,
                                  repository=repository, ref=ref)
        if deploy is not None:
            absent = [k for k in DEPLOY_KEYS if not deploy.get(k)]
            if absent:
                raise ConstructError(
                    f"{where} deploy is missing {', '.join(absent)}: the node would boot "
                    "without knowing what to become (boot.deploy_section makes a whole one)")
            return deploy
        if self.props.roles and not push_deploy:
            raise ConstructError(
                f"{where} node has roles {list(self.props.roles)} but no deploy settings: "
                "it would boot the stock image and never become its configuration; pass "
                "repository= and ref= (pull deployment), deploy=, or push_deploy=True")
        return None

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
        attr = f".#nixosConfigurations.{self.name}.config.system.build"
        Module(self, "nixos-anywhere", source=NIXOS_ANYWHERE_MODULE, inputs={
            "nixos_system_attr": f"{attr}.toplevel",
            "nixos_partitioner_attr": f"{attr}.diskoScript",
            "target_host": f"${{{self.cloud.public_ip_expression(self.resource)}}}",
            "instance_id": self.resource.attr("id"),
        })

    @property
    def static_private_ip(self) -> str | None:
        """The private address when it is fixed before apply (a string from
        `Cloud.private_ip`: edgekit chose it, `NetworkLike.allocate`).

        Where the cloud assigns VPC addresses itself: None, and the node finds its address
        at boot. The boot document must never reference the node's own attributes (a cycle).
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
