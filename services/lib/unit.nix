# The systemd unit of a glued flake's service, as plain data: pure Nix, no nixpkgs, so
# tests evaluate it offline (tests/test_nix.py). The nixosModules.default that
# lib.gluedFlake (flake.nix here) gives every service assigns it to
# systemd.services."edgekit-<service>".
#
#   edgekit       the service's parsed edgekit.json (generated from cue/)
#   package       the service's package (a derivation in the module; any store path string
#                 in tests); its bin/edgekit-<service> is started
#   environment   the node's composed env for the service (nix/compose.nix); it overrides the
#                 defaults read from ./edgekit.json
#   passwordFile  the Postgres password, a file under /run/keys written at boot (never a Nix
#                 path: a path would be copied into the world-readable store). systemd hands
#                 it to the DynamicUser service as the credential "pgpassword".
{ package
, environment ? { }
, passwordFile ? null
, edgekit
}:
let
  name = edgekit.service;
  defaults = {
    PORT = toString edgekit.port;
    BIND = "127.0.0.1";
    EDGEKIT_HEALTH_PATH = edgekit.health_path;
    OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:4318";
    OTEL_SERVICE_NAME = edgekit.otel.service_name;
  } // (edgekit.env or { });
  env = defaults // environment;
  secretNames = builtins.filter (k: builtins.hasAttr k env) [ "PGPASSWORD" "PGPASSFILE" ];
  checkedPasswordFile =
    if passwordFile == null then null
    else if builtins.isPath passwordFile then
      throw "edgekit ${name}: passwordFile must be a string path under /run/keys, not a Nix path (it would be copied into the store)"
    else if builtins.substring 0 10 passwordFile != "/run/keys/" then
      throw "edgekit ${name}: passwordFile ${passwordFile} must be under /run/keys/"
    else passwordFile;
in
if secretNames != [ ] then
  throw "edgekit ${name}: ${builtins.head secretNames} must not be in the environment (it would land in the store); use passwordFile"
else if env.BIND != "127.0.0.1" && env.BIND != "::1" then
  throw "edgekit ${name}: BIND must be a loopback address (cloudflared is the only client), got ${env.BIND}"
else {
  description = "edgekit service ${name}";
  wantedBy = [ "multi-user.target" ];
  after = [ "network-online.target" ];
  wants = [ "network-online.target" ];
  environment = env;
  serviceConfig = {
    ExecStart = "${package}/bin/edgekit-${name}";
    DynamicUser = true;
    Restart = "always";
    RestartSec = 2;
    # Hardening: nothing to write, no privileges, loopback and the private network only.
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectControlGroups = true;
    RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
    CapabilityBoundingSet = "";
    SystemCallFilter = [ "@system-service" ];
    IPAddressDeny = "any";
    IPAddressAllow = [ "localhost" "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" ];
  } // (if checkedPasswordFile == null then { } else {
    LoadCredential = [ "pgpassword:${checkedPasswordFile}" ];
  });
}
