"""ManagedPg: the environment's Postgres as a provider's managed database (ADR 0012).

The same interface as `PgPrimary` for the services: one ``random_password`` (or, where the
cloud generates it, the provider's password) per service role, delivered to the nodes as
sensitive boot-document secrets; the database host as the output services read
(`PG_ADDRESS_OUTPUT`); the same roles, databases and grants (`bootstrap_sql`, ADR 0004).

The nodes get the passwords of the services placed on them from the estate pattern, as
with `PgPrimary`. Access: private where the provider allows it — the database joins the
provider's VPC when a `PrivateNetwork` of that provider (and region) is given — and
otherwise an explicit allow-list of the public IPv4 addresses of exactly the nodes whose
services need Postgres. No ``0.0.0.0/0``, ever; connections use TLS (the providers
require it).

The resources are the cloud adapter's (`Cloud.managed_postgres`, for the clouds with
``has_managed_postgres``): the database, its allow-list or VPC, and per service a database
and a user where the cloud has those resources (else the bootstrap SQL makes them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgekit.clouds import CLOUDS, CloudName
from edgekit.clouds.base import ManagedRequest
from edgekit.constructs.base import label
from edgekit.constructs.facts import PostgresFact, Where, layout_of
from edgekit.constructs.mesh import public_ip_expression
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.pg_bootstrap import bootstrap_sql
from edgekit.constructs.values import PG_ADDRESS_OUTPUT, Service, checked_services
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref


def managed_providers() -> list[str]:
    """The clouds whose adapter has a managed Postgres (`Cloud.has_managed_postgres`)."""
    return [n for n, c in CLOUDS.items() if c.has_managed_postgres]

VERSIONS = (15, 16, 17)
PORT_OUTPUT = "pg_port"
ADMIN_URL_OUTPUT = "pg_admin_url"
"""Sensitive: the admin connection `edgekit pg bootstrap` applies the roles and grants with."""


class ManagedPg(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        provider: CloudName,
        region: str,
        plan: str,
        services: Mapping[str, Service],
        clients: Sequence[VpsNode] = (),
        network: PrivateNetwork | None = None,
        version: int = 16,
    ) -> None:
        super().__init__(scope, id)
        services = checked_services(self.node.path, services)
        problems = []
        if provider not in managed_providers():
            problems.append(f"provider {provider!r}: expected one of "
                            f"{', '.join(managed_providers())}")
        if version not in VERSIONS:
            problems.append(f"version {version}: expected one of {VERSIONS}")
        if network is not None and network.provider != provider:
            problems.append(f"network {network.node.path} is a {network.provider} network; "
                            f"a {provider} database can only join a {provider} VPC")
        if not plan or not region:
            problems.append("region and plan must not be empty")
        if problems:
            raise ConstructError(f"[{self.node.path}] " + "; ".join(problems))
        self.provider = provider
        self.network = network
        layout = layout_of(self)
        layout.add_services(Where(path=self.node.path), services)
        layout.postgres.append(PostgresFact(node=None, where=Where(path=self.node.path)))
        self.services = {n: s for n, s in sorted(services.items())
                         if s.needs.postgres is not None and s.pg_role is not None}
        private = [n for n in clients if network is not None and network in n.networks]
        # public IPv4 of every client outside the VPC (the cloud makes CIDRs of them if needed)
        self.client_ips = [f"${{{public_ip_expression(n)}}}" for n in clients
                           if n not in private]
        db = CLOUDS[provider].managed_postgres(self, request=ManagedRequest(
            label=label(self), region=region, plan=plan, version=version,
            roles={n: (s.pg_role, s.pg_database) for n, s in self.services.items()
                   if s.pg_role is not None and s.pg_database is not None},
            client_ips=tuple(self.client_ips), network=network))
        self.resource = db.resource
        self.allow_list = db.allow_list
        self.passwords: dict[str, Ref] = db.passwords
        self.host, self.port, self.admin_url = db.host, db.port, db.admin_url
        self.bootstrap_sql = bootstrap_sql(services)
        stack = stack_of(self)
        for service_name, service in self.services.items():
            role = service.pg_role
            Output(stack, f"pg_password_{role}", value=self.passwords[service_name],
                   sensitive=True, description=f"Postgres password of {role}.")
        Output(stack, PG_ADDRESS_OUTPUT, value=self.host,
               description="Host of the managed Postgres (private where the provider allows).")
        Output(stack, PORT_OUTPUT, value=self.port, description="Port of the managed Postgres.")
        Output(stack, ADMIN_URL_OUTPUT, value=self.admin_url, sensitive=True,
               description="Admin connection URL (edgekit pg bootstrap reads it).")
