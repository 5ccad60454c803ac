# Top-level flake: one nixosConfigurations.<node> for every node of every environment.
#
# Where things come from:
#   cue/export/<env>.json       the committed CUE exports (env.placement, env.nodes, services):
#                               nix/estate.nix reads them all and applies nix/compose.nix,
#                               which decides per node the services, ports, env and the
#                               tunnel tokens it runs a cloudflared for (and throws on a
#                               service placed twice, a port clash, an unknown service or a
#                               worker on a node); ingress is the tunnels' (tunnel.py)
#   services/<svc>/flake.nix    the glued flakes (inputs below): each gives nixosModules.default
#                               and packages.<system>.default (convention: services/lib/flake.nix)
#   nix/node.nix                a composed node + the glued modules -> the node's NixOS modules:
#                               its services, one cloudflared per tunnel token (root-only
#                               credentials, ADR 0008), Vector (the pinned version from the
#                               input nixpkgs-vector, ADR 0017; R2 keys from its unit),
#                               services.postgresql on the primary with its data
#                               volume mounted by label (nix/postgresql/<env>.json from
#                               edgekit's nixos_postgresql) and the deploy agent
#                               (nix/deploy.nix: follows the node's ref, health checks,
#                               rollback, reports; ADR 0033) in place of system.autoUpgrade
#   nix/base.nix                the provider's disk and boot layout (nix/clouds.json, from the
#                               cloud adapters) and the closed defaults (no SSH)
#   nix/cloud.nix               the node's networking on its cloud (DHCP, or addresses from the
#                               metadata service where there is no DHCP: DigitalOcean)
#
# The pure parts (nix/compose.nix, nix/estate.nix, nix/node.nix, services/lib/unit.nix) need no
# nixpkgs: tests/test_nix.py evaluates them offline with nix-instantiate and checks that
# nix/compose.nix agrees with edgekit/nix/compose.py. Every node's configuration is also
# evaluated offline against the vendored upstream NixOS modules (nix/eval/estate.nix runs this
# file with its inputs replaced; ADR 0023). flake.lock locks every input (nixpkgs at the
# 25.11 release, nix/upstream/pin.json). Deployment is a pull (ADR 0005): a node switches to
# nixosConfigurations.<its name> of this repository at a pinned revision, then
# system.autoUpgrade follows the ref deploy/<env> of `deployRepo`, with this lock and no
# other (--no-update-lock-file).
#
# devShells.default: opentofu, cue, python3 (with psycopg), nodejs and nix for working here.
{
  description = "edgekit reference estate: NixOS nodes composed from glued service flakes";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    # Vector for the nodes (ADR 0017): nixos-25.11 ships a newer Vector, whose S3 sink sends
    # a checksum header R2 refuses, so the nodes take `vector` from this nixpkgs revision,
    # whose vector is the version nix/node.nix pins (vectorVersion). The revision is the
    # nixpkgs-unstable commit of 2025-03-30 (narHash
    # sha256-FurMxmjEEqEMld11eX2vgfAx0Rz0JhoFm8UgxbfCZa8=), found in utdemir/nix-tree's
    # flake.lock update (PR #118): after nixpkgs PR #385263 "vector: 0.44.0 -> 0.45.0"
    # (opened 2025-02-26, merged) and before Vector 0.46.0 existed (released 2025-04-08).
    # Evaluation checks the version (nix/node.nix): another one fails the build, before
    # anything reaches a node.
    nixpkgs-vector.url = "github:NixOS/nixpkgs/63158b9cbb6ec93d26255871c447b0f01da81619";
    # What the glued flakes share (services/lib/flake.nix); each follows this one.
    edgekit-service = { url = "path:./services/lib"; inputs.nixpkgs.follows = "nixpkgs"; };
    api = {
      url = "path:./services/api";
      inputs = { nixpkgs.follows = "nixpkgs"; edgekit-service.follows = "edgekit-service"; };
    };
    web = {
      url = "path:./services/web";
      inputs = { nixpkgs.follows = "nixpkgs"; edgekit-service.follows = "edgekit-service"; };
    };
  };

  outputs = { self, nixpkgs, ... }@inputs:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The repository nodes pull from (ADR 0005); each env follows its ref deploy/<env>.
      deployRepo = "git+https://git.edgekit.example/edgekit";

      # Service name (as in cue/services.cue) -> its glued flake's module.
      glued = {
        api = inputs.api.nixosModules.default;
        web = inputs.web.nixosModules.default;
      };

      estate = import ./nix/estate.nix { };
    in
    {
      nixosConfigurations = builtins.mapAttrs (name: n: lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ (import ./nix/base.nix { inherit name; inherit (n) provider; }) ]
          ++ import ./nix/node.nix {
            inherit name;
            inherit (n) cloud;
            node = n.composed;
            modules = glued;
            postgresql = n.postgresql;
            pgbackrest = n.pgbackrest;
            mesh = n.mesh;
            vector = n.vector;
            vectorPackage = inputs.nixpkgs-vector.legacyPackages.x86_64-linux.vector;
            upgradeFlake = "${deployRepo}?ref=deploy/${n.env}";
            deploy = n.deploy;  # the deploy agent replaces autoUpgrade (ADR 0033)
          };
      }) estate;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.opentofu
            pkgs.cue
            (pkgs.python3.withPackages (ps: [ ps.psycopg ]))
            pkgs.nodejs
            pkgs.nix
          ];
        };
      });
    };
}
