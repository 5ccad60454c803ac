# pgBackRest on the Postgres primary (ADR 0011): a NixOS module from the data
# edgekit.pg.backup.nixos_pgbackrest produces (nix/pgbackrest/<env>.json, generated).
#
# Pure: no nixpkgs is imported here; the module is a function of `lib` and `pkgs`
# (pgbackrest, coreutils, writeShellApplication), so tests evaluate it with the vendored upstream modules (nix/eval/).
#
#   settings.conf                 /etc/pgbackrest/pgbackrest.conf (no secret in it), but for
#                                 pg1-path, appended here from the evaluated
#                                 services.postgresql.dataDir (the one place that decides it)
#   settings.wrapper              the edgekit-pgbackrest command: reads the cipher passphrase
#                                 and the R2 credentials from /run/keys/edgekit/pgbackrest_*
#                                 (written by node.nix's edgekit-keys from the boot document)
#   settings.postgresqlSettings   archive_mode/archive_command/archive_timeout for the primary
#   settings.stanzaCreate         argv of the idempotent stanza creation (oneshot after Postgres)
#   settings.backups.<kind>       { calendar; command; }: a timer + oneshot per backup kind
#   settings.directories          spool, log and lock folders, owned by postgres, made by
#                                 tmpfiles and writable inside postgresql.service
#                                 (ProtectSystem=strict upstream): archive_command runs there
{ settings }:
{ config, lib, pkgs, ... }:
let
  inherit (builtins) attrNames concatStringsSep listToAttrs map replaceStrings;

  shellQuote = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";
  argv = list: concatStringsSep " " (map shellQuote list);

  wrapper = pkgs.writeShellApplication {
    name = settings.wrapper.name;
    runtimeInputs = [ pkgs.pgbackrest pkgs.coreutils ];
    text = settings.wrapper.script;
  };

  oneshot = description: command: extra: {
    inherit description;
    after = [ "postgresql.service" "edgekit-keys.service" ];
    requires = [ "postgresql.service" ];
    wants = [ "edgekit-keys.service" ];
    path = [ wrapper ];
    serviceConfig = { Type = "oneshot"; User = "postgres"; Group = "postgres"; } // extra;
    script = argv command;
  };

  backupUnits = listToAttrs (map (kind: {
    name = "edgekit-pgbackrest-${kind}";
    value = oneshot "edgekit: pgBackRest ${kind} backup to R2" settings.backups.${kind}.command { };
  }) (attrNames settings.backups));

  backupTimers = listToAttrs (map (kind: {
    name = "edgekit-pgbackrest-${kind}";
    value = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = settings.backups.${kind}.calendar;
        Persistent = true;
        RandomizedDelaySec = "10min";
      };
    };
  }) (attrNames settings.backups));
in
{
  environment.etc."pgbackrest/pgbackrest.conf" = {
    text = settings.conf + "pg1-path=${config.services.postgresql.dataDir}\n";
    mode = "0644";
  };
  environment.systemPackages = [ wrapper ];

  # archive_command and (after a restore) restore_command call the wrapper by name.
  services.postgresql.settings = settings.postgresqlSettings;
  systemd.services = backupUnits // {
    postgresql = {
      path = [ wrapper ];
      serviceConfig.ReadWritePaths = settings.directories;
    };
    edgekit-pgbackrest-stanza = oneshot "edgekit: pgBackRest stanza in R2 (idempotent)"
      settings.stanzaCreate { RemainAfterExit = true; };
  };
  systemd.timers = backupTimers;
  systemd.tmpfiles.rules = map (d: "d ${d} 0750 postgres postgres -") settings.directories;
  # The pgbackrest_* key files are root:postgres 0440 (node.nix, ADR 0008): postgres reads
  # them, no other service does.
}
