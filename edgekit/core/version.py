"""edgekit's version: written once, in pyproject.toml, and read from the installed
distribution's metadata when first asked for.

The installed distribution's ``edgekit-<version>.dist-info`` folder is found on `sys.path`
in the order `importlib.metadata` searches it, and its ``METADATA`` read directly:
importing `importlib.metadata` (email, zipfile, csv, ...) would cost a synth more than the
rest of its start-up. `importlib.metadata` answers what this does not find (an egg-info,
a zipped distribution).
"""

from __future__ import annotations

import os
import sys
from functools import cache

_NAME = "edgekit"


@cache
def edgekit_version() -> str:
    found = _from_dist_info()
    if found is not None:
        return found
    from importlib.metadata import PackageNotFoundError, version  # the general case

    try:
        return version(_NAME)
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


def _from_dist_info() -> str | None:
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # not a folder (a zip), or gone
            continue
        for name in sorted(names):
            stem, _, kind = name.rpartition(".")
            if kind != "dist-info" or stem.split("-", 1)[0].lower().replace(".", "_") != _NAME:
                continue
            try:
                with open(os.path.join(entry or ".", name, "METADATA"), "rb") as handle:
                    for line in handle:  # headers first; the version is near the top
                        if line.startswith(b"Version:"):
                            return line[8:].strip().decode()
                        if line in (b"\n", b"\r\n"):
                            break
            except OSError:
                continue
    return None
