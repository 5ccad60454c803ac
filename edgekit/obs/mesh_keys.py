"""WireGuard public keys the nodes published through their logs (ADR 0010).

At boot, ``edgekit-mesh-key`` (nix/mesh.nix) sends one OTLP log record to the node's Vector:
service ``edgekit-mesh``, body ``edgekit-mesh-public-key <key>``. Vector ships it to R2 like
every other log line. After ``edgekit logs sync --stack S``, `published_keys` reads the newest
key per node of that stack from the synced files, and `cue_snippet` renders the value of
``envs.<S>.mesh.public_keys`` to commit. Public keys are not secrets; private keys never
leave the nodes.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgekit.obs.contract import LogsError

SERVICE = "edgekit-mesh"
PREFIX = "edgekit-mesh-public-key "
KEY_RE = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$")
"""A 32-byte key in base64 (as in cue/schema.cue #WgPublicKey)."""


def published_keys(dest: Path, stack: str) -> tuple[dict[str, str], list[str]]:
    """node -> its newest well-formed published key; and one line per record refused."""
    from edgekit.obs.query import query

    _columns, rows = query(dest, (
        "SELECT node, body, timestamp FROM logs WHERE stack = ? AND service = ? "
        "AND starts_with(body, ?) ORDER BY node, timestamp"), (stack, SERVICE, PREFIX))
    keys: dict[str, str] = {}
    refused: list[str] = []
    for node, body, timestamp in rows:
        key = str(body)[len(PREFIX):].strip()
        if not KEY_RE.fullmatch(key):
            refused.append(f"node {node} at {timestamp}: {key!r} is not a WireGuard public key")
            continue
        keys[str(node)] = key  # rows are in time order: the newest wins
    return keys, refused


def cue_snippet(stack: str, keys: dict[str, str]) -> str:
    if not keys:
        raise LogsError(f"no published WireGuard key for stack {stack!r}: sync its logs "
                        f"first (edgekit logs sync --stack {stack}) and check that the nodes "
                        "have booted")
    lines = [f"envs: {stack}: mesh: public_keys: {{"]
    lines += [f'\t"{node}": "{key}"' for node, key in sorted(keys.items())]
    lines.append("}")
    return "\n".join(lines)
