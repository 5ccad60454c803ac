"""The running half of the node harness: one node's evaluated configuration, started for real.

`NodeRun` lays out the node's root (``etc/`` with its passwd/group and ``environment.etc``,
``var/``, ``run/``, ``tmp/``, ``root/``) and its ``/nix/store`` (the unit scripts the
evaluation wrote, materialized; packages mapped to real programs by `packages`), in a
network namespace of its own, then starts units in dependency order, each inside its
sandbox (`units.sandbox_argv`), as its own user, with its log in ``journal/<unit>.log``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tests.node_harness.proc import main_process
from tests.node_harness.units import (
    Unit,
    command_argv,
    dynamic_uid,
    sandbox_argv,
    start_order,
    store_name,
    writable,
)

TIMEOUT = 120
STORE_PATH = re.compile(r"/nix/store/[0-9a-z]{32}-[^/\s:\"';}){$]+")
HOST_ETC = ("ld.so.cache", "nsswitch.conf", "hosts", "localtime", "ssl", "ca-certificates",
            "protocols", "services")
"""Host files a program needs to load its libraries and resolve names (not the node's)."""
PROGRAMS_FROM_HOST = ("bash", "coreutils", "findutils", "gnugrep", "gnused", "jq",
                      "util-linux", "e2fsprogs", "openssl", "curl", "wireguard-tools",
                      "iproute2", "gawk", "procps", "gnutar", "gzip", "xz", "shadow", "kmod",
                      "iptables", "systemd")
"""Packages whose programs the host's /usr provides (Debian's builds of the same tools)."""


PROVIDED = {"wireguard-wg-edgekit": "kernel WireGuard is not available here: the mesh "
            "interface is wireguard-go's (tests/node_harness/mesh.py), or the mesh address "
            "on loopback for a node tested alone"}
"""Units the harness stands in for, with the reason (README, "The node harness")."""


class UnitFailed(AssertionError):
    """A unit did not start; the message carries the end of its log."""


def host_package(name: str) -> str | None:
    """The host folder standing for the package `name` (``<pname>-<version>``), if any."""
    pname = re.sub(r"-[0-9][^-]*$", "", name)
    return "/usr" if pname in PROGRAMS_FROM_HOST else None


@attrs.define
class Started:
    unit: Unit
    process: subprocess.Popen[bytes] | None
    log: Path


@attrs.define
class NodeRun:
    name: str
    report: dict[str, Any]
    base: Path
    netns: str
    packages: Mapping[str, str] = attrs.field(factory=dict)
    """Extra store-name -> host folder mappings (PostgreSQL, pgBackRest, the services)."""
    extra_ro: Sequence[str] = ()
    """Host folders every sandbox sees read-only at the same path (the venv, the repo)."""
    inventory: Mapping[str, Any] = attrs.field(factory=dict)
    """store.nix's {files, sources} for this node (`packages.store_inventory`)."""
    repo: Path | None = None
    """Where the `sources` of the inventory are (the repository evaluated)."""
    ready: Mapping[str, Callable[[NodeRun], bool]] = attrs.field(factory=dict)
    """unit -> probe: a long-running unit counts as started once its probe is true."""
    provided: Mapping[str, str] = attrs.field(factory=lambda: dict(PROVIDED))
    """unit -> what the harness does in its place (it cannot run here); logged, not run."""
    units: dict[str, Unit] = attrs.field(factory=dict)
    store: dict[str, str] = attrs.field(factory=dict)
    uids: dict[str, int] = attrs.field(factory=dict)
    gids: dict[str, int] = attrs.field(factory=dict)
    started: dict[str, Started] = attrs.field(factory=dict)

    @property
    def root(self) -> Path:
        return self.base / "root"

    def path(self, node_path: str) -> Path:
        """The host path of a path on the node."""
        return self.root / node_path.lstrip("/")

    def journal(self, unit: str) -> str:
        log = self.base / "journal" / f"{unit}.log"
        return log.read_text(errors="replace") if log.exists() else ""

    # -- the node's files ------------------------------------------------------------------

    def materialize(self) -> None:
        self.units = {n: Unit.from_report(n, u) for n, u in self.report["services"].items()}
        for folder in ("etc", "var/lib", "var/log", "var/spool", "var/cache", "run", "tmp",
                       "root", "nix/store"):
            self.path(folder).mkdir(parents=True, exist_ok=True)
        (self.base / "journal").mkdir(exist_ok=True)
        if not self.path("var/run").is_symlink():
            self.path("var/run").symlink_to("../run")  # as on NixOS (and Debian)
        self.path("tmp").chmod(0o1777)
        self._users()
        etc = self.path("etc")
        for name in HOST_ETC:
            source = Path("/etc") / name
            if source.is_dir():
                shutil.copytree(source, etc / name, symlinks=True, dirs_exist_ok=True)
            elif source.exists():
                shutil.copy(source, etc / name, follow_symlinks=True)
        for entry in self.report["etc"].values():
            self._etc(entry)
        self._tmpfiles()
        self._store()

    def _tmpfiles(self) -> None:
        """systemd-tmpfiles at boot: the ``d`` lines (folder, mode, owner); others are not
        used by this estate and refused."""
        for line in self.report.get("tmpfiles") or []:
            kind, path, mode, user, group, *_ = line.split()
            if kind != "d":
                raise NotImplementedError(f"tmpfiles line {line!r}: only 'd' is honoured")
            host = self.path(path)
            host.mkdir(parents=True, exist_ok=True)
            host.chmod(int(mode, 8))
            os.chown(host, self.uids.get(user, 0), self.gids.get(group, 0))

    def _users(self) -> None:
        users = {"root": 0, "nobody": 65534}
        groups = {"root": 0, "nogroup": 65534}
        for name, group in sorted(self.report.get("groups", {}).items()):
            if group.get("gid") is not None:
                groups[name] = int(group["gid"])
        for name, user in sorted(self.report.get("users", {}).items()):
            if user.get("uid") is not None:
                users[name] = int(user["uid"])
                group = user.get("group") or name
                groups.setdefault(group, int(user["uid"]))
        for name, spec in self.report["services"].items():
            config = spec.get("serviceConfig") or {}
            if config.get("DynamicUser"):
                user = str(config.get("User") or name)
                users.setdefault(user, dynamic_uid(name))
                groups.setdefault(user, users[user])
        self.uids, self.gids = users, groups
        self.path("etc/passwd").write_text("".join(
            f"{n}:x:{u}:{groups.get(n, u)}::/var/empty:/bin/sh\n" for n, u in users.items()))
        self.path("etc/group").write_text("".join(f"{n}:x:{g}:\n" for n, g in groups.items()))

    def _etc(self, entry: Mapping[str, Any]) -> None:
        target = self.path("etc/" + str(entry["target"]))
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.get("text") is None:
            return  # a store file the evaluation did not keep: absent on this node
        target.write_text(str(entry["text"]))
        mode = str(entry.get("mode") or "symlink")
        target.chmod(int(mode, 8) if mode != "symlink" else 0o644)
        user, group = str(entry.get("user") or "root"), str(entry.get("group") or "root")
        os.chown(target, self.uids.get(user, 0), self.gids.get(group, 0))

    def _store(self) -> None:
        """Map every store path the units name: materialized scripts, else host packages."""
        scripts: dict[str, tuple[str, bool]] = {}
        for spec in self.report["services"].values():
            for script in (spec.get("scripts") or {}).values():
                scripts[script["path"]] = (script["file"], True)
        for out, files in (self.inventory.get("files") or {}).items():
            for inside, file in files.items():
                scripts[f"{out}/{inside}".rstrip("/")] = (file["text"], file["executable"])
        sources: dict[str, str] = dict(self.inventory.get("sources") or {})
        referenced = set(STORE_PATH.findall(repr(self.report["services"])))
        for text, _ in scripts.values():
            referenced.update(STORE_PATH.findall(text))
        for root in sorted({"/".join(p.split("/")[:4]) for p in referenced}):
            name = store_name(root)
            written = {p: t for p, t in scripts.items() if p == root or p.startswith(root + "/")}
            if written:
                host = self.path("nix/store") / root.split("/")[3]
                for path, (text, executable) in written.items():
                    file = host / Path(path).relative_to(root) if path != root else host
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_text(text)
                    file.chmod(0o555 if executable else 0o444)
                self.store[root] = str(host)
                continue
            if root in sources and self.repo is not None:
                self.store[root] = str(self.repo / sources[root])
                continue
            mapped = next((h for prefix, h in self.packages.items()
                           if name.startswith(prefix)), None) or host_package(name)
            if mapped is not None:
                self.store[root] = mapped

    # -- running units ----------------------------------------------------------------------

    def start(self, *wanted: str) -> list[str]:
        """Start `wanted` and what they need, in order; returns the order. A unit that fails
        raises UnitFailed naming it, with its log."""
        order = start_order(self.units, wanted)
        for name in order:
            if name not in self.started:
                self.run_unit(self.units[name])
        return order

    def _ids(self, unit: Unit) -> tuple[int, int]:
        user = unit.user if not unit.dynamic_user or unit.user != "root" else unit.name
        if unit.dynamic_user and user == "root":
            user = unit.name
        uid = self.uids.get(user)
        if uid is None:
            raise UnitFailed(f"{unit.name}: user {user!r} does not exist on node {self.name}")
        return uid, self.gids.get(unit.group if unit.group != "root" else user, uid)

    def _log(self, unit: Unit, text: str) -> Path:
        log = self.base / "journal" / f"{unit.name}.log"
        with log.open("a") as out:
            out.write(text if text.endswith("\n") else text + "\n")
        return log

    def _prepare(self, unit: Unit, uid: int, gid: int) -> str | None:
        """Directories systemd creates, credentials it copies; None, or why it failed."""
        for folder in writable(unit).created:
            host = self.path(folder)
            host.mkdir(parents=True, exist_ok=True)
            os.chown(host, uid, gid)
        for folder in writable(unit).paths:
            if not self.path(folder).exists():
                return f"Failed to set up mount namespacing: {folder}: No such file or directory"
        if not unit.credentials:
            return None
        for ident, source in unit.credentials.items():  # all there, before anything is made
            if not self.path(source).is_file():
                return (f"Failed to set up credentials: {source}: No such file or directory "
                        f"(LoadCredential={ident}:{source})")
        creds = self.base / "credentials" / unit.name
        shutil.rmtree(creds, ignore_errors=True)
        creds.mkdir(parents=True)
        # the mount point (systemd mounts the credentials there, read-only)
        self.path(f"/run/credentials/{unit.name}.service").mkdir(parents=True, exist_ok=True)
        for ident, source in unit.credentials.items():
            shutil.copyfile(self.path(source), creds / ident)
            os.chown(creds / ident, uid, gid)
            (creds / ident).chmod(0o400)
        os.chown(creds, uid, gid)
        creds.chmod(0o500)
        return None

    def _environment(self, unit: Unit) -> tuple[Unit, str | None]:
        env = dict(unit.environment)
        for entry in unit.environment_files:
            optional, file = entry.startswith("-"), entry.lstrip("-")
            host = self.path(file)
            if not host.is_file():
                if optional:
                    continue
                return unit, f"Failed to load environment files: {file}: No such file"
            for line in host.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep and not key.startswith("#"):
                    env[key.strip()] = value.strip().strip('"')
        return attrs.evolve(unit, environment=env), None

    def run_unit(self, unit: Unit) -> None:
        if unit.name in self.provided:
            self._log(unit, f"-- {unit.name}.service provided by the harness: "
                            f"{self.provided[unit.name]}")
            self.started[unit.name] = Started(unit, None, self.base / "journal")
            return
        for condition in unit.condition_path_exists:
            negate = condition.startswith("!")
            if self.path(condition.lstrip("!")).exists() == negate:
                self._log(unit, f"Condition check resulted in {unit.name} being skipped")
                self.started[unit.name] = Started(unit, None, self.base / "journal")
                return
        uid, gid = self._ids(unit)
        problem = self._prepare(unit, uid, gid)
        unit, env_problem = self._environment(unit)
        problem = problem or env_problem
        if problem:
            self._log(unit, f"{unit.name}.service: {problem}")
            raise UnitFailed(f"{unit.name} on {self.name}: {problem}")
        creds = str(self.base / "credentials" / unit.name) if unit.credentials else None
        prefix = ["ip", "netns", "exec", self.netns, *sandbox_argv(
            unit, root=str(self.root), store=self.store, uid=uid, gid=gid,
            credentials_dir=creds, extra_ro=self.extra_ro)]
        cred_path = f"/run/credentials/{unit.name}.service"
        log = self._log(unit, f"-- starting {unit.name}.service as uid {uid}")
        for command in unit.exec_start_pre:
            self._oneshot(unit, prefix, command, cred_path, log)
        if unit.type == "oneshot":
            for command in unit.exec_start:
                self._oneshot(unit, prefix, command, cred_path, log)
            process = None
        else:
            (command,) = unit.exec_start
            with log.open("a") as out:
                process = subprocess.Popen(
                    [*prefix, *command_argv(command, unit, cred_path)], stdout=out,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            self._wait_ready(unit, process)
        self.started[unit.name] = Started(unit, process, log)
        for command in unit.exec_start_post:
            self._oneshot(unit, prefix, command, cred_path, log)

    def _oneshot(self, unit: Unit, prefix: list[str], command: str, creds: str,
                 log: Path) -> None:
        with log.open("a") as out:
            done = subprocess.run([*prefix, *command_argv(command, unit, creds)], stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=TIMEOUT)
        if done.returncode != 0 and not command.startswith("-"):
            self._log(unit, f"{unit.name}.service: Main process exited, status={done.returncode}")
            raise UnitFailed(f"{unit.name} on {self.name} failed ({done.returncode}):\n"
                             + self.journal(unit.name)[-3000:])

    def _wait_ready(self, unit: Unit, process: subprocess.Popen[bytes]) -> None:
        probe = self.ready.get(unit.name)
        deadline = time.monotonic() + TIMEOUT
        while True:
            if process.poll() is not None:
                raise UnitFailed(f"{unit.name} on {self.name} exited ({process.returncode}):\n"
                                 + self.journal(unit.name)[-3000:])
            if probe is None or probe(self):
                return
            if time.monotonic() > deadline:
                raise UnitFailed(f"{unit.name} on {self.name} not ready in {TIMEOUT}s")
            time.sleep(0.1)

    def run_as(self, user: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
               timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """`argv` on the node as `user` (an operator's shell: no sandbox options), in its
        namespace, with its /etc, /run, /var and store."""
        unit = Unit(name=f"shell-{user}", type="oneshot", remain_after_exit=False,
                    exec_start_pre=(), exec_start=(), exec_start_post=(), user=user,
                    group=user, dynamic_user=False, environment=dict(env or {}),
                    environment_files=(), credentials={}, after=(), before=(), requires=(),
                    wants=(), condition_path_exists=(), service_config={})
        uid, gid = self.uids[user], self.gids.get(user, self.uids[user])
        prefix = ["ip", "netns", "exec", self.netns, *sandbox_argv(
            unit, root=str(self.root), store=self.store, uid=uid, gid=gid,
            credentials_dir=None, extra_ro=self.extra_ro)]
        return subprocess.run([*prefix, *argv], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self, *names: str) -> None:
        """Stop `names` (default: every started unit), in reverse start order: the unit's
        KillSignal= (SIGTERM by default) to its main process, then, as KillMode=mixed and
        systemd's cgroup do, SIGKILL to whatever is left in its PID namespace."""
        for name in reversed(list(self.started)):
            if names and name not in names:
                continue
            entry = self.started.pop(name)
            if entry.process is None or entry.process.poll() is not None:
                continue
            main = main_process(entry.process.pid)
            kill = getattr(signal, str(entry.unit.service_config.get("KillSignal", "SIGTERM")))
            if main is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(main, kill)
            try:
                entry.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(entry.process.pid, signal.SIGKILL)  # bwrap: its PID ns goes
                entry.process.wait(timeout=30)


@contextlib.contextmanager
def node_namespace(tag: str) -> Iterator[str]:
    """A network namespace for one node (loopback up), removed afterwards."""
    name = f"eknode-{tag}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True, timeout=30)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=30)


@contextlib.contextmanager
def running(node: NodeRun) -> Iterator[NodeRun]:
    """Materialize `node`, and stop whatever it started on the way out."""
    node.materialize()
    try:
        yield node
    finally:
        node.stop()
