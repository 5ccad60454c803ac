"""EdgeSecurity: what a Cloudflare zone has once — its entrypoint rulesets and settings.

A zone has one entrypoint ruleset per phase, so the managed WAF
(``http_request_firewall_managed``) and the rate limits (``http_ratelimit``) are managed by
one construct covering every environment on the zone (the ``zone`` stack), never by each
environment. The rate-limit ruleset holds a rule per environment and service with a
``rate_limit``, matching that service's public hostnames in that environment.
Zone settings: Full (strict) TLS to origins, HTTPS only, TLS 1.2 at least.
`edgekit.schema.singletons` refuses a second stack managing any of these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgekit.constructs.cloudflare import cloudflare_provider
from edgekit.constructs.facts import record_zone
from edgekit.constructs.values import CloudflareZone, Service, checked_services
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.errors import ConstructError

CLOUDFLARE_MANAGED_RULESET = "efb7b8c949ac4650a09736fc376e9aee"
ZONE_SETTINGS: dict[str, Any] = {"ssl": "strict", "always_use_https": "on",
                                 "min_tls_version": "1.2"}


class EdgeSecurity(Construct):
    """The zone's managed WAF, a rate limit per service and environment, the zone settings;
    `environments` pairs each environment's `CloudflareZone` (all on one zone) with its
    services.

    >>> from edgekit import App, CloudflareZone, EdgeSecurity, LocalState, RateLimit, Service
    >>> from edgekit import Stack
    >>> stack = Stack(App(), "zone", state=LocalState())
    >>> zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
    ...                       environment="prod")
    >>> api = Service(name="api", port=8080, hostnames=("api.example.com",),
    ...               rate_limit=RateLimit(requests=100, period_seconds=60))
    >>> EdgeSecurity(stack, "security", environments=[(zone, {"api": api})]).environments
    ['prod']
    """
    def __init__(self, scope: Construct, id: str, *,
                 environments: Sequence[tuple[CloudflareZone, Mapping[str, Service]]]) -> None:
        super().__init__(scope, id)
        for _, services in environments:
            checked_services(self.node.path, services)
        zones = sorted({zone.zone_id for zone, _ in environments})
        if len(zones) != 1:
            raise ConstructError(
                f"[{self.node.path}] one EdgeSecurity per zone: the environments "
                f"{', '.join(z.environment for z, _ in environments)} are on zones "
                f"{', '.join(zones)}")
        zone_id = zones[0]
        for zone, _ in environments:  # the plan rules hold its rulesets to the zone's plan
            record_zone(self, zone)
        cloudflare_provider(self)
        self.environments = [zone.environment for zone, _ in environments]
        self.waf = Resource(self, "waf", type="cloudflare_ruleset", config={
            "zone_id": zone_id, "name": "edgekit managed WAF", "kind": "zone",
            "phase": "http_request_firewall_managed",
            "rules": [{"action": "execute", "expression": "true", "enabled": True,
                       "description": "Cloudflare Managed Ruleset",
                       "action_parameters": {"id": CLOUDFLARE_MANAGED_RULESET}}],
        })
        rules = [rule for zone, services in environments
                 for rule in _rate_limits(zone, services)]
        self.rate_limits = Resource(self, "rate-limits", type="cloudflare_ruleset", config={
            "zone_id": zone_id, "name": "edgekit rate limits", "kind": "zone",
            "phase": "http_ratelimit", "rules": rules,
        }) if rules else None
        for setting, value in sorted(ZONE_SETTINGS.items()):
            Resource(self, f"setting-{setting.replace('_', '-')}",
                     type="cloudflare_zone_setting",
                     config={"zone_id": zone_id, "setting_id": setting, "value": value})


def _rate_limits(zone: CloudflareZone, services: Mapping[str, Service]) -> list[dict[str, Any]]:
    rules = []
    for name, service in sorted(services.items()):
        limit = service.rate_limit
        if limit is None or not service.hostnames:
            continue
        hosts = " ".join(f'"{zone.public_hostname(h)}"' for h in service.hostnames)
        rules.append({
            "action": "block", "enabled": True,
            "description": f"rate limit {name} ({zone.environment})",
            "expression": f"(http.host in {{{hosts}}})",
            "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"],
                          "period": limit.period_seconds,
                          "requests_per_period": limit.requests,
                          "mitigation_timeout": limit.period_seconds},
        })
    return rules
