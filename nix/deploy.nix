# The node's deploy agent (ADR 0033, 0034): edgekit/deploy/agent.py, run as root every minute
# (a oneshot and its timer), in place of system.autoUpgrade. Each run follows the node's ref
# (<env ref>.nodes/<node>, else <env ref>), builds exactly that revision with the lock file
# it carries (--no-update-lock-file: never a newer nixpkgs than the revision pins), switches,
# checks every health check of the node within the health window and otherwise switches
# back to the generation before, and reports status/<env>/<node>.json to the logs bucket
# with the log sink's keys (vector.env, ADR 0008). No port is opened: it only dials out.
#
# Pure: no nixpkgs is imported; a function of `config` (the Postgres package on the
# primary, for pg_isready) and `pkgs` (python3, git, nix, coreutils).
#
#   settings  the node's entry of nix/deploy/<env>.json (edgekit.deploy.plan.agent_settings),
#             written to /etc/edgekit/deploy.json
#   agent     the agent's source (the same file the first boot runs a copy of)
{ settings, agent ? ../edgekit/deploy/agent.py }:
{ config, pkgs, ... }:
let
  pg = settings.health ? postgresql;
in
{
  environment.etc."edgekit/deploy.json".text = builtins.toJSON settings;
  systemd.services.edgekit-deploy = {
    description = "edgekit: follow the deploy ref, switch, check health, roll back, report";
    after = [ "network-online.target" "edgekit-keys.service" ];
    wants = [ "network-online.target" ];
    # The switch this unit performs must neither restart nor stop it (as nixos-upgrade):
    # the agent outlives the activation to check health and, if need be, roll back.
    restartIfChanged = false;
    unitConfig.X-StopOnRemoval = false;
    environment.HOME = "/root";
    path = [ pkgs.git pkgs.nix pkgs.coreutils ]
      ++ (if pg then [ config.services.postgresql.package ] else [ ]);
    serviceConfig = {
      Type = "oneshot";
      ExecStart = "${pkgs.python3}/bin/python3 ${agent} run --config /etc/edgekit/deploy.json";
    };
  };
  systemd.timers.edgekit-deploy = {
    wantedBy = [ "timers.target" ];
    timerConfig = { OnBootSec = "30s"; OnUnitInactiveSec = "1min"; RandomizedDelaySec = "10s"; };
  };
}
