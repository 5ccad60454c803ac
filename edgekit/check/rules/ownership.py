"""One owner per attachment: a relation between two resources is managed from one place,
or every plan undoes what the other owner did (EK209)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, rule
from edgekit.check.walk import strings

_SERVER_ID = re.compile(r"\$\{hcloud_server\.([A-Za-z0-9_-]+)\.id\}")


@rule("EK209", title="a Hetzner firewall attachment has one owner", severity="error",
      source="hetznercloud/hcloud 1.68 website/docs/r/firewall_attachment.html.md (one "
      "hcloud_firewall_attachment per firewall; with firewall_ids on the server, set "
      "ignore_remote_firewall_ids) and internal/server/resource.go (firewall_ids is read "
      "back from every firewall attached to the server, and an update removes the ones not "
      "listed)", fix="set ignore_remote_firewall_ids = true on the server (firewall_ids then "
      "only attaches at creation), or attach every firewall the same way")
def firewall_attachment_owner(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        servers = {address.split(".", 1)[1]: (address, body)
                   for _, address, body in stack.resources("hcloud_server")}
        owners: dict[str, list[str]] = {}
        for _, address, body in stack.resources("hcloud_firewall_attachment"):
            firewall = body.get("firewall_id")
            if isinstance(firewall, str):
                owners.setdefault(firewall, []).append(address)
            for _, text in strings(body.get("server_ids"), "$.server_ids"):
                for name in _SERVER_ID.findall(text):
                    server = servers.get(name)
                    if server is None:
                        continue
                    server_address, server_body = server
                    if server_body.get("firewall_ids") and \
                            server_body.get("ignore_remote_firewall_ids") is not True:
                        yield stack.hit(server_address, f"lists firewall_ids and is also "
                                        f"attached to a firewall by {address}: every plan "
                                        "would remove that firewall and the next apply put "
                                        "it back", "$.firewall_ids")
        for firewall, attachments in sorted(owners.items()):
            for address in attachments[1:]:
                yield stack.hit(address, f"{firewall} is attached by {attachments[0]} "
                                "already; the provider allows one hcloud_firewall_attachment "
                                "per firewall", "$.firewall_id")
