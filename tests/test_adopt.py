"""`adopt(construct, {path: id})`: import ids reach the resources of any L2 construct
(by path below it or by address) and synth writes OpenTofu `import` blocks for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgekit import (
    App,
    CloudflareSide,
    ConstructError,
    DeploySpec,
    Env,
    LocalState,
    PgSpec,
    Resource,
    Service,
    Stack,
    Tunnel,
    VpsNode,
)
from edgekit.constructs.base import adopt

ENV = Env(name="prod", deploy=DeploySpec(repository="github:me/estate", ref="deploy/prod"),
          cloudflare=CloudflareSide(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
                                    state_bucket="state", logs_bucket="logs"),
          placement={"edge-1": ("api",)}, postgres=PgSpec())


def build(tmp_path: Path) -> tuple[App, VpsNode, Tunnel]:
    app = App(outdir=tmp_path / "out")
    stack = Stack(app, "prod", state=LocalState())
    node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small")
    tunnel = Tunnel(stack, "tunnel", env=ENV, nodes=[node],
                    services={"api": Service(name="api", port=8080)})
    return app, node, tunnel


def imports(app: App) -> list[dict[str, Any]]:
    app.synth()
    doc = json.loads((app.outdir / "stacks/prod/cdk.tf.json").read_text())
    found: list[dict[str, Any]] = doc.get("import", [])
    return found


def test_vps_node_and_tunnel_resources_are_adopted_with_import_blocks(tmp_path: Path) -> None:
    app, node, tunnel = build(tmp_path)
    adopt(node, {"": "4711", "firewall": "815"})
    adopt(tunnel, {"": "f0e4c2f7-6d3b-4e0a-9a3e-000000000001",
                   "cloudflare_dns_record.tunnel_dns_api": f"{'1' * 32}/{'a' * 32}"})
    assert imports(app) == [
        {"id": f"{'1' * 32}/{'a' * 32}", "to": "cloudflare_dns_record.tunnel_dns_api"},
        {"id": "f0e4c2f7-6d3b-4e0a-9a3e-000000000001",
         "to": "cloudflare_zero_trust_tunnel_cloudflared.tunnel"},
        {"id": "815", "to": "hcloud_firewall.edge_1_firewall"},
        {"id": "4711", "to": "hcloud_server.edge_1"},
    ]


def test_full_paths_work_and_nothing_is_adopted_without_a_call(tmp_path: Path) -> None:
    app, node, _ = build(tmp_path)
    assert imports(app) == []
    app, node, _ = build(tmp_path / "again")
    adopt(node, {"firewall/Resource": "815"})
    assert imports(app) == [{"id": "815", "to": "hcloud_firewall.edge_1_firewall"}]


def test_unknown_path_data_source_bad_id_and_conflict_are_refused(tmp_path: Path) -> None:
    _, node, tunnel = build(tmp_path)
    with pytest.raises(ConstructError) as err:
        adopt(node, {"server": "1", "": "2"})
    assert str(err.value) == (
        "[prod/edge-1] adopt: no resource 'server' below it; its resources: "
        "firewall/Resource (hcloud_firewall.edge_1_firewall), Resource (hcloud_server.edge_1)")
    with pytest.raises(ConstructError, match=r"^\[prod/tunnel/token\] \(data\.cloudflare_zero"
                       r"_trust_tunnel_cloudflared_token\.tunnel_token\) a data source cannot"):
        adopt(tunnel, {"token": "x"})
    with pytest.raises(ConstructError, match=r"the import id must be a non-empty string, got "
                       r"'' @ import_ids\['firewall'\]"):
        adopt(node, {"firewall": ""})
    adopt(node, {"": "4711"})
    with pytest.raises(ConstructError, match=r"already imports '4711'; cannot also import "
                       r"'9'"):
        adopt(node, {"firewall": "815", "": "9"})
    # checked before anything is set: the firewall was not half adopted
    firewall = next(c for c in node.node.walk() if isinstance(c, Resource)
                    and c.address == "hcloud_firewall.edge_1_firewall")
    assert firewall.import_id is None
