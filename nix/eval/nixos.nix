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
    (nixos + "/modules/services/databases/postgresql.nix")
    (nixos + "/modules/services/logging/vector.nix")
    (nixos + "/modules/tasks/auto-upgrade.nix")
  ];
in
lib.evalModules {
  class = "nixos";
  specialArgs = { modulesPath = ./modulesPath; } // specialArgs;
  modules = upstreamModules ++ [
    ./standins.nix
    ({ config, ... }: {
      _module.args = { pkgs = pkgs system; utils = utilsFor config; };
      # nixos/modules/misc/ids.nix
      ids.uids.postgres = 71;
      ids.gids.postgres = 71;
      # nixos/modules/installer/tools/nixos-rebuild-ng.nix (not vendored)
      system.build.nixos-rebuild = (pkgs system).nixos-rebuild;
    })
  ] ++ modules;
}
