"""What the Cloudflare API token must be allowed to do, derived from the stacks (ADR 0032).

`NEEDS` maps each Cloudflare resource (and data source) type edgekit emits to the API
permission group(s) its create, update and read calls require, as the API reference states
for the endpoints the provider calls ("Required API token permissions: at least one of"):
a `Need` is satisfied by any one of its groups. Names are the API's (``… Write``); the
dashboard shows the same group as ``… : Edit``. `needed` walks synthesized documents and
returns, per stack, the groups and the resources that need them, with the types a construct
only adds on a later synth (``edgekit.later.json``, `edgekit.constructs.later`: Hyperdrive
and its authority); `edgekit check --permissions` prints it and `edgekit up` checks the
token against it before any apply.

The tokens edgekit creates itself (R2 log writer, Postgres backups) are account-owned
(``cloudflare_account_token``): they outlive the person who ran the apply, so creating them
needs "Account API Tokens Write", not the user-level "API Tokens Write" (ADR 0032).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

Scope = Literal["account", "zone", "user"]

API_DOCS = "https://developers.cloudflare.com/api/resources"
TEMPLATES = "https://developers.cloudflare.com/fundamentals/api/reference/template/"


@attrs.frozen
class Need:
    groups: tuple[str, ...]
    """Any one of these permission groups (API names) will do."""
    scope: Scope
    source: str

    @property
    def label(self) -> str:
        return " or ".join(self.groups)

    @property
    def dashboard(self) -> str:
        """How the dashboard's token form names it (``Workers R2 Storage: Edit``)."""
        return " or ".join(_dashboard(g) for g in self.groups)


def _dashboard(group: str) -> str:
    for suffix, verb in ((" Write", "Edit"), (" Read", "Read")):
        if group.endswith(suffix):
            return f"{group[: -len(suffix)]}: {verb}"
    return group


def _need(scope: Scope, source: str, *groups: str) -> tuple[Need, ...]:
    return (Need(groups, scope, source),)


R2 = _need("account", f"{API_DOCS}/r2/subresources/buckets/methods/create/",
           "Workers R2 Storage Write")
TUNNEL = _need("account", f"{API_DOCS}/zero_trust/subresources/tunnels/subresources/"
               "cloudflared/methods/create/", "Cloudflare Tunnel Write")
ACCESS_APPS = _need("account", f"{API_DOCS}/zero_trust/subresources/access/subresources/"
                    "applications/methods/create/", "Access: Apps and Policies Write")

NEEDS: dict[str, tuple[Need, ...]] = {
    "cloudflare_r2_bucket": R2,
    "cloudflare_r2_bucket_lifecycle": R2,
    "cloudflare_r2_bucket_lock": _need(
        "account", f"{API_DOCS}/r2/subresources/buckets/subresources/locks/methods/update/",
        "Workers R2 Storage Write"),
    # Workers Trace Events are an account dataset; the zone's http_requests job (Enterprise)
    # needs the zone's Logs Write as well
    "cloudflare_logpush_job": _need(
        "account", f"{API_DOCS}/logpush/subresources/jobs/methods/create/", "Logs Write"),
    "cloudflare_account_token": _need(
        "account", f"{API_DOCS}/accounts/subresources/tokens/methods/create/",
        "Account API Tokens Write"),
    "cloudflare_api_token": _need(
        "user", f"{API_DOCS}/user/subresources/tokens/methods/create/ and {TEMPLATES} "
        "('Create Additional Tokens')", "API Tokens Write"),
    "cloudflare_dns_record": _need(
        "zone", f"{API_DOCS}/dns/subresources/records/methods/create/", "DNS Write"),
    "cloudflare_ruleset": _need(
        "zone", f"{API_DOCS}/rulesets/methods/create/ (phases http_request_firewall_managed "
        "and http_ratelimit)", "Zone WAF Write"),
    "cloudflare_zone_setting": _need(
        "zone", f"{API_DOCS}/zones/subresources/settings/methods/edit/", "Zone Settings Write"),
    "cloudflare_workers_script": _need(
        "account", f"{API_DOCS}/workers/subresources/scripts/methods/update/",
        "Workers Scripts Write"),
    "cloudflare_workers_custom_domain": _need(
        "account", f"{API_DOCS}/workers/subresources/domains/methods/update/",
        "Workers Scripts Write"),
    "cloudflare_workers_kv_namespace": _need(
        "account", f"{API_DOCS}/kv/subresources/namespaces/methods/create/",
        "Workers KV Storage Write"),
    "cloudflare_zero_trust_tunnel_cloudflared": TUNNEL,
    "cloudflare_zero_trust_tunnel_cloudflared_config": TUNNEL,
    "cloudflare_zero_trust_tunnel_cloudflared_token": TUNNEL,
    "cloudflare_zero_trust_access_application": ACCESS_APPS,
    "cloudflare_zero_trust_access_policy": ACCESS_APPS,
    "cloudflare_zero_trust_access_service_token": _need(
        "account", f"{API_DOCS}/zero_trust/subresources/access/subresources/service_tokens/"
        "methods/create/", "Access: Service Tokens Write"),
    "cloudflare_load_balancer": _need(
        "zone", f"{API_DOCS}/load_balancers/methods/create/ and {TEMPLATES}",
        "Load Balancers Write"),
    "cloudflare_load_balancer_pool": _need(
        "account", f"{API_DOCS}/load_balancers/subresources/pools/methods/create/ and "
        f"{TEMPLATES}", "Load Balancing: Monitors and Pools Write"),
    "cloudflare_load_balancer_monitor": _need(
        "account", f"{API_DOCS}/load_balancers/subresources/monitors/methods/create/ and "
        f"{TEMPLATES}", "Load Balancing: Monitors and Pools Write"),
    "cloudflare_hyperdrive_config": _need(
        "account", f"{API_DOCS}/hyperdrive/subresources/configs/methods/create/",
        "Hyperdrive Write"),
    # the primary's CA, which Hyperdrive verifies the origin against (ADR 0025)
    "cloudflare_mtls_certificate": _need(
        "account", f"{API_DOCS}/mtls_certificates/methods/create/",
        "SSL and Certificates Write"),
}
"""Resource or data source type → what creating and reading it needs."""


@attrs.frozen
class Required:
    need: Need
    addresses: tuple[str, ...]
    """The resources of the stack that need it (type.name)."""


@attrs.frozen
class Unknown:
    """A Cloudflare type with no row in `NEEDS`: nobody knows what it needs yet."""

    address: str


def _typed(document: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for section, prefix in (("resource", ""), ("data", "data.")):
        for type_name, bodies in sorted((document.get(section) or {}).items()):
            if isinstance(bodies, Mapping):
                for name in sorted(bodies):
                    yield type_name, f"{prefix}{type_name}.{name}"


Later = Mapping[str, Mapping[str, str]]
"""stack -> type -> why: resources a construct adds on a later synth
(`edgekit.constructs.later`), needed all the same."""


def needed(documents: Mapping[str, Mapping[str, Any]], later: Later | None = None
           ) -> dict[str, tuple[list[Required], list[Unknown]]]:
    """Per stack: the permission groups its Cloudflare resources need (with those it adds
    later, named ``<type> (later)``), and any Cloudflare type the table does not know (an
    error for `edgekit check --permissions`)."""
    result: dict[str, tuple[list[Required], list[Unknown]]] = {}
    for stack, document in sorted(documents.items()):
        by_need: dict[tuple[Scope, tuple[str, ...]], tuple[Need, list[str]]] = {}
        unknown: list[Unknown] = []
        have = {type_name for type_name, _ in _typed(document)}
        coming = [(t, f"{t} (later)") for t in sorted((later or {}).get(stack, {}))
                  if t not in have]
        for type_name, address in [*_typed(document), *coming]:
            if not type_name.startswith("cloudflare_"):
                continue
            needs = NEEDS.get(type_name)
            if needs is None:
                unknown.append(Unknown(address))
                continue
            for need in needs:  # one row per group, whichever resource type needs it
                by_need.setdefault((need.scope, need.groups), (need, []))[1].append(address)
        required = [Required(need, tuple(addresses))
                    for _, (need, addresses) in sorted(by_need.items())]
        result[stack] = (required, unknown)
    return result


def all_needs(documents: Mapping[str, Mapping[str, Any]], later: Later | None = None
              ) -> list[Need]:
    """Every distinct need of the given stacks (and of what they add later), sorted by
    scope and name."""
    seen: dict[tuple[Scope, tuple[str, ...]], Need] = {}
    for required, _ in needed(documents, later).values():
        for item in required:
            seen.setdefault((item.need.scope, item.need.groups), item.need)
    return [seen[k] for k in sorted(seen)]


def render_text(documents: Mapping[str, Mapping[str, Any]], later: Later | None = None
                ) -> str:
    lines: list[str] = []
    for stack, (required, unknown) in needed(documents, later).items():
        if not required and not unknown:
            lines.append(f"{stack}: no Cloudflare resources")
            continue
        lines.append(f"{stack}:")
        for item in required:
            shown = ", ".join(item.addresses[:3]) + (
                f" (+{len(item.addresses) - 3})" if len(item.addresses) > 3 else "")
            lines.append(f"  {item.need.scope:<8} {item.need.dashboard:<45} {shown}")
        for odd in unknown:
            lines.append(f"  ?        no permission known for {odd.address}: add its type "
                         "to edgekit/check/permissions.py NEEDS")
    groups = all_needs(documents, later)
    if groups:
        lines.append("")
        lines.append("one token for all of them (dashboard → My Profile → API Tokens, or "
                     "Manage Account → API Tokens for an account-owned one):")
        lines += [f"  {n.scope:<8} {n.dashboard}" for n in groups]
    return "\n".join(lines) + "\n"


def as_json(documents: Mapping[str, Mapping[str, Any]], later: Later | None = None
            ) -> dict[str, Any]:
    return {
        "stacks": {stack: {
            "required": [{"groups": list(r.need.groups), "scope": r.need.scope,
                          "dashboard": r.need.dashboard, "resources": list(r.addresses),
                          "source": r.need.source} for r in required],
            "unknown": [u.address for u in unknown]}
            for stack, (required, unknown) in needed(documents, later).items()},
        "token": [{"groups": list(n.groups), "scope": n.scope, "dashboard": n.dashboard}
                  for n in all_needs(documents, later)],
    }
