"""Find and run the real `cue` binary. Its errors keep CUE's own file:line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.cue.explain import explain


class CueError(EdgekitError):
    """`cue` refused the module or is missing; the message is CUE's, with file:line."""


def find_cue() -> str | None:
    """`EDGEKIT_CUE`, then the tool cache of tools/build.sh, then PATH."""
    explicit = os.environ.get("EDGEKIT_CUE")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    tools = os.environ.get("EDGEKIT_TOOLS") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgekit" / "tools"
    )
    cached = Path(tools) / "bin" / "cue"
    if cached.is_file():
        return str(cached)
    return shutil.which("cue")


def run_cue(args: list[str], cwd: Path, stdin: str | None = None) -> str:
    binary = find_cue()
    if binary is None:
        raise CueError("cue is not installed: run `make tools` (builds CUE into the tool cache) "
                       "or set EDGEKIT_CUE")
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True,
                            input=stdin, timeout=120)
    if result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip()
        raise CueError(f"cue {' '.join(args)} failed in {cwd}:\n{explain(detail)}")
    return result.stdout
