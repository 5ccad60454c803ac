"""Running the real `tofu` in a synthesized stack folder, with init done once.

The stack folder (``cdktf.out/stacks/<stack>``) is replaced on every synth, so what
must survive lives under ``.edgekit/`` in the project: the OpenTofu data dir per
stack (``TF_DATA_DIR``: providers, backend settings), the lock file it wrote, and a
stamp of the ``terraform`` block it was initialised for. `init` runs again only when
that block changes (providers, backend) or the data dir is gone.

Plain ``tofu`` in a stack folder keeps working: this only drives it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from edgekit.core.errors import EdgekitError
from edgekit.core.files import write_atomic

LOCK_FILE = ".terraform.lock.hcl"
TIMEOUT = 1800.0


class OpsError(EdgekitError):
    """An operation on stacks failed; the message says which stack and what to do."""


def find_tofu() -> str:
    """``$EDGEKIT_TOFU``, the edgekit tool cache, or ``tofu`` on PATH."""
    explicit = os.environ.get("EDGEKIT_TOFU")
    if explicit:
        return explicit
    cache = Path(os.environ.get("EDGEKIT_TOOLS") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgekit" / "tools")
    cached = cache / "bin" / "tofu"
    if cached.is_file():
        return str(cached)
    found = shutil.which("tofu")
    if found is None:
        raise OpsError("OpenTofu not found: install `tofu`, set EDGEKIT_TOFU, or run "
                       "`make tools`")
    return found


@attrs.frozen
class Workspace:
    """Where a project's synthesized stacks and edgekit's own tofu files are."""

    root: Path
    outdir: Path

    @property
    def home(self) -> Path:
        return self.root / ".edgekit"

    def stack_dir(self, stack: str) -> Path:
        return self.outdir / "stacks" / stack

    def data_dir(self, stack: str) -> Path:
        return self.home / "tofu" / stack

    def plan_file(self, stack: str) -> Path:
        return self.home / "plans" / f"{stack}.tfplan"

    def plan_meta(self, stack: str) -> Path:
        return self.home / "plans" / f"{stack}.json"

    def document(self, stack: str) -> dict[str, Any]:
        path = self.stack_dir(stack) / "cdk.tf.json"
        try:
            data: dict[str, Any] = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as err:
            raise OpsError(f"stack {stack!r}: cannot read {path}: {err}; run `edgekit "
                           "synth`") from err
        return data

    def remote_reads(self, stack: str) -> set[str]:
        """The stacks whose state `stack` reads (its ``terraform_remote_state`` sources)."""
        return set(self.document(stack).get("data", {}).get("terraform_remote_state", {}))

    def config_hash(self, stack: str) -> str:
        """sha256 over the stack folder's files (what a saved plan was made from)."""
        digest = hashlib.sha256()
        folder = self.stack_dir(stack)
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if (path.is_file() and not rel.startswith(".terraform") and rel != LOCK_FILE
                    and ".tfstate" not in rel):  # a local backend's state is not config
                digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()


def run_to_the_end(argv: Sequence[str], cwd: Path,
                   env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run tofu and let it finish, even on Ctrl-C.

    `subprocess.run` kills its child 0.25 s after a KeyboardInterrupt: a `tofu apply` killed
    so has created resources it never wrote to its state and leaves its state lock held, so
    the next `edgekit up`/`apply` would create them again or wait on the lock. Here tofu runs
    in a session of its own (a terminal's Ctrl-C reaches only edgekit), gets exactly one
    SIGINT from us, stops the way it does on Ctrl-C (no new operations, the state written,
    the lock released), and only then does the KeyboardInterrupt go on. A second Ctrl-C is
    passed on too: tofu then exits at once, as it does when asked twice.
    """
    with subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            sys.stderr.write("edgekit: interrupted: waiting for tofu to stop cleanly (it "
                             "writes its state and releases its lock); Ctrl-C again to stop "
                             "it at once\n")
            try:
                proc.communicate()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
                proc.communicate()
            raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


@attrs.define
class Tofu:
    """The tofu binary with the environment every run gets (secrets included, in memory)."""

    workspace: Workspace
    env: Mapping[str, str]
    binary: str = attrs.field(factory=find_tofu)
    plugin_dir: str | None = None
    secrets: Sequence[str] = ()
    """Values never to print: replaced by ``***`` in any output edgekit shows."""
    _said: set[str] = attrs.field(factory=set, init=False)
    """What tofu said beside its JSON, already passed on."""
    init_args: dict[str, list[str]] = attrs.field(factory=dict)
    """Extra ``tofu init`` arguments per stack (``-backend-config=path=…`` of a local state
    outside the stack folder)."""

    def run(self, stack: str, *args: str, cwd: Path | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "TF_DATA_DIR": str(self.workspace.data_dir(stack)),
               "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        try:
            done = run_to_the_end([self.binary, *args], cwd or self.workspace.stack_dir(stack),
                                  env)
        except OSError as err:
            raise OpsError(f"cannot run {self.binary}: {err}") from err
        except subprocess.TimeoutExpired as err:
            raise OpsError(f"stack {stack!r}: `tofu {args[0]}` took longer than "
                           f"{TIMEOUT:.0f}s") from err
        if check and done.returncode != 0:
            raise OpsError(f"stack {stack!r}: `tofu {args[0]}` failed:\n"
                           + self.redact(done.stderr or done.stdout).strip())
        return done

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def init(self, stack: str) -> bool:
        """`tofu init` unless done for this ``terraform`` block; True when it ran."""
        data_dir = self.workspace.data_dir(stack)
        folder = self.workspace.stack_dir(stack)
        block = self.workspace.document(stack).get("terraform", {})
        extra = list(self.init_args.get(stack, ()))
        stamp = hashlib.sha256(orjson.dumps(
            {**{k: block.get(k) for k in ("backend", "required_providers")},
             **({"init_args": extra} if extra else {})},
            option=orjson.OPT_SORT_KEYS)).hexdigest()
        stamp_file = data_dir / "edgekit-init.stamp"
        cached_lock = data_dir / LOCK_FILE
        if (stamp_file.is_file() and stamp_file.read_text() == stamp
                and cached_lock.is_file()):
            if not (folder / LOCK_FILE).is_file():
                write_atomic(folder / LOCK_FILE, cached_lock.read_bytes())
            return False
        data_dir.mkdir(parents=True, exist_ok=True)
        if cached_lock.is_file() and not (folder / LOCK_FILE).is_file():
            write_atomic(folder / LOCK_FILE, cached_lock.read_bytes())
        args = ["init", "-input=false", "-reconfigure", "-no-color", *extra]
        if self.plugin_dir:
            args.append(f"-plugin-dir={self.plugin_dir}")
        self.run(stack, *args, check=True)
        lock = folder / LOCK_FILE
        write_atomic(cached_lock, lock.read_bytes() if lock.is_file() else b"# no providers\n")
        write_atomic(stamp_file, stamp.encode())
        return True

    def show_json(self, stack: str, plan: Path) -> dict[str, Any]:
        """``tofu show -json``: the JSON document, whatever else tofu printed around it
        (some warnings, e.g. a missing ``TF_CLI_CONFIG_FILE``, go to stdout); what it said
        is passed on as a warning, once."""
        done = self.run(stack, "show", "-json", "-no-color", str(plan), check=True)
        data, said = split_json(done.stdout)
        said = self.redact("\n".join(filter(None, (said, done.stderr.strip()))))
        if said and said not in self._said:
            self._said.add(said)
            print(f"edgekit: tofu said (stack {stack!r}):\n  "
                  + said.replace("\n", "\n  "), file=sys.stderr)
        if data is None:
            raise OpsError(f"stack {stack!r}: `tofu show -json` printed no JSON"
                           + (f"; tofu said: {said}" if said else ""))
        return data


def split_json(stdout: str) -> tuple[dict[str, Any] | None, str]:
    """The JSON object a ``-json`` command printed (its own line) and the other lines."""
    lines = stdout.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("{"):
            try:
                data = orjson.loads(lines[index])
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict):
                rest = [*lines[:index], *lines[index + 1:]]
                return data, "\n".join(rest).strip()
    return None, stdout.strip()
