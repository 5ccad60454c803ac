# The node's place in the environment's WireGuard mesh (ADR 0010): a NixOS module from its
# entry of nix/mesh/<env>.json (edgekit.constructs.mesh.nixos_mesh, generated).
#
# Pure: no nixpkgs is imported; the module is a function of `lib` and `pkgs` (wireguard-tools,
# coreutils), so tests evaluate it with the vendored upstream modules (nix/eval/).
#
#   settings.interface / address / listenPort   the interface, its mesh address, UDP port
#   settings.node             the node's name
#   settings.privateKeyFile   made on the node at first boot (generatePrivateKeyFile); the
#                             private key never leaves the node. edgekit-mesh-key (at boot
#                             and daily) keeps the public key in <its folder>/public and PUTs
#                             it to settings.publish.
#   settings.publish          { endpoint; bucket; key; credentials; }: the logs bucket's S3
#                             endpoint and mesh/<env>/<node>.pub, PUT by nix/publish.nix (the
#                             one signed upload: SigV4 with the log sink's R2 keys from
#                             `credentials`, never on curl's command line).
#                             `edgekit mesh import-keys --stack <env>` brings the keys into
#                             cue/outputs/<env>.mesh.cue (edgekit.cue.mesh_keys).
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
  publish = settings.publish;
  public = "${dirOf settings.privateKeyFile}/public";
  publishUnit = import ./publish.nix { inherit pkgs; };
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

  # The public key goes to the logs bucket by the one signed upload of nix/publish.nix.
  # No RemainAfterExit, so the daily timer publishes again (a deleted object comes back).
  # One attribute set for systemd.services: a second top-level `systemd` in the `//` below
  # would replace this one on the primary.
  systemd.services = {
    edgekit-mesh-key = publishUnit {
      description = "edgekit: publish this node's WireGuard public key";
      file = public;
      inherit publish;
      after = [ "wireguard-${iface}.service" ];
      wants = [ "wireguard-${iface}.service" ];
      path = [ pkgs.wireguard-tools ];
      prepare = ''
        wg pubkey < '${settings.privateKeyFile}' > '${public}.tmp'
        mv '${public}.tmp' '${public}'
        echo "edgekit-mesh-public-key $(cat '${public}')"
      '';
    };
  } // (if pg == null then { } else {
    postgresql = {
      after = [ "wireguard-${iface}.service" ];
      wants = [ "wireguard-${iface}.service" ];
    };
  });
  systemd.timers.edgekit-mesh-key = {
    wantedBy = [ "timers.target" ];
    timerConfig = { OnCalendar = "daily"; RandomizedDelaySec = "1h"; Persistent = true; };
  };
} // (if pg == null then { } else {
  services.postgresql = {
    settings.listen_addresses = lib.mkOverride 40 (concatStringsSep "," pg.listen);
    authentication = lib.mkOverride 40 (concatStringsSep "\n"
      ([ "local all all peer" ] ++ pg.authentication) + "\n");
  };
})
