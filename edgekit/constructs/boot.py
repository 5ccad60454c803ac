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
the machine reboots into NixOS. There the first-switch unit runs the node's deploy agent
(``edgekit/deploy/agent.py``, written by cloud-init beside the boot document) in its
``first-switch`` mode: it builds the node's configuration from the node's ref (else the
environment's), retries a failed attempt with backoff a bounded number of times, reports
each attempt to ``status/<env>/<node>.json`` like every later switch (ADR 0034), and sets the
new generation to boot (a ``switch`` would stop the very unit running it: the node's
configuration does not contain it); the unit then reboots into it.
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

from edgekit.clouds import CLOUDS, cloud
from edgekit.deploy.refs import AGENT_SOURCE, follow_refs

SCHEMA = "edgekit.boot/v1"
BOOT_DIR = "/etc/edgekit"
BOOT_PATH = f"{BOOT_DIR}/boot.json"
FIRST_SWITCH_PATH = f"{BOOT_DIR}/first-switch.nix"
AGENT_PATH = f"{BOOT_DIR}/deploy-agent.py"
"""The deploy agent's copy the first switch runs (the node's configuration runs its own)."""
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
DEPLOY_KEYS = ("mode", "flake", "follow", "convert", "repository", "refs")
"""What a node's deploy section must say (`deploy_section` writes all of them)."""

# Imported into the converted system by nixos-infect (NIXOS_IMPORT): a oneshot unit that
# runs the deploy agent's first switch (the node's ref, else the environment's; bounded
# retries with backoff, each attempt reported) and reboots into what it set to boot. The
# agent sets the boot entry, not a switch: the node's configuration has no such unit, so a
# switch would stop this unit half-way. When every attempt failed the unit fails, and
# systemd starts another series of attempts half an hour later.
FIRST_SWITCH_NIX = """{ pkgs, lib, ... }: {
  nix.settings.experimental-features = [ "nix-command" "flakes" ];
  # @PROVIDER@
  systemd.services.edgekit-first-switch = {
    wantedBy = [ "multi-user.target" ];
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    unitConfig.ConditionPathExists = [ "/etc/edgekit/boot.json" "!/var/lib/edgekit/switched" ];
    serviceConfig = { Type = "oneshot"; Restart = "on-failure"; RestartSec = "30min"; };
    path = [ pkgs.python3 pkgs.git pkgs.nix pkgs.systemd ];
    script = ''
      python3 /etc/edgekit/deploy-agent.py first-switch --boot /etc/edgekit/boot.json
      mkdir -p /var/lib/edgekit && touch /var/lib/edgekit/switched
      systemctl --no-block reboot
    '';
  };
}
"""


def agent_file() -> dict[str, str]:
    """cloud-init's write_files entry of the agent: gzip (no timestamp: the same bytes every
    synth) then base64, about 10 KB of the user data the clouds cap (tens of KiB;
    tests/deploy/test_operator.py keeps every node's document under 32 KiB)."""
    packed = gzip.compress(AGENT_SOURCE.read_bytes(), compresslevel=9, mtime=0)
    return {"path": AGENT_PATH, "permissions": "0500", "owner": "root:root",
            "encoding": "gz+b64", "content": base64.b64encode(packed).decode()}


def first_switch_nix(provider: str) -> str:
    """The module nixos-infect imports (NIXOS_IMPORT) on `provider`."""
    extra = cloud(provider).infect_boot  # what nixos-infect's own generation needs there
    line = extra if extra else "# no provider-specific boot settings"
    return FIRST_SWITCH_NIX.replace("# @PROVIDER@", line)


def deploy_section(*, provider: str, node: str, repository: str, ref: str) -> dict[str, Any]:
    """Pull deployment (ADR 0005, 0033): the first switch and the deploy agent follow the
    node's own ref when it exists, else `ref` (``deploy/<env>``). No revision: moving a ref
    is the deploy, and user data never changes with it."""
    follow = f"{repository}?ref={ref}#{node}"
    return {"mode": "pull", "flake": follow, "follow": follow,
            "convert": "nixos-infect" if provider in CLOUDS else "none",
            "repository": repository, "refs": follow_refs(ref, node)}


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
    if provider is not None and provider in CLOUDS:
        content = first_switch_nix(provider)
        document["write_files"].append({"path": FIRST_SWITCH_PATH, "permissions": "0644",
                                        "content": content.replace("${", "$${")})
        document["write_files"].append(agent_file())
        document["runcmd"] = [infect_command(provider)]
    return document

