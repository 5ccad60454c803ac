"""The PostgreSQL major version the self-hosted primary runs, and its data directory.

`PG_MAJOR` is what NixOS 25.11 selects for a new system (``system.stateVersion = "25.11"``:
``pkgs.postgresql_17``); nix/node.nix pins the package to it explicitly, so a later
``stateVersion`` cannot move the data to a directory nothing restores into. On the node,
every consumer reads the evaluated ``services.postgresql.dataDir`` (nix/pgbackrest.nix
writes pg1-path from it). Off the node (``edgekit pg``, the boot document) `data_dir` is
upstream's default rule, ``/var/lib/postgresql/<psqlSchema>``; tests/test_nix_nodes.py
checks it against the evaluation of every Postgres node.
"""

from __future__ import annotations

PG_MAJOR = 17
"""The major version of the primary's PostgreSQL (nix/node.nix: pkgs.postgresql_<major>)."""


def data_dir(major: int = PG_MAJOR) -> str:
    """Upstream postgresql.nix's default data directory for `major`."""
    return f"/var/lib/postgresql/{major}"
