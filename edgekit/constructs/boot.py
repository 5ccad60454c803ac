"""The one user-data document a node gets at first boot.

Everything a node needs arrives here: which stack and node it is, its provider, which
services placement puts on it (read from ``var.placement`` so placement stays an OpenTofu
variable), and secrets as references (tunnel token, log sink keys, Postgres passwords),
which OpenTofu resolves and keeps sensitive. The document is written by cloud-init to
`BOOT_PATH` (mode 0600); the node's NixOS configuration reads it (see the glued-flakes
work). Its shape is versioned by `SCHEMA`.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "edgekit.boot/v1"
BOOT_PATH = "/etc/edgekit/boot.json"


def boot_document(*, stack: str, node: str, provider: str, roles: list[str],
                  placement_variable: str | None) -> dict[str, Any]:
    services: Any = []
    if placement_variable:
        services = f'${{lookup(var.{placement_variable}, "{node}", [])}}'
    return {
        "schema": SCHEMA,
        "stack": stack,
        "node": node,
        "provider": provider,
        "roles": roles,
        "services": services,
        "flake_attr": f"nixosConfigurations.{node}",
        "secrets": {},
    }


def cloud_config(boot_local: str) -> dict[str, Any]:
    """cloud-init's document, writing the boot document (a `local`) to `BOOT_PATH`."""
    return {
        "write_files": [{
            "path": BOOT_PATH,
            "permissions": "0600",
            "owner": "root:root",
            "content": f"${{jsonencode(local.{boot_local})}}",
        }],
    }


def user_data_expression(cloud_local: str, *, base64: bool = False) -> str:
    """``#cloud-config`` followed by the JSON document (JSON is valid YAML)."""
    text = f'"#cloud-config\\n${{jsonencode(local.{cloud_local})}}"'
    return f"${{base64encode({text})}}" if base64 else \
        f"#cloud-config\n${{jsonencode(local.{cloud_local})}}"
