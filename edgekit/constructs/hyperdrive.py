"""Hyperdrive: Worker reads of Postgres go through Hyperdrive and its cache.

Postgres is never public, so Hyperdrive reaches it through a tunnel that runs only on the
Postgres node (``pg-origin.<zone>`` → ``tcp://<private address>:5432``: the address
Postgres listens on, never loopback, where it does not), protected by Cloudflare Access:
an Access application on that hostname admits only a service token, whose id and secret
Hyperdrive presents. The node runs a cloudflared for this tunnel's token
(``pg_tunnel_token``) beside the one of its service tunnel, if any. Writes go through the
services, never through the Worker.

Cloudflare tests the connection when a Hyperdrive config is created, so the config is
ordered after its path (``depends_on`` the Access application, the DNS record and the
tunnel config) and made only once Postgres can answer: `ready` is False on the first apply
and True once the primary's address came back from ``tofu output`` (ADR 0007).

Postgres admits logins over TLS only (ADR 0025): the node makes its own certificate authority,
and the config pins it (``cloudflare_mtls_certificate``, ``sslmode = "verify-full"``, the
server certificate names ``pg-origin.<zone>``). Without the authority's certificate
(`ca_certificate`, the imported output ``pg_tls_ca``) no config is made.
"""

from __future__ import annotations

from collections.abc import Mapping

from edgekit.constructs.cloudflare import cloudflare_provider
from edgekit.constructs.facts import record_services, record_zone
from edgekit.constructs.later import add_later
from edgekit.constructs.node import VpsNode
from edgekit.constructs.promises import dns_record_proxied, tunnel_ends_with_catch_all
from edgekit.constructs.values import CloudflareZone, Service, checked_services
from edgekit.core.construct import Construct
from edgekit.core.elements import DataSource, Resource
from edgekit.core.errors import ConstructError
from edgekit.core.gates import PRIMARY_UP, add_gate
from edgekit.core.refs import Ref

PG_TUNNEL_SECRET = "pg_tunnel_token"
PG_PORT = 5432
SSLMODE = "verify-full"
"""Hyperdrive checks the server certificate against the node's authority and its hostname."""


def hyperdrive_service(services: Mapping[str, Service]) -> Service | None:
    """The service whose role Hyperdrive logs in as: the first, by name, that reads Postgres
    (``needs.postgres == "ro"``); None when no service does (then there is no Hyperdrive)."""
    return next((services[name] for name in sorted(services)
                 if services[name].needs.postgres == "ro"), None)


class Hyperdrive(Construct):
    """Cloudflare Hyperdrive to the Postgres primary on `node`, through an Access-protected
    tunnel to `listen_address` (default: the node's private address), as `service`'s role
    with its `password`.

    >>> from edgekit import (PROVIDERS, App, CloudflareZone, Hyperdrive, LocalState, Needs,
    ...                      PgPrimary, PrivateNetwork, Service, Stack, VpsNode)
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
    ...                       environment="prod")
    >>> net = PrivateNetwork(stack, "net", provider=PROVIDERS[0], region="singapore")
    >>> db = VpsNode(stack, "db", provider=PROVIDERS[0], region="singapore", size="medium",
    ...              roles=["postgres"], networks=[net],
    ...              repository="github:example/estate", ref="deploy/prod")
    >>> web = Service(name="web", port=8081, needs=Needs(postgres="ro"))
    >>> pg = PgPrimary(stack, "postgres", node=db, services={"web": web})
    >>> Hyperdrive(stack, "hyperdrive", zone=zone, node=db, service=web,
    ...            password=pg.passwords["web"]).hostname
    'pg-origin.example.com'
    """
    def __init__(self, scope: Construct, id: str, *, zone: CloudflareZone, node: VpsNode,
                 service: Service, password: Ref, listen_address: str | None = None,
                 ca_certificate: str | None = None, ready: bool = True) -> None:
        super().__init__(scope, id)
        checked_services(self.node.path, {service.name: service})
        record_services(self, {service.name: service})
        record_zone(self, zone)
        if node.private_ip is None:
            raise ConstructError(f"[{self.node.path}] node {node.node.path} has no private "
                                 "address: Postgres listens only there")
        account, env = zone.account_id, zone.environment
        host = zone.origin_hostname("pg")
        self.hostname = host
        cloudflare_provider(self)
        secret = Resource(self, "tunnel-secret", type="random_id", config={"byte_length": 32})
        tunnel = Resource(self, "tunnel", type="cloudflare_zero_trust_tunnel_cloudflared",
                          config={"account_id": account, "name": f"{env}-pg",
                                  "config_src": "cloudflare",
                                  "tunnel_secret": secret.attr("b64_std")})
        # Where Postgres listens: e.g. its mesh address (ADR 0010), else its private address.
        listen = listen_address or node.private_ip
        self.ingress_service = f"tcp://{listen}:{PG_PORT}"
        config = Resource(
            self, "tunnel-config", type="cloudflare_zero_trust_tunnel_cloudflared_config",
            config={"account_id": account, "tunnel_id": tunnel.attr("id"),
                    "config": {"ingress": [
                        {"hostname": host, "service": self.ingress_service},
                        {"service": "http_status:404"}]}})
        tunnel_ends_with_catch_all(config)
        dns = Resource(self, "dns", type="cloudflare_dns_record", config={
            "zone_id": zone.zone_id, "name": host, "type": "CNAME",
            "content": f"{tunnel.attr('id')}.cfargotunnel.com", "proxied": True, "ttl": 1,
            "comment": "edgekit Postgres for Hyperdrive (Access protected)"})
        dns_record_proxied(dns)
        token = DataSource(self, "tunnel-token",
                           type="cloudflare_zero_trust_tunnel_cloudflared_token",
                           config={"account_id": account, "tunnel_id": tunnel.attr("id")})
        node.add_secret(PG_TUNNEL_SECRET,
                        f"${{sensitive({token.attr('token').expression})}}")
        service_token = Resource(self, "service-token",
                                 type="cloudflare_zero_trust_access_service_token",
                                 config={"account_id": account, "name": f"{env} hyperdrive"})
        policy = Resource(self, "policy", type="cloudflare_zero_trust_access_policy", config={
            "account_id": account, "name": f"{env} hyperdrive only",
            "decision": "non_identity",
            "include": [{"service_token": {"token_id": service_token.attr("id")}}]})
        access = Resource(self, "access", type="cloudflare_zero_trust_access_application",
                          config={"account_id": account, "name": f"{env} postgres",
                                  "type": "self_hosted", "domain": host,
                                  "policies": [{"id": policy.attr("id"), "precedence": 1}]})
        self.resource: Resource | None = None
        # TLS (ADR 0025): Postgres admits Hyperdrive only over TLS, with a certificate from
        # the node's own authority, which Hyperdrive must trust: no config before the
        # authority's certificate is known (imported as the output `pg_tls_ca`).
        if not ready or ca_certificate is None:
            # what the token must already be allowed when `edgekit up` adds them (ADR 0032)
            add_later(self, ("cloudflare_mtls_certificate", "cloudflare_hyperdrive_config"),
                      "Hyperdrive and the authority it pins, once the primary's address and "
                      "TLS authority are imported (ADR 0025, 0031)")
            return
        ca = Resource(self, "server-ca", type="cloudflare_mtls_certificate", config={
            "account_id": account, "ca": True, "certificates": ca_certificate,
            "name": f"{env}-pg-server-ca"})
        self.resource = Resource(self, "Resource", type="cloudflare_hyperdrive_config", config={
            "account_id": account, "name": f"{env}-pg",
            "origin": {"host": host, "database": service.pg_database, "user": service.pg_role,
                       "password": password, "scheme": "postgres",
                       "access_client_id": service_token.attr("client_id"),
                       "access_client_secret": service_token.attr("client_secret")},
            "caching": {"disabled": False, "max_age": 60},
            "mtls": {"ca_certificate_id": ca.attr("id"), "sslmode": SSLMODE},
        }, depends_on=[access, dns, config])
        # `edgekit up` creates it only once the primary is up (ADR 0031).
        add_gate(PRIMARY_UP, self.resource,
                 "Cloudflare tests the connection to Postgres when it creates the config")

    @property
    def id_ref(self) -> Ref | None:
        return self.resource.attr("id") if self.resource is not None else None
