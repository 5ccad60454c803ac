# Entry point of the node evaluation: the repository's own flake.nix, evaluated with its
# inputs replaced by what can be had offline, so every node's nixosConfiguration is
# lib.evalModules over the vendored upstream NixOS modules (nix/eval/nixos.nix).
#
#   nix-instantiate --eval --strict --json nix/eval/estate.nix -A reports.pg-tokyo
#
# Inputs of flake.nix, as evaluated here:
#   nixpkgs          { lib = nix/upstream/nixpkgs/lib // { nixosSystem = nix/eval/nixos.nix; };
#                      legacyPackages.<system> = the pkgs stand-in (nix/stubs.nix) }
#   nixpkgs-vector   the pkgs stand-in whose vector has `nixpkgsVectorVersion`: the version of
#                    `vector` at the pinned revision (ADR 0017)
#   edgekit-service  services/lib/flake.nix's outputs
#   <svc>            every input of flake.nix whose url is path:./services/<svc>: that glued
#                    flake's outputs
# Result: { flake; nodes = nixosConfigurations; reports = node -> nix/eval/report.nix; }
{ repo ? ../.., nixpkgsVectorVersion ? "0.45.0" }:
let
  lib = import ../upstream/nixpkgs/lib;
  systems = [ "x86_64-linux" "aarch64-linux" ];
  pkgsFor = system: import ../stubs.nix { inherit lib system; };
  nixosSystem = import ./nixos.nix { inherit lib; pkgs = pkgsFor; };

  nixpkgs = {
    lib = lib // { inherit nixosSystem; };
    legacyPackages = lib.genAttrs systems pkgsFor;
  };
  nixpkgs-vector = {
    inherit (nixpkgs) lib;
    legacyPackages = lib.genAttrs systems (system:
      import ../stubs.nix { inherit lib system; vector = nixpkgsVectorVersion; });
  };

  outputsOf = path: inputs: let o = (import path).outputs ({ self = o; } // inputs); in o;

  edgekit-service = outputsOf (repo + "/services/lib/flake.nix") { inherit nixpkgs; };
  declared = (import (repo + "/flake.nix")).inputs;
  gluedNames = builtins.filter (n:
    let m = builtins.match "path:\\./services/([a-z][a-z0-9-]*)" (declared.${n}.url or "");
    in m != null && builtins.head m != "lib") (builtins.attrNames declared);
  glued = lib.genAttrs gluedNames (svc:
    outputsOf (repo + "/services/${svc}/flake.nix") { inherit nixpkgs edgekit-service; });

  flake = outputsOf (repo + "/flake.nix")
    ({ inherit nixpkgs nixpkgs-vector edgekit-service; } // glued);

  nodes = flake.nixosConfigurations;
  estate = import (repo + "/nix/estate.nix") { };
in
{
  inherit flake nodes lib;
  reports = builtins.mapAttrs (name: eval: import ./report.nix {
    inherit lib eval name;
    env = estate.${name}.env;
    pkgs = pkgsFor "x86_64-linux";
  }) nodes;
}
