"""Dump each pinned provider's ``tofu providers schema -json`` into package data.

    .venv/bin/python tools/dump_schemas.py [--check]

Needs the tools built by tools/build.sh. Writes
``edgekit/schema/data/<name>-<version>.json.gz`` (deterministic gzip, in members of about
64 KiB of JSON each: `schema_index.compress`) and its index ``<name>-<version>.index.json``
(where each type's schema and each member sits in it). With
``--check`` it writes nothing and exits 1 if a committed dump differs from what
the built provider reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgekit.core.files import write_atomic  # noqa: E402
from edgekit.providers.pins import PINS  # noqa: E402
from edgekit.schema.schema_index import (  # noqa: E402
    build_index,
    compress,
    dump_path,
    index_path,
    inflate,
    members,
    render_index,
)
from tools.toolpaths import plugin_dir, tofu_bin  # noqa: E402


def dump_all(names: list[str] | None = None) -> dict[str, bytes]:
    """Each chosen pin's dump (name → the compact sorted JSON), from the built provider."""
    pins = [pin for pin in PINS.values()
            if not names or pin.name in names]
    with tempfile.TemporaryDirectory() as work:
        config = {
            "terraform": {
                "required_providers": {
                    pin.name: {"source": pin.source, "version": f"= {pin.version}"}
                    for pin in pins
                }
            }
        }
        Path(work, "main.tf.json").write_text(json.dumps(config))
        env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
        subprocess.run(
            [tofu_bin(), "init", "-backend=false", "-input=false", "-no-color",
             f"-plugin-dir={plugin_dir()}"],
            cwd=work, env=env, check=True, capture_output=True,
        )
        out = subprocess.run(
            [tofu_bin(), "providers", "schema", "-json"],
            cwd=work, env=env, check=True, capture_output=True,
        ).stdout
    dump = json.loads(out)
    raws = {}
    for pin in pins:
        source = f"registry.opentofu.org/{pin.source}"
        single = {"format_version": dump["format_version"],
                  "provider_schemas": {source: dump["provider_schemas"][source]}}
        raws[pin.name] = json.dumps(single, sort_keys=True, separators=(",", ":")).encode()
    return raws


def layout(dump: bytes) -> tuple[bytes, list[int]]:
    """What a compressed dump holds and where its members are cut: what matters, whatever
    bytes another zlib's deflate makes of the same members."""
    return inflate(dump), [start for start, _ in members(dump)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("providers", nargs="*", help="provider names (default: every pin)")
    args = parser.parse_args()
    stale = []
    for name, raw in sorted(dump_all(args.providers).items()):
        pin = PINS[name]
        files = {}
        target = dump_path(pin.name, pin.version)
        compressed = compress(raw)
        current = target.read_bytes() if target.is_file() else b""
        if not current or layout(current) != layout(compressed):
            files[target], current = compressed, compressed
        # the index points into the dump as it will be on disk
        index = render_index(build_index(raw, current))
        target = index_path(pin.name, pin.version)
        if not target.is_file() or target.read_bytes() != index:
            files[target] = index
        for path, data in files.items():
            stale.append(path.name)
            if not args.check:
                write_atomic(path, data)
        print(f"{'stale' if files else 'ok'}: {pin.name}-{pin.version} "
              f"({len(current) // 1024} KiB)")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
