# What every glued service flake shares: the Python library of services (edgekit_service.py:
# configuration, Postgres, OpenTelemetry, the HTTP server), the systemd unit (unit.nix) and
# the flake outputs themselves. A glued flake (services/<svc>/flake.nix) takes this flake as
# its input `edgekit-service` and returns
#
#   edgekit-service.lib.gluedFlake { inherit self nixpkgs; app = ./app.py; edgekitJson = ./edgekit.json; }
#
# which gives the convention every service follows:
#
#   packages.<system>.default   bin/edgekit-<svc>: python3.withPackages [ psycopg ] running
#                               app.py with this library on PYTHONPATH and EDGEKIT_CONFIG
#                               pointing at edgekit.json.
#   nixosModules.default        options services.edgekit.<svc>.{enable, package, environment,
#                               passwordFile}; when enabled, systemd.services.edgekit-<svc>
#                               from unit.nix: DynamicUser, the port from edgekit.json,
#                               BIND=127.0.0.1, OTEL_EXPORTER_OTLP_ENDPOINT=
#                               http://127.0.0.1:4318 (the node's Vector), OTEL_SERVICE_NAME,
#                               and the Postgres password as a systemd credential loaded
#                               from /run/keys (never in the store).
#   lib.edgekit                 the parsed edgekit.json (pure data).
#
# A third service starts from services/api: its app.py (routes only), edgekit.json (written
# by `edgekit generate` once the service is in cue/services.cue), schema.sql and a four-line
# flake.nix.
{
  description = "edgekit service library: what every glued service flake shares";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }: {
    lib.gluedFlake = { self, nixpkgs, app, edgekitJson }:
      let
        edgekit = builtins.fromJSON (builtins.readFile edgekitJson);
        name = edgekit.service;
        library = ./.;
        systems = [ "x86_64-linux" "aarch64-linux" ];
        forAllSystems = f:
          nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      in
      {
        lib.edgekit = edgekit;

        packages = forAllSystems (pkgs: {
          default = pkgs.writeShellApplication {
            name = "edgekit-${name}";
            runtimeInputs = [ (pkgs.python3.withPackages (ps: [ ps.psycopg ])) ];
            text = ''
              export EDGEKIT_CONFIG="''${EDGEKIT_CONFIG:-${edgekitJson}}"
              export PYTHONPATH="${library}"
              exec python3 ${app} "$@"
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
  };
}
