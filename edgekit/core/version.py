"""edgekit's version: written once, in pyproject.toml, and read from the installed
distribution's metadata (`importlib.metadata`) when first asked for."""

from __future__ import annotations

from functools import cache


@cache
def edgekit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # imported when needed

    try:
        return version("edgekit")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"
