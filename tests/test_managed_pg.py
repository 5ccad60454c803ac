"""ManagedPg (ADR 0012): CUE chooses a provider's managed Postgres per environment; the
stack synthesizes and passes the real `tofu validate` and `tofu test` for every provider."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit import App
from edgekit.core.errors import ConstructError
from edgekit.cue.model import Estate, ManagedPgSpec, Node
from edgekit.nix.compose import compose_estate
from stacks.estate import EstateStack
from tests.conftest import ROOT, Tofu

SPECS = {
    "linode": ManagedPgSpec(provider="linode", region="ap-northeast", plan="g6-nanode-1"),
    "vultr": ManagedPgSpec(provider="vultr", region="nrt",
                           plan="vultr-dbaas-startup-cc-1-55-2"),
    "digitalocean": ManagedPgSpec(provider="digitalocean", region="sgp1",
                                  plan="db-s-1vcpu-1gb"),
}


def _managed(env_name: str, spec: ManagedPgSpec,
             nodes: dict[str, Node] | None = None) -> Estate:
    estate = Estate.load(ROOT, env_name, check_fresh=False)
    env = estate.env
    nodes = nodes or {n: attrs.evolve(s, roles=tuple(r for r in s.roles if r != "postgres"))
                      for n, s in env.nodes.items()}
    postgres = attrs.evolve(env.postgres, kind="managed", managed=spec)
    return attrs.evolve(estate, env=attrs.evolve(env, nodes=nodes, postgres=postgres))


def _synth(estate: Estate, out: Path) -> dict[str, Any]:
    app = App(outdir=out)
    EstateStack(app, estate)
    app.synth()
    document: dict[str, Any] = json.loads(
        (out / "stacks" / estate.env.name / "cdk.tf.json").read_text())
    return document


@pytest.mark.tools
@pytest.mark.parametrize("provider", sorted(SPECS))
def test_managed_pg_passes_tofu_validate_and_test(
    provider: str, tmp_path: Path, tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    estate = _managed("staging", SPECS[provider])
    document = _synth(estate, tmp_path / "out")
    folder = stack_dir_copy(tmp_path / "out" / "stacks" / "staging")
    init = tofu.init(folder)
    assert init.returncode == 0, init.stderr
    validate = tofu(folder, "validate", "-json")
    report = json.loads(validate.stdout)
    assert report["valid"] is True, report
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "2 passed, 0 failed" in test.stdout
    # nothing Postgres-like is left on the node, and no backups of a primary we do not run
    resources = document["resource"]
    assert not any("postgres_data" in name for kind in resources.values() for name in kind)
    assert "pg_backup_cipher_pass" not in document["output"]
    assert document["output"]["pg_primary_private_ip"]["value"].startswith("${")
    boot = document["locals"]["nodes_staging_1_boot"]
    assert set(boot["secrets"]) >= {"pg_password_svc_api_rw", "pg_password_svc_web_ro"}


def test_allow_list_is_the_clients_public_addresses_only(tmp_path: Path) -> None:
    resources = _synth(_managed("staging", SPECS["vultr"]), tmp_path / "v")["resource"]
    (db,) = resources["vultr_database"].values()
    assert db["trusted_ips"] == ["${hcloud_server.nodes_staging_1.ipv4_address}"]
    assert db["database_engine"] == "pg" and db["database_engine_version"] == "16"
    users = {u["username"]: u for u in resources["vultr_database_user"].values()}
    assert set(users) == {"svc_api_rw", "svc_web_ro"}
    assert users["svc_api_rw"]["password"].startswith("${random_password.")

    resources = _synth(_managed("staging", SPECS["linode"]), tmp_path / "l")["resource"]
    (db,) = resources["linode_database_postgresql_v2"].values()
    assert db["allow_list"] == ["${hcloud_server.nodes_staging_1.ipv4_address}/32"]
    assert db["engine_id"] == "postgresql/16"

    resources = _synth(_managed("staging", SPECS["digitalocean"]), tmp_path / "d")["resource"]
    (firewall,) = resources["digitalocean_database_firewall"].values()
    assert firewall["rule"] == [{"type": "ip_addr",
                                 "value": "${hcloud_server.nodes_staging_1.ipv4_address}"}]


def test_private_access_where_the_provider_has_a_vpc(tmp_path: Path) -> None:
    """prod without its primary, a Vultr node placed in Tokyo: that node reaches the Vultr
    database through the VPC; the others are on the allow-list."""
    prod = Estate.load(ROOT, "prod", check_fresh=False)
    nodes = {n: s for n, s in prod.env.nodes.items() if n != "pg-tokyo"}
    nodes["app-tokyo"] = Node(name="app-tokyo", provider="vultr", region="nrt",
                              size="vc2-1c-2gb", roles=("edge",), mesh_host=31)
    estate = _managed("prod", SPECS["vultr"], nodes)
    env = attrs.evolve(estate.env, placement={**estate.env.placement,
                                              "app-tokyo": ("api",)},
                       tunnel=attrs.evolve(estate.env.tunnel, weights={}))
    document = _synth(attrs.evolve(estate, env=env), tmp_path / "p")
    (db,) = document["resource"]["vultr_database"].values()
    assert db["vpc_id"] == "${vultr_vpc.nodes_net_vultr.id}"
    assert sorted(db["trusted_ips"]) == [
        "${hcloud_server.nodes_edge_1.ipv4_address}",
        "${hcloud_server.nodes_edge_2.ipv4_address}",
        "${tolist(linode_instance.nodes_edge_tokyo.ipv4)[0]}"]


def test_managed_and_a_postgres_node_together_are_refused(tmp_path: Path) -> None:
    estate = Estate.load(ROOT, "staging", check_fresh=False)
    postgres = attrs.evolve(estate.env.postgres, kind="managed", managed=SPECS["vultr"])
    estate = attrs.evolve(estate, env=attrs.evolve(estate.env, postgres=postgres))
    with pytest.raises(ConstructError, match="node staging-1 has role 'postgres'; choose one"):
        EstateStack(App(outdir=tmp_path), estate)
    postgres = attrs.evolve(postgres, managed=None)
    bare = _managed("staging", SPECS["vultr"])
    bare = attrs.evolve(bare, env=attrs.evolve(bare.env, postgres=postgres))
    with pytest.raises(ConstructError, match=r"managed .provider, region, plan. is not set"):
        EstateStack(App(outdir=tmp_path), bare)


def test_services_get_the_managed_host_as_pghost() -> None:
    estate = _managed("staging", SPECS["vultr"])
    observed = {"pg_primary_private_ip": {"sensitive": False, "type": "string",
                                          "value": "vultr-prod-db.example"}}
    estate = attrs.evolve(estate, env=attrs.evolve(estate.env, observed=observed))
    node = compose_estate(estate)["staging-1"]
    assert node["env"]["api"]["PGHOST"] == "vultr-prod-db.example"
    assert node["postgres"] is False


# -- roles and grants on a managed database, as its (non-superuser) admin ---------------------

ADMIN_HBA = ("local all postgres trust\nhost all postgres 127.0.0.1/32 trust\n"
             "host all all 127.0.0.1/32 scram-sha-256\n")


def test_pg_bootstrap_as_a_managed_admin(project_cwd: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A real PostgreSQL (the nodes' major) whose admin is not a superuser (CREATEDB
    CREATEROLE, like the providers' admin roles): the bootstrap applies from `tofu output
    -json`, twice."""
    import io
    import subprocess

    from edgekit.cli import main
    from tests.pg_server import pg_bin, throwaway_postgres

    api_pw, web_pw = "ApiPassword0123456789abcdefXYZ01", "WebPassword0123456789abcdefXYZ02"
    with throwaway_postgres("edgekit-managed-", hba=ADMIN_HBA) as pg:
        created = pg.psql("-c", "CREATE ROLE vultradmin LOGIN CREATEDB CREATEROLE "
                          "PASSWORD 'admin-secret-0123456789'")
        assert created.returncode == 0, created.stderr
        url = f"postgresql://vultradmin:admin-secret-0123456789@127.0.0.1:{pg.port}/postgres"
        outputs = {"pg_admin_url": {"sensitive": True, "type": "string", "value": url},
                   "pg_password_svc_api_rw": {"sensitive": True, "value": api_pw},
                   "pg_password_svc_web_ro": {"sensitive": True, "value": web_pw}}
        for _ in range(2):  # idempotent
            monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(outputs)))
            assert main(["pg", "bootstrap", "--stack", "prod"]) == 0
            err = capsys.readouterr().err
            assert "applied as 'vultradmin'" in err and "admin-secret" not in err

        def psql(user: str, password: str, db: str, sql: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(pg_bin() / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                 "-p", str(pg.port), "-U", user, "-d", db, "-c", sql],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "PGPASSWORD": password})

        owner = psql("vultradmin", "admin-secret-0123456789", "api",
                     "SET ROLE api_owner; CREATE TABLE app.items (id int); RESET ROLE;")
        assert owner.returncode == 0, owner.stderr
        rw = psql("svc_api_rw", api_pw, "api", "INSERT INTO items VALUES (1); "
                  "SELECT count(*) FROM items")
        assert rw.returncode == 0 and rw.stdout.strip().endswith("1"), rw.stderr
        assert psql("svc_web_ro", web_pw, "api", "SELECT 1").returncode != 0  # no CONNECT
        ro = psql("svc_web_ro", web_pw, "web", "CREATE TABLE app.x (id int)")
        assert ro.returncode != 0


def test_pg_bootstrap_needs_the_outputs(project_cwd: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from edgekit.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("{}"))
    assert main(["pg", "bootstrap", "--stack", "prod"]) == 1
    assert "pg_admin_url" in capsys.readouterr().err
