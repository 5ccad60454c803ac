# The base NixOS module of every node: what the provider's VM needs to boot NixOS after
# nixos-infect (or nixos-anywhere) replaced its Debian 12 image (ADR 0005).
#
# The disk and boot layout per cloud is each cloud adapter's sourced table
# (edgekit.clouds.<cloud>.NODE_FACTS), generated into nix/clouds.json: the GRUB device
# ("nodev" where the cloud's own GRUB reads /boot/grub/grub.cfg from a partitionless disk:
# Linode), forceInstall, the root device and kernel parameters (the serial console the
# cloud's console reads). Facts not yet seen on a real machine are listed there as
# "unverified".
{ name, provider, clouds ? builtins.fromJSON (builtins.readFile ./clouds.json) }:
{ modulesPath, ... }:
let
  facts = clouds.${provider} or
    (throw "edgekit base: node '${name}' has provider '${provider}', expected one of: ${builtins.concatStringsSep ", " (builtins.filter (n: n != "//") (builtins.attrNames clouds))}");
  boot = facts.boot;
in
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  boot.loader.grub.enable = true;
  boot.loader.grub.device = boot.grubDevice;
  boot.loader.grub.forceInstall = boot.forceInstall;
  boot.kernelParams = boot.kernelParams;
  fileSystems."/" = { device = boot.rootDevice; fsType = "ext4"; };

  # No inbound port at all by default: no SSH either (ADR 0005; the provider's console is
  # the way in). Push deployment turns SSH on for the deployer's CIDRs explicitly.
  services.openssh.enable = false;
  networking.firewall.enable = true;

  nix.settings.experimental-features = [ "nix-command" "flakes" ];
  system.stateVersion = "25.11";
}
