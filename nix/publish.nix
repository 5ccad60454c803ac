# The one way a node publishes a public file of its own to its environment's logs bucket:
# the WireGuard public key (nix/mesh.nix, ADR 0010) and the Postgres authority's certificate
# (nix/node.nix, ADR 0025). The operator's `edgekit mesh import-keys` / `edgekit pg
# import-ca` read them back, trust on first use.
#
# A oneshot unit: the node's log-writer R2 keys (AWS_* lines, root 0400, ADR 0008) come from
# systemd's EnvironmentFile and reach curl as a config on stdin (printf is a shell builtin:
# never on a command line); the PUT is path style, SigV4 for R2's region "auto", with the
# body's sha256 as the signed x-amz-content-sha256 (S3 requires it; curl 7.x does not add
# it); retried while the network comes up.
#
# Pure: a function of `pkgs` (coreutils, curl) returning a function of the unit's settings:
#   description   the unit's description
#   file          the node path PUT as the object's body
#   publish       { endpoint; bucket; key; credentials; } (credentials: the AWS_* file)
#   prepare       shell lines run first (e.g. write `file`)
#   contentType   the object's Content-Type
#   after, wants, requires, wantedBy, path   added to the unit's own
{ pkgs }:
{ description
, file
, publish
, prepare ? ""
, contentType ? "text/plain"
, after ? [ ]
, wants ? [ ]
, requires ? [ ]
, wantedBy ? [ "multi-user.target" ]
, path ? [ ]
}:
{
  inherit description requires wantedBy;
  after = after ++ [ "edgekit-keys.service" "network-online.target" ];
  wants = wants ++ [ "network-online.target" ];
  serviceConfig = { Type = "oneshot"; EnvironmentFile = publish.credentials; };
  path = path ++ [ pkgs.coreutils pkgs.curl ];
  script = prepare + ''
    sha=$(sha256sum '${file}' | cut -d' ' -f1)
    printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
      curl --config - --fail --silent --show-error --retry 20 --retry-connrefused \
        --retry-delay 3 --aws-sigv4 aws:amz:auto:s3 -X PUT --data-binary '@${file}' \
        -H "x-amz-content-sha256: $sha" -H 'Content-Type: ${contentType}' \
        '${publish.endpoint}/${publish.bucket}/${publish.key}'
    echo "edgekit: published ${file} to ${publish.bucket}/${publish.key}"
  '';
}
