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


VERSIONS_ENV = Path(__file__).resolve().parent / "versions.env"


def pin(name: str) -> str:
    """A single-line NAME=value pin of versions.env (KeyError if there is none)."""
    for line in VERSIONS_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key == name and not value.startswith('"'):
            return value.strip()
    raise KeyError(f"{name} is not pinned in {VERSIONS_ENV}")


def postgres_dir() -> Path:
    """PostgreSQL of the nodes' major version (bin/ lib/ share/), as tools/build.sh installs it."""
    return tools_dir() / f"postgresql-{pin('POSTGRES_VERSION')}"


def pgbackrest_bin() -> Path:
    return tools_dir() / "bin" / "pgbackrest"
