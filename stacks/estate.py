"""The reference estate's environments. Nodes, tunnels and the rest arrive as their
constructs land; for now each stack carries its state, encryption and placement."""

from __future__ import annotations

from edgekit.constructs.env_stack import EnvStack


class ProdStack(EnvStack):
    """prod: Hetzner and Linode edge nodes, the Postgres primary on Vultr Tokyo."""


class StagingStack(EnvStack):
    """staging: one Hetzner node running everything, Postgres included."""
