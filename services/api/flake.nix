# Glued flake of the `api` service: its app.py (routes), edgekit.json (generated from cue/ by
# `edgekit generate`; never edited by hand) and schema.sql (applied by the database owner).
# Everything else, and the convention its outputs follow, comes from the service library
# (services/lib/flake.nix, input `edgekit-service`). The top-level flake makes both inputs
# follow its own (one nixpkgs per node).
{
  description = "edgekit glued flake: the api service (items in Postgres, read-write)";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    edgekit-service = { url = "path:../lib"; inputs.nixpkgs.follows = "nixpkgs"; };
  };

  outputs = { self, nixpkgs, edgekit-service }:
    edgekit-service.lib.gluedFlake { inherit self nixpkgs; app = ./app.py; edgekitJson = ./edgekit.json; };
}
