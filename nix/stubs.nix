# The `pkgs` stand-in: the one part of nixpkgs the node evaluation cannot have for real
# (nixpkgs cannot be fetched on the test machines, and nothing here is ever built). Every
# other stand-in is an option declaration in nix/eval/standins.nix, listed with its reason.
#
# Each package is a lazy fake derivation: { type = "derivation"; name; pname; version;
# outPath; drvPath; meta.mainProgram; ... } with the attributes the vendored modules read
# (postgresql_13..17: psqlSchema, withJIT, withoutJIT, withPackages, installedExtensions).
# The writers KEEP what they were given, so a harness can materialize what a unit runs:
#
#   writeText name text             text
#   writeTextDir path text          text, and `path` (the file inside the output)
#   writeShellScriptBin name text   text, executable = "<out>/bin/<name>", script = the file
#                                   as written: "#!<runtimeShell>\n" + text
#   writeShellApplication {name; text; runtimeInputs}
#                                   text, runtimeInputs, executable, script (with the
#                                   `set -o errexit/nounset/pipefail` and PATH lines the
#                                   real writer adds)
#   overrideAttrs                   keeps every attribute (only `name` changes)
#
# outPath = /nix/store/<32 chars of sha256(name + text)>-<name>: the same input gives the
# same path, so evaluation is deterministic, and different scripts get different paths.
#
#   lib       nixpkgs' lib (nix/upstream/nixpkgs/lib)
#   system    the platform the fake packages claim
#   vector    the version of `vector` this package set has (nixos-25.11 has a newer one than
#             edgekit pins; the flake input nixpkgs-vector has the pinned one, ADR 0017)
{ lib, system ? "x86_64-linux", vector ? "0.51.1" }:
let
  inherit (builtins) hashString substring;
  fakeHash = seed: substring 0 32 (hashString "sha256" seed);
  runtimeShell = "/nix/store/${fakeHash "bash-5.3"}-bash-5.3/bin/bash";

  drv = name: attrs:
    let
      pname = attrs.pname or (builtins.parseDrvName name).name;
      outPath = "/nix/store/${fakeHash (name + (attrs.text or ""))}-${name}";
      self = {
        type = "derivation";
        inherit name pname outPath system;
        version = attrs.version or (builtins.parseDrvName name).version;
        drvPath = "/nix/store/${fakeHash ("drv:" + name + (attrs.text or ""))}-${name}.drv";
        outputs = [ "out" ];
        outputName = "out";
        meta = { mainProgram = pname; };
      } // removeAttrs attrs [ "pname" ]
      // lib.optionalAttrs (attrs ? binName) {
        executable = "${outPath}/bin/${attrs.binName}";
      } // {
        out = self;
        # overrideAttrs keeps every attribute; a new name gives a new outPath (as in nixpkgs)
        overrideAttrs = f: let new = f self; in drv (new.name or name) (attrs // removeAttrs new [ "name" ]);
      };
    in self;

  package = name: version: extra: drv "${name}-${version}" ({ pname = name; inherit version; } // extra);

  postgresql = major: version:
    let
      base = package "postgresql" version {
        psqlSchema = major;
        installedExtensions = [ ];
        jitSupport = false;
        meta = { mainProgram = "postgres"; maintainers = [ ]; };
        withJIT = package "postgresql-and-plugins" version {
          psqlSchema = major; installedExtensions = [ ]; jitSupport = true;
          meta = { mainProgram = "postgres"; maintainers = [ ]; };
        };
        withoutJIT = base;
        withPackages = f: package "postgresql-and-plugins" version {
          psqlSchema = major; installedExtensions = f { }; jitSupport = false;
          meta = { mainProgram = "postgres"; maintainers = [ ]; };
          withPackages = base.withPackages;
        };
      };
    in base;

  script = name: text: extra: drv name ({
    inherit text;
    binName = name;
    meta = { mainProgram = name; };
    script = "#!${runtimeShell}\n" + (extra.preamble or "") + text;
  } // removeAttrs extra [ "preamble" ]);

  platform = { inherit system; isLinux = true; };

  named = names: lib.genAttrs names (n: package n "0" { });
in
named [
  "bash" "coreutils" "findutils" "gnugrep" "gnused" "jq" "util-linux" "e2fsprogs" "cloudflared"
  "pgbackrest" "wireguard-tools" "curl" "iptables" "nftables" "kmod" "openssh" "opentofu" "cue"
  "nodejs" "nix" "git" "gitMinimal" "gnutar" "gzip" "iproute2" "procps" "gawk"
  "systemd" "nixos-rebuild" "nixos-firewall-tool" "amneziawg-tools" "xonsh" "perl" "openssl"
]
// {
  inherit runtimeShell;
  stdenv = { hostPlatform = platform; buildPlatform = platform; shell = runtimeShell; };
  buildPackages = { xorg.lndir = package "lndir" "1.0.5" { }; };
  xz = package "xz" "5.8.1" { bin = package "xz-bin" "5.8.1" { }; };
  # shells: types.shellPackage wants passthru.shellPath
  bashInteractive = package "bash-interactive" "5.3" { shellPath = "/bin/bash"; };
  shadow = package "shadow" "4.18.0" { shellPath = "/bin/nologin"; };
  fish = package "fish" "4.0.2" { shellPath = "/bin/fish"; };
  zsh = package "zsh" "5.9" { shellPath = "/bin/zsh"; };
  libxcrypt = package "libxcrypt" "4.4.38" {
    enabledCryptSchemeIds = [ "y" "gy" "7" "2b" "2y" "2a" "6" ];
  };

  # pkgs.formats: the types are what the modules need to merge settings; a generated file
  # keeps its value as JSON text (nothing renders TOML here)
  formats = {
    json = { }: { type = lib.types.attrsOf lib.types.anything;
                  generate = name: value: drv name { text = builtins.toJSON value; }; };
    toml = { }: { type = lib.types.attrsOf lib.types.anything;
                  generate = name: value: drv name { text = builtins.toJSON value; }; };
  };

  writeText = name: text: drv name { inherit text; };
  writeTextDir = path: text: drv (baseNameOf path) { inherit text path; };
  writeTextFile = args: drv args.name ({ inherit (args) text; } // lib.optionalAttrs (args ? destination) { inherit (args) destination; });
  writeShellScriptBin = name: text: script name text { };
  writeShellScript = name: text: drv name { inherit text; };
  writeScriptBin = name: text: drv name {
    inherit text;
    binName = name;
    meta = { mainProgram = name; };
    script = text;
  };
  writeShellApplication = args: script args.name args.text {
    runtimeInputs = args.runtimeInputs or [ ];
    preamble = "set -o errexit\nset -o nounset\nset -o pipefail\n\n"
      + lib.optionalString ((args.runtimeInputs or [ ]) != [ ])
        "export PATH=\"${lib.makeBinPath args.runtimeInputs}:$PATH\"\n\n";
  };
  runCommand = name: env: text: drv name { inherit text; };
  runCommandLocal = name: env: text: drv name { inherit text; };
  buildEnv = args: drv args.name { paths = args.paths or [ ]; };
  mkShell = args: { type = "mkShell"; } // args;

  postgresql_13 = postgresql "13" "13.22";
  postgresql_14 = postgresql "14" "14.19";
  postgresql_15 = postgresql "15" "15.14";
  postgresql_16 = postgresql "16" "16.10";
  postgresql_17 = postgresql "17" "17.6";
  postgresql = postgresql "17" "17.6";

  python3 = package "python3" "3.13.9" {
    withPackages = f: package "python3-env" "3.13.9" {
      packages = map (p: p.pname) (f { psycopg = package "psycopg" "3.2.10" { }; });
    };
  };

  vector = package "vector" vector { };
}
