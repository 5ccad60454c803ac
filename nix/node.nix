# One node's NixOS modules, from its composed data (nix/compose.nix) and the glued flakes.
#
# Pure: no nixpkgs is imported here. The result is a list of NixOS modules; the last one is a
# function of `lib` (lib.mkForce), `config` (the postgresql and vector packages) and `pkgs`
# (jq, coreutils, cloudflared, util-linux, e2fsprogs, openssl, runtimeShell,
# postgresql_<major>).
# Tests evaluate every node's modules with the vendored upstream NixOS modules (nix/eval/,
# ADR 0023).
#
# Secrets (ADR 0008): the boot document (/etc/edgekit/boot.json, root 0600,
# edgekit.constructs.boot) holds them under "secrets"; the oneshot unit edgekit-keys writes
# each to its own root-only file before anything that needs it starts:
#   "pg_password_<role>" -> <pgPasswordDir>/<role>   root:postgres 0440 on the primary (the
#                                                     bootstrap unit runs as postgres), root
#                                                     0400 elsewhere
#   "pgbackrest_<name>"  -> <keysDir>/<name>          root:postgres 0440 on the primary
#                                                     (archive_command runs in the server)
#   any other <name>     -> <keysDir>/<name>          root 0400 (directory 0711: no listing)
#   the log sink's keys  -> <keysDir>/vector.env      root 0400, AWS_* lines for Vector
# A service gets only its own secret, through systemd (LoadCredential / EnvironmentFile, read
# by PID 1 as root): no service user can read any of these files, and no service's unit
# names another's. The metadata address (user data, secrets included) answers root only.
#
# Arguments:
#   name        the node's name (networking.hostName)
#   node        the node's entry of nix/compose.nix's result (services, env, tunnels, postgres)
#   modules     service name -> NixOS module (each glued flake's nixosModules.default); only
#               the node's services are imported
#   postgresql  null, or the JSON of edgekit.constructs.pg_bootstrap.nixos_postgresql for the
#               primary's node (its "edgekit" key becomes the bootstrap oneshot unit)
#   vector      services.vector.settings (nix/vector/<env>.json, generated from the env's
#               R2 log sink: OTLP on loopback, disk buffer, aws_s3 to R2)
#   vectorVersion  the Vector version edgekit pins (edgekit.obs.vector.VECTOR_VERSION): the one
#               place on the Nix side (tests/test_nix_vector.py keeps it equal to the Python
#               constant; tests/test_vector_real.py runs that version's real binary)
#   vectorPackage  the Vector package the node runs (services.vector.package): the flake
#               passes the `vector` of its input nixpkgs-vector (a nixpkgs revision whose
#               vector is vectorVersion, ADR 0017). Evaluation fails when it is missing or of
#               another version; at run time the unit checks `vector --version` again
#   pgbackrest  null, or the JSON of edgekit.pg.backup.nixos_pgbackrest for the primary's node
#               (nix/pgbackrest/<env>.json): WAL archiving and base backups to R2, through
#               nix/pgbackrest.nix (ADR 0011)
#   mesh        null, or the node's entry of nix/mesh/<env>.json (the WireGuard mesh and, on
#               the primary, Postgres on the mesh), through nix/mesh.nix (ADR 0010)
#   upgradeFlake  null, or the flake reference system.autoUpgrade follows (ADR 0005:
#               "<repo>?ref=deploy/<env>"); the node pulls "<upgradeFlake>#<name>". Unused
#               (autoUpgrade off) when `deploy` is given
#   deploy      null, or the node's entry of nix/deploy/<env>.json: the deploy agent
#               (nix/deploy.nix, ADR 0033) follows the node's ref, checks health, rolls
#               back and reports, in place of system.autoUpgrade
#   pgDataLabel the filesystem label of the primary's data volume (edgekit.constructs.
#               pg_primary.DATA_LABEL), mounted on /var/lib/postgresql
#   cloud       null, or the node's cloud's entry of nix/clouds.json (edgekit.clouds.facts):
#               every address its metadata service answers on (IPv4 and IPv6; closed to all
#               but root) and its networking, through nix/cloud.nix
#
# Every glued flake's module follows the convention in services/lib/flake.nix: it declares
# services.edgekit.<svc>.{enable, environment, passwordFile}; this file switches it on.
{ name
, node
, modules ? { }
, postgresql ? null
, vector ? { }
, vectorVersion ? "0.45.0"
, vectorPackage ? null
, upgradeFlake ? null
, keysDir ? "/run/keys/edgekit"
, pgPasswordDir ? "/run/keys/edgekit-pg"
, pgDataLabel ? "edgekit-pgdata"
, pgbackrest ? null
, mesh ? null
, deploy ? null
, cloud ? null
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
  pgGroup = if pg == null then "root" else "postgres";

  # The major is pinned (pgUnit.major, edgekit.constructs.pg_bootstrap.PG_MAJOR), not left to
  # system.stateVersion; the data directory is upstream's default for it, and every consumer
  # reads the evaluated services.postgresql.dataDir (nix/pgbackrest.nix).
  pgServices = lib: pkgs: if pg == null then { } else {
    postgresql = (removeAttrs pg [ "edgekit" ]) // {
      package = pkgs."postgresql_${toString pgUnit.major}";
      settings = pg.settings // {
        listen_addresses = lib.mkForce pg.settings.listen_addresses;
      };
    };
  };

  # The SQL the bootstrap unit runs (no password in any of it: each password script reads
  # its role's key file, written by edgekit-keys before the unit starts; ADR 0004/0023).
  pgEtc = lib: if pg == null then { } else listToAttrs (map (path: {
    name = lib.removePrefix "/etc/" path;
    value = { text = pgUnit.files.${path}; mode = "0444"; };
  }) (attrNames pgUnit.files));

  # The data volume: formatted once (label pgDataLabel) from the device the boot document
  # names, then mounted by label on /var/lib/postgresql, where the data directory lives.
  # A name with "*" (Vultr: the volume's /dev/disk/by-id/virtio-<mount_id> exists only after
  # the server, so its user data cannot hold it) stands for the one whole disk it matches
  # that is not the disk the root filesystem is on; two such disks are an error, not a guess.
  pgVolumeScript = ''
    wanted=$(jq -r '.postgres.volume_device // empty' /etc/edgekit/boot.json)
    [ -n "$wanted" ] || { echo "edgekit: boot.json names no Postgres volume" >&2; exit 1; }
    resolve() {
      device=
      count=0
      case "$wanted" in
        *"*"*) ;;
        *) if [ -b "$wanted" ]; then device=$wanted; fi; return 0 ;;
      esac
      root=$(findmnt -nvo SOURCE / || true)
      rootdisk=$(lsblk -ndo PKNAME "$root" 2>/dev/null || true)
      [ -n "$rootdisk" ] || rootdisk=$(basename "$root")
      matches=
      for link in $wanted; do
        case "$link" in *-part[0-9]*) continue ;; esac
        [ -b "$link" ] || continue
        [ "$(basename "$(readlink -f "$link")")" != "$rootdisk" ] || continue
        matches="$matches $link"
        count=$((count + 1))
      done
      if [ "$count" -eq 1 ]; then device=$(echo $matches); fi
    }
    for _ in $(seq 1 60); do
      resolve
      [ -z "$device" ] || break
      if [ "$count" -gt 1 ]; then
        echo "edgekit: $count disks match $wanted besides the root disk ($rootdisk):" \
          "$matches; the Postgres data volume must be the only one attached" >&2
        exit 1
      fi
      sleep 2
    done
    [ -n "$device" ] || { echo "edgekit: Postgres volume $wanted did not appear" >&2; exit 1; }
    type=$(blkid -o value -s TYPE "$device" || true)
    label=$(blkid -o value -s LABEL "$device" || true)
    if [ -z "$type" ]; then
      mkfs.ext4 -q -L ${pgDataLabel} "$device"
    elif [ "$type" = ext4 ] && [ -z "$label" ]; then
      # Hetzner formats a new volume as ext4 (hcloud_volume.format) without a label.
      e2label "$device" ${pgDataLabel}
    elif [ "$type" != ext4 ] || [ "$label" != ${pgDataLabel} ]; then
      # Someone else's filesystem: never format it, never mount it as the data volume.
      echo "edgekit: Postgres volume $device holds a $type filesystem labelled '$label', not" \
        "the data volume (ext4, label ${pgDataLabel}); it is left as it is and Postgres will" \
        "not start on it. Attach the right volume, or wipe this one (wipefs -a $device)" \
        "if nothing on it is needed." >&2
      exit 1
    fi
  '';

  pgUnits = config: pkgs: if pg == null then { } else {
    ${pgUnit.unit} = {
      description = "edgekit: Postgres roles, databases, schemas, grants and passwords";
      after = pgUnit.after ++ [ "edgekit-keys.service" ];
      requires = pgUnit.requires ++ [ "edgekit-keys.service" ];
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
    edgekit-pg-volume = {
      description = "edgekit: format the Postgres data volume once (label ${pgDataLabel})";
      wantedBy = [ "var-lib-postgresql.mount" ];
      before = [ "var-lib-postgresql.mount" ];
      unitConfig.DefaultDependencies = false;
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      path = [ pkgs.jq pkgs.coreutils pkgs.util-linux pkgs.e2fsprogs ];
      script = pgVolumeScript;
    };
    postgresql.unitConfig.RequiresMountsFor = [ "/var/lib/postgresql" ];
    # TLS (ADR 0025): the node's own certificate authority and server certificate, made
    # before Postgres starts and checked daily (renewed 30 days before expiry, then reloaded).
    # No RemainAfterExit, so the timer runs it again.
    ${pgUnit.tls.unit} = {
      description = "edgekit: Postgres server certificate from the node's own authority";
      before = [ "postgresql.service" ];
      serviceConfig.Type = "oneshot";
      path = [ pkgs.openssl pkgs.coreutils ];
      script = pgUnit.tls.script;
    };
    postgresql.after = [ "${pgUnit.tls.unit}.service" ];
    postgresql.requires = [ "${pgUnit.tls.unit}.service" ];
  } // pgPublishUnit pkgs;

  # The authority's certificate (public) to the logs bucket, for `edgekit pg import-ca`
  # (ADR 0025), by the one signed upload (nix/publish.nix). A unit of its own, after the
  # certificate unit and started with it (its timer too), so Postgres never waits for the
  # network; a failed upload is in its own log and the next run repeats it.
  pgPublishUnit = pkgs: let publish = pgUnit.tls.publish or null; in
    if publish == null then { } else {
      ${publish.unit} = import ./publish.nix { inherit pkgs; } {
        description = "edgekit: publish the Postgres authority's certificate (public)";
        inherit (publish) file;
        publish = removeAttrs publish [ "unit" "file" ];
        contentType = "application/x-pem-file";
        after = [ "${pgUnit.tls.unit}.service" ];
        requires = [ "${pgUnit.tls.unit}.service" ];
        wantedBy = [ "multi-user.target" "${pgUnit.tls.unit}.service" ];
      };
    };

  pgTimers = if pg == null then { } else {
    ${pgUnit.tls.unit} = {
      wantedBy = [ "timers.target" ];
      timerConfig = { OnCalendar = "daily"; RandomizedDelaySec = "1h"; Persistent = true; };
    };
  };

  pgFileSystems = if pg == null then { } else {
    "/var/lib/postgresql" = {
      device = "/dev/disk/by-label/${pgDataLabel}";
      fsType = "ext4";
      options = [ "nofail" "x-systemd.device-timeout=3min" ];
    };
  };

  keysScript = ''
    boot=/etc/edgekit/boot.json
    install -d -m 0711 -o root -g root ${keysDir}
    install -d -m 0750 -o root -g ${pgGroup} ${pgPasswordDir}
    umask 0377
    for key in $(jq -r '.secrets // {} | keys[]' "$boot"); do
      case "$key" in
        pg_password_*) file=${pgPasswordDir}/''${key#pg_password_}; group=${pgGroup} ;;
        pgbackrest_*) file=${keysDir}/$key; group=${pgGroup} ;;
        *) file=${keysDir}/$key; group=root ;;
      esac
      jq -j --arg k "$key" '.secrets[$k]' "$boot" > "$file.tmp"
      chgrp "$group" "$file.tmp"
      [ "$group" = root ] || chmod 0440 "$file.tmp"
      mv "$file.tmp" "$file"
    done
    if [ -f ${keysDir}/log_sink_access_key_id ]; then
      { printf 'AWS_ACCESS_KEY_ID=%s\n' "$(cat ${keysDir}/log_sink_access_key_id)"
        printf 'AWS_SECRET_ACCESS_KEY=%s\n' "$(cat ${keysDir}/log_sink_secret_access_key)"
      } > ${keysDir}/vector.env.tmp
      mv ${keysDir}/vector.env.tmp ${keysDir}/vector.env
    fi
  '';

  tunnelUnitName = secret: "edgekit-cloudflared-${replaceStrings [ "_" ] [ "-" ] secret}";

  # One cloudflared per tunnel token the node has (node.tunnels), none without: each reads
  # only its own token, as a systemd credential.
  tunnelUnits = pkgs: listToAttrs (map (secret: {
    name = tunnelUnitName secret;
    value = {
      description = "edgekit: cloudflared for the tunnel of ${secret}";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" "edgekit-keys.service" ];
      wants = [ "network-online.target" ];
      requires = [ "edgekit-keys.service" ];
      serviceConfig = {
        ExecStart = "${pkgs.cloudflared}/bin/cloudflared tunnel --no-autoupdate run "
          + "--token-file %d/token";
        LoadCredential = [ "token:${keysDir}/${secret}" ];
        DynamicUser = true;
        Restart = "always";
        RestartSec = 5;
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        CapabilityBoundingSet = "";
      };
    };
  }) node.tunnels);

  keysUnit = pkgs: {
    edgekit-keys = {
      description = "edgekit: secrets of the boot document into root-only files";
      wantedBy = [ "multi-user.target" ];
      before = map (s: "${tunnelUnitName s}.service") node.tunnels
        ++ map (svc: "edgekit-${svc}.service") node.services
        ++ [ "vector.service" ]
        ++ (if pg == null then [ ] else [ "${pgUnit.unit}.service" ]);
      unitConfig.ConditionPathExists = "/etc/edgekit/boot.json";
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      path = [ pkgs.jq pkgs.coreutils ];
      script = keysScript;
    };
  };

  # Vector runs the pinned version or not at all (from 0.46 its S3 sink sends a second
  # checksum header that R2 refuses: vector issue 23029), with the log sink's keys as the
  # environment the AWS SDK reads.
  vectorCheck = package: ''
    running=$(${package}/bin/vector --version | cut -d' ' -f2)
    if [ "$running" != ${shellQuote vectorVersion} ]; then
      echo "edgekit: vector $running is installed, ${vectorVersion} is pinned (R2 refuses the checksum headers of newer versions); set services.vector.package to ${vectorVersion}" >&2
      exit 1
    fi
  '';

  vectorCheckFile = "edgekit-vector-version-check";

  # The package must be the pinned version before anything is built (ADR 0017).
  pinnedVector =
    if vectorPackage == null then
      throw ("edgekit node ${name}: no vectorPackage; pass Vector ${vectorVersion} (the flake "
        + "gives the `vector` of its input nixpkgs-vector)")
    else if (vectorPackage.version or null) != vectorVersion then
      throw ("edgekit node ${name}: vectorPackage is Vector "
        + "${toString (vectorPackage.version or "?")}, edgekit pins ${vectorVersion} "
        + "(R2 refuses the checksum headers of newer versions); "
        + "point the flake input nixpkgs-vector at a nixpkgs revision whose vector is "
        + vectorVersion)
    else vectorPackage;

  vectorUnit = config: pkgs: {
    vector = {
      after = [ "edgekit-keys.service" ];
      requires = [ "edgekit-keys.service" ];
      serviceConfig = {
        EnvironmentFile = [ "-${keysDir}/vector.env" ];
        ExecStartPre = [ "/etc/${vectorCheckFile}" ];
      };
    };
  };

  # Metadata services serve the user data (secrets included) to any local process: after
  # boot only root may ask, on every address the cloud serves it (Linode: IPv6 as well).
  metadata = if cloud == null then { ipv4 = [ "169.254.169.254" ]; ipv6 = [ ]; }
    else cloud.metadata;
  metadataRules = action: suffix: concatStringsSep "\n" (
    map (a: "iptables -w ${action} OUTPUT -d ${a}/32 -m owner ! --uid-owner 0 -j REJECT"
      + suffix) metadata.ipv4
    ++ map (a: "ip6tables -w ${action} OUTPUT -d ${a}/128 -m owner ! --uid-owner 0 -j REJECT"
      + suffix) metadata.ipv6);

  data = { lib, config, pkgs }: {
    networking.hostName = name;
    # No port is opened for anything: cloudflared dials out, deployment pulls (ADR 0005).
    networking.firewall.enable = true;
    networking.firewall.allowedTCPPorts = lib.mkForce [ ];
    networking.firewall.extraCommands = metadataRules "-I" "";
    networking.firewall.extraStopCommands = metadataRules "-D" " || true";

    services = {
      # Services speak OTLP to the local Vector (127.0.0.1:4318), which ships to R2.
      vector = {
        enable = true;
        package = pinnedVector;
        journaldAccess = true;
        settings = vector;
      };
    } // (if node.services == [ ] then { } else { edgekit = serviceConfig; })
      // pgServices lib pkgs;

    fileSystems = pgFileSystems;
    environment.etc = pgEtc lib // {
      ${vectorCheckFile} = {
        mode = "0555";
        text = "#!${pkgs.runtimeShell}\n" + vectorCheck config.services.vector.package;
      };
    };
    systemd.services = keysUnit pkgs // tunnelUnits pkgs // vectorUnit config pkgs
      // pgUnits config pkgs;
    systemd.timers = pgTimers;

    # Pull deployment (ADR 0005): follow the deploy ref of this repository; no inbound port.
    # The node runs exactly the deployed revision: no --upgrade (upstream adds it by
    # default), and nix may neither write nor update the lock (a missing or stale entry in
    # the deployed flake.lock fails the upgrade instead of resolving inputs afresh).
    system.autoUpgrade = if upgradeFlake == null || deploy != null then { enable = false; } else {
      enable = true;
      flake = "${upgradeFlake}#${name}";
      upgrade = false;
      flags = [ "--no-write-lock-file" "--no-update-lock-file" ];
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
++ (if cloud == null then [ ] else [ (import ./cloud.nix { facts = cloud; }) ])
++ (if mesh == null then [ ] else [ (import ./mesh.nix {
      settings = if pg == null then mesh // { postgres = null; } else mesh;
    }) ])
++ (if deploy == null then [ ] else [ (import ./deploy.nix { settings = deploy; }) ])
++ [ ({ lib, config, pkgs, ... }: data { inherit lib config pkgs; }) ]
