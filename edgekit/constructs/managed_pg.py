"""ManagedPg: the environment's Postgres as a provider's managed database (ADR 0012).

The same interface as `PgPrimary` for the services: one ``random_password`` (or, on
DigitalOcean, the provider-generated password) per service role, delivered to the nodes as
sensitive boot-document secrets; the database host as the output services read
(`PG_ADDRESS_OUTPUT`); the same roles, databases and grants (`bootstrap_sql`, ADR 0004).

The nodes get the passwords of the services placed on them from the estate pattern, as
with `PgPrimary`. Access: private where the provider allows it — the database joins the
provider's VPC when a `PrivateNetwork` of that provider (and region) is given — and
otherwise an explicit allow-list of the public IPv4 addresses of exactly the nodes whose
services need Postgres. No ``0.0.0.0/0``, ever; connections use TLS (the providers
require it).

    linode        linode_database_postgresql_v2 (allow_list, private_network {vpc, subnet});
                  roles and databases by the bootstrap SQL (the provider has no user resource)
    vultr         vultr_database (engine pg, trusted_ips, vpc_id) + vultr_database_db and
                  vultr_database_user per service
    digitalocean  digitalocean_database_cluster (private_network_uuid) +
                  digitalocean_database_firewall (ip_addr rules) + _db and _user per service
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from edgekit.constructs.base import label
from edgekit.constructs.mesh import public_ip_expression
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.pg_bootstrap import bootstrap_sql
from edgekit.constructs.values import PG_ADDRESS_OUTPUT, Service, checked_services
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, Resource, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref

ManagedProvider = Literal["linode", "vultr", "digitalocean"]
MANAGED_PROVIDERS: tuple[ManagedProvider, ...] = ("linode", "vultr", "digitalocean")
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
        provider: str,
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
        if provider not in MANAGED_PROVIDERS:
            problems.append(f"provider {provider!r}: expected one of "
                            f"{', '.join(MANAGED_PROVIDERS)}")
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
        self.services = {n: s for n, s in sorted(services.items())
                         if s.needs.postgres is not None and s.pg_role is not None}
        private = [n for n in clients if network is not None and network in n.networks]
        # Linode takes CIDRs; Vultr's trusted_ips and DigitalOcean's ip_addr rules take
        # addresses (their docs' examples): one public IPv4 per client outside the VPC.
        self.client_ips = [f"${{{public_ip_expression(n)}}}" for n in clients
                           if n not in private]
        self.allow_list = ([f"{ip}/32" for ip in self.client_ips] if provider == "linode"
                           else list(self.client_ips))
        self.passwords: dict[str, Ref] = {}
        self.admin_url: Ref | str = ""
        name = label(self)
        if provider == "linode":
            self.resource = self._linode(name, region, plan, version)
        elif provider == "vultr":
            self.resource = self._vultr(name, region, plan, version)
        else:
            self.resource = self._digitalocean(name, region, plan, version)
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

    def _random_passwords(self) -> None:
        for service_name in self.services:
            password = Resource(self, f"password-{service_name}", type="random_password",
                                config={"length": 32, "special": False})
            self.passwords[service_name] = password.attr("result")

    def _linode(self, name: str, region: str, plan: str, version: int) -> Resource:
        self._random_passwords()  # roles made by the bootstrap SQL (no user resource)
        config: dict[str, object] = {
            "label": name, "region": region, "type": plan, "engine_id": f"postgresql/{version}",
            "cluster_size": 1, "allow_list": self.allow_list,
        }
        if self.network is not None:
            config["private_network"] = {"vpc_id": self.network.resource.attr("id"),
                                         "subnet_id": self.network.subnet.attr("id"),
                                         "public_access": bool(self.allow_list)}
        db = Resource(self, "Resource", type="linode_database_postgresql_v2", config=config)
        self.host, self.port = db.attr("host_primary"), db.attr("port")
        self.admin_url = _url(db.attr("root_username").expression,
                              db.attr("root_password").expression,
                              db.attr("host_primary").expression, db.attr("port").expression,
                              '"postgres"')
        return db

    def _vultr(self, name: str, region: str, plan: str, version: int) -> Resource:
        self._random_passwords()
        config: dict[str, object] = {
            "label": name, "region": region, "plan": plan, "database_engine": "pg",
            "database_engine_version": str(version), "trusted_ips": self.allow_list,
        }
        if self.network is not None:
            config["vpc_id"] = self.network.id_ref
        db = Resource(self, "Resource", type="vultr_database", config=config)
        for service_name, service in self.services.items():
            Resource(self, f"db-{service_name}", type="vultr_database_db", config={
                "database_id": db.attr("id"), "name": service.pg_database})
            Resource(self, f"user-{service_name}", type="vultr_database_user", config={
                "database_id": db.attr("id"), "username": service.pg_role,
                "password": self.passwords[service_name]})
        self.host, self.port = db.attr("host"), db.attr("port")
        self.admin_url = _url(db.attr("user").expression, db.attr("password").expression,
                              db.attr("host").expression, db.attr("port").expression,
                              db.attr("dbname").expression)
        return db

    def _digitalocean(self, name: str, region: str, plan: str, version: int) -> Resource:
        config: dict[str, object] = {
            "name": name, "engine": "pg", "version": str(version), "size": plan,
            "region": region, "node_count": 1,
        }
        if self.network is not None:
            config["private_network_uuid"] = self.network.id_ref
        db = Resource(self, "Resource", type="digitalocean_database_cluster", config=config)
        if self.allow_list:
            Resource(self, "firewall", type="digitalocean_database_firewall", config={
                "cluster_id": db.attr("id"),
                "rule": [{"type": "ip_addr", "value": cidr} for cidr in self.allow_list]})
        for service_name, service in self.services.items():
            Resource(self, f"db-{service_name}", type="digitalocean_database_db", config={
                "cluster_id": db.attr("id"), "name": service.pg_database})
            user = Resource(self, f"user-{service_name}", type="digitalocean_database_user",
                            config={"cluster_id": db.attr("id"), "name": service.pg_role})
            self.passwords[service_name] = user.attr("password")
        private = self.network is not None
        self.host = db.attr("private_host" if private else "host")
        self.port = db.attr("port")
        self.admin_url = db.attr("private_uri" if private else "uri")
        return db


def _url(user: str, password: str, host: str, port: str, database: str) -> str:
    """A libpq URL from OpenTofu expressions, credentials URL-encoded, TLS required."""
    return (f"postgresql://${{urlencode({user})}}:${{urlencode({password})}}@${{{host}}}:"
            f"${{{port}}}/${{{database}}}?sslmode=require")
