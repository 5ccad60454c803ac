"""Resources of a cloud that its adapter does not describe: no rule skips them silently."""

from __future__ import annotations

from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, rule
from edgekit.clouds import cloud_of_type


@rule("EK190", title="every resource of a cloud is a type its adapter describes",
      severity="warning",
      source="edgekit/clouds/<cloud>.py `Kind` tables (ADR 0030): what the firewall (EK101, "
      "EK103, EK188), naming (EK141, EK142), lifecycle (EK171) and catalogue (EK151) rules "
      "know of each type",
      fix="describe the type in the cloud's `KINDS` table in edgekit/clouds/<cloud>.py (its "
      "role, names, replace-forcing arguments, inbound rules), or suppress EK190 on the "
      "construct with the reason")
def undescribed_type(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, _ in stack.resources():
            owner = cloud_of_type(type_name)
            if owner is not None and type_name not in owner.kinds:
                yield stack.hit(address, f"{type_name} is a {owner.name} resource that "
                                f"edgekit's {owner.name} adapter does not describe: the "
                                "firewall, naming and lifecycle rules cannot check it")
