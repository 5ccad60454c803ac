"""`edgekit graph`: the estate as a picture, from the synthesized documents.

One box per stack; inside, the resources that make the estate's shape (Worker, tunnels,
nodes, volumes, Postgres passwords, R2, Hyperdrive, load balancers; every resource of a
stack that has none of these). An arrow ``A → B`` says A reads B, directly or through
resources left out of the picture. Cross-stack references are arrows between boxes.
Output is sorted, so the same stacks give the same bytes; svg/png go through Graphviz
(``dot``, Debian package graphviz).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.clouds import kind_of
from edgekit.core.files import write_atomic
from edgekit.core.refs import REMOTE_STATE, interpolations, referenced_addresses

ROLES: dict[str, str] = {
    "cloudflare_workers_script": "Worker",
    "cloudflare_zero_trust_tunnel_cloudflared": "tunnel",
    "cloudflare_load_balancer": "load balancer",
    "cloudflare_hyperdrive_config": "Hyperdrive",
    "cloudflare_r2_bucket": "R2",
}
"""Cloudflare's resource types drawn, with the role they play."""
CLOUD_ROLES = {"server": "node", "volume": "volume"}
"""A cloud's servers and volumes are drawn (their `Kind.role`, from the cloud adapter)."""


def role_of(resource_type: str) -> str | None:
    """What a drawn resource is (``node``, ``Worker``, ...); None: not drawn by itself."""
    if resource_type in ROLES:
        return ROLES[resource_type]
    kind = kind_of(resource_type)
    return CLOUD_ROLES.get(kind.role) if kind is not None else None

Documents = Mapping[str, dict[str, Any]]


def _reads(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, str):
        for expression in interpolations(value):
            found.update(referenced_addresses(expression))
    elif isinstance(value, dict):
        for item in value.values():
            found |= _reads(item)
    elif isinstance(value, list):
        for item in value:
            found |= _reads(item)
    return found


def build(documents: Documents, placements: Mapping[str, Mapping[str, list[str]]] = {},
          ) -> tuple[dict[str, dict[str, str]], set[tuple[str, str]]]:
    """(stack → node id → label, edges between node ids). `placements`: per stack, node →
    services (the stack's ``placement.auto.tfvars.json``): drawn as services on their node."""
    nodes: dict[str, dict[str, str]] = {}
    reads: dict[str, set[str]] = {}  # node id → node ids it reads (all elements)
    shown: set[str] = set()
    outputs: dict[str, dict[str, set[str]]] = {}
    for stack, doc in sorted(documents.items()):
        resources = [(t, n, body) for t, items in doc.get("resource", {}).items()
                     for n, body in items.items()]
        keep_all = not any(role_of(t) for t, _, _ in resources)
        nodes[stack] = {}
        for section in ("resource", "data"):
            for rtype, items in doc.get(section, {}).items():
                for name, body in items.items():
                    address = f"{rtype}.{name}" if section == "resource" else \
                        f"data.{rtype}.{name}"
                    key = f"{stack}/{address}"
                    reads[key] = {f"{stack}/{a}" for a in _reads(body)}
                    if section == "data" and rtype == REMOTE_STATE:
                        reads[key] = {f"{name}/output.{o}" for o in
                                      _remote_outputs(doc, name)}
                    if section == "resource" and (keep_all or role_of(rtype)):
                        role = role_of(rtype) or rtype
                        nodes[stack][key] = f"{role}: {name}"
                        shown.add(key)
        for name, value in doc.get("locals", {}).items():
            reads[f"{stack}/local.{name}"] = {f"{stack}/{a}" for a in _reads(value)}
        outputs[stack] = {f"{stack}/output.{n}": {f"{stack}/{a}" for a in _reads(o)}
                          for n, o in doc.get("output", {}).items()}
        for out, targets in outputs[stack].items():
            reads[out] = targets
    edges: set[tuple[str, str]] = set()
    for source in sorted(shown):
        for target in _reachable(source, reads, shown):
            if target != source:
                edges.add((source, target))
    for stack, placement in sorted(placements.items()):
        members = nodes.get(stack, {})
        for node, services in sorted(placement.items()):
            suffix = "_" + node.replace("-", "_")
            hosts = [k for k, label in members.items() if label.startswith("node: ")
                     and (label[6:] == suffix[1:] or label.endswith(suffix))]
            for service in sorted(services):
                key = f"{stack}/service.{service}"
                members[key] = f"service: {service}"
                edges.update((host, key) for host in hosts)
    return nodes, edges


def _remote_outputs(doc: dict[str, Any], producer: str) -> set[str]:
    prefix = f"data.{REMOTE_STATE}.{producer}.outputs."
    names: set[str] = set()
    text = str(doc.get("resource", {})) + str(doc.get("output", {}))
    for match in re.finditer(re.escape(prefix) + r"([A-Za-z0-9_]+)", text):
        names.add(match.group(1))
    return names


def _reachable(start: str, reads: Mapping[str, set[str]], shown: set[str]) -> set[str]:
    """Shown nodes `start` reads, following through nodes that are not shown."""
    found: set[str] = set()
    seen = {start}
    todo = sorted(reads.get(start, ()))
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in shown:
            found.add(current)
            continue
        todo.extend(sorted(reads.get(current, ())))
    return found


def _ident(key: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9]", "_", key)


def dot(documents: Documents, placements: Mapping[str, Mapping[str, list[str]]] = {}) -> str:
    nodes, edges = build(documents, placements)
    lines = ["digraph estate {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for stack, members in sorted(nodes.items()):
        lines.append(f'  subgraph "cluster_{stack}" {{')
        lines.append(f'    label="{stack}";')
        lines += [f'    {_ident(k)} [label="{v}"];' for k, v in sorted(members.items())]
        lines.append("  }")
    lines += [f"  {_ident(a)} -> {_ident(b)};" for a, b in sorted(edges)]
    return "\n".join([*lines, "}"]) + "\n"


def mermaid(documents: Documents,
            placements: Mapping[str, Mapping[str, list[str]]] = {}) -> str:
    nodes, edges = build(documents, placements)
    lines = ["flowchart LR"]
    for stack, members in sorted(nodes.items()):
        lines.append(f'  subgraph {_ident(stack)}["{stack}"]')
        lines += [f'    {_ident(k)}["{v}"]' for k, v in sorted(members.items())]
        lines.append("  end")
    lines += [f"  {_ident(a)} --> {_ident(b)}" for a, b in sorted(edges)]
    return "\n".join(lines) + "\n"


def render_image(dot_text: str, fmt: str) -> bytes:
    binary = shutil.which("dot")
    if binary is None:
        from edgekit.ops.tofu import OpsError

        raise OpsError(f"--format {fmt} needs Graphviz `dot` (Debian: apt-get install "
                       "graphviz; `make system-deps` does); dot and mermaid need nothing")
    done = subprocess.run([binary, f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        from edgekit.ops.tofu import OpsError

        raise OpsError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


MARKER = "<!-- edgekit graph -->"
_BLOCK = re.compile(re.escape(MARKER) + r"\n```mermaid\n.*?```\n", re.DOTALL)


def embed(page: Path, picture: str) -> None:
    """Replace the mermaid block after `MARKER` in `page` (append one if missing)."""
    text = page.read_text()
    block = f"{MARKER}\n```mermaid\n{picture}```\n"
    if _BLOCK.search(text):
        text = _BLOCK.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    write_atomic(page, text.encode())


def placements_of(stack_dirs: Mapping[str, Path]) -> dict[str, dict[str, list[str]]]:
    """Each stack's ``placement`` from its ``placement.auto.tfvars.json``, when it has one."""
    import orjson

    out: dict[str, dict[str, list[str]]] = {}
    for stack, folder in sorted(stack_dirs.items()):
        path = folder / "placement.auto.tfvars.json"
        if path.is_file():
            out[stack] = dict(orjson.loads(path.read_bytes()).get("placement", {}))
    return out
