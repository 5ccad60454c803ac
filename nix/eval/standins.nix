# Every stand-in of the node evaluation but `pkgs` (nix/stubs.nix), in one file, each with
# its reason. A stand-in DECLARES options that no vendored upstream module (nix/upstream/)
# declares; it implements nothing of the upstream module it replaces.
#
# Two kinds:
#   allowances  options our own modules set (nix/, services/) that no vendored module
#               declares: each is typed as the upstream option is, so a wrong value or a
#               misspelt name is still an error (the module system refuses any option that
#               nothing declares). `allowances` below lists their paths and reasons.
#   sinks       options only the vendored modules write (their effects belong to modules we
#               do not vendor). Our own files must not define them: nix/eval/report.nix lists
#               every definition of a sink from outside nix/upstream as an error.
#
# `systemd.*` uses the vendored types (nix/upstream/nixpkgs/nixos/lib/systemd-types.nix),
# so units are merged and checked (script -> ExecStart, path -> PATH, Type=/Restart=
# values, list-valued unit options) exactly as upstream does; only systemd.nix (which turns
# them into unit files inside the whole NixOS boot) is not vendored.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  inherit (utils) systemdUtils;

  sink = mkOption { type = types.unspecified; default = null; internal = true; };
  sinkAttrs = mkOption { type = types.attrsOf types.unspecified; default = { }; internal = true; };
  sinkList = mkOption { type = types.listOf types.unspecified; default = [ ]; internal = true; };

  port = types.port;
in
{
  # nixos/modules/system/boot/systemd.nix: a service's startAt becomes a timer
  config.systemd.timers = lib.mapAttrs (name: service: {
    wantedBy = [ "timers.target" ];
    timerConfig.OnCalendar = service.startAt;
  }) (lib.filterAttrs (name: service: service.enable && service.startAt != [ ])
    config.systemd.services);

  options = {
    # ---------------------------------------------------------------- allowances
    systemd = {
      services = mkOption { type = systemdUtils.types.services; default = { }; };
      targets = mkOption { type = systemdUtils.types.targets; default = { }; };
      timers = mkOption { type = systemdUtils.types.timers; default = { }; };
      paths = mkOption { type = systemdUtils.types.paths; default = { }; };
      sockets = mkOption { type = systemdUtils.types.sockets; default = { }; };
      slices = mkOption { type = systemdUtils.types.slices; default = { }; };
      tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; };
      # read by the vendored systemd-lib.nix (upstream defaults of systemd.nix)
      package = mkOption { type = types.package; default = pkgs.systemd; };
      globalEnvironment = mkOption {
        type = with types; attrsOf (nullOr (oneOf [ str path package ]));
        default = { };
      };
      enableStrictShellChecks = mkOption { type = types.bool; default = false; };
      packages = mkOption { type = types.listOf types.package; default = [ ]; };
    };

    environment = {
      systemPackages = mkOption { type = types.listOf types.package; default = [ ]; };
    };

    # read by users-groups.nix (shells-environment.nix, systemd/sysusers.nix,
    # systemd/initrd.nix, programs/*, security/google_oslogin.nix: not vendored)
    users.defaultUserShell = mkOption { type = types.either types.path types.shellPackage; default = pkgs.bashInteractive; };
    systemd.sysusers.enable = mkOption { type = types.bool; default = false; };
    boot.initrd.systemd.enable = mkOption { type = types.bool; default = false; };
    boot.initrd.systemd.contents = sinkAttrs;
    boot.initrd.systemd.storePaths = sinkList;
    security.googleOsLogin.enable = mkOption { type = types.bool; default = false; };
    programs.fish.enable = mkOption { type = types.bool; default = false; };
    programs.xonsh.enable = mkOption { type = types.bool; default = false; };
    programs.zsh.enable = mkOption { type = types.bool; default = false; };
    environment.extraOutputsToInstall = mkOption { type = types.listOf types.str; default = [ ]; };
    environment.profiles = sinkList;
    system.path = mkOption { type = types.unspecified; default = { ignoreCollisions = true; postBuild = ""; }; };
    system.activationScripts = sinkAttrs;

    # nixos/modules/misc/ids.nix is a table of numbers; postgres is the only one read
    ids = {
      uids = mkOption { type = types.attrsOf types.int; default = { }; };
      gids = mkOption { type = types.attrsOf types.int; default = { }; };
    };

    system = {
      stateVersion = mkOption { type = types.str; };
      checks = sinkList;
    };

    networking = {
      hostName = mkOption { type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$"; };
      # read by firewall.nix / wireguard.nix (nftables.nix, network-interfaces.nix,
      # wireguard-networkd.nix: not vendored); upstream defaults
      nftables.enable = mkOption { type = types.bool; default = false; };
      enableIPv6 = mkOption { type = types.bool; default = true; };
      wireguard.useNetworkd = mkOption { type = types.bool; default = false; };
      # set by nix/cloud.nix (network-interfaces.nix: not vendored); upstream's types
      useDHCP = mkOption { type = types.bool; default = true; };
      usePredictableInterfaceNames = mkOption { type = types.bool; default = true; };
      nameservers = mkOption { type = types.listOf types.str; default = [ ]; };
      interfaces = mkOption {
        default = { };
        type = types.attrsOf (types.submodule {
          options.useDHCP = mkOption { type = types.nullOr types.bool; default = null; };
        });
      };
    };

    services = {
      openssh.enable = mkOption { type = types.bool; default = false; };
    };

    # read by firewall-iptables.nix and wireguard.nix: the kernel NixOS 25.11 boots by
    # default (linux 6.12, built with IP_NF_MATCH_RPFILTER)
    boot.kernelPackages = mkOption {
      type = types.unspecified;
      default = {
        kernel = { version = "6.12.59"; features.netfilterRPFilter = true; };
      };
    };
    boot.isContainer = mkOption { type = types.bool; default = false; };
    boot.kernelModules = sinkList;
    boot.extraModulePackages = sinkList;
    boot.extraModprobeConfig = sink;

    boot.loader.grub = {
      enable = mkOption { type = types.bool; default = true; };
      device = mkOption { type = types.str; default = ""; };
      forceInstall = mkOption { type = types.bool; default = false; };
    };
    boot.kernelParams = mkOption { type = types.listOf types.str; default = [ ]; };

    fileSystems = mkOption {
      default = { };
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options = {
          mountPoint = mkOption { type = types.str; default = name; };
          device = mkOption { type = types.nullOr types.str; default = null; };
          fsType = mkOption { type = types.str; default = "auto"; };
          options = mkOption { type = types.listOf types.nonEmptyStr; default = [ "defaults" ]; };
        };
      }));
    };

    # read by auto-upgrade.nix (nixos/modules/config/nix.nix, programs/ssh.nix,
    # config/networking.nix, config/shells-environment.nix: not vendored)
    nix.package = mkOption { type = types.package; default = pkgs.nix; };
    nix.envVars = mkOption { type = types.attrsOf types.str; default = { }; internal = true; };
    programs.ssh.package = mkOption { type = types.package; default = pkgs.openssh; };
    networking.proxy.envVars = mkOption { type = types.attrsOf types.str; default = { }; };
    environment.sessionVariables = mkOption {
      type = with types; attrsOf (either str (listOf str));
      apply = lib.mapAttrs (_: v: if builtins.isList v then lib.concatStringsSep ":" v else v);
      # nixos/modules/config/nix-channel.nix's default nix.nixPath
      default.NIX_PATH = [
        "nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos"
        "nixos-config=/etc/nixos/configuration.nix"
        "/nix/var/nix/profiles/per-user/root/channels"
      ];
    };

    nix.settings = mkOption {
      type = types.submodule {
        freeformType = with types; attrsOf (oneOf [ bool int str (listOf str) ]);
        options.experimental-features = mkOption { type = types.listOf types.str; default = [ ]; };
      };
      default = { };
    };

    # ---------------------------------------------------------------- sinks
    environment.pathsToLink = sinkList;
    meta = sinkAttrs;

    # ---------------------------------------------------------------- the list itself
    edgekit.standins = mkOption {
      type = types.unspecified;
      internal = true;
      readOnly = true;
      default = {
        pkgs = "nix/stubs.nix: nothing can be built here; fake derivations whose writers keep their text";
        utils = "nixos/lib/utils.nix is not vendored: nix/eval/nixos.nix builds utils.systemdUtils from the three vendored systemd files as utils.nix does, and escapeSystemdPath throws (no mount unit is evaluated)";
        modulesPath = "nix/eval/modulesPath: profiles/qemu-guest.nix is an empty module (it only adds virtio kernel modules to the initrd, which nothing here evaluates)";
        allowances = {
          "systemd.services/targets/timers/paths/sockets/slices" = "declared by nixos/modules/system/boot/systemd.nix, which needs the whole boot of NixOS; typed with the vendored systemd-types.nix";
          "systemd.tmpfiles.rules" = "nixos/modules/system/boot/systemd/tmpfiles.nix (not vendored)";
          "systemd.package/globalEnvironment/enableStrictShellChecks/packages" = "read by the vendored systemd-lib.nix; upstream defaults of systemd.nix";
          "environment.systemPackages" = "nixos/modules/config/system-path.nix (not vendored)";
          "users.defaultUserShell/systemd.sysusers.enable/boot.initrd.systemd.enable/security.googleOsLogin.enable/programs.{fish,xonsh,zsh}.enable/environment.extraOutputsToInstall/system.path" = "read by the vendored users-groups.nix; upstream defaults of modules not vendored";
          "ids.uids/ids.gids" = "nixos/modules/misc/ids.nix (a table of numbers): the ids the vendored modules read (root, nobody, postgres and the groups users-groups.nix makes), copied in nix/eval/nixos.nix";
          "system.stateVersion" = "nixos/modules/misc/version.nix (not vendored)";
          "system.build.nixos-rebuild" = "nixos/modules/installer/tools/nixos-rebuild-ng.nix (not vendored; read by the vendored auto-upgrade.nix): the pkgs stand-in's nixos-rebuild, set in nix/eval/nixos.nix";
          "nix.package/nix.envVars/programs.ssh.package/networking.proxy.envVars/environment.sessionVariables" = "read by the vendored auto-upgrade.nix; upstream defaults of modules not vendored";
          "startAt -> timer" = "nixos/modules/system/boot/systemd.nix makes a timer (OnCalendar = startAt, wantedBy timers.target) for each service with startAt; nix/eval/standins.nix does the same";
          "networking.hostName" = "nixos/modules/tasks/network-interfaces.nix (not vendored)";
          "networking.useDHCP/usePredictableInterfaceNames/nameservers/interfaces.<n>.useDHCP" = "set by nix/cloud.nix: nixos/modules/tasks/network-interfaces.nix (not vendored), upstream's types and defaults";
          "boot.kernelParams" = "set by nix/base.nix (the cloud's serial console): nixos/modules/system/boot/kernel.nix (not vendored)";
          "networking.nftables.enable/enableIPv6/wireguard.useNetworkd" = "read by the vendored firewall and WireGuard modules; upstream defaults of nftables.nix, network-interfaces.nix, wireguard-networkd.nix (not vendored)";
          "boot.kernelPackages/isContainer" = "read by firewall-iptables.nix (rpfilter) and wireguard.nix (kernel version, modprobe): the 25.11 default kernel's facts";
          "services.openssh.enable" = "nixos/modules/services/networking/ssh/sshd.nix (not vendored)";
          "boot.loader.grub" = "nixos/modules/system/boot/loader/grub/grub.nix (not vendored): enable, device, forceInstall";
          "fileSystems" = "nixos/modules/tasks/filesystems.nix (not vendored)";
          "nix.settings" = "nixos/modules/config/nix.nix (not vendored)";
        };
        sinks = {
          "system.checks" = "postgresql.nix adds its config-file check (a build step)";
          "environment.pathsToLink" = "postgresql.nix links /share/postgresql into the system path";
          "meta" = "documentation and maintainers";
          "system.activationScripts/environment.profiles/boot.initrd.systemd.contents/storePaths" = "users-groups.nix's activation (/etc/passwd, /etc/group) and initrd parts";
          "boot.kernelModules/extraModulePackages/extraModprobeConfig" = "the firewall's and WireGuard's kernel modules";
        };
      };
    };
  };
}
