"""The pin of the vendored upstream NixOS files (nix/upstream/pin.json, ADR 0023).

    python tools/upstream_pin.py           check: every vendored file has the pinned sha256
    python tools/upstream_pin.py --write   rewrite the "files" section from the disk

pin.json's "sources" (where each file came from and how its release was identified) and
"release" (the nixpkgs revision flake.lock must lock) are written by hand; "files" maps every
file under nix/upstream/nixpkgs to {sha256, source}. A vendored file is never edited: a new
upstream text is a new copy, a new source entry and a new pin.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT / "nix" / "upstream"
PIN = UPSTREAM / "pin.json"


def vendored() -> dict[str, str]:
    """Relative path (under nix/upstream) -> sha256 of every vendored file on disk."""
    found = {}
    for path in sorted((UPSTREAM / "nixpkgs").rglob("*")):
        if path.is_file():
            found[str(path.relative_to(UPSTREAM))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def source_of(relative: str, sources: dict[str, Any]) -> str:
    """The source entry whose `paths` list (or `prefix`) covers `relative`."""
    for name, source in sources.items():
        if relative in source.get("paths", []) or (
                "prefix" in source and relative.startswith(source["prefix"])):
            return name
    raise SystemExit(f"nix/upstream/{relative}: no entry of pin.json's sources names it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the files section")
    args = parser.parse_args(argv)
    pin = json.loads(PIN.read_text())
    disk = vendored()
    if args.write:
        pin["files"] = {rel: {"sha256": digest, "source": source_of(rel, pin["sources"])}
                        for rel, digest in disk.items()}
        PIN.write_text(json.dumps(pin, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        print(f"{PIN.relative_to(ROOT)}: {len(disk)} files pinned")
        return 0
    pinned = {rel: entry["sha256"] for rel, entry in pin["files"].items()}
    problems = [f"nix/upstream/{rel}: sha256 {disk.get(rel)}, pinned {pinned.get(rel)}"
                for rel in sorted(set(disk) | set(pinned)) if disk.get(rel) != pinned.get(rel)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
