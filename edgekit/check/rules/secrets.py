"""Secrets never live in the repository: a plain ``env`` value that looks like one is
refused, whether it is written in CUE or in a Python stack's `Service`."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from edgekit.check.engine import Context, Hit, rule
from edgekit.check.layouts import hit

if TYPE_CHECKING:  # annotations only: a synth that recorded no layout never loads them
    from edgekit.constructs.facts import Layout, Where

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$|^KEY$|"
                         r"APIKEY|API_KEY|DSN$|DATABASE_URL$)")
SECRET_VALUE = [
    (re.compile(r"\b[sr]k_(live|test)_[0-9A-Za-z]{8,}"), "a Stripe secret key"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"), "a PEM block"),
    (re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), "a Slack token"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
]
TOKEN_LIKE = re.compile(r"^[A-Za-z0-9+/=_\-]{24,}$")
HARMLESS = {"", "true", "false", "info", "debug", "warn", "error"}


def entropy_bits(text: str) -> float:
    """Shannon entropy per character."""
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def looks_secret(name: str, value: str) -> str | None:
    """Why `name=value` looks like a secret, or None."""
    if value.lower() in HARMLESS:
        return None
    for pattern, what in SECRET_VALUE:
        if pattern.search(value):
            return f"its value looks like {what}"
    if SECRET_NAME.search(name) and not value.startswith("/"):
        return "its name says it is a secret"
    return None


def looks_random(value: str) -> str | None:
    """Why `value` looks like a generated token (a weaker sign than `looks_secret`)."""
    if TOKEN_LIKE.match(value) and entropy_bits(value) >= 4.0 and \
            len({c.isdigit() for c in value} | {c.isupper() for c in value}) > 1:
        return f"its value is a random-looking string ({entropy_bits(value):.1f} bits/char)"
    return None


def _env_values(ctx: Context) -> Iterator[tuple[Layout, str, Where, str, str]]:
    """(layout, service, where it was given, key, value) of every plain env value, each
    service of one source once (CUE's services are every environment's)."""
    seen: set[tuple[str, str]] = set()
    from_cue = {layout.stack for layout in ctx.layouts if layout.origin == "cue"}
    for layout in ctx.layouts:
        if layout.origin == "constructs" and layout.stack in from_cue:
            continue  # its services are CUE's, judged (and located) there
        for name, (service, where) in sorted(layout.services.items()):
            if (where.address or where.path, name) not in seen:
                seen.add((where.address or where.path, name))
                for key, value in sorted(service.env.items()):
                    yield layout, name, where, key, value


@rule("EK111", title="no secret as a plain env value (in CUE or a Python stack)",
      severity="error",
      source="adr/0003-cue-exports-and-generated-files.md (values in cue/ and stacks/ are "
      "committed; CUE's are generated into services/*/edgekit.json)",
      fix="move it to the service's `secrets` list (a name; the value reaches the node as a "
      "secret), and rotate it: it is in the git history")
def plain_secret_env(ctx: Context) -> Iterator[Hit]:
    for layout, service, where, key, value in _env_values(ctx):
        why = looks_secret(key, value)
        if why:
            yield hit(layout, where, f"service {service!r} env {key} is a plain value "
                      f"and {why}", f".env.{key}")


@rule("EK112", title="plain env values that look like generated tokens",
      severity="warning",
      source="adr/0003-cue-exports-and-generated-files.md (values in cue/ are committed)",
      fix="if it is a secret, move it to `secrets` and rotate it; if not, suppress EK112 on "
      "the stack with the reason")
def random_looking_env(ctx: Context) -> Iterator[Hit]:
    for layout, service, where, key, value in _env_values(ctx):
        why = None if looks_secret(key, value) else looks_random(value)
        if why:
            yield hit(layout, where, f"service {service!r} env {key} is a plain value "
                      f"and {why}", f".env.{key}")
