"""EdgeSecurity: the managed WAF and one rate limit per service, as zone rulesets.

``cloudflare_ruleset`` in phase ``http_request_firewall_managed`` executes Cloudflare's
managed ruleset; one in phase ``http_ratelimit`` holds a rule per service with a
``rate_limit`` in CUE, matching that service's public hostnames.
"""

from __future__ import annotations

from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.cue.model import Estate

CLOUDFLARE_MANAGED_RULESET = "efb7b8c949ac4650a09736fc376e9aee"


class EdgeSecurity(Construct):
    """The zone's managed WAF and a rate limit per service that asks for one.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import CloudflareSide, DeploySpec, Env, PgSpec, Service
    >>> env = Env(name="prod", deploy=DeploySpec(repository="github:me/estate", ref="deploy/prod"),
    ...           cloudflare=CloudflareSide(account_id="0" * 32, zone_id="1" * 32,
    ...                                     zone="example.com", state_bucket="state",
    ...                                     logs_bucket="logs"),
    ...           placement={"edge-1": ("api",)}, postgres=PgSpec())
    >>> from pathlib import Path
    >>> from edgekit import EdgeSecurity, Estate, RateLimit
    >>> estate = Estate(Path("."), env, {"api": Service(
    ...     name="api", port=8080, hostnames=("api.example.com",),
    ...     rate_limit=RateLimit(requests=100, period_seconds=60))})
    >>> EdgeSecurity(stack, "security", estate=estate).node.id
    'security'
    """
    def __init__(self, scope: Construct, id: str, *, estate: Estate) -> None:
        super().__init__(scope, id)
        env = estate.env
        zone_id = env.cloudflare.zone_id
        self.waf = Resource(self, "waf", type="cloudflare_ruleset", config={
            "zone_id": zone_id, "name": f"{env.name} managed WAF", "kind": "zone",
            "phase": "http_request_firewall_managed",
            "rules": [{"action": "execute", "expression": "true", "enabled": True,
                       "description": "Cloudflare Managed Ruleset",
                       "action_parameters": {"id": CLOUDFLARE_MANAGED_RULESET}}],
        })
        rules = []
        for name, service in sorted(estate.services.items()):
            limit = service.rate_limit
            if limit is None or not service.hostnames:
                continue
            hosts = " ".join(f'"{env.public_hostname(h)}"' for h in service.hostnames)
            rules.append({
                "action": "block", "enabled": True, "description": f"rate limit {name}",
                "expression": f"(http.host in {{{hosts}}})",
                "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"],
                              "period": limit.period_seconds,
                              "requests_per_period": limit.requests,
                              "mitigation_timeout": limit.period_seconds},
            })
        self.rate_limits = Resource(self, "rate-limits", type="cloudflare_ruleset", config={
            "zone_id": zone_id, "name": f"{env.name} rate limits", "kind": "zone",
            "phase": "http_ratelimit", "rules": rules,
        }) if rules else None
