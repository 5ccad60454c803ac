# Stand-ins for nixpkgs, lib and a flake's `self`, just enough to evaluate the pure parts of
# the flakes offline (nixpkgs cannot be fetched on the test machines). Used by
# tests/test_nix.py only; nothing deployable imports this file.
#
#   lib       mkOption/mkEnableOption/mkIf/mkForce/types/genAttrs/nixosSystem as plain data
#   pkgs      writeShellApplication, mkShell, python3.withPackages and named packages as data
#   nixpkgs   { lib; legacyPackages.<system> = pkgs; }
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
    # What a node gets: the system and how many modules; the modules themselves are
    # functions (not JSON), evaluated by the tests one by one.
    nixosSystem = args: { inherit (args) system; moduleCount = builtins.length args.modules; };
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
