"""The rollout order an environment declares in CUE (``deploy.waves``, ADR 0033)."""

from __future__ import annotations

from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, rule


def _hits(ctx: Context, wanted: str) -> Iterator[Hit]:
    for layout in ctx.layouts:
        if layout.waves is None:
            continue
        from edgekit.deploy.waves import wave_problems  # loaded where a layout has waves

        where = layout.waves.where
        for rule_id, pointer, message in wave_problems(layout.stack, layout.nodes,
                                                       layout.waves.waves):
            if rule_id == wanted:
                yield Hit(message=message, stack=layout.stack, path=where.path,
                          address=where.address, pointer=pointer)


@rule("EK240", title="deploy waves name only nodes of the environment",
      severity="error", source="adr/0033-rollouts-in-waves.md (a wave moves the refs of "
      "the nodes it names: <ref>.nodes/<node>)",
      fix="name the node as it is under nodes in {file}, or drop it from the wave")
def wave_unknown_node(ctx: Context) -> Iterator[Hit]:
    yield from _hits(ctx, "EK240")


@rule("EK241", title="every node is in exactly one deploy wave",
      severity="error", source="adr/0033-rollouts-in-waves.md (a node in no wave never gets "
      "the new revision; in two, it would be moved twice)",
      fix="list each node of the environment once in envs.<env>.deploy.waves, or drop "
      "waves to get one canary per service, then the rest")
def wave_node_count(ctx: Context) -> Iterator[Hit]:
    yield from _hits(ctx, "EK241")
