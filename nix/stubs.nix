# Stand-ins for nixpkgs, lib and a flake's `self`, just enough to evaluate the pure parts of
# the flakes offline (nixpkgs cannot be fetched on the test machines). Used by
# tests/test_nix.py only; nothing deployable imports this file.
#
#   lib       mkOption/mkEnableOption/mkIf/mkForce/types/genAttrs/nixosSystem as plain data
#   pkgs      writeShellApplication, mkShell, python3.withPackages and named packages as data
#             (its `vector` is a newer one than edgekit pins, as in nixos-25.11)
#   nixpkgs   { lib; legacyPackages.<system> = pkgs; }
#   nixpkgsWithVector  version -> a nixpkgs whose `vector` has that version (the flake's
#             input nixpkgs-vector)
#   flake     path -> inputs -> the flake's outputs, with `self` tied to the result
rec {
  systems = [ "x86_64-linux" "aarch64-linux" ];

  lib = {
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    mkOption = option: { _option = option; };
    mkEnableOption = description: { _option = { inherit description; default = false; }; };
    mkIf = condition: value: if condition then value else { };
    mkForce = value: { _type = "override"; priority = 50; content = value; };
    mkOverride = priority: value: { _type = "override"; inherit priority; content = value; };
    types = {
      package = "package";
      str = "str";
      attrsOf = t: "attrsOf ${t}";
      nullOr = t: "nullOr ${t}";
    };
    # What a node gets: the system, how many modules and the Vector package its last module
    # (nix/node.nix's own) sets; the modules themselves are functions (not JSON), evaluated
    # by the tests one by one.
    nixosSystem = args:
      let
        last = builtins.elemAt args.modules (builtins.length args.modules - 1);
        config = { services.postgresql.package = "/nix/store/postgresql"; };
        applied = last { inherit lib config; pkgs = pkgs args.system; };
      in {
        inherit (args) system;
        moduleCount = builtins.length args.modules;
        vectorPackage = applied.services.vector.package;
      };
  };

  pkgs = system: {
    stdenv.hostPlatform.system = system;
    writeShellApplication = args: { type = "writeShellApplication"; } // args;
    mkShell = args: { type = "mkShell"; } // args;
    python3.withPackages = f: { python3 = f { psycopg = "psycopg"; }; };
    opentofu = "opentofu";
    cue = "cue";
    nodejs = "nodejs";
    nix = "nix";
    jq = "jq";
    coreutils = "coreutils";
    cloudflared = "/nix/store/cloudflared";
    util-linux = "util-linux";
    e2fsprogs = "e2fsprogs";
    runtimeShell = "/bin/sh";
    pgbackrest = "pgbackrest";
    wireguard-tools = "wireguard-tools";
    curl = "curl";
    iproute2 = "iproute2";
    vector = vectorPackage "0.51.1";
  };

  vectorPackage = version: {
    pname = "vector";
    inherit version;
    outPath = "/nix/store/00000000000000000000000000000000-vector-${version}";
  };

  nixpkgsWithVector = version: {
    inherit lib;
    legacyPackages = lib.genAttrs systems (system: pkgs system // {
      vector = vectorPackage version;
    });
  };

  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs systems pkgs;
  };

  # The outputs of the flake at `path`, given its inputs (nixpkgs defaults to the stub).
  flake = path: inputs:
    let outputs = (import path).outputs ({ self = outputs; inherit nixpkgs; } // inputs);
    in outputs;
}
