# The node's place in the environment's WireGuard mesh (ADR 0010): a NixOS module from its
# entry of nix/mesh/<env>.json (edgekit.constructs.mesh.nixos_mesh, generated).
#
# Pure: no nixpkgs is imported; the module is a function of `lib` and `pkgs` (wireguard-tools,
# coreutils), so tests evaluate it against nix/stubs.nix.
#
#   settings.interface / address / listenPort   the interface, its mesh address, UDP port
#   settings.node             the node's name
#   settings.privateKeyFile   made on the node at first boot (generatePrivateKeyFile); the
#                             private key never leaves the node. edgekit-mesh-key keeps the
#                             public key in /var/lib/edgekit/wireguard/public and sends it as
#                             one OTLP log record (service edgekit-mesh) to the local Vector,
#                             which ships it to R2; `edgekit logs mesh-keys --stack <env>`
#                             prints envs.<env>.mesh.public_keys for cue/.
#   settings.peers            [{ name; publicKey; allowedIPs; endpoint; persistentKeepalive; }]
#   settings.postgres         null, or on the primary { listen; port; authentication; }:
#                             Postgres listens on the mesh (+ provider-private) address only
#                             and pg_hba admits exactly the mesh addresses of the nodes whose
#                             services need it, per role. These override the private-network
#                             settings of nix/postgresql/<env>.json.
{ settings }:
{ lib, pkgs, ... }:
let
  inherit (builtins) concatStringsSep dirOf map toString;
  iface = settings.interface;
  pg = settings.postgres;
  # edgekit.obs.mesh_keys reads these back from the synced logs.
  serviceName = "edgekit-mesh";
  prefix = "edgekit-mesh-public-key ";
  otlpLogs = "http://127.0.0.1:4318/v1/logs";
in
{
  networking.wireguard.interfaces.${iface} = {
    ips = [ settings.address ];
    listenPort = settings.listenPort;
    privateKeyFile = settings.privateKeyFile;
    generatePrivateKeyFile = true;
    peers = map (p: {
      inherit (p) publicKey allowedIPs endpoint persistentKeepalive;
      name = p.name;
    }) settings.peers;
  };
  # The provider firewall admits this port only from the other nodes' public addresses; the
  # node's own firewall does the same (replies to handshakes this node starts pass as
  # established traffic either way).
  networking.firewall.extraCommands = concatStringsSep "\n" (map (p:
    "iptables -A nixos-fw -p udp --dport ${toString settings.listenPort} "
    + "-s ${p.endpointHost} -j nixos-fw-accept") settings.peers);
  networking.firewall.interfaces.${iface}.allowedTCPPorts =
    if pg == null then [ ] else [ pg.port ];

  systemd.services.edgekit-mesh-key = {
    description = "edgekit: publish this node's WireGuard public key";
    wantedBy = [ "multi-user.target" ];
    after = [ "wireguard-${iface}.service" "vector.service" ];
    wants = [ "wireguard-${iface}.service" ];
    serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
    path = [ pkgs.wireguard-tools pkgs.coreutils pkgs.curl ];
    script = ''
      public=${dirOf settings.privateKeyFile}/public
      wg pubkey < ${settings.privateKeyFile} > "$public.tmp"
      mv "$public.tmp" "$public"
      key=$(cat "$public")
      echo "edgekit-mesh-public-key $key"
      record='{"resourceLogs":[{"resource":{"attributes":['
      record="$record"'{"key":"service.name","value":{"stringValue":"${serviceName}"}},'
      record="$record"'{"key":"host.name","value":{"stringValue":"${settings.node}"}}]},'
      record="$record"'"scopeLogs":[{"logRecords":[{"timeUnixNano":"'"$(date +%s%N)"'",'
      record="$record"'"severityText":"INFO","body":{"stringValue":"${prefix}'"$key"'"}}]}]}]}'
      curl --fail --silent --show-error --retry 20 --retry-connrefused --retry-delay 3 \
        -H 'Content-Type: application/json' --data "$record" ${otlpLogs}
    '';
  };
} // (if pg == null then { } else {
  services.postgresql = {
    settings.listen_addresses = lib.mkOverride 40 (concatStringsSep "," pg.listen);
    authentication = lib.mkOverride 40 (concatStringsSep "\n"
      ([ "local all all peer" ] ++ pg.authentication) + "\n");
  };
  systemd.services.postgresql = {
    after = [ "wireguard-${iface}.service" ];
    wants = [ "wireguard-${iface}.service" ];
  };
})
