# Glued flake of the `web` service. Every services/<svc>/flake.nix follows this convention:
#
#   inputs   nixpkgs only. The top-level flake makes it follow its own nixpkgs
#            (`inputs.<svc>.inputs.nixpkgs.follows = "nixpkgs"`), so one nixpkgs per node.
#   files    app.py (the service), edgekit.json (generated from cue/ by `edgekit generate`;
#            never edited by hand), unit.nix (the systemd unit as pure data), schema.sql
#            (tables, applied by the database owner), this flake.nix.
#   outputs
#     packages.<system>.default   bin/edgekit-<svc>: python3.withPackages [ psycopg ] running
#                                 app.py, with EDGEKIT_CONFIG pointing at edgekit.json.
#     nixosModules.default        options services.edgekit.<svc>.{enable, package, environment,
#                                 passwordFile}; when enabled, systemd.services.edgekit-<svc>
#                                 from unit.nix: DynamicUser, the port from edgekit.json,
#                                 BIND=127.0.0.1, OTEL_EXPORTER_OTLP_ENDPOINT=
#                                 http://127.0.0.1:4318 (the node's Vector), OTEL_SERVICE_NAME,
#                                 and the Postgres password as a systemd credential loaded
#                                 from /run/keys (never in the store).
#     lib.edgekit                 the parsed edgekit.json (pure data).
#
# The module only switches the service on; which node runs it, and its composed environment,
# come from nix/node.nix (placement in cue/envs.cue). A glued flake holds everything its
# service needs: nothing is shared with other services' folders.
{
  description = "edgekit glued flake: the web service (cacheable pages, read-only Postgres)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      edgekit = builtins.fromJSON (builtins.readFile ./edgekit.json);
      name = edgekit.service;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      lib.edgekit = edgekit;

      packages = forAllSystems (pkgs: {
        default = pkgs.writeShellApplication {
          name = "edgekit-${name}";
          runtimeInputs = [ (pkgs.python3.withPackages (ps: [ ps.psycopg ])) ];
          text = ''
            export EDGEKIT_CONFIG="''${EDGEKIT_CONFIG:-${./edgekit.json}}"
            exec python3 ${./app.py} "$@"
          '';
        };
      });

      nixosModules.default = { config, lib, pkgs, ... }:
        let cfg = config.services.edgekit.${name}; in
        {
          options.services.edgekit.${name} = {
            enable = lib.mkEnableOption "the edgekit service ${name}";
            package = lib.mkOption {
              type = lib.types.package;
              default = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
              description = "The package whose bin/edgekit-${name} runs.";
            };
            environment = lib.mkOption {
              type = lib.types.attrsOf lib.types.str;
              default = { };
              description = "Environment over the defaults of edgekit.json (nix/compose.nix).";
            };
            passwordFile = lib.mkOption {
              type = lib.types.nullOr lib.types.str;
              default =
                if edgekit.postgres or null == null then null
                else "/run/keys/edgekit-pg/${edgekit.postgres.role}";
              description = "File under /run/keys with the Postgres password (not in the store).";
            };
          };

          config = lib.mkIf cfg.enable {
            systemd.services."edgekit-${name}" = import ./unit.nix {
              inherit edgekit;
              inherit (cfg) package environment passwordFile;
            };
          };
        };
    };
}
