# The stand-in of nixpkgs' `lib.nixosSystem` for the node evaluation: lib.evalModules over
# the vendored upstream NixOS modules (nix/upstream/), the declared stand-ins
# (nix/eval/standins.nix) and the modules the flake passes, with the `pkgs` stand-in
# (nix/stubs.nix). Nothing is built; the result is { config; options; } like the real one.
#
#   lib   nixpkgs' lib (nix/upstream/nixpkgs/lib)
#   pkgs  system -> the pkgs stand-in
{ lib, pkgs }:
{ system, modules, specialArgs ? { } }:
let
  nixos = ../upstream/nixpkgs/nixos;

  # What nixos/lib/utils.nix gives as `utils.systemdUtils` (that file is not vendored).
  utilsFor = config:
    let
      utils = {
        systemdUtils = {
          lib = import (nixos + "/lib/systemd-lib.nix") {
            inherit lib config utils;
            pkgs = pkgs system;
          };
          unitOptions = import (nixos + "/lib/systemd-unit-options.nix") {
            inherit lib;
            inherit (utils) systemdUtils;
          };
          types = import (nixos + "/lib/systemd-types.nix") {
            inherit lib;
            inherit (utils) systemdUtils;
            pkgs = pkgs system;
          };
        };
        escapeSystemdPath = _: throw
          "edgekit node evaluation: utils.escapeSystemdPath is a stand-in (no mount unit is evaluated)";
      };
    in utils;

  # Every vendored module (nix/upstream/pin.json lists them with their provenance).
  upstreamModules = [
    (nixos + "/modules/misc/assertions.nix")
    (nixos + "/modules/system/etc/etc.nix")  # imports ../build.nix (system.build)
    (nixos + "/modules/config/users-groups.nix")
    (nixos + "/modules/services/databases/postgresql.nix")
    (nixos + "/modules/services/logging/vector.nix")
    (nixos + "/modules/tasks/auto-upgrade.nix")
    (nixos + "/modules/services/networking/firewall.nix")
    (nixos + "/modules/services/networking/firewall-iptables.nix")
    (nixos + "/modules/services/networking/wireguard.nix")
  ];
in
lib.evalModules {
  class = "nixos";
  specialArgs = { modulesPath = ./modulesPath; } // specialArgs;
  modules = upstreamModules ++ [
    ./standins.nix
    ({ config, ... }: {
      _module.args = { pkgs = pkgs system; utils = utilsFor config; };
      # nixos/modules/misc/ids.nix (values at the snapshot commit of pin.json's
      # nixos-25.11-snapshot): the ids the vendored modules read
      ids.uids = { root = 0; nobody = 65534; postgres = 71; };
      ids.gids = {
        root = 0; wheel = 1; kmem = 2; tty = 3; disk = 6; audio = 17; floppy = 18;
        uucp = 19; lp = 20; cdrom = 24; tape = 25; video = 26; dialout = 27; utmp = 29;
        adm = 55; postgres = 71; users = 100; input = 174; kvm = 302; render = 303;
        sgx = 304; shadow = 318; nixbld = 30000; nogroup = 65534;
      };
      # nixos/modules/installer/tools/nixos-rebuild-ng.nix (not vendored)
      system.build.nixos-rebuild = (pkgs system).nixos-rebuild;
    })
  ] ++ modules;
}
