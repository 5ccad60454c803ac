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
#                             endpoint and mesh/<env>/<node>.pub, signed (SigV4, curl) with the
#                             log sink's write-only R2 keys from `credentials` (AWS_* lines,
#                             root 0400), handed to curl on stdin, never on its command line.
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
  publishUrl = "${publish.endpoint}/${publish.bucket}/${publish.key}";
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

  # The public key goes to the logs bucket (path style, SigV4 for R2's region "auto", the
  # body's sha256 as x-amz-content-sha256, which S3 requires and curl 7.x does not add); the
  # keys reach curl as a config file on stdin (printf is a shell builtin: no argv exposure).
  # No RemainAfterExit, so the daily timer publishes again (the bucket's retention expires
  # old objects). One attribute set for systemd.services: a second top-level `systemd` in
  # the `//` below would replace this one on the primary.
  systemd.services = {
    edgekit-mesh-key = {
      description = "edgekit: publish this node's WireGuard public key";
      wantedBy = [ "multi-user.target" ];
      after = [ "wireguard-${iface}.service" "edgekit-keys.service" "network-online.target" ];
      wants = [ "wireguard-${iface}.service" "network-online.target" ];
      serviceConfig = { Type = "oneshot"; EnvironmentFile = publish.credentials; };
      path = [ pkgs.wireguard-tools pkgs.coreutils pkgs.curl ];
      script = ''
        public=${dirOf settings.privateKeyFile}/public
        wg pubkey < ${settings.privateKeyFile} > "$public.tmp"
        mv "$public.tmp" "$public"
        echo "edgekit-mesh-public-key $(cat "$public")"
        sha=$(sha256sum "$public" | cut -d' ' -f1)
        printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
          curl --config - --fail --silent --show-error --retry 20 --retry-connrefused \
            --retry-delay 3 --aws-sigv4 aws:amz:auto:s3 -X PUT --data-binary "@$public" \
            -H "x-amz-content-sha256: $sha" -H 'Content-Type: text/plain' \
            ${publishUrl}
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
