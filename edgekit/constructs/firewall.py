"""Firewall: closed by default. No inbound from the internet at all; outbound open.

The only inbound exceptions are admin SSH from explicit CIDRs and traffic between nodes
of the private networks (optionally only some ports). Asking for a public port is not
possible through this construct, by design.

The resources are the cloud adapter's (`edgekit.clouds`, `Cloud.firewall`), and so are the
OpenTofu conditions of its promises (`Cloud.no_source_is`, `Cloud.private_only`).
"""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.clouds import CatalogError, CloudName, cloud
from edgekit.clouds.base import Rule
from edgekit.constructs.base import check_cidrs, label, listed, located, validated
from edgekit.constructs.props import FirewallProps
from edgekit.core.construct import Construct
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref


class Firewall(Construct):
    """A firewall that drops all inbound traffic from the internet; only admin SSH from the
    CIDRs listed and traffic between private networks get through. `VpsNode` makes one for
    each node unless given one.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import Firewall
    >>> from edgekit import PROVIDERS
    >>> for cloud in PROVIDERS:  # the same call on every supported cloud
    ...     fw = Firewall(stack, f"fw-{cloud}", provider=cloud,
    ...                   admin_ssh_cidrs=["203.0.113.7/32"], private_cidrs=["10.0.0.0/16"],
    ...                   private_ports=[5432])
    >>> [a.name for a in fw.node.assertions]
    ['firewall-closed']
    """
    def __init__(self, scope: Construct, id: str, *, provider: CloudName,
                 admin_ssh_cidrs: Sequence[str] = (), private_cidrs: Sequence[str] = (),
                 private_ports: Sequence[int] = (), allow_from_anywhere: bool = False,
                 reason: str | None = None) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "Firewall", FirewallProps, {
            "name": id, "provider": provider,
            "admin_ssh_cidrs": listed(self, "admin_ssh_cidrs", admin_ssh_cidrs),
            "private_cidrs": listed(self, "private_cidrs", private_cidrs),
            "private_ports": listed(self, "private_ports", private_ports),
        })
        check_cidrs(self, "admin_ssh_cidrs", self.props.admin_ssh_cidrs)
        check_cidrs(self, "private_cidrs", self.props.private_cidrs)
        if allow_from_anywhere:
            if not reason or not reason.strip():
                raise ConstructError(f"[{self.node.path}] allow_from_anywhere=True needs a "
                                     "reason (it is printed with every check and synth)")
            # an explicit, visible exception to rule EK101 (no inbound from the internet)
            self.node.suppress("EK101", reason=reason)
        elif reason is not None:
            raise ConstructError(f"[{self.node.path}] reason is only for "
                                 "allow_from_anywhere=True")
        self.provider = self.props.provider
        try:
            self.cloud = cloud(self.provider)
        except CatalogError as err:
            raise located(self, err) from err
        self.parts = self.cloud.firewall(self, label=label(self), rules=self._rules())
        self.resource = self.parts.resource
        if not allow_from_anywhere:  # else: the explicit, suppressed exception to EK101
            self.node.add_assertion(
                "firewall-closed", self._no_source_is(["0.0.0.0/0", "::/0"]),
                "no inbound rule admits the whole internet (0.0.0.0/0 or ::/0)")

    def promise_private_only(self, name: str, message: str) -> None:
        """Add the assertion that every inbound rule but admin SSH (port 22) admits only
        this firewall's private networks (e.g. for the Postgres node)."""
        self.node.add_assertion(
            name, self.cloud.private_only(self.parts, self.props.private_cidrs), message)

    def _no_source_is(self, cidrs: list[str]) -> str:
        """An OpenTofu condition: no inbound rule of this firewall admits any of `cidrs`."""
        return self.cloud.no_source_is(self.parts, cidrs)

    def _rules(self) -> list[Rule]:
        rules: list[Rule] = []
        if self.props.admin_ssh_cidrs:
            rules.append(Rule(protocol="tcp", port="22", why="admin ssh",
                              cidrs=tuple(self.props.admin_ssh_cidrs)))
        if self.props.private_cidrs:
            ports = [str(p) for p in self.props.private_ports] or ["1-65535"]
            for port in ports:
                rules.append(Rule(protocol="tcp", port=port, why="private network",
                                  cidrs=tuple(self.props.private_cidrs)))
        return rules

    @property
    def id_ref(self) -> Ref:
        return self.resource.attr("id")

