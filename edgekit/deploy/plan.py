"""What each node's agent is told, and the order `edgekit deploy` moves the nodes in.

`agent_settings` is ``nix/deploy/<env>.json`` (node → the agent's settings, generated, read
by nix/estate.nix and written to the node's ``/etc/edgekit/deploy.json`` by nix/deploy.nix):
the repository and the refs the node follows, one health check per service on the node
(``http://127.0.0.1:<port><health_path>``, the address cloudflared reaches it at) and
``postgresql`` on the primary (``pg_isready`` on the server's socket: Postgres accepts
connections), the health window, and where the report goes (the logs bucket, with the
log sink's keys from ``vector.env``, ADR 0008).

`waves` is the rollout order: the environment's ``deploy.waves`` from CUE, or one canary
node per service (the fewest nodes that run every placed service), then all the others.
"""

from __future__ import annotations

from typing import Any

from edgekit.core.errors import EdgekitError
from edgekit.core.stack import r2_endpoint
from edgekit.cue.model import Estate
from edgekit.deploy.refs import follow_refs, status_key
from edgekit.deploy.waves import wave_problems
from edgekit.nix.compose import LOOPBACK, PG_PORT, compose_estate

KEYS_FILE = "/run/keys/edgekit/vector.env"
"""The log sink's keys as AWS_* lines (written by edgekit-keys, root 0400; nix/node.nix)."""
PG_SOCKET_DIR = "/run/postgresql"


class PlanError(EdgekitError):
    """The environment's waves cannot be used; the message names the node and the wave."""


def health_checks(estate: Estate, node: str) -> dict[str, dict[str, Any]]:
    composed = compose_estate(estate)[node]
    checks: dict[str, dict[str, Any]] = {}
    for name in composed["services"]:
        service = estate.services[name]
        checks[name] = {"http": f"http://{LOOPBACK}:{service.port}{service.health_path}"}
    if composed["postgres"]:
        checks["postgresql"] = {"command": ["pg_isready", f"--host={PG_SOCKET_DIR}",
                                            f"--port={PG_PORT}", "--timeout=5"]}
    return checks


def agent_settings(estate: Estate) -> dict[str, dict[str, Any]]:
    """node → the settings of its deploy agent (edgekit/deploy/agent.py `run --config`)."""
    env = estate.env
    settings: dict[str, dict[str, Any]] = {}
    for node in sorted(env.nodes):
        settings[node] = {
            "env": env.name,
            "node": node,
            "repository": env.deploy.repository,
            "refs": follow_refs(env.deploy.ref, node),
            "health": health_checks(estate, node),
            "health_timeout": env.deploy.health_timeout_seconds,
            "status": {"endpoint": r2_endpoint(env.cloudflare.account_id),
                       "bucket": env.cloudflare.logs_bucket, "region": "auto",
                       "key": status_key(env.name, node)},
            "credentials": KEYS_FILE,
        }
    return settings


def waves(estate: Estate) -> list[list[str]]:
    """The rollout's waves, in order; every node of the environment in exactly one."""
    env = estate.env
    problems = wave_problems(env.name, env.nodes, env.deploy.waves)
    if problems:
        raise PlanError("\n".join(f"cue/envs.cue envs.{env.name}.deploy.waves: {message} "
                                   f"({rule}, {pointer})" for rule, pointer, message in problems))
    if env.deploy.waves is not None:
        return [list(w) for w in env.deploy.waves]
    canaries = canary_nodes(estate)
    rest = [n for n in sorted(env.nodes) if n not in canaries]
    return [w for w in (canaries, rest) if w]


def canary_nodes(estate: Estate) -> list[str]:
    """The fewest nodes (greedy: most uncovered services first, then by name) that together
    run every placed service; with nothing placed, the first node."""
    placement = {n: set(s) for n, s in estate.env.placement.items() if n in estate.env.nodes}
    uncovered = set().union(*placement.values()) if placement else set()
    chosen: list[str] = []
    while uncovered:
        best = min(placement, key=lambda n: (-len(placement[n] & uncovered), n))
        chosen.append(best)
        uncovered -= placement[best]
    if not chosen and estate.env.nodes:
        chosen.append(sorted(estate.env.nodes)[0])
    return sorted(chosen)
