"""CUE's error output in edgekit terms, for the mistakes people make by hand in cue/.

``envs.prod.placement."edge-1".2: 2 errors in empty disjunction: conflicting values "api"
and "apii"`` becomes ``./envs.cue:36:28: environment 'prod', node 'edge-1' is given 'apii',
which is not a service that runs on nodes (expected one of: api, web) @ placement.edge-1[2]``.
Lines CUE writes that match no known mistake are kept as they are.
"""

from __future__ import annotations

import re

PLACEMENT_ITEM = re.compile(
    r'^envs\.(?P<env>[\w-]+)\.placement\."?(?P<node>[\w-]+)"?\.(?P<index>\d+): '
    r"\d+ errors in empty disjunction:")
CONFLICT = re.compile(r'conflicting values "(?P<allowed>[^"]+)" and "(?P<given>[^"]+)"')
PLACEMENT_NODE = re.compile(
    r'^envs\.(?P<env>[\w-]+)\.placement\."?(?P<node>[\w-]+)"?: field not allowed')
LOCATION = re.compile(r"^\s+(?P<where>\./[\w./-]+:\d+:\d+)")


def explain(detail: str) -> str:
    """Translate the mistakes we know; keep every other line of CUE's output."""
    lines = detail.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        item, node = PLACEMENT_ITEM.match(line), PLACEMENT_NODE.match(line)
        if item:
            block = [line]
            i += 1
            while i < len(lines) and (lines[i].startswith((" ", "\t")) or
                                      lines[i].startswith(line.split(":")[0] + ":")):
                block.append(lines[i])
                i += 1
            conflicts = [m for m in map(CONFLICT.search, block) if m]
            given = conflicts[0]["given"] if conflicts else "?"
            allowed = sorted({m["allowed"] for m in conflicts})
            where = _where(block)
            out.append(f"{where}environment {item['env']!r}: node {item['node']!r} is given "
                       f"{given!r}, which is not a service that runs on nodes (expected one "
                       f"of: {', '.join(allowed)}) @ placement.{item['node']}[{item['index']}]")
            continue
        if node:
            block = [line]
            i += 1
            while i < len(lines) and lines[i].startswith((" ", "\t")):
                block.append(lines[i])
                i += 1
            out.append(f"{_where(block, last=False)}environment {node['env']!r}: placement "
                       f"names node "
                       f"{node['node']!r}, which is not a node of the environment (add it under "
                       f"nodes, or fix the name) @ placement.{node['node']}")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _where(block: list[str], last: bool = True) -> str:
    """``./<file>:<line>:<col>: `` (in the CUE module) of the location of the user's value
    (CUE lists it last for a conflict, first for a field not allowed), or ''."""
    found = [m for m in map(LOCATION.match, block) if m]
    return f"{found[-1 if last else 0]['where']}: " if found else ""
