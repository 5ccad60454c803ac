"""Synth-time check: a Cloudflare zone's singletons are managed by one stack only.

A zone has one entrypoint ruleset per phase and one value per setting; two stacks that
both declare one fail at apply (the second create conflicts) or overwrite each other on
every apply. The check runs over all stacks of an app at once and reports each singleton
managed twice, with both addresses. (A rule of the `edgekit check` engine to be; it lives
beside the other synth checks until then.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edgekit.core.errors import Problem
from edgekit.core.synth import StackResult

Key = Callable[[dict[str, Any]], "str | None"]


def _ruleset(body: dict[str, Any]) -> str | None:
    if body.get("kind") != "zone" or "zone_id" not in body:
        return None  # custom and account rulesets are not per-zone singletons
    return f"zone {body['zone_id']} entrypoint ruleset of phase {body.get('phase')}"


SINGLETONS: dict[str, Key] = {
    "cloudflare_ruleset": _ruleset,
    "cloudflare_zone_setting":
        lambda b: f"zone {b.get('zone_id')} setting {b.get('setting_id')}",
    "cloudflare_zone_dnssec": lambda b: f"zone {b.get('zone_id')} DNSSEC",
    "cloudflare_bot_management": lambda b: f"zone {b.get('zone_id')} bot management",
    "cloudflare_argo_smart_routing": lambda b: f"zone {b.get('zone_id')} Argo",
    "cloudflare_tiered_cache": lambda b: f"zone {b.get('zone_id')} tiered cache",
}
"""Resource type → the singleton one of its instances manages (None: not a singleton)."""


def zone_singleton_problems(results: Sequence[StackResult]) -> list[Problem]:
    owners: dict[str, list[tuple[str, str]]] = {}
    for result in results:
        for kind, key in SINGLETONS.items():
            for name, body in sorted(result.document.get("resource", {}).get(kind, {}).items()):
                singleton = key(body) if isinstance(body, dict) else None
                if singleton is not None:
                    owners.setdefault(singleton, []).append(
                        (result.stack.name, f"{kind}.{name}"))
    problems = []
    for singleton, where in sorted(owners.items()):
        if len(where) > 1:
            listed = ", ".join(f"{stack}: {address}" for stack, address in where)
            problems.append(Problem(
                path=where[1][0], address=where[1][1],
                message=f"{singleton} is managed more than once ({listed}); a zone has one, "
                        "so manage it from one stack (the zone stack)"))
    return problems
