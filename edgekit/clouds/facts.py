"""What a converted node has to know about its cloud, as sourced data (`Cloud.node_facts`).

The NixOS side reads these facts from the generated ``nix/clouds.json`` (`clouds_json`,
written by `edgekit generate`, checked by `edgekit check --generated`): ``nix/base.nix``
takes the disk and boot layout, ``nix/node.nix`` the metadata addresses it closes to every
user but root and the networking the node configures. One table per cloud, each fact with
the document or source file it was read in; facts nobody has checked on a real machine of
that cloud are listed in ``unverified`` (the README's "What is real" table says so too).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs


@attrs.frozen(kw_only=True)
class Boot:
    grub_device: str
    """Where GRUB installs its boot sector; ``nodev`` when the cloud boots the disk's
    grub.cfg itself (Linode's "GRUB 2" profile)."""
    root_device: str
    grub_config: str = "/boot/grub/grub.cfg"
    """The file the bootloader reads (NixOS writes it for any grub device)."""
    force_install: bool = False
    """GRUB on a disk without a partition table (Linode): forceInstall."""
    kernel_params: tuple[str, ...] = ()
    second_disk: str
    """How the first volume attached to the server shows up (the Postgres data volume);
    ``<name>`` stands for what `second_disk_of` fills in (the volume's id or label). A path
    with ``*`` is a pattern the node resolves at boot (``nix/node.nix``, the volume unit):
    the one disk it matches that is not the root disk, for a cloud whose stable name for
    the volume is only known after the server exists (Vultr)."""

    def second_disk_of(self, name: str) -> str:
        return self.second_disk.replace("<name>", name)


@attrs.frozen(kw_only=True)
class Network:
    method: Literal["dhcp", "metadata"]
    """``dhcp``: the cloud serves the public (and private) addresses by DHCP; ``metadata``:
    no DHCP, the node configures addresses, routes and resolvers from the metadata service
    at every boot (`edgekit.clouds.netconf`)."""
    interfaces: tuple[str, ...] = ("eth0", "eth1")
    """Public interface first, then the private network's (predictable names off)."""
    metadata_url: str | None = None
    nameservers: tuple[str, ...] = ()
    """Resolvers when DHCP gives none (the metadata's own list wins where it has one)."""


@attrs.frozen(kw_only=True)
class NodeFacts:
    metadata_addresses: tuple[str, ...]
    """Every address the metadata service (user data: the node's secrets) answers on."""
    boot: Boot
    network: Network
    sources: dict[str, str]
    """Fact group (metadata, boot, second_disk, network) → where it was read."""
    unverified: tuple[str, ...] = ()
    """Facts not yet confirmed on a real machine of this cloud."""

    def as_json(self) -> dict[str, Any]:
        boot, net = self.boot, self.network
        return {
            "metadata": {"ipv4": [a for a in self.metadata_addresses if ":" not in a],
                         "ipv6": [a for a in self.metadata_addresses if ":" in a]},
            "boot": {"grubDevice": boot.grub_device, "rootDevice": boot.root_device,
                     "grubConfig": boot.grub_config, "forceInstall": boot.force_install,
                     "kernelParams": list(boot.kernel_params),
                     "secondDisk": boot.second_disk},
            "network": {"method": net.method, "interfaces": list(net.interfaces),
                        "metadataUrl": net.metadata_url,
                        "nameservers": list(net.nameservers)},
            "sources": dict(sorted(self.sources.items())),
            "unverified": list(self.unverified),
        }
