"""Tunnel: Cloudflare Tunnel from the nodes out to Cloudflare; nothing dials in.

Two strategies (ADR 0006):

* ``replicas`` — one tunnel; cloudflared runs with the same token on every node. Cloudflare
  sends each request to the nearest healthy replica: failover, no weights.
* ``per_node`` — one tunnel per node, each with its own origin hostnames
  (``<svc>-<node>-origin.<zone>``), so the edge Worker can spread requests by weight and fail
  over itself; beside it a Cloudflare Load Balancer per service whose pool origins are
  ``<tunnel-id>.cfargotunnel.com`` with the service's origin hostname as Host header, the
  weights from CUE, and an HTTPS monitor on the service's health path.

Either way: ``cloudflare_zero_trust_tunnel_cloudflared`` (remote-managed, secret from
``random_id``), its ``_config`` with one ingress rule per hostname to
``http://127.0.0.1:<port>`` and ``http_status:404`` last, proxied CNAMEs to
``<tunnel-id>.cfargotunnel.com``, and the tunnel token handed to the node as a sensitive
value inside its boot document.

Origins answer only the Worker (ADR 0009): one Access application covers every origin
hostname of the environment and admits only a service token, which the Worker sends
(`access_client_id` / `access_client_secret`) as do the Load Balancer's monitors; the
generated ``tofu test`` asserts that every origin record is covered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from edgekit.constructs.base import listed, validated
from edgekit.constructs.cloudflare import cloudflare_provider
from edgekit.constructs.facts import PlacementFact, TunnelFact, Where, layout_of, record_zone
from edgekit.constructs.node import VpsNode
from edgekit.constructs.promises import dns_record_proxied, tunnel_ends_with_catch_all
from edgekit.constructs.props import TunnelProps
from edgekit.constructs.values import (
    CloudflareZone,
    Service,
    TunnelStrategy,
    checked_services,
)
from edgekit.core.construct import Construct
from edgekit.core.elements import DataSource, Resource
from edgekit.core.errors import ConstructError

MAX_REPLICAS = 25
"""Cloudflare's limit of connectors (replicas) per tunnel."""


@attrs.frozen
class Origin:
    """One way to reach a service behind the tunnel, as the Worker's ORIGINS lists it."""

    service: str
    node: str | None
    hostname: str
    weight: int

    def as_json(self) -> dict[str, Any]:
        return {"url": f"https://{self.hostname}", "weight": self.weight,
                **({"node": self.node} if self.node else {})}


class Tunnel(Construct):
    """Cloudflare Tunnel from the nodes to Cloudflare, serving `services` on the nodes
    `placement` puts them on (node → service names; default: every service on every node);
    ``strategy`` ``replicas`` or ``per_node`` with per-node ``weights`` (ADR 0006).

    >>> from edgekit import (PROVIDERS, App, CloudflareZone, LocalState, Service, Stack, Tunnel,
    ...                      VpsNode)
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
    ...                       environment="prod")
    >>> node = VpsNode(stack, "edge-1", provider=PROVIDERS[0], region="singapore",
    ...                size="small")
    >>> tunnel = Tunnel(stack, "tunnel", zone=zone, nodes=[node],
    ...                 services={"api": Service(name="api", port=8080)})
    >>> tunnel.origins_by_service()["api"][0]["url"]
    'https://api-origin.example.com'
    """
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        zone: CloudflareZone,
        services: Mapping[str, Service],
        nodes: Sequence[VpsNode],
        placement: Mapping[str, Sequence[str]] | None = None,
        strategy: TunnelStrategy = "replicas",
        weights: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(scope, id)
        services = checked_services(self.node.path, services)
        self.props = validated(self, "Tunnel", TunnelProps, {
            "name": id, "strategy": strategy, "nodes": [n.name for n in nodes],
            "weights": dict(weights or {})})
        if self.props.weights and not any(self.props.weights.get(n.name, 1) > 0
                                          for n in nodes):
            raise ConstructError(f"[{self.node.path}] every node has weight 0: nothing could "
                                 "receive traffic; give at least one node a positive weight")
        if self.props.strategy == "replicas" and len(nodes) > MAX_REPLICAS:
            raise ConstructError(
                f"[{self.node.path}] {len(nodes)} replicas, but a tunnel allows at most "
                f"{MAX_REPLICAS} cloudflared connectors; use strategy='per_node'")
        portless = sorted(n for n, s in services.items() if s.kind == "vps" and s.port is None)
        if portless:
            raise ConstructError(f"[{self.node.path}] service(s) without a port cannot be "
                                 f"served through the tunnel: {', '.join(portless)}")
        self.zone = zone
        self.environment = zone.environment
        self.account_id = zone.account_id
        self.zone_id = zone.zone_id
        self.services = {n: s for n, s in services.items() if s.kind == "vps"}
        self.placement: dict[str, tuple[str, ...]] = (
            {n.name: tuple(sorted(self.services)) for n in nodes} if placement is None
            else {node: tuple(listed(self, "placement", names))
                  for node, names in placement.items()})
        self.origins: list[Origin] = []
        self.records: list[Resource] = []
        self._balancer_hosts: set[str] = set()
        cloudflare_provider(self)
        self._access_token()
        if self.props.strategy == "replicas":
            self._tunnel("Resource", list(nodes), node_suffix=False)
        else:
            for node in nodes:
                self._tunnel(node.name, [node], node_suffix=True)
            self._load_balancers(nodes)
        self._protect()
        self._record(services, nodes)

    def _record(self, services: Mapping[str, Service], nodes: Sequence[VpsNode]) -> None:
        """What the check rules judge at synth (`edgekit.constructs.facts`): the placement
        (EK121-EK124, EK180, EK181), the nodes and weights (EK125, EK182, EK187) and the
        origins behind this tunnel's Access token (EK183)."""
        layout, where = layout_of(self), Where(path=self.node.path)
        layout.add_services(where, services)
        record_zone(self, self.zone)
        given = tuple(n.name for n in nodes)
        layout.placements.append(PlacementFact(
            placement=self.placement, services=services, nodes=given,
            where=where.at(".placement")))
        layout.tunnels.append(TunnelFact(
            nodes=given, placement=self.placement, strategy=self.props.strategy,
            weights=dict(self.props.weights), token=self.access_token.address,
            hostnames=tuple(sorted({o.hostname for o in self.origins} | self._balancer_hosts)),
            where=where))

    def _access_token(self) -> None:
        scope = Construct(self, "access")
        self.access_token = Resource(
            scope, "service-token", type="cloudflare_zero_trust_access_service_token",
            config={"account_id": self.account_id, "name": f"{self.environment} edge worker"})
        self.access_client_id = self.access_token.attr("client_id")
        self.access_client_secret = self.access_token.attr("client_secret")
        self.access_scope = scope

    def _protect(self) -> None:
        """Every origin hostname behind one Access application that admits the Worker's
        service token only (ADR 0009)."""
        hosts = sorted({o.hostname for o in self.origins} | self._balancer_hosts)
        if not hosts:
            return
        policy = Resource(self.access_scope, "policy",
                          type="cloudflare_zero_trust_access_policy", config={
                              "account_id": self.account_id,
                              "name": f"{self.environment} origins: edge worker only",
                              "decision": "non_identity",
                              "include": [{"service_token": {
                                  "token_id": self.access_token.attr("id")}}]})
        app = Resource(self.access_scope, "Resource",
                       type="cloudflare_zero_trust_access_application", config={
                           "account_id": self.account_id,
                           "name": f"{self.environment} origins", "type": "self_hosted",
                           "domain": hosts[0],
                           "destinations": [{"type": "public", "uri": h} for h in hosts],
                           "policies": [{"id": policy.attr("id"), "precedence": 1}]})
        names = ", ".join(f"{r.address}.name" for r in self.records)
        self.access_scope.node.add_assertion(
            "origins-behind-access",
            f"alltrue([for h in [{names}] : contains([for d in {app.address}.destinations : "
            f"d.uri], h)]) && {policy.address}.decision == \"non_identity\"",
            "every origin hostname is behind the Access application that admits only the "
            "edge Worker's service token")

    def _placed(self, node: VpsNode) -> list[str]:
        return [s for s in self.placement.get(node.name, ()) if s in self.services]

    def _tunnel(self, id: str, nodes: list[VpsNode], *, node_suffix: bool) -> None:
        scope = self if id == "Resource" else Construct(self, id)
        secret = Resource(scope, "secret", type="random_id", config={"byte_length": 32})
        tunnel = Resource(scope, "Resource", type="cloudflare_zero_trust_tunnel_cloudflared",
                          config={"account_id": self.account_id,
                                  "name": f"{self.environment}-{scope.node.path.replace('/', '-')}",
                                  "config_src": "cloudflare",
                                  "tunnel_secret": secret.attr("b64_std")})
        target = f"{tunnel.attr('id')}.cfargotunnel.com"
        ingress: list[dict[str, Any]] = []
        names = sorted({s for node in nodes for s in self._placed(node)})
        for service in names:
            node_name = nodes[0].name if node_suffix else None
            host = self.zone.origin_hostname(service, node_name)
            ingress.append({"hostname": host,
                            "service": f"http://127.0.0.1:{self.services[service].port}"})
            record = Resource(
                scope, f"dns-{service}", type="cloudflare_dns_record", config={
                    "zone_id": self.zone_id, "name": host, "type": "CNAME", "content": target,
                    "proxied": True, "ttl": 1, "comment": "edgekit tunnel origin"})
            dns_record_proxied(record)
            self.records.append(record)
            weight = self.props.weights.get(nodes[0].name, 1) if node_suffix else 1
            self.origins.append(Origin(service, node_name, host, weight))
        ingress.append({"service": "http_status:404"})
        tunnel_ends_with_catch_all(Resource(
            scope, "config", type="cloudflare_zero_trust_tunnel_cloudflared_config",
            config={"account_id": self.account_id, "tunnel_id": tunnel.attr("id"),
                    "config": {"ingress": ingress}}))
        token = DataSource(scope, "token", type="cloudflare_zero_trust_tunnel_cloudflared_token",
                           config={"account_id": self.account_id,
                                   "tunnel_id": tunnel.attr("id")})
        for node in nodes:
            node.add_secret("tunnel_token", f"${{sensitive({token.attr('token').expression})}}")
        if not node_suffix:
            self.resource = tunnel

    def _load_balancers(self, nodes: Sequence[VpsNode]) -> None:
        lb_scope = Construct(self, "lb")
        tunnels = {n.name: _tunnel_of(self.node.find_child(n.name)) for n in nodes}
        by_service: dict[str, list[Origin]] = {}
        for origin in self.origins:
            by_service.setdefault(origin.service, []).append(origin)
        for service_name, service in sorted(self.services.items()):
            origins = by_service.get(service_name)
            if not origins:
                continue
            total = sum(o.weight for o in origins) or 1  # once per service: linear in nodes
            host = self.zone.origin_hostname(service_name)
            self._balancer_hosts.add(host)
            monitor = Resource(lb_scope, f"monitor-{service_name}",
                               type="cloudflare_load_balancer_monitor", config={
                                   "account_id": self.account_id, "type": "https",
                                   "method": "GET", "path": service.health_path,
                                   "expected_codes": "200", "interval": 60,
                                   "header": {"Host": [host],
                                              "CF-Access-Client-Id": [self.access_client_id],
                                              "CF-Access-Client-Secret":
                                                  [self.access_client_secret]},
                                   "description": f"{service_name} health through tunnels"})
            pool = Resource(lb_scope, f"pool-{service_name}",
                            type="cloudflare_load_balancer_pool", config={
                                "account_id": self.account_id,
                                "name": f"{self.environment}-{service_name}",
                                "monitor": monitor.attr("id"),
                                "origin_steering": {"policy": "random"},
                                "origins": [{
                                    "name": o.node,
                                    "address": f"{tunnels[o.node or ''].attr('id')}"
                                               ".cfargotunnel.com",
                                    "weight": round(o.weight / total, 4),
                                    "header": {"host": [o.hostname]},
                                    "enabled": o.weight > 0,
                                } for o in origins]})
            Resource(lb_scope, f"balancer-{service_name}", type="cloudflare_load_balancer",
                     config={"zone_id": self.zone_id, "name": host,
                             "default_pools": [pool.attr("id")],
                             "fallback_pool": pool.attr("id"), "proxied": True,
                             "steering_policy": "off"})

    def origins_by_service(self) -> dict[str, list[dict[str, Any]]]:
        """The edge Worker's ORIGINS: service → [{url, weight, node}]."""
        out: dict[str, list[dict[str, Any]]] = {}
        for origin in self.origins:
            out.setdefault(origin.service, []).append(origin.as_json())
        return dict(sorted(out.items()))


def _tunnel_of(scope: Construct) -> Resource:
    found = scope.node.find_child("Resource")
    assert isinstance(found, Resource)
    return found
