"""Provider-side names: each provider's length and character rules, and no two constructs
whose names would land on the same provider-side name. The clouds' rules are their
adapters' (`Kind.names`, `Kind.unique`, beside each cloud's resources), Cloudflare's here."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import at, is_expression
from edgekit.clouds import kind_of
from edgekit.clouds.kinds import NameRule, Unique

R2_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
WORKER_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")

CLOUDFLARE_NAMES: dict[str, list[NameRule]] = {
    "cloudflare_workers_script": [NameRule(attribute=("script_name",), min=1, max=63,
                                           pattern=WORKER_NAME,
                                           expected="lowercase letters, digits, '-' and '_', "
                                           "not starting with '-'",
                                           source="https://developers.cloudflare.com/api/"
                                           "resources/workers/subresources/scripts/ "
                                           "(workers_script_name ^[a-z0-9_][a-z0-9-_]*$; at "
                                           "most 63 characters)")],
    "cloudflare_r2_bucket": [NameRule(attribute=("name",), min=3, max=63, pattern=R2_BUCKET,
                                      expected="lowercase letters, digits and '-', starting "
                                      "and ending with a letter or digit",
                                      source="https://developers.cloudflare.com/r2/buckets/"
                                      "create-buckets/")],
}
"""Cloudflare's names (the clouds' are in their adapters, `Kind.names`)."""
CLOUDFLARE_UNIQUE: dict[str, Unique] = {
    "cloudflare_r2_bucket": Unique(attribute="name", scope="per Cloudflare account"),
    "cloudflare_zero_trust_tunnel_cloudflared": Unique(attribute="name",
                                                       scope="per Cloudflare account"),
    "cloudflare_workers_script": Unique(attribute="script_name", scope="per Cloudflare account"),
    "cloudflare_workers_kv_namespace": Unique(attribute="title", scope="per Cloudflare account"),
    "cloudflare_hyperdrive_config": Unique(attribute="name", scope="per Cloudflare account"),
}


def name_rules(type_name: str) -> Sequence[NameRule]:
    kind = kind_of(type_name)
    return kind.names if kind is not None else CLOUDFLARE_NAMES.get(type_name, ())


def unique_name(type_name: str) -> Unique | None:
    kind = kind_of(type_name)
    return kind.unique if kind is not None else CLOUDFLARE_UNIQUE.get(type_name)


def _sources() -> str:
    """The sources of every name rule, Cloudflare's and each registered cloud's: EK141's
    source, made when it is shown (it loads every cloud adapter, which a synth need not)."""
    from edgekit.clouds import CLOUDS

    found = {r.source for rules in CLOUDFLARE_NAMES.values() for r in rules}
    found |= {r.source for c in CLOUDS.values() for k in c.kinds.values() for r in k.names}
    return "; ".join(sorted(found))


def _name_problem(value: str, spec: NameRule) -> str | None:
    if not spec.min <= len(value) <= spec.max:
        return f"is {len(value)} characters; expected {spec.min}-{spec.max}"
    if not spec.pattern.match(value):
        return f"has characters or a form the provider refuses; expected {spec.expected}"
    return None


@rule("EK141", title="provider names and labels fit each provider's length and characters",
      severity="error",
      source=lambda: "per resource type, the cloud adapter's `Kind.names` (Cloudflare's "
      "here): " + _sources(),
      fix="choose a shorter id or one with the allowed characters in {file}; edgekit never "
      "rewrites names silently")
def provider_name_rules(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            for spec in name_rules(type_name):
                value = at(body, *spec.attribute)
                if isinstance(value, str) and not is_expression(value):
                    problem = _name_problem(value, spec)
                    if problem:
                        yield stack.hit(address, f"{type_name} {'.'.join(spec.attribute)} "
                                        f"{value!r} {problem} ({spec.source})",
                                        "$." + ".".join(spec.attribute))


@rule("EK142", title="no two constructs map to the same provider-side name",
      severity="error",
      source="per resource type, the cloud adapter's `Kind.unique` (e.g. "
      "https://docs.hetzner.cloud/reference/cloud#servers-create-a-server: names unique per "
      "project); Cloudflare names are unique per account",
      fix="rename one of the constructs in {file} (ids become provider names)")
def derived_names_collide(ctx: Context) -> Iterator[Hit]:
    groups: dict[tuple[str, str], list[tuple[StackView, str]]] = defaultdict(list)
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            unique = unique_name(type_name)
            value = body.get(unique.attribute) if unique is not None else None
            if isinstance(value, str) and not is_expression(value):
                groups[(type_name, value.lower())].append((stack, address))
    for (type_name, value), owners in sorted(groups.items()):
        found = unique_name(type_name)
        if len(owners) < 2 or found is None:
            continue
        field, scope = found.attribute, found.scope
        for stack, address in owners:
            others = " and ".join(f"{s.path_of(a)} ({s.name}:{a})" for s, a in owners
                                  if (s, a) != (stack, address))
            yield stack.hit(address, f"{type_name} {field} {value!r} (from "
                            f"{stack.path_of(address)}) is also the name of {others}; names "
                            f"are unique {scope}", f"$.{field}")
