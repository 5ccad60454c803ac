"""The pure half of the node harness: a node's evaluated units (`edgekit.nix.evaluate`'s
report) as data, their start order, and the sandbox (a ``bwrap`` command line) that stands
for what systemd would set up for each. No process is started here.

Which systemd semantics are honoured, and which are not, is listed in the README ("The node
harness"); `sandbox_argv` is where the file-system ones are implemented.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import attrs

MANAGER_ENVIRONMENT = {"LANG": "C.UTF-8"}
"""What systemd passes every unit from its own environment: NixOS writes /etc/locale.conf
from i18n.defaultLocale (en_US.UTF-8), so initdb makes UTF-8 databases; C.UTF-8 is the UTF-8
locale every Debian host has."""

DYNAMIC_UID_BASE = 61184
"""systemd's DynamicUser range starts here (61184 to 65519)."""


def _list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(v) for v in str(value).split()] if isinstance(value, str) else [str(value)]


def _directories(value: Any) -> list[str]:
    """StateDirectory= and friends: space-separated relative paths (or a list of them)."""
    return [d for item in _list(value) for d in item.split()]


@attrs.frozen
class Unit:
    name: str
    """Without ``.service``."""
    type: str
    remain_after_exit: bool
    exec_start_pre: tuple[str, ...]
    exec_start: tuple[str, ...]
    exec_start_post: tuple[str, ...]
    user: str
    group: str
    dynamic_user: bool
    environment: dict[str, str]
    environment_files: tuple[str, ...]
    credentials: dict[str, str]
    """LoadCredential=: id -> source path."""
    after: tuple[str, ...]
    before: tuple[str, ...]
    requires: tuple[str, ...]
    wants: tuple[str, ...]
    condition_path_exists: tuple[str, ...]
    service_config: dict[str, Any]

    @classmethod
    def from_report(cls, name: str, report: Mapping[str, Any]) -> Unit:
        config = dict(report.get("serviceConfig") or {})
        unit_config = dict(report.get("unitConfig") or {})
        user = str(config.get("User") or "root")
        credentials = {}
        for entry in _list(config.get("LoadCredential")):
            ident, _, source = entry.partition(":")
            credentials[ident] = source or f"/etc/credstore/{ident}"
        files = tuple(_list(config.get("EnvironmentFile")))
        return cls(
            name=name, type=str(config.get("Type") or "simple"),
            remain_after_exit=bool(config.get("RemainAfterExit")),
            exec_start_pre=tuple(_list_commands(config.get("ExecStartPre"))),
            exec_start=tuple(_list_commands(config.get("ExecStart"))),
            exec_start_post=tuple(_list_commands(config.get("ExecStartPost"))),
            user=user, group=str(config.get("Group") or (user if user != "root" else "root")),
            dynamic_user=bool(config.get("DynamicUser")),
            environment={k: str(v) for k, v in (report.get("environment") or {}).items()},
            environment_files=files, credentials=credentials,
            after=tuple(_units(report.get("after"))), before=tuple(_units(report.get("before"))),
            requires=tuple(_units(report.get("requires"))),
            wants=tuple(_units(report.get("wants"))),
            condition_path_exists=tuple(_list(unit_config.get("ConditionPathExists"))),
            service_config=config)


def _list_commands(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _units(value: Any) -> list[str]:
    """Service names of an ordering list (targets and mounts are not units here)."""
    return [v.removesuffix(".service") for v in _list(value) if v.endswith(".service")]


def start_order(units: Mapping[str, Unit], wanted: Sequence[str]) -> list[str]:
    """`wanted` and every unit they Require/Want (transitively, among `units`), ordered by
    After=/Before= (a topological sort; ties by name). A cycle raises ValueError."""
    chosen: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name in chosen or name not in units:
            if name not in units and name in wanted:
                raise ValueError(f"no unit {name!r} on this node")
            continue
        chosen.add(name)
        stack.extend(units[name].requires + units[name].wants)
    edges: dict[str, set[str]] = {n: set() for n in chosen}  # n -> must start before n
    for name in chosen:
        for other in units[name].after:
            if other in chosen:
                edges[name].add(other)
        for other in units[name].before:
            if other in chosen:
                edges[other].add(name)
    order: list[str] = []
    ready = sorted(n for n, deps in edges.items() if not deps)
    while ready:
        name = ready.pop(0)
        order.append(name)
        for other, deps in edges.items():
            if name in deps:
                deps.discard(name)
                if not deps and other not in order and other not in ready:
                    ready.append(other)
        ready.sort()
    if len(order) != len(chosen):
        raise ValueError(f"ordering cycle among {sorted(chosen - set(order))}")
    return order


def dynamic_uid(unit: str) -> int:
    """A stable uid in systemd's DynamicUser range for `unit` (systemd hashes the name too)."""
    digest = int.from_bytes(hashlib.sha256(unit.encode()).digest()[:4], "big")
    return DYNAMIC_UID_BASE + digest % (65519 - DYNAMIC_UID_BASE)


@attrs.frozen
class Writable:
    """The node paths a unit may write under its sandbox, and the directories systemd would
    create for it (owned by the unit's user)."""

    paths: tuple[str, ...]
    created: tuple[str, ...]
    read_only_root: bool
    private_tmp: bool


def writable(unit: Unit) -> Writable:
    """What ProtectSystem=/ReadWritePaths=/StateDirectory=/RuntimeDirectory=/LogsDirectory=/
    CacheDirectory=/PrivateTmp= leave writable (systemd.exec(5))."""
    config = unit.service_config
    protect = str(config.get("ProtectSystem", "")).lower()
    created = [*(f"/var/lib/{d}" for d in _directories(config.get("StateDirectory"))),
               *(f"/run/{d}" for d in _directories(config.get("RuntimeDirectory"))),
               *(f"/var/log/{d}" for d in _directories(config.get("LogsDirectory"))),
               *(f"/var/cache/{d}" for d in _directories(config.get("CacheDirectory")))]
    paths = [p.lstrip("-+") for p in _list(config.get("ReadWritePaths"))] + created
    return Writable(paths=tuple(paths), created=tuple(created),
                    read_only_root=protect == "strict",
                    private_tmp=bool(config.get("PrivateTmp")))


def sandbox_argv(unit: Unit, *, root: str, store: Mapping[str, str], uid: int, gid: int,
                 credentials_dir: str | None, extra_ro: Sequence[str] = ()) -> list[str]:
    """The ``bwrap`` prefix that runs a command of `unit` as the node would: the node's own
    ``/etc``, ``/var``, ``/run`` and ``/nix/store`` (host paths under `root` and `store`),
    the host's ``/usr`` read-only (the programs), read-only where the sandbox options say so,
    the unit's user (``setpriv``), its environment and credentials."""
    rw = writable(unit)
    mode = "--ro-bind" if rw.read_only_root else "--bind"
    # its own PID namespace: when bwrap goes, every process of the unit goes (the cgroup)
    argv = ["bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--proc", "/proc", "--dev-bind", "/dev", "/dev",
            mode, f"{root}/etc", "/etc", mode, f"{root}/var", "/var", mode, f"{root}/run", "/run",
            # PrivateTmp=: a fresh /tmp of the unit's own (1777, as systemd makes it)
            *(["--perms", "1777", "--tmpfs", "/tmp"] if rw.private_tmp
              else ["--bind", f"{root}/tmp", "/tmp"])]
    if unit.service_config.get("ProtectHome") in (True, "yes", "true"):
        argv += ["--tmpfs", "/home", "--tmpfs", "/root"]
    else:
        argv += [mode, f"{root}/root", "/root"]
    for path in rw.paths:
        argv += ["--bind", f"{root}{path}", path]
    # bwrap makes missing parents of a mount point 0700: make them 0755 first, so the
    # unit's user can reach the store and the read-only extras
    made: set[str] = set()
    for target in [*sorted(store), *extra_ro]:
        for parent in reversed(PurePosixPath(target).parents):
            if str(parent) != "/" and str(parent) not in made:
                made.add(str(parent))
                argv += ["--perms", "0755", "--dir", str(parent)]
    for target, source in sorted(store.items()):
        argv += ["--ro-bind", source, target]
    for path in extra_ro:
        argv += ["--ro-bind", path, path]
    if credentials_dir is not None:
        argv += ["--ro-bind", credentials_dir, "/run/credentials/" + unit.name + ".service"]
    argv += ["--clearenv", "--chdir", "/"]
    for key, value in sorted({**MANAGER_ENVIRONMENT, **unit.environment}.items()):
        argv += ["--setenv", key, value]
    if credentials_dir is not None:
        argv += ["--setenv", "CREDENTIALS_DIRECTORY", f"/run/credentials/{unit.name}.service"]
    argv += ["--", "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
             "--inh-caps=-all", "--"]
    return argv


def command_argv(command: str, unit: Unit, credentials: str) -> list[str]:
    """An Exec*= line as argv: a leading ``-`` (failure ignored) is the caller's; ``%d`` is
    the credentials directory, ``%n`` the unit name (the specifiers this estate uses)."""
    line = command.lstrip("-@:+!")
    line = line.replace("%d", credentials).replace("%n", f"{unit.name}.service")
    return shlex.split(line)


def store_name(path: str) -> str:
    """``/nix/store/<hash>-<name>[/...]`` -> ``<name>``."""
    part = PurePosixPath(path).parts[3] if path.startswith("/nix/store/") else path
    return part.split("-", 1)[1] if "-" in part else part
