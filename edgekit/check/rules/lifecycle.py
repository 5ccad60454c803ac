"""Deploys never replace servers: a replace-forcing attribute does not depend on a value
that changes every deploy."""

from __future__ import annotations

from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, rule
from edgekit.check.walk import at, reaches, text_list
from edgekit.clouds import kind_of

PER_DEPLOY_VARIABLES = frozenset({"deploy_revision"})
"""Variables set anew on every deploy (ADR 0005: TF_VAR_deploy_revision=$(git rev-parse HEAD))."""
PER_RUN_FUNCTIONS = frozenset({"timestamp", "plantimestamp", "uuid", "bcrypt"})

@rule("EK171", title="no replace-forcing attribute depends on a per-deploy value",
      severity="error",
      source="per resource type, the cloud adapter's `Kind.replace_forcing`: vultr 2.32.0 "
      "vultr/resource_vultr_instance.go (user_data ForceNew); linode 3.13.0 "
      "linode/instance/schema_resource.go (metadata.user_data ForceNew); digitalocean "
      "2.99.1 digitalocean/droplet/resource_droplet.go (user_data ForceNew); hcloud "
      "docs/resources/server.md (a user_data change replaces the server)",
      fix="keep per-deploy values out of first-boot data (nodes pull the revision), or add "
      "the attribute to lifecycle.ignore_changes")
def replace_on_every_deploy(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            kind = kind_of(type_name)
            if kind is None or not kind.replace_forcing:
                continue
            ignored = set(text_list(at(body, "lifecycle", "ignore_changes")))
            if "all" in ignored:
                continue
            for parts in kind.replace_forcing:
                if ".".join(parts) in ignored or parts[0] in ignored:
                    continue
                value = at(body, *parts)
                if value is None:
                    continue
                changing = sorted({f"var.{name}" if kind == "var" else f"{name}()"
                                   for kind, name in reaches(stack.document, value)
                                   if (kind == "var" and name in PER_DEPLOY_VARIABLES) or
                                   (kind == "call" and name in PER_RUN_FUNCTIONS)})
                if changing:
                    yield stack.hit(address, f"{'.'.join(parts)} depends on "
                                    f"{', '.join(changing)}, which changes on every deploy; "
                                    f"a change replaces the {type_name} (a new server, its "
                                    "disk lost)", "$." + ".".join(parts))
