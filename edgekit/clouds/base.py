"""The seam between the L2 constructs and the clouds (ADR 0018).

A `Cloud` turns what a construct means (a closed server, a private network, a firewall
with these rules, a volume on that server, ...) into the resources of one provider. The
constructs in `edgekit.constructs` only call this interface; each cloud is one module of
this package with its `Catalog` (regions, sizes, images, aliases, each fact with its
source). Adding a cloud is one module, its catalogue and its pin (`edgekit.providers.pins`).

Adapters import only `edgekit.core`: they take the construct to put resources under (a
`Construct` scope) and plain values, and return the resources (or small records of them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from edgekit.clouds.facts import NodeFacts
from edgekit.clouds.kinds import Kind
from edgekit.core.construct import Construct
from edgekit.core.elements import Provider, Resource, Variable, stack_of
from edgekit.core.refs import Ref
from edgekit.core.synth import ProviderPin


class CatalogError(ValueError):
    pass


@attrs.frozen(kw_only=True)
class Catalog:
    provider: str
    tofu_provider: str
    regions: dict[str, str]
    """Native region → a human name (only regions with a VPC and first-boot user data)."""
    region_aliases: dict[str, str]
    sizes: dict[str, str]
    """Native size → a human description (only sizes that can be ordered now)."""
    size_aliases: dict[str, str]
    images: dict[str, str | int]
    """Portable image name → the provider's image value."""
    sources: dict[str, str]
    """Which document each table (regions, sizes, images, retired) was checked against."""
    retired: dict[str, str] = attrs.field(factory=dict)
    """A name that used to be valid → why not any more, and what to use instead."""

    def region(self, value: str) -> str:
        return self._resolve("region", value, self.regions, self.region_aliases)

    def size(self, value: str) -> str:
        return self._resolve("size", value, self.sizes, self.size_aliases)

    def image(self, value: str) -> str | int:
        if value in self.images:
            return self.images[value]
        raise CatalogError(f"unknown image {value!r} for {self.provider}; expected one of: "
                           f"{', '.join(sorted(self.images))}")

    def _resolve(self, what: str, value: str, native: dict[str, str],
                 aliases: dict[str, str]) -> str:
        if value in native:
            return value
        if value in aliases:
            return aliases[value]
        if value in self.retired:
            raise CatalogError(f"{self.provider} {what} {value!r} cannot be used: "
                               f"{self.retired[value]}")
        choices = ", ".join([*sorted(native),
                             *(f"{a} (={t})" for a, t in sorted(aliases.items()))])
        raise CatalogError(f"unknown {what} {value!r} for {self.provider}; expected one of: "
                           f"{choices}")


class NetworkLike(Protocol):
    """What a server needs from a private network it joins (`PrivateNetwork` is one)."""

    resource: Resource
    subnet: Resource
    cidr: str

    def allocate(self, node: str) -> str: ...


@attrs.define(kw_only=True)
class FirewallParts:
    """A cloud's firewall: the resource servers attach to (``id``), any per-rule resources,
    and for clouds that attach by tag the tag servers carry."""

    resource: Resource
    rules: list[Resource] = attrs.field(factory=list)
    tag: Resource | None = None


@attrs.frozen(kw_only=True)
class Rule:
    """One inbound exception of a closed firewall."""

    protocol: str
    port: str
    """One port or a range ``low-high``."""
    why: str
    cidrs: tuple[str, ...]


@attrs.frozen(kw_only=True)
class ServerSpec:
    name: str
    """The node's name: its hostname."""
    label: str
    """The provider-side name (stack and path, dash-joined)."""
    region: str
    size: str
    image: str | int
    labels: dict[str, str]
    backups: bool
    firewall: FirewallParts
    networks: tuple[NetworkLike, ...]
    cloud_local: str
    """The `local` holding the cloud-init document (see `user_data`)."""


@attrs.frozen(kw_only=True)
class LoadBalancerSpec:
    label: str
    region: str
    listen_port: int
    target_port: int
    network: NetworkLike
    targets: tuple[tuple[str, Ref, Ref | str | None], ...]
    """(node name, server id, private address) per target."""


@attrs.frozen(kw_only=True)
class ManagedRequest:
    label: str
    region: str
    plan: str
    version: int
    roles: dict[str, tuple[str, str]]
    """service -> (role, database), for the services that need Postgres."""
    client_ips: tuple[str, ...]
    """Public IPv4 expressions (``${...}``) of the clients outside the VPC."""
    network: NetworkLike | None


@attrs.frozen(kw_only=True)
class ManagedDb:
    resource: Resource
    host: Ref
    port: Ref
    passwords: dict[str, Ref]
    """service -> its role's password."""
    admin_url: Ref | str
    allow_list: list[str]


def hcl_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def user_data(cloud_local: str, *, base64: bool = False) -> str:
    """``#cloud-config`` followed by the JSON document (JSON is valid YAML)."""
    text = f'"#cloud-config\\n${{jsonencode(local.{cloud_local})}}"'
    return f"${{base64encode({text})}}" if base64 else \
        f"#cloud-config\n${{jsonencode(local.{cloud_local})}}"


def tag_list(labels: dict[str, str]) -> list[str]:
    return [f"{k}:{v}" for k, v in sorted(labels.items())]


class Cloud(ABC):
    """One cloud behind the seam. Class attributes are its facts; methods make resources."""

    name: str
    """edgekit's name of the cloud (CUE ``#Provider``)."""
    catalog: Catalog
    pin: ProviderPin
    """The exact provider every stack using the cloud requires (``tools/versions.env``
    builds the same version; a test keeps them equal)."""
    kinds: Mapping[str, Kind]
    """Every resource type of the provider that edgekit emits or knows: what the check
    rules read about it (`edgekit.clouds.kinds`, ADR 0030)."""
    mock_defaults: Mapping[str, object] = {}
    """Defaults of every mocked resource of the provider in the generated ``tofu test``
    (e.g. ids that other resources take as numbers)."""
    token_argument: str
    """The provider block's argument that takes the API token."""
    public_ip_attribute: str
    """The server attribute holding its public IPv4 (see `public_ip_expression`)."""
    first_boot_only: tuple[str, ...]
    """The server arguments holding user data: all force a new server, so
    ``lifecycle.ignore_changes`` keeps a changed document from replacing it."""
    networks_span_regions: bool = False
    """True when one private network reaches servers in several regions."""
    max_networks: int | None = None
    """How many private networks one server may join; None: no limit edgekit knows of."""
    infect_provider: str | None = None
    """nixos-infect's ``PROVIDER`` name for this cloud, None for its generic path."""
    infect_boot: str | None = None
    """A NixOS line nixos-infect's first generation needs to boot here, if any."""
    node_facts: NodeFacts
    """What the converted node needs to know: metadata addresses, disk and boot layout,
    networking (sourced; ``nix/clouds.json``)."""

    @property
    def tofu_provider(self) -> str:
        return self.catalog.tofu_provider

    @property
    def token_variable(self) -> str:
        return f"{self.tofu_provider}_token"

    # -- the provider block ----------------------------------------------------------------

    def declare_provider(self, scope: Construct) -> Provider:
        """The provider block and its sensitive token variable (``TF_VAR_<name>_token``),
        once per stack: a second call returns the first block."""
        stack = stack_of(scope)
        found = stack.node.try_find_child(self.tofu_provider)
        if isinstance(found, Provider):
            return found
        token = Variable(stack, self.token_variable, type="string", sensitive=True,
                         description=f"{self.name} API token (TF_VAR_{self.token_variable}).")
        return Provider(stack, self.tofu_provider, type=self.tofu_provider,
                        config={self.token_argument: token.ref()})

    # -- what every construct asks ---------------------------------------------------------

    def public_ip_expression(self, server: Resource) -> str:
        """The expression (without ``${}``) of a server's public IPv4."""
        return server.attr(self.public_ip_attribute).expression

    def private_ip(self, server: Resource, networks: Sequence[NetworkLike],
                   node: str) -> Ref | str | None:
        """The server's address in its first network (fixed, or the cloud's attribute)."""
        return networks[0].allocate(node) if networks else None

    def check_network(self, cidr: str) -> str | None:
        """Why `cidr` cannot be a private network here, or None."""
        return None

    @abstractmethod
    def network(self, scope: Construct, *, label: str, region: str,
                cidr: str) -> tuple[Resource, Resource]:
        """The network and the subnet servers join (the same resource if there is none)."""

    @abstractmethod
    def firewall(self, scope: Construct, *, label: str, rules: Sequence[Rule]) -> FirewallParts:
        """A firewall that admits only `rules` inbound and lets everything out."""

    @abstractmethod
    def no_source_is(self, parts: FirewallParts, cidrs: Sequence[str]) -> str:
        """An OpenTofu condition: no inbound rule of the firewall admits any of `cidrs`."""

    @abstractmethod
    def private_only(self, parts: FirewallParts, private: Sequence[str]) -> str:
        """An OpenTofu condition: every inbound rule but SSH admits only `private`."""

    @abstractmethod
    def server(self, scope: Construct, id: str, spec: ServerSpec) -> Resource:
        """The server, firewall attached at creation, user data ignored after it."""

    def join_networks(self, scope: Construct, server: Resource,
                      networks: Sequence[NetworkLike], node: str) -> None:
        """Resources that put the server into its networks, when the server cannot say it
        itself; by default none (the server's own arguments join them)."""
        return None

    @abstractmethod
    def volume(self, scope: Construct, *, label: str, region: str, size_gb: int,
               server_id: Ref) -> tuple[Resource, str]:
        """A volume attached to the server, and the stable device path the node sees it at."""

    @abstractmethod
    def floating_ip(self, scope: Construct, *, label: str, region: str,
                    server_id: Ref) -> tuple[Resource, Ref]:
        """A reserved IPv4 assigned to the server, and its address."""

    @abstractmethod
    def snapshot(self, scope: Construct, *, label: str, server: Resource,
                 description: str) -> Resource | None:
        """A copy of the server's disk, or None when the cloud keeps backups instead
        (then the server's configuration is changed to turn them on)."""

    @abstractmethod
    def load_balancer(self, scope: Construct, spec: LoadBalancerSpec) -> Resource:
        """The cloud's load balancer over the targets' private addresses."""

    @abstractmethod
    def open_mesh(self, scope: Construct, *, id: str, label: str, server: Resource,
                  firewall: FirewallParts, port: str, sources: Sequence[str],
                  why: str, promise: str) -> None:
        """Open UDP `port` to `sources` (public IPv4 expressions) only, and add the
        ``mesh-peers-only`` assertion saying so."""

    def managed_postgres(self, scope: Construct, request: ManagedRequest) -> ManagedDb:
        """The cloud's managed Postgres (`ManagedPg`, ADR 0012), where it has one."""
        raise NotImplementedError(f"{self.name} has no managed Postgres in edgekit")

    has_managed_postgres: bool = False
