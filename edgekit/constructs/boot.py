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
FIRST_SWITCH_PATH = "/etc/edgekit/first-switch.nix"
NIXOS_INFECT_COMMIT = "7563801d3ae68c975e4027f4e31a3906dca95f30"
NIXOS_INFECT_URL = (f"https://raw.githubusercontent.com/elitak/nixos-infect/"
                    f"{NIXOS_INFECT_COMMIT}/nixos-infect")
NIX_CHANNEL = "nixos-25.11"
# nixos-infect's names for the providers it knows how to convert (ADR 0005). Linode boots a
# custom NixOS image instead, so it has no entry.
INFECT_PROVIDER = {"hetzner": "hetznercloud", "vultr": "vultr"}

# Imported into the converted system by nixos-infect (NIXOS_IMPORT): a oneshot unit that
# switches, once, to the node's configuration at the pinned revision in boot.json.
FIRST_SWITCH_NIX = """{ pkgs, ... }: {
  nix.settings.experimental-features = [ "nix-command" "flakes" ];
  systemd.services.edgekit-first-switch = {
    wantedBy = [ "multi-user.target" ];
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    unitConfig.ConditionPathExists = "!/var/lib/edgekit/switched";
    serviceConfig.Type = "oneshot";
    path = [ pkgs.jq pkgs.git pkgs.nixos-rebuild ];
    script = ''
      flake=$(jq -r .deploy.flake /etc/edgekit/boot.json)
      nixos-rebuild switch --flake "$flake"
      mkdir -p /var/lib/edgekit && touch /var/lib/edgekit/switched
    '';
  };
}
"""


def deploy_section(*, provider: str, node: str, repository: str, ref: str,
                   revision: str) -> dict[str, Any]:
    """Pull deployment (ADR 0005): the pinned first switch and the ref autoUpgrade follows.

    `revision` is an expression (``${var.deploy_revision}``): a deploy is one reviewed value.
    """
    return {
        "mode": "pull",
        "flake": f"{repository}?rev={revision}#{node}",
        "follow": f"{repository}?ref={ref}#{node}",
        "convert": "nixos-infect" if provider in INFECT_PROVIDER else "custom-image",
    }


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


def cloud_config(boot_local: str, provider: str | None = None) -> dict[str, Any]:
    """cloud-init's document: the boot document (a `local`) at `BOOT_PATH`, and for
    providers nixos-infect converts, the conversion with the first-switch unit."""
    document: dict[str, Any] = {
        "write_files": [{
            "path": BOOT_PATH,
            "permissions": "0600",
            "owner": "root:root",
            "content": f"${{jsonencode(local.{boot_local})}}",
        }],
    }
    if provider in INFECT_PROVIDER:
        document["write_files"].append({"path": FIRST_SWITCH_PATH, "permissions": "0644",
                                        "content": FIRST_SWITCH_NIX.replace("${", "$${")})
        document["runcmd"] = [
            f"curl -fsSL {NIXOS_INFECT_URL} | PROVIDER={INFECT_PROVIDER[provider]} "
            f"NIX_CHANNEL={NIX_CHANNEL} NIXOS_IMPORT={FIRST_SWITCH_PATH} "
            "bash 2>&1 | tee /var/log/nixos-infect.log",
        ]
    return document


def user_data_expression(cloud_local: str, *, base64: bool = False) -> str:
    """``#cloud-config`` followed by the JSON document (JSON is valid YAML)."""
    text = f'"#cloud-config\\n${{jsonencode(local.{cloud_local})}}"'
    return f"${{base64encode({text})}}" if base64 else \
        f"#cloud-config\n${{jsonencode(local.{cloud_local})}}"
