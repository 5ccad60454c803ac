"""EdgeSecurity: what a Cloudflare zone has once — its entrypoint rulesets and settings.

A zone has one entrypoint ruleset per phase, so the managed WAF
(``http_request_firewall_managed``) and the rate limits (``http_ratelimit``) are managed by
one construct covering every environment on the zone (the ``zone`` stack), never by each
environment. The rate-limit ruleset holds a rule per environment and service with a
``rate_limit`` in CUE, matching that service's public hostnames in that environment.
Zone settings: Full (strict) TLS to origins, HTTPS only, TLS 1.2 at least.
`edgekit.schema.singletons` refuses a second stack managing any of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.errors import ConstructError
from edgekit.cue.model import Estate

CLOUDFLARE_MANAGED_RULESET = "efb7b8c949ac4650a09736fc376e9aee"
ZONE_SETTINGS: dict[str, Any] = {"ssl": "strict", "always_use_https": "on",
                                 "min_tls_version": "1.2"}


class EdgeSecurity(Construct):
    """The zone's managed WAF, a rate limit per service and environment, the zone settings.

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
    >>> EdgeSecurity(stack, "security", estates=[estate]).node.id
    'security'
    """
    def __init__(self, scope: Construct, id: str, *, estates: Sequence[Estate]) -> None:
        super().__init__(scope, id)
        zones = sorted({e.env.cloudflare.zone_id for e in estates})
        if len(zones) != 1:
            raise ConstructError(
                f"[{self.node.path}] one EdgeSecurity per zone: the environments "
                f"{', '.join(e.env.name for e in estates)} are on zones {', '.join(zones)}")
        zone_id = zones[0]
        self.environments = [e.env.name for e in estates]
        self.waf = Resource(self, "waf", type="cloudflare_ruleset", config={
            "zone_id": zone_id, "name": "edgekit managed WAF", "kind": "zone",
            "phase": "http_request_firewall_managed",
            "rules": [{"action": "execute", "expression": "true", "enabled": True,
                       "description": "Cloudflare Managed Ruleset",
                       "action_parameters": {"id": CLOUDFLARE_MANAGED_RULESET}}],
        })
        rules = [rule for estate in estates for rule in _rate_limits(estate)]
        self.rate_limits = Resource(self, "rate-limits", type="cloudflare_ruleset", config={
            "zone_id": zone_id, "name": "edgekit rate limits", "kind": "zone",
            "phase": "http_ratelimit", "rules": rules,
        }) if rules else None
        for setting, value in sorted(ZONE_SETTINGS.items()):
            Resource(self, f"setting-{setting.replace('_', '-')}",
                     type="cloudflare_zone_setting",
                     config={"zone_id": zone_id, "setting_id": setting, "value": value})


def _rate_limits(estate: Estate) -> list[dict[str, Any]]:
    env = estate.env
    rules = []
    for name, service in sorted(estate.services.items()):
        limit = service.rate_limit
        if limit is None or not service.hostnames:
            continue
        hosts = " ".join(f'"{env.public_hostname(h)}"' for h in service.hostnames)
        rules.append({
            "action": "block", "enabled": True,
            "description": f"rate limit {name} ({env.name})",
            "expression": f"(http.host in {{{hosts}}})",
            "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"],
                          "period": limit.period_seconds,
                          "requests_per_period": limit.requests,
                          "mitigation_timeout": limit.period_seconds},
        })
    return rules
