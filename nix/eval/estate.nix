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
#                    `vector` at the pinned revision (ADR 0017; pin.json's nixpkgsVector.vector)
#   edgekit-service  services/lib/flake.nix's outputs
#   <svc>            every input of flake.nix whose url is path:./services/<svc>: that glued
#                    flake's outputs
# Result: { flake; nodes = nixosConfigurations; reports = node -> nix/eval/report.nix;
#          lib; pkgs; gluedModules = svc -> nixosModules.default;
#          evalModules = modules -> the same evaluation for a list of modules of one's own
#          (tests evaluate nix/mesh.nix or nix/node.nix with other arguments this way);
#          reportOf = evaluation -> report }
{ repo ? ../..
  # what `vector` is at the pinned nixpkgs-vector revision (nix/upstream/pin.json)
, nixpkgsVectorVersion ? (builtins.fromJSON (builtins.readFile ../upstream/pin.json)).nixpkgsVector.vector
}:
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
rec {
  inherit flake nodes lib glued edgekit-service;
  pkgs = pkgsFor "x86_64-linux";
  gluedModules = builtins.mapAttrs (_: o: o.nixosModules.default) glued;
  evalModules = modules: nixosSystem { system = "x86_64-linux"; inherit modules; };
  reportOf = eval: import ./report.nix { inherit lib eval pkgs; name = "module"; env = null; };
  reports = builtins.mapAttrs (name: eval: import ./report.nix {
    inherit lib eval name pkgs;
    env = estate.${name}.env;
  }) nodes;
}
