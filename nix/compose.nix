# Pure composition of an environment's nodes: placement + services in, per-node data out.
#
# No nixpkgs, no lib: builtins only, so `nix-instantiate --eval --strict --json` evaluates it
# offline. edgekit/nix/compose.py computes the same result in Python; tests/test_nix.py checks
# that both agree for every committed CUE export and that both refuse the same bad inputs
# with the same messages.
#
# Arguments (JSON-shaped; the top-level flake and edgekit/nix/evaluate.py pass the CUE export):
#   placement  node -> [ service ]           (env.placement)
#   services   name -> { kind, port, hostnames, env, health_path, needs, ... }   (services)
#   nodes      name -> { roles, ... }         (env.nodes; every node gets an entry, even with
#                                              nothing placed on it)
#   postgres   null, or { node; host ? null; port ? 5432; }: the primary's node and its
#              private address once known (PGHOST is left out until then). null: the node
#              whose roles contain "postgres", if any.
#   envName    the environment's name, for OTEL_RESOURCE_ATTRIBUTES
#
# Result: node -> {
#   services = [ "api" "web" ];                  placement order
#   ports    = { api = 8080; web = 8081; };
#   env      = { api = { PORT = "8080"; BIND = "127.0.0.1"; ... }; ... };   strings only
#   tunnels  = [ "tunnel_token" "pg_tunnel_token" ];  the boot document's tunnel tokens the
#              node gets, one cloudflared each: its services' tunnel when a service is
#              placed on it, the Postgres tunnel (Hyperdrive) on the primary when a service
#              reads Postgres (`ro`); none otherwise
#   postgres = true | false;                     the node runs the primary
# }
#
# The tunnels' ingress is not computed here: the tunnels are remotely managed, and their
# ingress has one source, edgekit/constructs/tunnel.py (the tunnel config resources).
#
# It throws (message starting "edgekit compose:", naming the node and the service) for:
# a service placed on a node twice, two services of one node on the same port, a placed
# service that is not in `services`, a "worker" service placed on a node, a node in
# placement that is not in `nodes` (when `nodes` is given) and a vps service without a port.
{ placement, services, nodes ? { }, postgres ? null, envName ? null }:
let
  inherit (builtins)
    any attrNames attrValues concatStringsSep elem filter foldl' hasAttr listToAttrs
    map replaceStrings toString;

  fail = msg: throw "edgekit compose: ${msg}";
  quote = s: "'${s}'";
  known = concatStringsSep ", " (attrNames services);

  loopback = "127.0.0.1";
  otlpEndpoint = "http://127.0.0.1:4318";
  pgPort = if postgres != null then postgres.port or 5432 else 5432;
  pgHost = if postgres != null then postgres.host or null else null;

  # Hyperdrive (and so the Postgres tunnel) exists when some service reads Postgres.
  readers = any (s: ((s.needs or { }).postgres or null) == "ro") (attrValues services);

  nodeNames =
    let extra = filter (n: !(hasAttr n nodes)) (attrNames placement);
    in if nodes != { } && extra != [ ]
    then fail ("placement names node ${quote (builtins.head extra)}, which is not a node of "
      + "the environment (nodes: ${concatStringsSep ", " (attrNames nodes)})")
    else attrNames nodes ++ extra;

  pgNodes =
    if postgres != null then
      (if (postgres.node or null) == null then [ ]  # a managed database: on no node
       else if nodes != { } && !(hasAttr postgres.node nodes)
       then fail "postgres node ${quote postgres.node} is not a node of the environment"
       else [ postgres.node ])
    else filter (n: elem "postgres" (nodes.${n}.roles or [ ])) (attrNames nodes);

  # The service's record, checked for being placed on `node`.
  placed = node: name:
    if !(hasAttr name services) then
      fail ("node ${quote node}: placed service ${quote name} is not a known service "
        + "(known: ${known})")
    else
      let s = services.${name}; in
      if (s.kind or "vps") == "worker" then
        fail ("node ${quote node}: service ${quote name} is a worker (it runs on Cloudflare); "
          + "it cannot be placed on a node")
      else if (s.port or null) == null then
        fail "node ${quote node}: service ${quote name} has no port"
      else s;

  # Fold over the node's services, refusing duplicates and port clashes, in order.
  checked = node: names:
    (foldl' (acc: name:
      let s = placed node name; port = toString s.port; in
      if elem name acc.names then
        fail "service ${quote name} is placed on node ${quote node} twice"
      else if hasAttr port acc.byPort then
        fail ("node ${quote node}: services ${quote acc.byPort.${port}} and ${quote name} "
          + "both use port ${port}")
      else {
        names = acc.names ++ [ name ];
        byPort = acc.byPort // { ${port} = name; };
      }) { names = [ ]; byPort = { }; } names).names;

  pgName = name: replaceStrings [ "-" ] [ "_" ] name;

  serviceEnv = node: name:
    let
      s = services.${name};
      mode = (s.needs or { }).postgres or null;
      attributes = [ "host.name=${node}" ]
        ++ (if envName != null then [ "deployment.environment=${envName}" ] else [ ]);
      pg =
        if mode == null then { }
        else {
          PGDATABASE = pgName name;
          PGUSER = "svc_${pgName name}_${mode}";
          PGPORT = toString pgPort;
        } // (if pgHost != null then { PGHOST = pgHost; } else { });
    in
    (s.env or { }) // {
      PORT = toString s.port;
      BIND = loopback;
      EDGEKIT_HEALTH_PATH = s.health_path or "/healthz";
      OTEL_EXPORTER_OTLP_ENDPOINT = otlpEndpoint;
      OTEL_SERVICE_NAME = name;
      OTEL_RESOURCE_ATTRIBUTES = concatStringsSep "," attributes;
    } // pg;

  composeNode = node:
    let
      names = checked node (placement.${node} or [ ]);
      portOf = name: services.${name}.port;
    in {
      services = names;
      ports = listToAttrs (map (name: { inherit name; value = portOf name; }) names);
      env = listToAttrs (map (name: { inherit name; value = serviceEnv node name; }) names);
      tunnels = (if names != [ ] then [ "tunnel_token" ] else [ ])
        ++ (if elem node pgNodes && readers then [ "pg_tunnel_token" ] else [ ]);
      postgres = elem node pgNodes;
    };
  allNodes = nodeNames ++ filter (n: !(elem n nodeNames)) pgNodes;
in
listToAttrs (map (node: { name = node; value = composeNode node; }) allNodes)
