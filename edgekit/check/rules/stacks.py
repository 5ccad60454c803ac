"""Between stacks: one owner per public hostname and per zone singleton, and no stack that
manages the bucket its own state lives in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import at, is_expression
from edgekit.clouds import kind_of

Owner = tuple[StackView, str, str]  # stack, address, pointer


def _hostnames(stack: StackView) -> Iterator[tuple[str, str, str]]:
    """(hostname, address, pointer) of every public hostname the stack claims."""
    for type_name, address, body in stack.resources(
            "cloudflare_dns_record", "cloudflare_workers_custom_domain",
            "cloudflare_workers_route"):
        if type_name == "cloudflare_dns_record":
            name, pointer = body.get("name"), "$.name"
        elif type_name == "cloudflare_workers_custom_domain":
            name, pointer = body.get("hostname"), "$.hostname"
        else:
            pattern = body.get("pattern")
            name = pattern.split("/", 1)[0] if isinstance(pattern, str) else None
            pointer = "$.pattern"
        if isinstance(name, str) and not is_expression(name) and "*" not in name:
            yield name.lower().rstrip("."), address, pointer


def _shared(groups: dict[str, list[Owner]], what: str) -> Iterator[Hit]:
    for key, owners in sorted(groups.items()):
        stacks = sorted({s.name for s, _, _ in owners})
        if len(stacks) < 2:
            continue
        for stack, address, pointer in owners:
            others = ", ".join(f"{s.name}:{a}" for s, a, _ in owners if s is not stack)
            yield stack.hit(address, f"{what} {key} is also managed by {others}; one stack "
                            "must own it", pointer)


@rule("EK131", title="a public hostname is claimed by one stack only",
      severity="error",
      source="https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/"
      "records-with-same-name/ (a proxied name has one owner; two stacks overwrite "
      "each other)",
      fix="give each environment its own hostnames in {file} (the zone's host_label: "
      "CloudflareZone(host_label=...), or host_label in CUE)")
def hostname_claimed_twice(ctx: Context) -> Iterator[Hit]:
    groups: dict[str, list[Owner]] = defaultdict(list)
    for stack in ctx.stacks:
        for name, address, pointer in _hostnames(stack):
            groups[name].append((stack, address, pointer))
    yield from _shared(groups, "hostname")


ZONE_SINGLETONS = {
    "cloudflare_zone_setting": "setting_id",
    "cloudflare_zone_dnssec": "",
    "cloudflare_bot_management": "",
    "cloudflare_argo_smart_routing": "",
    "cloudflare_zone_cache_reserve": "",
    "cloudflare_tiered_cache": "",
}


@rule("EK132", title="a zone singleton (entrypoint ruleset per phase, zone setting) is "
      "managed from one stack", severity="error",
      source="https://developers.cloudflare.com/ruleset-engine/about/rulesets/#entry-point-"
      "ruleset (one entry point ruleset per phase and zone)",
      fix="move zone-wide resources into one `zone` stack that covers every environment")
def zone_singleton_twice(ctx: Context) -> Iterator[Hit]:
    groups: dict[str, list[Owner]] = defaultdict(list)
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources("cloudflare_ruleset",
                                                        *ZONE_SINGLETONS):
            zone = body.get("zone_id")
            if not isinstance(zone, str):
                continue
            if type_name == "cloudflare_ruleset":
                if body.get("kind") != "zone" or not isinstance(body.get("phase"), str):
                    continue
                key, pointer = f"entrypoint ruleset {body['phase']}", "$.phase"
            else:
                field = ZONE_SINGLETONS[type_name]
                key = f"{type_name} {body.get(field)}" if field else type_name
                pointer = f"$.{field}" if field else "$.zone_id"
            groups[f"{zone}: {key}"].append((stack, address, pointer))
    for key, owners in sorted(groups.items()):
        if len(owners) < 2:
            continue
        for stack, address, pointer in owners:
            others = ", ".join(f"{s.name}:{a}" for s, a, _ in owners if a != address or
                               s is not stack)
            yield stack.hit(address, f"zone {key} is also managed by {others}; a zone has "
                            "one of it", pointer)


@rule("EK133", title="a stack does not manage the bucket its own state lives in",
      severity="error",
      source="https://opentofu.org/docs/language/settings/backends/s3/ (the bucket must "
      "exist before `tofu init`)",
      fix="create the state bucket in a bootstrap stack with local state, and only use it "
      "as the backend elsewhere")
def own_backend_bucket(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        bucket = at(stack.document, "terraform", "backend", "s3", "bucket")
        if not isinstance(bucket, str):
            continue
        for type_name, address, body in stack.resources():
            kind = kind_of(type_name)
            if type_name not in ("cloudflare_r2_bucket", "aws_s3_bucket") and (
                    kind is None or kind.role != "bucket"):
                continue
            name = body.get("name", body.get("bucket", body.get("label")))
            if name == bucket:
                yield stack.hit(address, f"stack {stack.name!r} keeps its state in bucket "
                                f"{bucket!r} and also manages that bucket: `tofu init` "
                                "fails on an empty account, and a destroy deletes the state",
                                "$.name")
