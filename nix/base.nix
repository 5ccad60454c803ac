# The base NixOS module of every node: what the provider's VM needs to boot NixOS after
# nixos-infect (or nixos-anywhere) replaced its Debian 12 image (ADR 0005).
#
# Disk layouts are those of the providers' Debian 12 images that nixos-infect keeps in place;
# nixos-infect writes its own hardware-configuration.nix on first boot, and this module must
# agree with it: check it on the first real deploy of each provider and correct it here.
{ name, provider }:
{ modulesPath, ... }:
let
  layouts = {
    # Hetzner Cloud: virtio-scsi disk /dev/sda, root on its first partition, BIOS GRUB.
    hetzner = { grub = "/dev/sda"; root = "/dev/sda1"; };
    # Vultr: virtio-blk disk /dev/vda, root on its first partition, BIOS GRUB.
    vultr = { grub = "/dev/vda"; root = "/dev/vda1"; };
    # Linode: each disk is a raw filesystem without a partition table (root = /dev/sda,
    # swap = /dev/sdb); the Linode config profile must boot "GRUB 2", so no MBR install.
    linode = { grub = "nodev"; root = "/dev/sda"; };
    # DigitalOcean: virtio-blk disk /dev/vda, root on its first partition, BIOS GRUB (the
    # layout nixos-infect, written for droplets, assumes).
    digitalocean = { grub = "/dev/vda"; root = "/dev/vda1"; };
  };
  layout = layouts.${provider} or
    (throw "edgekit base: node '${name}' has provider '${provider}', expected one of: hetzner, linode, vultr, digitalocean");
in
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  boot.loader.grub.enable = true;
  boot.loader.grub.device = layout.grub;
  fileSystems."/" = { device = layout.root; fsType = "ext4"; };

  # No inbound port at all by default: no SSH either (ADR 0005; the provider's console is
  # the way in). Push deployment turns SSH on for the deployer's CIDRs explicitly.
  services.openssh.enable = false;
  networking.firewall.enable = true;

  nix.settings.experimental-features = [ "nix-command" "flakes" ];
  system.stateVersion = "25.11";
}
