"""Dump each pinned provider's ``tofu providers schema -json`` into package data.

    .venv/bin/python tools/dump_schemas.py [--check]

Needs the tools built by tools/build.sh. Writes
``edgekit/schema/data/<name>-<version>.json.gz`` (deterministic gzip) and its index
``<name>-<version>.index.json`` (where each type's schema sits in it). With
``--check`` it writes nothing and exits 1 if a committed dump differs from what
the built provider reports.
"""

from __future__ import annotations

import argparse
import gzip
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
from edgekit.schema.schema_index import build_index, render_index  # noqa: E402
from tools.toolpaths import plugin_dir, tofu_bin  # noqa: E402

DATA = ROOT / "edgekit" / "schema" / "data"


def dump_all(names: list[str] | None = None) -> dict[str, bytes]:
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
    files = {}
    for pin in pins:
        source = f"registry.opentofu.org/{pin.source}"
        single = {"format_version": dump["format_version"],
                  "provider_schemas": {source: dump["provider_schemas"][source]}}
        raw = json.dumps(single, sort_keys=True, separators=(",", ":")).encode()
        files[f"{pin.name}-{pin.version}.json.gz"] = gzip.compress(raw, 9, mtime=0)
        files[f"{pin.name}-{pin.version}.index.json"] = render_index(build_index(raw))
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("providers", nargs="*", help="provider names (default: every pin)")
    args = parser.parse_args()
    files = dump_all(args.providers)
    stale = []
    for name, data in sorted(files.items()):
        target = DATA / name
        unpack = gzip.decompress if name.endswith(".gz") else bytes
        current = unpack(target.read_bytes()) if target.is_file() else b""
        if current != unpack(data):
            stale.append(name)
            if not args.check:
                write_atomic(target, data)
        print(f"{'stale' if name in stale else 'ok'}: {name} ({len(data) // 1024} KiB)")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
