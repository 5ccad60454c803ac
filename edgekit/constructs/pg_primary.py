"""PgPrimary: the one writable Postgres, on a VpsNode of any provider.

It adds to its node: a data volume (formatted once with the label `DATA_LABEL` and mounted
by label on /var/lib/postgresql, where NixOS keeps the data directory), a generated password
per service role (``random_password``; it leaves the stack only as a sensitive output and
reaches the node inside its boot document, never as plain text in the JSON), and the
bootstrap SQL (ADR 0004) in the node's boot document. Postgres listens on the node's
private address only; the node's firewall admits nothing from the internet, and asking
for a public Postgres is an error. No provider snapshots: one taken at creation copies a
node that is still converting to NixOS; the backups are continuous (pgBackRest to R2).
"""

from __future__ import annotations

from collections.abc import Mapping

from edgekit.constructs.base import validated
from edgekit.constructs.node import VpsNode
from edgekit.constructs.pg_bootstrap import bootstrap_sql
from edgekit.constructs.props import PgPrimaryProps
from edgekit.constructs.storage import Volume
from edgekit.constructs.values import PG_ADDRESS_OUTPUT, PG_CIDR_OUTPUT, Service, checked_services
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, Resource, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref
from edgekit.pg.major import PG_MAJOR

PG_PORT = 5432
DATA_LABEL = "edgekit-pgdata"
"""Filesystem label of the data volume (nix/node.nix mounts it by this label)."""


class PgPrimary(Construct):
    """The one writable Postgres on `node`: a data volume, snapshots, one generated password
    per service role (``svc_<name>_<ro|rw>``, from each service's ``needs.postgres``) and
    the idempotent bootstrap SQL (ADR 0004). ``public=True`` is refused.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, Needs, PgPrimary, PrivateNetwork, Service, VpsNode
    >>> cloud = PROVIDERS[-1]  # any supported cloud
    >>> net = PrivateNetwork(stack, "net", provider=cloud, region="singapore")
    >>> db = VpsNode(stack, "db", provider=cloud, region="singapore", size="medium",
    ...              roles=["postgres"], networks=[net],
    ...              repository="github:example/estate", ref="deploy/prod")
    >>> pg = PgPrimary(stack, "postgres", node=db, services={
    ...     "api": Service(name="api", port=8080, needs=Needs(postgres="rw"))})
    >>> sorted(pg.passwords)
    ['api']
    """
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        node: VpsNode,
        services: Mapping[str, Service],
        version: int = PG_MAJOR,
        data_volume_gb: int = 50,
        public: bool = False,
    ) -> None:
        super().__init__(scope, id)
        if public:
            raise ConstructError(
                f"[{self.node.path}] Postgres is never public: port {PG_PORT} is reachable "
                "only from the private network (remove public=True; the Worker reads "
                "through Hyperdrive and services through the private network)")
        if version != PG_MAJOR:
            raise ConstructError(
                f"[{self.node.path}] version {version}: the node runs PostgreSQL {PG_MAJOR} "
                f"(nix/node.nix pins pkgs.postgresql_{PG_MAJOR}, edgekit.pg.major.PG_MAJOR); "
                "another major needs a data migration (pg_upgrade), not a property")
        services = checked_services(self.node.path, services)
        self.props = validated(self, "PgPrimary", PgPrimaryProps, {
            "node": node.name, "version": version, "data_volume_gb": data_volume_gb})
        if node.private_ip is None:
            raise ConstructError(
                f"[{self.node.path}] node {node.node.path} is in no private network; "
                "Postgres listens only on a private address, so its node must join one")
        self.host = node
        node.firewall.promise_private_only(
            "postgres-not-public",
            f"the Postgres node admits nothing but admin SSH from outside its private "
            f"networks (port {PG_PORT} stays private)")
        self.volume = Volume(self, "data", node=node, size_gb=data_volume_gb)
        stack = stack_of(self)
        roles = {}
        self.passwords: dict[str, Ref] = {}
        for name, service in sorted(services.items()):
            if service.needs.postgres is None or service.pg_role is None:
                continue
            password = Resource(self, f"password-{name}", type="random_password",
                                config={"length": 32, "special": False})
            roles[service.pg_role] = {"database": service.pg_database,
                                      "mode": service.needs.postgres}
            node.add_secret(f"pg_password_{service.pg_role}", password.attr("result"))
            self.passwords[name] = password.attr("result")
            Output(stack, f"pg_password_{service.pg_role}", value=password.attr("result"),
                   sensitive=True, description=f"Postgres password of {service.pg_role}.")
        node.boot["postgres"] = {
            "version": self.props.version,
            # "discover": the node reads its own VPC address at boot (where the cloud
            # assigns it, `Cloud.fixed_private_addresses`).
            "listen_address": node.static_private_ip or "discover",
            "port": PG_PORT,
            "private_cidrs": [n.cidr for n in node.networks],
            "volume_device": self.volume.device_path,
            "data_label": DATA_LABEL,
            "roles": roles,
            "bootstrap_sql": bootstrap_sql(services),
        }
        Output(stack, PG_ADDRESS_OUTPUT, value=node.private_ip,
               description="Private address of the Postgres primary.")
        Output(stack, PG_CIDR_OUTPUT, value=node.networks[0].cidr,
               description="Private range allowed to reach Postgres (pg_hba).")
