# One node's NixOS modules, from its composed data (nix/compose.nix) and the glued flakes.
#
# Pure: no nixpkgs is imported here. The result is a list of NixOS modules; the last one is a
# function of `lib` (lib.mkForce), `config` (the postgresql package, for psql) and `pkgs`
# (jq, coreutils), so tests evaluate the data parts by applying it to small stand-ins.
#
# Secrets: the boot document (/etc/edgekit/boot.json, mode 0600, edgekit.constructs.boot)
# holds them under "secrets"; the oneshot unit edgekit-keys writes them below /run/keys
# before anything that needs them starts: "tunnel_token" -> /run/keys/edgekit/tunnel-token,
# "pg_password_<role>" -> /run/keys/edgekit-pg/<role>, any other -> /run/keys/edgekit/<name>.
# Files are root:keys 0440; services read theirs as systemd credentials, postgres (on the
# primary) through the keys group.
#
# Arguments:
#   name        the node's name (networking.hostName)
#   node        the node's entry of nix/compose.nix's result
#   modules     service name -> NixOS module (each glued flake's nixosModules.default); only
#               the node's services are imported
#   postgresql  null, or the JSON of edgekit.constructs.pg_bootstrap.nixos_postgresql for the
#               primary's node (its "edgekit" key becomes the bootstrap oneshot unit)
#   vector      services.vector.settings (nix/vector/<env>.json, generated from the env's
#               R2 log sink: OTLP on loopback, disk buffer, aws_s3 to R2)
#   tunnelId    the Cloudflare Tunnel's id (services.cloudflared.tunnels.<id>)
#   tokenFile   the tunnel token, written from the boot document at boot (not in the store)
#   pgbackrest  null, or the JSON of edgekit.pg.backup.nixos_pgbackrest for the primary's node
#               (nix/pgbackrest/<env>.json): WAL archiving and base backups to R2, through
#               nix/pgbackrest.nix (ADR 0011)
#   mesh        null, or the node's entry of nix/mesh/<env>.json (the WireGuard mesh and, on
#               the primary, Postgres on the mesh), through nix/mesh.nix (ADR 0010)
#   upgradeFlake  null, or the flake reference system.autoUpgrade follows (ADR 0005:
#               "<repo>?ref=deploy/<env>"); the node pulls "<upgradeFlake>#<name>"
#
# Every glued flake's module follows the convention in services/lib/flake.nix: it declares
# services.edgekit.<svc>.{enable, environment, passwordFile}; this file switches it on.
{ name
, node
, modules ? { }
, postgresql ? null
, vector ? { }
, tunnelId ? "edgekit"
, tokenFile ? "/run/keys/edgekit/tunnel-token"
, upgradeFlake ? null
, pgPasswordDir ? "/run/keys/edgekit-pg"
, pgbackrest ? null
, mesh ? null
}:
let
  inherit (builtins) attrNames concatStringsSep filter hasAttr listToAttrs map removeAttrs
    replaceStrings;

  missing = filter (s: !(hasAttr s modules)) node.services;
  imported =
    if missing != [ ] then
      throw ("edgekit node ${name}: no glued flake module for service "
        + "'${builtins.head missing}' (have: ${concatStringsSep ", " (attrNames modules)})")
    else map (s: modules.${s}) node.services;

  shellQuote = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  # Ingress as the cloudflared module wants it: hostname -> service (catch-all: `default`).
  ingress = listToAttrs (map (rule: { name = rule.hostname; value = rule.service; })
    (filter (rule: rule ? hostname) node.ingress));

  serviceConfig = listToAttrs (map (svc: {
    name = svc;
    value = {
      enable = true;
      environment = node.env.${svc};
    } // (if node.env.${svc} ? PGUSER
          then { passwordFile = "${pgPasswordDir}/${node.env.${svc}.PGUSER}"; }
          else { });
  }) node.services);

  pg = if postgresql == null then null else postgresql;
  pgUnit = if pg == null then null else pg.edgekit;

  pgServices = lib: if pg == null then { } else {
    postgresql = (removeAttrs pg [ "edgekit" ]) // {
      settings = pg.settings // {
        listen_addresses = lib.mkForce pg.settings.listen_addresses;
      };
    };
  };

  pgUnits = config: if pg == null then { } else {
    ${pgUnit.unit} = {
      description = "edgekit: Postgres roles, databases, schemas, grants and passwords";
      after = pgUnit.after;
      requires = pgUnit.requires;
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        User = "postgres";
      };
      path = [ config.services.postgresql.package ];
      script = concatStringsSep "\n" (map (argv: concatStringsSep " " (map shellQuote argv))
        pgUnit.commands);
    };
  };

  keysScript = ''
    boot=/etc/edgekit/boot.json
    install -d -m 0750 -g keys ${builtins.dirOf tokenFile} ${pgPasswordDir}
    umask 0337
    for key in $(jq -r '.secrets // {} | keys[]' "$boot"); do
      case "$key" in
        tunnel_token) file=${tokenFile} ;;
        pg_password_*) file=${pgPasswordDir}/''${key#pg_password_} ;;
        *) file=${builtins.dirOf tokenFile}/$key ;;
      esac
      jq -j --arg k "$key" '.secrets[$k]' "$boot" > "$file.tmp"
      chgrp keys "$file.tmp"
      mv "$file.tmp" "$file"
    done
  '';

  keysUnit = pkgs: {
    edgekit-keys = {
      description = "edgekit: secrets of the boot document into /run/keys";
      wantedBy = [ "multi-user.target" ];
      before = [ "cloudflared-tunnel-${tunnelId}.service" ]
        ++ map (svc: "edgekit-${svc}.service") node.services
        ++ (if pg == null then [ ] else [ "${pgUnit.unit}.service" ]);
      unitConfig.ConditionPathExists = "/etc/edgekit/boot.json";
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      path = [ pkgs.jq pkgs.coreutils ];
      script = keysScript;
    };
  };

  data = { lib, config, pkgs }: {
    networking.hostName = name;
    # No port is opened for anything: cloudflared dials out, deployment pulls (ADR 0005).
    networking.firewall.enable = true;
    networking.firewall.allowedTCPPorts = lib.mkForce [ ];

    services = {
      # Outbound-only tunnel. With tokenFile the tunnel is remotely managed: Cloudflare holds
      # the ingress (edgekit writes the same rules into the tunnel's config resource); the
      # local copy keeps the node's intent readable and serves a locally-managed tunnel.
      cloudflared = {
        enable = true;
        tunnels.${tunnelId} = {
          inherit tokenFile ingress;
          default = "http_status:404";
        };
      };

      # Services speak OTLP to the local Vector (127.0.0.1:4318), which ships to R2.
      vector = {
        enable = true;
        journaldAccess = true;
        settings = vector;
      };

    } // (if node.services == [ ] then { } else { edgekit = serviceConfig; })
      // pgServices lib;

    systemd.services = keysUnit pkgs // pgUnits config;
    users.users = if pg == null then { } else { postgres.extraGroups = [ "keys" ]; };

    # Pull deployment (ADR 0005): follow the deploy ref of this repository; no inbound port.
    system.autoUpgrade = if upgradeFlake == null then { enable = false; } else {
      enable = true;
      flake = "${upgradeFlake}#${name}";
      dates = "*:0/15";
      randomizedDelaySec = "5min";
      allowReboot = false;
    };
  };
in
imported
# pgBackRest and the mesh's Postgres settings only where this node runs Postgres.
++ (if pgbackrest == null || pg == null then [ ]
    else [ (import ./pgbackrest.nix { settings = pgbackrest; }) ])
++ (if mesh == null then [ ] else [ (import ./mesh.nix {
      settings = if pg == null then mesh // { postgres = null; } else mesh;
    }) ])
++ [ ({ lib, config, pkgs, ... }: data { inherit lib config pkgs; }) ]
