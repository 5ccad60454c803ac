"""WireGuard public keys from the nodes into CUE: ``cue/outputs/<stack>.mesh.cue`` (ADR 0010).

A mesh node makes its private key at first boot and never lets it out. Its
``edgekit-mesh-key`` unit (nix/mesh.nix) derives the public key and PUTs it to
``mesh/<stack>/<node>.pub`` in the environment's logs bucket, signed with the log sink's
write-only R2 keys the node already holds (ADR 0008), at every boot and daily. The operator
runs ``edgekit mesh import-keys --stack S``: `read_published` lists and reads those objects,
`plan_keys` decides what changes, and `write_keys` writes ``mesh_keys: <S>: {node: key}`` in
the outputs package (checked with ``cue vet`` like ``edgekit outputs import``). envs.cue
unifies it into ``envs.<S>.mesh.public_keys``; ``edgekit generate`` then writes the peers
into ``nix/mesh/<S>.json``. Nothing is copied by hand.

Trust on first use: a node's first key is taken; a published key that differs from the one
in CUE is refused unless the operator names the node with ``--rekey`` (every node holds the
same write-only token, so a compromised node could overwrite another node's object).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from edgekit.core.errors import EdgekitError
from edgekit.cue.outputs import write_vetted

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "mesh"
SUFFIX = ".pub"
MAX_OBJECT_BYTES = 256
"""A public key is 44 base64 characters and a newline; anything bigger is not one."""
KEY_RE = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$")
"""A 32-byte key in base64 (as cue/schema.cue #WgPublicKey)."""


class MeshKeysError(EdgekitError):
    """The published keys could not be imported; nothing was written."""


def object_key(stack: str, node: str) -> str:
    """Where `node` of `stack` publishes its public key in the logs bucket."""
    return f"{PREFIX}/{stack}/{node}{SUFFIX}"


def file_name(stack: str) -> str:
    return f"{stack}.mesh.cue"


@attrs.frozen
class Published:
    keys: dict[str, str]
    """node -> the public key its object holds."""
    refused: tuple[str, ...]
    """One line per object that is not a well-formed key, naming it."""


def read_published(client: S3Client, bucket: str, stack: str) -> Published:
    """Every ``mesh/<stack>/<node>.pub`` object of `bucket`, checked to be one WireGuard key."""
    prefix = f"{PREFIX}/{stack}/"
    keys: dict[str, str] = {}
    refused: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"]
            node = name[len(prefix):]
            where = f"s3://{bucket}/{name}"
            if "/" in node or not node.endswith(SUFFIX):
                refused.append(f"{where}: not <node>{SUFFIX} directly under {prefix}")
                continue
            node = node[:-len(SUFFIX)]
            if item.get("Size", 0) > MAX_OBJECT_BYTES:
                refused.append(f"{where}: {item.get('Size')} bytes, a public key is 45")
                continue
            body = client.get_object(Bucket=bucket, Key=name)["Body"].read(MAX_OBJECT_BYTES + 1)
            text = body.decode("utf-8", "replace").strip()
            if not KEY_RE.fullmatch(text):
                refused.append(f"{where}: {text[:60]!r} is not a WireGuard public key "
                               "(32 bytes in base64)")
                continue
            keys[node] = text
    return Published(keys, tuple(refused))


@attrs.frozen
class KeysPlan:
    keys: dict[str, str]
    """What ``mesh_keys.<stack>`` will hold: node -> key, mesh nodes only."""
    added: tuple[str, ...]
    rekeyed: tuple[str, ...]
    dropped: tuple[str, ...]
    """Nodes with a key in CUE that are no longer in the mesh."""
    not_in_mesh: tuple[str, ...]
    """Published keys of nodes that are not mesh nodes of the stack (ignored)."""
    missing: tuple[str, ...]
    """Mesh nodes with no key anywhere yet (not booted, or not published yet)."""


def plan_keys(stack: str, mesh_nodes: Collection[str], current: Mapping[str, str],
              published: Mapping[str, str], rekey: Collection[str] = ()) -> KeysPlan:
    """Merge the published keys into the current ones; a changed key only for a node in
    `rekey`. Raises MeshKeysError naming every node whose key changed unasked, and every
    `rekey` node that published nothing new."""
    members = set(mesh_nodes)
    bad_rekey = sorted(n for n in rekey if n not in members)
    if bad_rekey:
        raise MeshKeysError(f"--rekey {', '.join(bad_rekey)}: not mesh nodes of stack "
                            f"{stack!r} (mesh nodes: {', '.join(sorted(members)) or 'none'})")
    keys = {n: k for n, k in current.items() if n in members}
    added, rekeyed, changed = [], [], []
    for node, key in sorted(published.items()):
        if node not in members:
            continue
        if node not in keys:
            added.append(node)
        elif keys[node] != key:
            if node not in rekey:
                changed.append(f"{node} (in CUE {keys[node]}, published {key})")
                continue
            rekeyed.append(node)
        keys[node] = key
    if changed:
        raise MeshKeysError(
            f"stack {stack!r}: the published WireGuard key of {'; '.join(changed)} differs "
            "from the one in CUE; nothing was written. If the node was rebuilt, accept its "
            "new key with --rekey NODE; otherwise a node may be publishing a key that is not "
            "its own")
    stale = sorted(n for n in rekey if n not in rekeyed)
    if stale:
        raise MeshKeysError(f"--rekey {', '.join(stale)}: no new key published for it "
                            f"under {PREFIX}/{stack}/; nothing was written")
    return KeysPlan(
        keys=dict(sorted(keys.items())), added=tuple(added), rekeyed=tuple(rekeyed),
        dropped=tuple(sorted(n for n in current if n not in members)),
        not_in_mesh=tuple(sorted(n for n in published if n not in members)),
        missing=tuple(sorted(members - set(keys))))


def render_cue(stack: str, keys: Mapping[str, str]) -> str:
    body = json.dumps(dict(sorted(keys.items())), indent="\t")
    return (f"// Generated by `edgekit mesh import-keys --stack {stack}`; do not edit.\n"
            "// WireGuard public keys the nodes published (ADR 0010); never a private key.\n"
            f"package outputs\n\nmesh_keys: {json.dumps(stack)}: {body}\n")


def write_keys(root: Path, stack: str, keys: Mapping[str, str]) -> bool:
    """Write ``cue/outputs/<stack>.mesh.cue`` once ``cue vet`` accepts it; True if changed."""
    return write_vetted(root, file_name(stack), render_cue(stack, keys))
