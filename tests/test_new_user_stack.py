"""A stack written the way a new user would, from README.md and the docstrings of the
public API alone: only ``from edgekit import ...``, no internal module, no copied wiring,
no ``attrs.evolve``. It synthesizes, and the real ``tofu validate`` and ``tofu test``
accept what it wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit import (
    App,
    CloudflareZone,
    EdgeWorker,
    Firewall,
    GluedFlake,
    LocalState,
    Needs,
    PgPrimary,
    PrivateNetwork,
    R2LogSink,
    Service,
    Stack,
    Tunnel,
    VpsNode,
)
from tests.conftest import Tofu

ACCOUNT = "0123456789abcdef0123456789abcdef"
ZONE_ID = "fedcba9876543210fedcba9876543210"


class Shop(Stack):
    """Two Hetzner web nodes running the shop behind Cloudflare Tunnel (weighted 3:1), its
    Postgres on a third node in the same private network, logs in R2, the edge Worker on
    the shop's hostname, and the shop's glued flake checked against where it runs."""

    def __init__(self, scope: App, id: str, *, root: Path, worker_script: Path) -> None:
        super().__init__(scope, id, state=LocalState())
        # Each construct declares its provider (and token variable) once per stack; a node
        # with roles pulls its configuration from the deploy ref of this repository.
        repository, ref = "github:me/shop", f"deploy/{id}"
        shop = Service(name="shop", port=8080, hostnames=("shop.example.com",),
                       needs=Needs(postgres="rw"))
        services = {"shop": shop}
        placement = {"web-1": ["shop"], "web-2": ["shop"]}
        zone = CloudflareZone(account_id=ACCOUNT, zone_id=ZONE_ID, zone="example.com",
                              environment=id)

        net = PrivateNetwork(self, "net", provider="hetzner", region="nbg1")
        web = [VpsNode(self, name, provider="hetzner", region="nbg1", size="small",
                       roles=["edge"], networks=[net], repository=repository, ref=ref)
               for name in placement]
        db_firewall = Firewall(self, "db-firewall", provider="hetzner",
                               admin_ssh_cidrs=["203.0.113.7/32"],
                               private_cidrs=[net.cidr], private_ports=[5432])
        db = VpsNode(self, "db", provider="hetzner", region="nbg1", size="medium",
                     roles=["postgres"], networks=[net], firewall=db_firewall,
                     repository=repository, ref=ref)
        self.postgres = PgPrimary(self, "postgres", node=db, services=services)
        self.flake = GluedFlake(self, "flake-shop", path="services/shop", root=root,
                                services=services, placement=placement)
        self.tunnel = Tunnel(self, "tunnel", zone=zone, services=services, nodes=web,
                             placement=placement, strategy="per_node",
                             weights={"web-1": 3, "web-2": 1})
        R2LogSink(self, "logs", account_id=ACCOUNT, bucket="shop-logs", nodes=[*web, db])
        EdgeWorker(self, "worker", zone=zone, services=services, script=worker_script,
                   tunnel=self.tunnel)


@pytest.fixture
def shop(tmp_path: Path) -> tuple[App, Shop]:
    flake = tmp_path / "services/shop/flake.nix"
    flake.parent.mkdir(parents=True)
    flake.write_text("{ outputs = { self }: { }; }\n")
    script = tmp_path / "worker.js"
    script.write_text("export default { fetch() { return new Response('hi'); } };\n")
    app = App(outdir=tmp_path / "cdktf.out")  # provider schema checks on
    return app, Shop(app, "shop", root=tmp_path, worker_script=script)


def test_a_stack_from_the_readme_and_docstrings_synthesizes(shop: tuple[App, Shop]) -> None:
    app, stack = shop
    report = app.synth()
    document = json.loads((app.outdir / "stacks/shop/cdk.tf.json").read_text())
    resources = document["resource"]
    assert sorted(resources["hcloud_server"]) == ["db", "web_1", "web_2"]
    assert list(resources["hcloud_firewall"]) == ["db_firewall", "web_1_firewall",
                                                  "web_2_firewall"]
    assert len(resources["cloudflare_zero_trust_tunnel_cloudflared"]) == 2
    pool = next(iter(resources["cloudflare_load_balancer_pool"].values()))
    assert [o["weight"] for o in pool["origins"]] == [0.75, 0.25]
    worker = resources["cloudflare_workers_script"]["worker"]
    routes = next(b for b in worker["bindings"] if b["name"] == "ROUTES")
    assert json.loads(routes["text"]) == {"shop.example.com": {
        "service": "shop", "cache_paths": [], "cache_ttl_seconds": 0}}
    origins = next(b for b in worker["bindings"] if b["name"] == "ORIGINS")
    assert [o["node"] for o in json.loads(origins["text"])["shop"]] == ["web-1", "web-2"]
    access = {b["name"]: b["type"] for b in worker["bindings"]
              if b["name"].startswith("ORIGIN_ACCESS")}
    assert access == {"ORIGIN_ACCESS_CLIENT_ID": "plain_text",
                      "ORIGIN_ACCESS_CLIENT_SECRET": "secret_text"}
    assert list(resources["cloudflare_r2_bucket"]) == ["logs_bucket"]
    assert stack.flake.nodes == ["web-1", "web-2"]
    assert sorted(stack.postgres.passwords) == ["shop"]
    assert report.resources == sum(len(r) for r in resources.values())
    assert document["provider"]["cloudflare"] == [
        {"api_token": "${var.cloudflare_api_token}"}]
    assert document["variable"]["cloudflare_api_token"]["sensitive"] is True
    assert document["provider"]["hcloud"] == [{"token": "${var.hcloud_token}"}]


@pytest.mark.tools
def test_the_new_users_stack_passes_real_tofu_validate_and_test(
    shop: tuple[App, Shop], tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    app, _ = shop
    app.synth()
    folder = stack_dir_copy(app.outdir / "stacks/shop")
    init = tofu.init(folder)
    assert init.returncode == 0, init.stderr
    validate = tofu(folder, "validate", "-json")
    report = json.loads(validate.stdout)
    assert report["valid"] is True, report["diagnostics"]
    assert report["warning_count"] == 0, report["diagnostics"]
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr
