# Every node of every environment, composed from the committed CUE exports: pure Nix.
#
#   exportDir      cue/export: one <env>.json per environment (`env.placement`, `env.nodes`,
#                  `env.cloudflare`, `env.observed`, `services`), written by `edgekit cue export`
#   postgresqlDir  nix/postgresql: optional <env>.json, the output of
#                  edgekit.constructs.pg_bootstrap.nixos_postgresql for the primary of <env>
#                  (it needs the primary's private address, known after the first apply)
#
# Result: node -> { env; provider; roles; composed; postgresql; }, where `composed` is the
# node's entry of nix/compose.nix. Node names are flake attributes
# (nixosConfigurations.<node>), so a node name used by two environments is an error.
{ exportDir ? ../cue/export, postgresqlDir ? ./postgresql }:
let
  inherit (builtins) attrNames filter foldl' fromJSON hasAttr head mapAttrs match pathExists
    readDir readFile;

  files = filter (f: match ".*\\.json" f != null) (attrNames (readDir exportDir));

  pgPlace = env:
    let nodes = filter (n: builtins.elem "postgres" (env.nodes.${n}.roles or [ ]))
      (attrNames (env.nodes or { }));
    in if nodes == [ ] then null else {
      node = head nodes;
      host = (env.observed.pg_primary_private_ip or { }).value or null;
    };

  perEnv = file:
    let
      data = fromJSON (readFile (exportDir + "/${file}"));
      env = data.env;
      composed = import ./compose.nix {
        placement = env.placement or { };
        services = data.services;
        nodes = env.nodes or { };
        tunnel = { zone = env.cloudflare.zone; hostLabel = env.host_label or null; };
        postgres = pgPlace env;
        envName = env.name;
      };
      pgFile = postgresqlDir + "/${env.name}.json";
    in
    mapAttrs (node: c: {
      env = env.name;
      provider = env.nodes.${node}.provider or null;
      roles = env.nodes.${node}.roles or [ ];
      composed = c;
      postgresql = if c.postgres && pathExists pgFile then fromJSON (readFile pgFile) else null;
    }) composed;
in
foldl' (acc: file:
  let nodes = perEnv file; in
  foldl' (acc2: node:
    if hasAttr node acc2 then
      throw "edgekit estate: node '${node}' is in environments '${acc2.${node}.env}' and '${nodes.${node}.env}'; node names must be unique across environments"
    else acc2 // { ${node} = nodes.${node}; }) acc (attrNames nodes)) { } files
