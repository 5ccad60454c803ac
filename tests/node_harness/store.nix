# The store files a node's units run that the evaluation report names only by path: the
# writers the pkgs stand-in kept the text of (nix/stubs.nix), found in the evaluated
# configuration, so the node harness can put them at their store paths.
#
#   nix-instantiate --eval --strict --json store.nix --arg repo ./. --argstr node pg-tokyo
#
# Result: { files."<outPath>"."<path inside>" = { text; executable; };
#           sources."<store path>" = "<path in the repository>"; }
#   sources: the repository files the glued flakes interpolate (services/lib, each service's
#   app.py and edgekit.json), by the store path the same interpolation gives here.
#   - every derivation with kept text reachable from a unit's `path` or `serviceConfig`, and
#     the glued flakes' packages (services.edgekit.<svc>.package);
#   - the files upstream postgresql.nix interpolates into strings (so no derivation is left
#     to find): pg_hba.conf, pg_ident.conf and postgresql.conf, rebuilt with the module's own
#     writer calls. The harness refuses a unit whose store path it cannot find, so a rebuild
#     that differs from upstream's (another outPath) fails loudly instead of being wrong.
{ repo, node }:
let
  estate = import (repo + "/nix/eval/estate.nix") { inherit repo; };
  inherit (estate) lib;
  pkgs = import (repo + "/nix/stubs.nix") { inherit lib; system = "x86_64-linux"; };
  c = estate.nodes.${node}.config;

  # what a kept writer puts in its output
  filesOf = d:
    if d ? executable && d ? script then {
      ${lib.removePrefix "${d.outPath}/" d.executable} = { text = d.script; executable = true; };
    } else if d ? path && d ? text then {
      ${d.path} = { text = d.text; executable = false; };
    } else if d ? destination && d ? text then {
      ${lib.removePrefix "/" d.destination} = { text = d.text; executable = false; };
    } else if d ? text then {
      "" = { text = d.text; executable = false; };
    } else { };

  deep = v:
    if lib.isDerivation v then [ v ]
    else if builtins.isList v then lib.concatMap deep v
    else if builtins.isAttrs v then lib.concatMap deep (builtins.attrValues v)
    else [ ];

  units = builtins.attrValues (lib.filterAttrs (_: s: s.enable) c.systemd.services);
  # units, and the glued flakes' packages (their ExecStart interpolates them into a string)
  found = lib.concatMap (s: deep s.path ++ deep s.serviceConfig) units
    ++ deep (lib.mapAttrs (_: svc: svc.package or null) (c.services.edgekit or { }));

  pg = c.services.postgresql;
  toStr = value:
    if true == value then "yes"
    else if false == value then "no"
    else if builtins.isString value then "'${lib.replaceStrings [ "'" ] [ "''" ] value}'"
    else builtins.toString value;
  postgresFiles = lib.optionals pg.enable [
    (pkgs.writeText "pg_hba.conf" pg.authentication)
    (pkgs.writeText "pg_ident.conf" pg.identMap)
    (pkgs.writeTextDir "postgresql.conf" (lib.concatStringsSep "\n" (lib.mapAttrsToList
      (n: v: "${n} = ${toStr v}") (lib.filterAttrs (_: x: x != null) pg.settings))))
  ];

  kept = builtins.filter (d: filesOf d != { }) (found ++ postgresFiles);
  glued = builtins.attrNames (c.services.edgekit or { });
  storePath = path: builtins.unsafeDiscardStringContext "${path}";
in
{
  files = builtins.listToAttrs (map (d: { name = d.outPath; value = filesOf d; }) kept);
  sources = builtins.listToAttrs ([
    { name = storePath (repo + "/services/lib"); value = "services/lib"; }
  ] ++ lib.concatMap (svc: map (f: {
    name = storePath (repo + "/services/${svc}/${f}"); value = "services/${svc}/${f}";
  }) [ "app.py" "edgekit.json" ]) glued);
}
