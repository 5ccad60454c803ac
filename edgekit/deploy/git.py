"""The operator's side of the refs: read them from the remote, move them with a lease.

Every move is one ``git push --atomic`` of ``+<rev>:refs/heads/<ref>`` refspecs, each with
``--force-with-lease=<ref>:<the value read before>``: either every ref of a wave moves or
none does, and a push that would overwrite a move someone else made in the meantime is
refused (another operator's rollout), naming the refs.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgekit.deploy.refs import HEADS
from edgekit.deploy.reports import DeployError

TIMEOUT = 120
REVISION = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def _git(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        return subprocess.run(["git", *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError as err:
        raise DeployError("git is not installed (edgekit deploy moves refs with it)") from err
    except subprocess.TimeoutExpired as err:
        raise DeployError(f"git {argv[0]} did not answer within {TIMEOUT} s") from err


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return " | ".join((done.stderr or done.stdout).strip().splitlines()[-4:])


def refs(remote: str, prefix: str, cwd: Path) -> dict[str, str]:
    """Branch (without refs/heads/) -> revision, for the branches named `prefix` or below
    `prefix.nodes/` (the environment's ref and its nodes' refs)."""
    done = _git(["ls-remote", "--heads", remote, prefix, f"{prefix}.nodes/*"], cwd)
    if done.returncode != 0:
        raise DeployError(f"cannot read the refs of {remote}: {_tail(done)} (--remote names "
                          "a git remote or URL the deploy refs are pushed to)")
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        rev, _, name = line.partition("\t")
        if name.startswith(HEADS):
            found[name[len(HEADS):]] = rev
    return found


def revision(spec: str, cwd: Path) -> str:
    """The full commit `spec` names in the local repository (a commit the push can send)."""
    done = _git(["rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], cwd)
    rev = done.stdout.strip()
    if done.returncode != 0 or not REVISION.match(rev):
        raise DeployError(f"{spec!r} is not a commit of the repository in {cwd} (fetch it, "
                          "or name a branch, tag or full revision that is)")
    return rev


def push(remote: str, moves: Mapping[str, str], expected: Mapping[str, str | None],
         cwd: Path) -> None:
    """Move every branch of `moves` to its revision at once, each only if it still is what
    `expected` says (None: must not exist yet)."""
    if not moves:
        return
    argv = ["push", "--atomic", "--porcelain", "--quiet"]
    argv += [f"--force-with-lease={HEADS}{ref}:{expected.get(ref) or ''}"
             for ref in sorted(moves)]
    argv += [remote, *(f"+{rev}:{HEADS}{ref}" for ref, rev in sorted(moves.items()))]
    done = _git(argv, cwd)
    if done.returncode != 0:
        stale = "stale info" in done.stdout + done.stderr
        why = ("another push moved them since they were read (another rollout?); run the "
               "command again to see where the estate is" if stale else _tail(done))
        raise DeployError(f"could not move {', '.join(sorted(moves))} on {remote}: {why}")
