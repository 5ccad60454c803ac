"""``cdktf.out/manifest.json`` read back: by the operations (stack order) and by the next
synth (the stacks another app wrote, kept). A manifest is a file anyone can edit, so every
stack name is checked before it becomes a path, and every fault is one located error.

    {"version": "...", "stacks": {"<name>": {"name": ..., "dependencies": ["<name>", ...],
                                             ...}, ...}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from edgekit.core.construct import ID_PATTERN
from edgekit.core.crossref import stack_order, with_dependencies
from edgekit.core.errors import EdgekitError
from edgekit.core.jsonkind import PROSE, value_kind

MANIFEST = "manifest.json"


class ManifestError(EdgekitError):
    """The manifest is missing or not what a synth writes; the message locates the fault."""

    def __init__(self, fault: str, hint: str) -> None:
        super().__init__(f"{fault}; {hint}")
        self.fault = fault
        """Where and what, without the hint (callers with other advice use this)."""


@attrs.frozen
class Manifest:
    path: Path
    stacks: dict[str, dict[str, Any]]
    """Stack name (checked) → its entry as written."""

    @property
    def dependencies(self) -> dict[str, list[str]]:
        return {name: list(entry.get("dependencies", [])) for name, entry in
                self.stacks.items()}

    def order(self, names: list[str] | None = None) -> list[str]:
        """`names` (default: every stack) with each after the stacks it depends on."""
        return stack_order(names or sorted(self.stacks), self.dependencies)

    def with_dependencies(self, names: list[str]) -> list[str]:
        """`names` and every stack they depend on, transitively, in dependency order."""
        return with_dependencies(names, self.dependencies)


def read_manifest(outdir: Path) -> Manifest:
    """The manifest in `outdir`, checked (`ManifestError` names the file and the place)."""
    path = outdir / MANIFEST
    try:
        data = json.loads(path.read_bytes())
    except OSError as err:
        raise ManifestError(f"cannot read {path}: {err.strerror or err}",
                            "run `edgekit synth` first") from err
    except ValueError as err:
        raise _fault(path, "$", f"not JSON ({err})") from err
    if not isinstance(data, dict):
        raise _fault(path, "$",
                     f"expected an object with 'stacks', got {value_kind(data, PROSE)}")
    stacks = data.get("stacks")
    if not isinstance(stacks, dict):
        raise _fault(path, "$.stacks", f"expected an object (stack name → stack), got "
                     f"{value_kind(stacks, PROSE)}")
    for name, entry in stacks.items():
        where = f"$.stacks[{json.dumps(name)}]"
        if not ID_PATTERN.match(name):
            raise _fault(path, where, f"invalid stack name {name!r}: expected a letter "
                         "followed by letters, digits, '_' or '-' (a stack name becomes a "
                         "folder name)")
        if not isinstance(entry, dict):
            raise _fault(path, where,
                         f"expected an object (the stack), got {value_kind(entry, PROSE)}")
        deps = entry.get("dependencies", [])
        if not isinstance(deps, list):
            raise _fault(path, f"{where}.dependencies", "expected a list of stack names, "
                         f"got {value_kind(deps, PROSE)}")
        for index, dep in enumerate(deps):
            at = f"{where}.dependencies[{index}]"
            if not isinstance(dep, str) or dep not in stacks:
                raise _fault(path, at, f"expected the name of a stack of this manifest, got "
                             f"{json.dumps(dep)}")
            if dep == name:
                raise _fault(path, at, f"stack {name!r} depends on itself")
    manifest = Manifest(path, dict(stacks))
    try:
        manifest.order()
    except ValueError as err:
        raise _fault(path, "$.stacks", str(err)) from err
    return manifest


def _fault(path: Path, pointer: str, message: str) -> ManifestError:
    return ManifestError(f"{path}: {message} @ {pointer}", "`edgekit synth` writes it again")
