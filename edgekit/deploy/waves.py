"""Whether an environment's declared rollout waves can be used (ADR 0033): pure, so the
check rules (EK240, EK241) and `edgekit deploy` judge a declaration by one implementation."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def wave_problems(env: str, nodes: Collection[str],
                  waves: Sequence[Sequence[str]] | None) -> list[tuple[str, str, str]]:
    """(rule, JSON pointer, message) for each node a declared wave cannot use: not a node
    of the environment (EK240), in two waves, or in none (EK241). No declaration: none."""
    if waves is None:
        return []
    problems: list[tuple[str, str, str]] = []
    seen: dict[str, int] = {}
    known = ", ".join(sorted(nodes)) or "none"
    for index, wave in enumerate(waves):
        for position, node in enumerate(wave):
            pointer = f"$.env.deploy.waves[{index}][{position}]"
            if node not in nodes:
                problems.append(("EK240", pointer, f"wave {index} names {node!r}, which is "
                                 f"not a node of environment {env!r} (nodes: {known})"))
            elif node in seen:
                problems.append(("EK241", pointer, f"{node!r} is in waves {seen[node]} and "
                                 f"{index}: a rollout would move it twice"))
            else:
                seen[node] = index
    for node in sorted(set(nodes) - set(seen)):
        problems.append(("EK241", "$.env.deploy.waves", f"no wave moves node {node!r}: "
                         "`edgekit deploy` would never bring it to the new revision"))
    return problems
