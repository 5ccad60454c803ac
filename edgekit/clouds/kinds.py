"""What edgekit's check rules know about each resource type of a cloud (ADR 0030).

Every cloud adapter carries a table `Cloud.kinds`: resource type → `Kind`. The rules in
`edgekit.check.rules` read these tables and never name a cloud's resource type themselves,
so a new cloud is checked by the same rules the day its module lands:

    role              what the resource is (``server``, ``firewall``, ``volume``, ...): the
                      graph draws servers and volumes; EK133 reads buckets
    names, unique     provider-side names: length and characters (EK141), and the scope in
                      which two resources may not share one (EK142)
    replace_forcing   arguments whose change replaces the resource (EK171)
    region, size      arguments the cloud's catalogue must offer (EK151)
    inbound           the firewall's inbound allow rules as (pointer, CIDRs, port) (EK101,
                      EK188)
    ports             the port format the provider parses (EK103)
    enums             enumerations the provider validates but its schema dump does not
                      describe (EK105)
    checks            the provider's other apply-time validators, as functions (EK104)
    mock              defaults of the mocked resource in the generated ``tofu test``

A resource whose type starts with a cloud's provider name but is missing from its table is
reported (EK190): no rule skips a type without saying so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

Role = Literal["server", "firewall", "firewall-rule", "network", "subnet", "volume",
               "attachment", "address", "snapshot", "load-balancer", "database", "bucket",
               "tag", "other"]

HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
"""RFC 1123 host names: letters, digits and '-' in dot-separated labels."""
HOSTNAME_FORM = "a hostname (RFC 1123): letters, digits, '-', dot-separated labels"


@attrs.frozen(kw_only=True)
class NameRule:
    """Length and characters of one provider-side name (EK141)."""

    attribute: tuple[str, ...]
    """Pointer parts below the resource (``("label",)``)."""
    min: int
    max: int
    pattern: re.Pattern[str]
    expected: str
    """The allowed form in words (the message never shows the regex)."""
    source: str


@attrs.frozen(kw_only=True)
class Unique:
    """A name no two resources of the type may share within `scope` (EK142)."""

    attribute: str
    scope: str
    """Where the name must be unique, in words: ``per Hetzner project``."""


@attrs.frozen(kw_only=True)
class Inbound:
    """One inbound allow rule of a firewall as written in the JSON."""

    pointer: str
    """Where its sources are (``$.rule[0].source_ips``)."""
    cidrs: tuple[str, ...]
    """The sources; expressions (``${...}``) are left as written."""
    port: str | None = None
    """The port or range as the provider writes it; None: every port."""
    firewall: str | None = None
    """The firewall this rule belongs to, when the rule is a resource of its own
    (``vultr_firewall_group.x``); None: the resource itself is the firewall."""


@attrs.frozen(kw_only=True)
class PortFormat:
    """Where a firewall writes ports and the form the provider parses (EK103)."""

    block: str | None
    """The nested block holding the field; None: a top-level argument."""
    field: str
    pattern: re.Pattern[str]
    form: str


InboundOf = Callable[[Mapping[str, Any]], Iterable[Inbound]]
CheckOf = Callable[[Mapping[str, Any]], Iterable[tuple[str, str]]]
"""A provider-specific check of one resource body: (pointer, message) per problem."""


@attrs.frozen(kw_only=True)
class Kind:
    """What the rules know about one resource type (see the module docstring)."""

    role: Role = "other"
    names: tuple[NameRule, ...] = ()
    unique: Unique | None = None
    replace_forcing: tuple[tuple[str, ...], ...] = ()
    region: str | None = None
    size: str | None = None
    inbound: InboundOf | None = attrs.field(default=None, eq=False)
    ports: tuple[PortFormat, ...] = ()
    enums: Mapping[tuple[str, ...], tuple[str, ...]] = attrs.field(factory=dict)
    checks: tuple[CheckOf, ...] = attrs.field(default=(), eq=False)
    mock: Mapping[str, object] = attrs.field(factory=dict)
    source: str = ""
    """Where the facts of this kind were read (provider source file or documentation)."""


def text_list(value: Any) -> list[str]:
    """A string or a list of strings as a list (other items dropped)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block given as one object or a list of objects, as a list."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def reference_target(value: Any) -> str | None:
    """``vultr_firewall_group.x`` from ``"${vultr_firewall_group.x.id}"``, else None."""
    found = re.fullmatch(r"\$\{([a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_-]*)\.[a-z_]+\}",
                         value) if isinstance(value, str) else None
    return found.group(1) if found else None
