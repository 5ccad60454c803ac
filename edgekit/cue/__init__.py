"""Adapter to CUE: the `cue` CLI, the committed exports, the estate model, generated files."""

from pathlib import Path


def has_cue(root: Path) -> bool:
    """Whether `root` is a project with a CUE estate (``cue/cue.mod``). Here, not in
    `export`, so a project without CUE never imports the CUE adapter to find that out."""
    return (root / "cue" / "cue.mod").is_dir()
