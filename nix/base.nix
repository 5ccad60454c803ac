# The base NixOS module of every node: what the provider's VM needs to boot NixOS after
# nixos-infect (or nixos-anywhere) replaced its Debian 12 image (ADR 0005).
#
# Disk layouts are those of the providers' Debian 12 images that nixos-infect keeps in place;
# nixos-infect writes its own hardware-configuration.nix on first boot, and this module must
# agree with it: check it on the first real deploy of each provider and correct it in the
# cloud's adapter (edgekit/clouds/<cloud>.py, `disk`), which `edgekit generate` writes into
# ./clouds.json (one entry per cloud: grub device, root device, and why).
{ name, provider }:
{ modulesPath, ... }:
let
  layouts = builtins.removeAttrs (builtins.fromJSON (builtins.readFile ./clouds.json)) [ "//" ];
  layout = layouts.${provider} or
    (throw "edgekit base: node '${name}' has provider '${provider}', expected one of: ${builtins.concatStringsSep ", " (builtins.attrNames layouts)}");
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
