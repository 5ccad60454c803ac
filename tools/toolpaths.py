"""Where tools/build.sh puts the real tools; shared by the tests and the scripts."""

from __future__ import annotations

import os
from pathlib import Path


def tools_dir() -> Path:
    explicit = os.environ.get("EDGEKIT_TOOLS")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "edgekit" / "tools"


def tofu_bin() -> str:
    return str(tools_dir() / "bin" / "tofu")


def cue_bin() -> str:
    return str(tools_dir() / "bin" / "cue")


def plugin_dir() -> str:
    return str(tools_dir() / "plugins")
