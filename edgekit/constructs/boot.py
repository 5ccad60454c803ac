"""The one user-data document a node gets at first boot, and nothing that changes later.

Everything a node needs to become itself arrives here: which stack and node it is, its
provider, its roles, where its configuration is pulled from (the ``deploy/<env>`` ref, never
a revision: a deploy moves the ref, ADR 0005), and secrets as references (tunnel tokens,
log sink keys, Postgres passwords), which OpenTofu resolves and keeps sensitive. The
document is written by cloud-init to `BOOT_PATH` (mode 0600); the node's NixOS
configuration reads it.

Every cloud replaces a server when its user data changes (`Cloud.first_boot_only`: the
arguments are ForceNew), so the document holds nothing a deploy or a
placement change touches, and `VpsNode` ignores later changes to it
(``lifecycle.ignore_changes``): user data is first-boot only.

Conversion to NixOS (every provider, ADR 0005/0007): nixos-infect on the stock Debian 12
image with ``NO_REBOOT``; nixos-infect rewrites ``/etc/NIXOS_LUSTRATE`` (the paths the first
NixOS boot keeps from the old root), so ``etc/edgekit`` is appended only after it ran, then
the machine reboots into NixOS. There the first-switch unit builds the node's configuration
with ``nixos-rebuild boot`` (a ``switch`` would stop the very unit running it: the node's
configuration does not contain it) and reboots into it.
"""

from __future__ import annotations

from typing import Any

from edgekit.clouds import CLOUDS, cloud

SCHEMA = "edgekit.boot/v1"
BOOT_DIR = "/etc/edgekit"
BOOT_PATH = f"{BOOT_DIR}/boot.json"
FIRST_SWITCH_PATH = f"{BOOT_DIR}/first-switch.nix"
LUSTRATE_FILE = "/etc/NIXOS_LUSTRATE"
LUSTRATE_KEEP = BOOT_DIR.lstrip("/")
"""NixOS's lustrate step reads paths relative to the root, one a line."""
NIXOS_INFECT_COMMIT = "7563801d3ae68c975e4027f4e31a3906dca95f30"
NIXOS_INFECT_URL = (f"https://raw.githubusercontent.com/elitak/nixos-infect/"
                    f"{NIXOS_INFECT_COMMIT}/nixos-infect")
NIXOS_INFECT_SHA256 = "4cc3b5f8e4333ab4f02906d80a836c1b36e2887a51abf4eba4d9113b33934393"
"""sha256 of `nixos-infect` at `NIXOS_INFECT_COMMIT` (``git show <commit>:nixos-infect``).
What that version does, read in it: appends ``etc/nixos``, ``etc/resolv.conf``, the channels
and the SSH host keys to /etc/NIXOS_LUSTRATE, then reboots unless ``NO_REBOOT`` is set;
imports ``NIXOS_IMPORT`` into its configuration.nix; autodetects some clouds; puts GRUB
on the first of /dev/vda, /dev/sda, … on BIOS machines."""
NIX_CHANNEL = "nixos-25.11"
DEPLOY_KEYS = ("mode", "flake", "follow", "convert")
"""What a node's deploy section must say (`deploy_section` writes all of them)."""

# Imported into the converted system by nixos-infect (NIXOS_IMPORT): a oneshot unit that
# builds, once, the node's configuration from the deploy ref in boot.json and reboots into
# it. `nixos-rebuild boot`, not `switch`: the node's configuration has no such unit, so a
# switch would stop this unit (and its nixos-rebuild) half-way.
FIRST_SWITCH_NIX = """{ pkgs, lib, ... }: {
  nix.settings.experimental-features = [ "nix-command" "flakes" ];
  # @PROVIDER@
  systemd.services.edgekit-first-switch = {
    wantedBy = [ "multi-user.target" ];
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    unitConfig.ConditionPathExists = [ "/etc/edgekit/boot.json" "!/var/lib/edgekit/switched" ];
    serviceConfig.Type = "oneshot";
    path = [ pkgs.jq pkgs.git pkgs.nixos-rebuild pkgs.systemd ];
    script = ''
      flake=$(jq -r .deploy.flake /etc/edgekit/boot.json)
      nixos-rebuild boot --flake "$flake"
      mkdir -p /var/lib/edgekit && touch /var/lib/edgekit/switched
      systemctl --no-block reboot
    '';
  };
}
"""


def first_switch_nix(provider: str) -> str:
    """The module nixos-infect imports (NIXOS_IMPORT) on `provider`."""
    extra = cloud(provider).infect_boot  # what nixos-infect's own generation needs there
    line = extra if extra else "# no provider-specific boot settings"
    return FIRST_SWITCH_NIX.replace("# @PROVIDER@", line)


def deploy_section(*, provider: str, node: str, repository: str, ref: str) -> dict[str, Any]:
    """Pull deployment (ADR 0005): the first switch and autoUpgrade both follow `ref`
    (``deploy/<env>``). No revision: moving the ref is the deploy, and user data never
    changes with it."""
    follow = f"{repository}?ref={ref}#{node}"
    return {"mode": "pull", "flake": follow, "follow": follow,
            "convert": "nixos-infect" if provider in CLOUDS else "none"}


def boot_document(*, stack: str, node: str, provider: str, roles: list[str]) -> dict[str, Any]:
    """Which services run on the node is not here: the node's flake configuration
    (placement in CUE) says it, so a placement change is a deploy, not a new server."""
    return {
        "schema": SCHEMA,
        "stack": stack,
        "node": node,
        "provider": provider,
        "roles": roles,
        "flake_attr": f"nixosConfigurations.{node}",
        "secrets": {},
    }


def infect_command(provider: str) -> str:
    """The one runcmd line converting the stock image: fetch, check, run without reboot, keep
    /etc/edgekit through the lustrate step, reboot. Chained with ``&&``: any failure stops
    it before the reboot, with the log in /var/log/nixos-infect.log."""
    name = cloud(provider).infect_provider  # its per-host network quirks; None: generic
    env = " ".join([*([f"PROVIDER={name}"] if name else []), "NO_REBOOT=1",
                    f"NIX_CHANNEL={NIX_CHANNEL}", f"NIXOS_IMPORT={FIRST_SWITCH_PATH}"])
    return (f"curl -fsSL -o /root/nixos-infect {NIXOS_INFECT_URL}"
            f" && echo '{NIXOS_INFECT_SHA256}  /root/nixos-infect' | sha256sum --check --quiet"
            f" && {env} bash /root/nixos-infect > /var/log/nixos-infect.log 2>&1"
            f" && grep -qx etc/nixos {LUSTRATE_FILE}"
            f" && echo {LUSTRATE_KEEP} >> {LUSTRATE_FILE}"
            " && systemctl reboot")


def cloud_config(boot_local: str, provider: str | None = None) -> dict[str, Any]:
    """cloud-init's document: the boot document (a `local`) at `BOOT_PATH`, and for a node
    that deploys by pull, the conversion with the first-switch unit."""
    document: dict[str, Any] = {
        "write_files": [{
            "path": BOOT_PATH,
            "permissions": "0600",
            "owner": "root:root",
            "content": f"${{jsonencode(local.{boot_local})}}",
        }],
    }
    if provider in CLOUDS:
        content = first_switch_nix(provider)
        document["write_files"].append({"path": FIRST_SWITCH_PATH, "permissions": "0644",
                                        "content": content.replace("${", "$${")})
        document["runcmd"] = [infect_command(provider)]
    return document

