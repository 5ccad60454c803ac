# The node's networking on its cloud, from the cloud adapter's node facts (nix/clouds.json,
# edgekit.clouds.facts). nixos-infect writes a networking.nix with the addresses it saw
# during the conversion; the node's flake configuration does not import it (it is not in
# the repository, and a flake cannot read /etc), so the first switch would leave a droplet
# without network. The node configures its network itself instead:
#
#   method "dhcp"      the cloud serves the addresses (public and private) by DHCP: DHCP on
#                      each interface, predictable interface names off (eth0 public, eth1
#                      private network)
#   method "metadata"  no DHCP (DigitalOcean): the oneshot edgekit-netconf reads the metadata
#                      service at every boot and sets the public IPv4 (+ anchor), its default
#                      route, the public IPv6 and its route, and the private address; where the
#                      node has no address yet it reaches the link-local metadata service from a
#                      temporary 169.254.x.x/16 address, as cloud-init's DigitalOcean datasource
#                      does. Resolvers come from the facts (networking.nameservers).
#
# Pure: no nixpkgs is imported; the module is a function of `pkgs` (iproute2, curl, jq,
# coreutils), so tests evaluate it against nix/stubs.nix and run the script in a namespace.
{ facts }:
{ pkgs, ... }:
let
  inherit (builtins) elemAt length listToAttrs map;
  net = facts.network;
  public = elemAt net.interfaces 0;
  private = if length net.interfaces > 1 then elemAt net.interfaces 1 else null;

  netconf = ''
    set -euo pipefail
    url=${net.metadataUrl}
    meta=/run/edgekit/metadata-network.json
    install -d -m 0700 /run/edgekit
    ip link set dev ${public} up
    if ! curl -fsS -m 5 -o "$meta.tmp" "$url" 2>/dev/null; then
      tmp="169.254.$((RANDOM % 253 + 1)).$((RANDOM % 253 + 1))/16"
      ip addr add "$tmp" dev ${public}
      for _ in $(seq 1 30); do
        curl -fsS -m 5 -o "$meta.tmp" "$url" && break
        sleep 2
      done
      ip addr del "$tmp" dev ${public}
    fi
    [ -s "$meta.tmp" ] || { echo "edgekit: no network metadata from $url" >&2; exit 1; }
    mv "$meta.tmp" "$meta"
    bits() {
      local total=0 octet
      for octet in $(echo "$1" | tr . ' '); do
        while [ "$octet" -gt 0 ]; do total=$((total + (octet & 1))); octet=$((octet >> 1)); done
      done
      echo "$total"
    }
    get() { jq -r "$1 // empty" "$meta"; }
    addr=$(get '.interfaces.public[0].ipv4.ip_address')
    mask=$(get '.interfaces.public[0].ipv4.netmask')
    gw=$(get '.interfaces.public[0].ipv4.gateway')
    if [ -z "$addr" ] || [ -z "$mask" ] || [ -z "$gw" ]; then
      echo "edgekit: $url has no public IPv4 address, netmask and gateway" >&2; exit 1
    fi
    ip addr replace "$addr/$(bits "$mask")" dev ${public}
    ip route replace default via "$gw" dev ${public}
    anchor=$(get '.interfaces.public[0].anchor_ipv4.ip_address')
    if [ -n "$anchor" ]; then
      ip addr replace "$anchor/$(bits "$(get '.interfaces.public[0].anchor_ipv4.netmask')")" \
        dev ${public}
    fi
    addr6=$(get '.interfaces.public[0].ipv6.ip_address')
    if [ -n "$addr6" ]; then
      ip -6 addr replace "$addr6/$(get '.interfaces.public[0].ipv6.cidr')" dev ${public}
      ip -6 route replace default via "$(get '.interfaces.public[0].ipv6.gateway')" \
        dev ${public}
    fi
  '' + (if private == null then "" else ''
    private=$(get '.interfaces.private[0].ipv4.ip_address')
    if [ -n "$private" ]; then
      ip link set dev ${private} up
      ip addr replace "$private/$(bits "$(get '.interfaces.private[0].ipv4.netmask')")" \
        dev ${private}
    fi
  '');
in
{
  networking.usePredictableInterfaceNames = false;
  networking.useDHCP = false;
  networking.interfaces = if net.method == "dhcp"
    then listToAttrs (map (i: { name = i; value = { useDHCP = true; }; }) net.interfaces)
    else { };
  networking.nameservers = net.nameservers;

  systemd.services = if net.method != "metadata" then { } else {
    edgekit-netconf = {
      description = "edgekit: addresses and routes from the cloud's metadata (no DHCP here)";
      wantedBy = [ "network-online.target" "multi-user.target" ];
      before = [ "network-online.target" "network.target" ];
      after = [ "network-pre.target" ];
      wants = [ "network-pre.target" ];
      unitConfig.DefaultDependencies = false;
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      path = [ pkgs.iproute2 pkgs.curl pkgs.jq pkgs.coreutils ];
      script = netconf;
    };
  };
}
