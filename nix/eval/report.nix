# One node's evaluated NixOS configuration as plain data (the JSON edgekit.nix.evaluate
# returns; its docstring is the interface). Derivations become their store paths.
#
#   lib      nixpkgs' lib
#   pkgs     the pkgs stand-in the node was evaluated with
#   eval     the result of nix/eval/nixos.nix (config, options)
#   name     the node
#   env      its environment (nix/estate.nix)
{ lib, pkgs, eval, name, env }:
let
  inherit (lib) filterAttrs mapAttrs optionalAttrs;
  c = eval.config;
  systemdLib = eval._module.args.utils.systemdUtils.lib;

  # store paths for derivations, recursively (lists, attrsets), everything else as is
  plain = v:
    if lib.isDerivation v then v.outPath
    else if builtins.isList v then map plain v
    else if builtins.isAttrs v then mapAttrs (_: plain) v
    else if builtins.isFunction v then "<function>"
    else if builtins.isPath v then toString v
    else v;

  # The scripts NixOS writes for script/preStart/... (systemd-lib.nix makeJobScript, which
  # returns only the path): the same writer call, so path and content agree; report.nix's
  # `scriptsAgree` checks every path is the one the unit runs.
  kinds = {
    preStart = "pre-start"; script = "start"; postStart = "post-start"; reload = "reload";
    preStop = "pre-stop"; postStop = "post-stop";
  };
  jobScript = unit: kind: text:
    let
      scriptName = builtins.replaceStrings [ "\\" "@" ] [ "-" "_" ]
        (systemdLib.shellEscape "${unit}-${kind}");
      written = (if unit' .enableStrictShellChecks or false
        then pkgs.writeShellApplication { name = scriptName; inherit text; }
        else pkgs.writeShellScriptBin scriptName "set -e\n\n${text}\n"
      ).overrideAttrs (_: { name = "unit-script-${scriptName}"; });
      unit' = c.systemd.services.${unit};
    in { path = lib.getExe written; file = written.script; };

  service = n: s: {
    inherit (s) description after before requires wants wantedBy requiredBy partOf bindsTo
      script preStart postStart reload preStop postStop enable;
    name = s.name;
    serviceConfig = plain s.serviceConfig;
    unitConfig = plain s.unitConfig;
    environment = plain (filterAttrs (_: v: v != null) s.environment);
    path = map (p: if lib.isDerivation p then { name = p.name; store = p.outPath; } else { name = p; store = p; }) s.path;
    scripts = lib.filterAttrs (_: v: v != null) (mapAttrs (attr: kind:
      if s.${attr} == "" then null else jobScript n kind s.${attr}) kinds);
    unitText = (systemdLib.serviceToUnit s).text;
  };

  target = n: t: {
    inherit (t) description after before requires wants wantedBy requiredBy partOf;
    unitConfig = plain t.unitConfig;
  };

  timer = n: t: {
    inherit (t) wantedBy;
    timerConfig = plain t.timerConfig;
    unitText = (systemdLib.timerToUnit t).text;
  };

  pg = c.services.postgresql;

  # the declaration's own default counts as a definition from standins.nix
  projectFiles = defs: builtins.filter (f: !(lib.hasInfix "/nix/upstream/" f || lib.hasSuffix "/nix/eval/standins.nix" f))
    (map (d: toString d.file) defs);
  sinks = [ [ "system" "checks" ] [ "environment" "pathsToLink" ] [ "meta" ]
    [ "boot" "kernelModules" ] [ "boot" "extraModulePackages" ] [ "boot" "extraModprobeConfig" ]
    [ "system" "activationScripts" ] [ "environment" "profiles" ] ];
in
{
  inherit name env;
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
  warnings = c.warnings;
  stateVersion = c.system.stateVersion;
  hostName = c.networking.hostName;
  services = mapAttrs service (filterAttrs (_: s: s.enable) c.systemd.services);
  targets = mapAttrs target c.systemd.targets;
  timers = mapAttrs timer c.systemd.timers;
  tmpfiles = c.systemd.tmpfiles.rules;
  etc = mapAttrs (_: e: {
    inherit (e) target text mode user group;
    source = toString e.source;
  }) (filterAttrs (_: e: e.enable) c.environment.etc);
  users = mapAttrs (_: u: {
    inherit (u) name uid group extraGroups description home createHome isSystemUser isNormalUser;
    shell = if u.shell == null then null else toString u.shell;
  }) c.users.users;
  groups = mapAttrs (_: g: { inherit (g) name gid members; }) c.users.groups;
  fileSystems = plain c.fileSystems;
  postgresql = if !pg.enable then null else {
    package = { inherit (pg.package) name version; major = pg.package.psqlSchema; };
    finalPackage = pg.finalPackage.outPath;
    inherit (pg) dataDir authentication identMap ensureDatabases enableTCPIP;
    ensureUsers = plain pg.ensureUsers;
    settings = plain pg.settings;
  };
  autoUpgrade = c.system.autoUpgrade;
  networking = plain { inherit (c.networking) hostName firewall wireguard; };
  vector = plain (c.services.vector // { version = c.services.vector.package.version or null; });
  edgekit = plain (c.services.edgekit or { });
  standins = c.edgekit.standins;
  # definitions of sink options (only vendored modules may write them) from our own files
  sinkDefinitions = lib.concatMap (p:
    let files = projectFiles (lib.attrByPath p { definitionsWithLocations = [ ]; } eval.options).definitionsWithLocations;
    in map (f: "${lib.concatStringsSep "." p}: ${f}") files) sinks;
}
