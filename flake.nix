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
#                               credentials, ADR 0008), Vector (pinned version, R2 keys from
#                               its unit), services.postgresql on the primary with its data
#                               volume mounted by label (nix/postgresql/<env>.json from
#                               edgekit's nixos_postgresql) and system.autoUpgrade
#   nix/base.nix                the provider's disk layout and the closed defaults (no SSH)
#
# The pure parts (nix/compose.nix, nix/estate.nix, nix/node.nix, services/lib/unit.nix) need no
# nixpkgs: tests/test_nix.py evaluates them offline with nix-instantiate and checks that
# nix/compose.nix agrees with edgekit/nix/compose.py. Deployment is a pull (ADR 0005): a
# node switches to nixosConfigurations.<its name> of this repository at a pinned revision,
# then system.autoUpgrade follows the ref deploy/<env> of `deployRepo`.
#
# devShells.default: opentofu, cue, python3 (with psycopg), nodejs and nix for working here.
{
  description = "edgekit reference estate: NixOS nodes composed from glued service flakes";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
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
            node = n.composed;
            modules = glued;
            postgresql = n.postgresql;
            pgbackrest = n.pgbackrest;
            mesh = n.mesh;
            vector = n.vector;
            upgradeFlake = "${deployRepo}?ref=deploy/${n.env}";
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
