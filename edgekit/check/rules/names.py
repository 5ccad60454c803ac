"""Provider-side names: each provider's length and character rules, and no two constructs
whose names would land on the same provider-side name."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

import attrs

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import at, is_expression

HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
LINODE_LABEL = re.compile(r"^[A-Za-z0-9](?!.*(--|__|\.\.))[A-Za-z0-9._-]*[A-Za-z0-9]$")
LETTERS_DIGITS_DASHES = re.compile(r"^[A-Za-z0-9-]+$")
R2_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
DO_NAME = re.compile(r"^[A-Za-z0-9.-]+$")
DO_VOLUME = re.compile(r"^[a-z][a-z0-9-]*$")
DO_TAG = re.compile(r"^[a-zA-Z0-9:\-_]+$")
WORKER_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")


@attrs.frozen
class NameRule:
    pointer: tuple[str, ...]
    min: int
    max: int
    pattern: re.Pattern[str]
    expected: str
    source: str


HETZNER_API = "https://docs.hetzner.cloud/reference/cloud#servers-create-a-server"
LINODE_API = "https://techdocs.akamai.com/linode-api/reference/post-linode-instance"
NAME_RULES: dict[str, list[NameRule]] = {
    "hcloud_server": [NameRule(("name",), 1, 63, HOSTNAME, "a hostname (RFC 1123): letters, "
                               "digits, '-', dot-separated labels", HETZNER_API)],
    "hcloud_firewall": [NameRule(("name",), 1, 128, re.compile(r"^\S(.*\S)?$"),
                                 "at most 128 characters, no leading or trailing space",
                                 "https://docs.hetzner.cloud/reference/cloud#firewalls-"
                                 "create-a-firewall (name limited to 128 characters)")],
    "linode_instance": [NameRule(("label",), 3, 50, LINODE_LABEL,
                                 "letters, digits, '-', '_', '.', starting and ending with a "
                                 "letter or digit, no '--', '__' or '..'",
                                 "linode 3.13.0 linode/instance/schema_resource.go "
                                 f"(StringLenBetween(3, 50)); {LINODE_API}")],
    "linode_firewall": [NameRule(("label",), 3, 32, LINODE_LABEL,
                                 "letters, digits, '-', '_', '.', starting and ending with a "
                                 "letter or digit, no '--', '__' or '..'",
                                 "linode 3.13.0 linode/firewall/framework_schema_resource.go "
                                 "(LengthBetween(3, 32))")],
    "linode_vpc": [NameRule(("label",), 1, 64, LETTERS_DIGITS_DASHES,
                            "ASCII letters, digits and dashes",
                            "linode 3.13.0 docs/resources/vpc.md")],
    "linode_vpc_subnet": [NameRule(("label",), 1, 64, LETTERS_DIGITS_DASHES,
                                   "ASCII letters, digits and dashes",
                                   "linode 3.13.0 docs/resources/vpc_subnet.md")],
    "vultr_instance": [NameRule(("hostname",), 1, 63, HOSTNAME, "a hostname (RFC 1123)",
                                "vultr 2.32.0 vultr/resource_vultr_instance.go (hostname, "
                                "ForceNew)")],
    "digitalocean_droplet": [NameRule(("name",), 1, 255, DO_NAME,
                                      "hostname characters: letters, digits, '.', '-'",
                                      "https://docs.digitalocean.com/reference/api/"
                                      "digitalocean/#tag/Droplets/operation/droplets_create")],
    "digitalocean_vpc": [NameRule(("name",), 1, 255, DO_NAME,
                                  "alphanumeric characters, dashes and periods",
                                  "digitalocean 2.99.1 docs/resources/vpc.md")],
    "digitalocean_volume": [NameRule(("name",), 1, 64, DO_VOLUME,
                                     "lowercase letters, digits and '-', starting with a "
                                     "letter", "digitalocean 2.99.1 docs/resources/volume.md")],
    "digitalocean_firewall": [NameRule(("name",), 1, 255, DO_NAME,
                                       "alphanumeric characters, dashes and periods",
                                       "https://docs.digitalocean.com/reference/api/"
                                       "digitalocean/#tag/Firewalls/operation/firewalls_create")],
    "digitalocean_tag": [NameRule(("name",), 1, 255, DO_TAG,
                                  "letters, digits, ':', '-' and '_'",
                                  "digitalocean 2.99.1 digitalocean/tag/tags.go (tagNameRe)")],
    "cloudflare_workers_script": [NameRule(("script_name",), 1, 63, WORKER_NAME,
                                           "lowercase letters, digits, '-' and '_', not "
                                           "starting with '-'",
                                           "https://developers.cloudflare.com/api/resources/"
                                           "workers/subresources/scripts/ (workers_script_name "
                                           "^[a-z0-9_][a-z0-9-_]*$; at most 63 characters)")],
    "cloudflare_r2_bucket": [NameRule(("name",), 3, 63, R2_BUCKET,
                                      "lowercase letters, digits and '-', starting and ending "
                                      "with a letter or digit",
                                      "https://developers.cloudflare.com/r2/buckets/"
                                      "create-buckets/")],
}


def _name_problem(value: str, spec: NameRule) -> str | None:
    if not spec.min <= len(value) <= spec.max:
        return f"is {len(value)} characters; expected {spec.min}-{spec.max}"
    if not spec.pattern.match(value):
        return f"has characters or a form the provider refuses; expected {spec.expected}"
    return None


@rule("EK141", title="provider names and labels fit each provider's length and characters",
      severity="error",
      source="per attribute: " + "; ".join(sorted({r.source for rules in NAME_RULES.values()
                                                   for r in rules})),
      fix="choose a shorter id or one with the allowed characters; edgekit never rewrites "
      "names silently")
def provider_name_rules(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources(*NAME_RULES):
            for spec in NAME_RULES[type_name]:
                value = at(body, *spec.pointer)
                if isinstance(value, str) and not is_expression(value):
                    problem = _name_problem(value, spec)
                    if problem:
                        yield stack.hit(address, f"{type_name} {'.'.join(spec.pointer)} "
                                        f"{value!r} {problem} ({spec.source})",
                                        "$." + ".".join(spec.pointer))


UNIQUE_NAMES: dict[str, tuple[str, str]] = {
    "hcloud_server": ("name", "per Hetzner project"),
    "hcloud_firewall": ("name", "per Hetzner project"),
    "hcloud_network": ("name", "per Hetzner project"),
    "hcloud_volume": ("name", "per Hetzner project"),
    "linode_instance": ("label", "per Linode account"),
    "linode_firewall": ("label", "per Linode account"),
    "linode_vpc": ("label", "per Linode account"),
    "cloudflare_r2_bucket": ("name", "per Cloudflare account"),
    "cloudflare_zero_trust_tunnel_cloudflared": ("name", "per Cloudflare account"),
    "cloudflare_workers_script": ("script_name", "per Cloudflare account"),
    "cloudflare_workers_kv_namespace": ("title", "per Cloudflare account"),
    "cloudflare_hyperdrive_config": ("name", "per Cloudflare account"),
}


@rule("EK142", title="no two constructs map to the same provider-side name",
      severity="error",
      source="https://docs.hetzner.cloud/reference/cloud#servers-create-a-server (names "
      "unique per project); Cloudflare and Linode names are unique per account",
      fix="rename one of the constructs (ids become provider names)")
def derived_names_collide(ctx: Context) -> Iterator[Hit]:
    groups: dict[tuple[str, str], list[tuple[StackView, str]]] = defaultdict(list)
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources(*UNIQUE_NAMES):
            field, _ = UNIQUE_NAMES[type_name]
            value = body.get(field)
            if isinstance(value, str) and not is_expression(value):
                groups[(type_name, value.lower())].append((stack, address))
    for (type_name, value), owners in sorted(groups.items()):
        if len(owners) < 2:
            continue
        field, scope = UNIQUE_NAMES[type_name]
        for stack, address in owners:
            others = " and ".join(f"{s.path_of(a)} ({s.name}:{a})" for s, a in owners
                                  if (s, a) != (stack, address))
            yield stack.hit(address, f"{type_name} {field} {value!r} (from "
                            f"{stack.path_of(address)}) is also the name of {others}; names "
                            f"are unique {scope}", f"$.{field}")
