"""Names both sides of a deploy agree on: the refs nodes follow and where they report.

Light on purpose (the boot document, an L2 construct, imports it): no CUE, no boto3.

* ``<env ref>`` (``deploy/<env>``): the last revision healthy on every node; a node follows
  it until it has a ref of its own, and a new node's first switch builds it.
* ``<env ref>.nodes/<node>``: the node's own ref, moved by `edgekit deploy` wave by wave.
  Environment names have no dot (cue/schema.cue #Name), so these can never clash with
  another environment's ``deploy/<name>`` (git cannot hold ``a/b`` and ``a/b/c`` together).
* ``status/<env>/<node>.json`` in the logs bucket: the node's report (cue/status.cue).
"""

from __future__ import annotations

from pathlib import Path

AGENT_SOURCE = Path(__file__).resolve().parent / "agent.py"
"""The node's agent: nix/deploy.nix runs this file; the first boot runs a copy of it."""
STATUS_PREFIX = "status"
STATUS_SCHEMA = "edgekit.status/v1"
HEADS = "refs/heads/"


def node_ref(env_ref: str, node: str) -> str:
    """The branch `node` follows once `edgekit deploy` has given it one."""
    return f"{env_ref}.nodes/{node}"


def follow_refs(env_ref: str, node: str) -> list[str]:
    """What a node looks for, in order: its own ref, then the environment's."""
    return [f"{HEADS}{node_ref(env_ref, node)}", f"{HEADS}{env_ref}"]


def status_key(env: str, node: str) -> str:
    return f"{STATUS_PREFIX}/{env}/{node}.json"
