"""The deploy ref (ADR 0005): what `edgekit up` commits and pushes, and nothing else.

`up` commits only the files it writes itself (the imported outputs and mesh keys under
``cue/outputs/``, the CUE exports, the generated files), whatever else the working tree
holds, and pushes ``HEAD`` to ``refs/heads/deploy/<env>`` of the remote. The push is never
forced: when the remote ref has commits ``HEAD`` does not contain, it stops and says so.
Everything is read from git itself, so a second run after an interruption sees what the
first one did (a commit made, a push not yet).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

from edgekit.ops.tofu import OpsError

TIMEOUT = 300.0


class GitError(OpsError):
    pass


@attrs.frozen
class DeployRef:
    root: Path
    remote: str
    ref: str
    """``deploy/<env>``."""

    @property
    def target(self) -> str:
        return f"refs/heads/{self.ref}"

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(["git", *args], cwd=self.root, capture_output=True,
                                  text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except OSError as err:
            raise GitError(f"cannot run git: {err.strerror or err}") from err
        except subprocess.TimeoutExpired as err:
            raise GitError(f"`git {args[0]}` took longer than {TIMEOUT:.0f}s") from err
        if check and done.returncode != 0:
            raise GitError(f"`git {' '.join(args)}` failed in {self.root}:\n"
                           f"{(done.stderr or done.stdout).strip()}")
        return done

    def check_repository(self) -> None:
        if self.git("rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
            raise GitError(f"{self.root} is not a git repository: the nodes pull their "
                           f"configuration from {self.ref} of one (ADR 0005)")
        if self.git("remote", "get-url", self.remote, check=False).returncode != 0:
            raise GitError(f"no git remote {self.remote!r} in {self.root} (pass --remote NAME "
                           "for the remote the nodes pull from)")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def remote_head(self) -> str | None:
        """The commit the remote's deploy ref points at, or None when it has none."""
        out = self.git("ls-remote", "--heads", self.remote, self.target).stdout.split()
        return out[0] if out else None

    def descends(self, later: str, earlier: str) -> bool:
        """Whether `later` contains `earlier` (False when either is unknown here)."""
        return self.git("merge-base", "--is-ancestor", earlier, later,
                        check=False).returncode == 0

    def changed(self, paths: Sequence[Path]) -> list[str]:
        """Of `paths` (files or folders), those git sees changed or new, relative to root."""
        rel = [str(p.relative_to(self.root)) for p in paths
               if p.exists() or self.git("ls-files", "--error-unmatch",
                                         str(p.relative_to(self.root)),
                                         check=False).returncode == 0]
        if not rel:
            return []
        out = self.git("status", "--porcelain", "--untracked-files=all", "--", *rel).stdout
        return sorted(line[3:] for line in out.splitlines() if line.strip())

    def commit(self, paths: Sequence[Path], message: str) -> str | None:
        """Commit the changes to `paths` only; returns the commit, or None if none changed."""
        changed = self.changed(paths)
        if not changed:
            return None
        self.git("add", "--", *changed)
        self.git("commit", "--quiet", "-m", message, "--", *changed)
        return self.head()

    def push_command(self) -> str:
        return f"git push {self.remote} HEAD:{self.target}"

    def push(self) -> tuple[str, bool]:
        """Push HEAD to the deploy ref; (commit, whether anything was pushed)."""
        head = self.head()
        remote = self.remote_head()
        if remote == head:
            return head, False
        if remote is not None:
            self.git("fetch", "--quiet", self.remote, self.target)
            if not self.descends(head, remote):
                raise GitError(
                    f"{self.remote} {self.ref} is at {remote[:12]}, which HEAD ({head[:12]}) "
                    f"does not contain; `edgekit up` never forces a push. Merge or rebase on "
                    f"{self.remote}/{self.ref} (or move the ref yourself), then run it again")
        self.git("push", "--quiet", self.remote, f"HEAD:{self.target}")
        return head, True
