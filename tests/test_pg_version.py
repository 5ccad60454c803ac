"""The PostgreSQL and pgBackRest the tests run are the ones the nodes run (issue 22).

The major version comes from tools/versions.env (POSTGRES_MAJOR); the server the tests start
must report it, and pgBackRest must be the pinned release, which supports it.
"""

from __future__ import annotations

import re
import subprocess

from edgekit.constructs.pg_major import PG_MAJOR as NODES_MAJOR
from edgekit.nix.evaluate import evaluate_node
from tests.conftest import ROOT
from tests.pg_server import PG_MAJOR, pg_bin, runtime_tools, throwaway_postgres
from tools.toolpaths import pin


def test_the_tests_server_is_the_pinned_major() -> None:
    with throwaway_postgres("edgekit-version-") as pg, pg.connect("postgres") as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    assert row[0] // 10000 == PG_MAJOR
    reported = subprocess.run([str(pg_bin() / "postgres"), "--version"], capture_output=True,
                              text=True, check=True, timeout=30).stdout
    assert reported.strip() == f"postgres (PostgreSQL) {pin('POSTGRES_VERSION').removesuffix('.0')}"


def test_pgbackrest_is_the_pinned_release() -> None:
    reported = subprocess.run([str(runtime_tools() / "bin" / "pgbackrest"), "version"],
                              capture_output=True, text=True, check=True, timeout=30).stdout
    assert reported.strip() == f"pgBackRest {pin('PGBACKREST_VERSION')}"
    # PostgreSQL 17 support arrived in pgBackRest 2.53
    major, minor, _ = (int(x) for x in pin("PGBACKREST_VERSION").split("."))
    assert (major, minor) >= (2, 53) or PG_MAJOR < 17


def _upstream_major(state_version: str) -> int:
    """The major the vendored upstream postgresql.nix selects for `state_version` (its own
    ``versionAtLeast config.system.stateVersion "X" then pkgs.postgresql_N`` chain)."""
    module = (ROOT / "nix/upstream/nixpkgs/nixos/modules/services/databases/postgresql.nix")
    body = module.read_text().split("base =", 1)[1]
    rules = re.findall(r'versionAtLeast config\.system\.stateVersion "([0-9.]+)" then\s+'
                       r'(?:mkWarn "\d+" )?pkgs\.postgresql_(\d+)', body)
    assert rules, f"no stateVersion rule found in {module}"

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(x) for x in version.split("."))

    return next(int(major) for at_least, major in rules if key(state_version) >= key(at_least))


def test_the_tested_major_is_the_evaluated_nodes() -> None:
    """The major the primaries run, as evaluated, is the one the tests run: every Postgres
    node's evaluated package, edgekit's pin, and what the vendored upstream module would pick
    for the nodes' stateVersion all agree with POSTGRES_MAJOR."""
    for env, node in (("prod", "pg-tokyo"), ("staging", "staging-1")):
        report = evaluate_node(env, node)
        assert report["postgresql"]["package"]["major"] == str(PG_MAJOR), (env, node)
        assert report["postgresql"]["dataDir"] == f"/var/lib/postgresql/{PG_MAJOR}"
        assert _upstream_major(report["stateVersion"]) == PG_MAJOR
    assert NODES_MAJOR == PG_MAJOR
