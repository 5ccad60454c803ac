"""Every assertion the constructs add to the generated `tofu test` can fail.

Each case breaks the synthesized prod JSON by hand, the way a careless edit or a bad
construct would, and runs the real `tofu test` with the real providers: the run must fail
and name the broken promise (``[name] construct path``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stacks import make_app
from tests.conftest import Tofu

Doc = dict[str, Any]


def world_open_hetzner(doc: Doc) -> None:
    doc["resource"]["hcloud_firewall"]["nodes_edge_1_firewall"]["rule"][0]["source_ips"] \
        .append("0.0.0.0/0")


def world_open_linode(doc: Doc) -> None:
    doc["resource"]["linode_firewall"]["nodes_edge_tokyo_firewall"]["inbound"][0]["ipv6"] = \
        ["::/0"]


def world_open_vultr(doc: Doc) -> None:
    rule = doc["resource"]["vultr_firewall_rule"]["nodes_pg_tokyo_firewall_rule_0_0"]
    rule.update(subnet="0.0.0.0", subnet_size=0)


def postgres_reachable_from_outside(doc: Doc) -> None:
    rule = doc["resource"]["vultr_firewall_rule"]["nodes_pg_tokyo_firewall_rule_0_0"]
    rule.update(port="5432", subnet="203.0.113.0", subnet_size=24)


def tunnel_without_catch_all(doc: Doc) -> None:
    config = doc["resource"]["cloudflare_zero_trust_tunnel_cloudflared_config"]
    config["edge_tunnel_edge_2_config"]["config"]["ingress"].pop()


def dns_not_proxied(doc: Doc) -> None:
    doc["resource"]["cloudflare_dns_record"]["edge_tunnel_edge_1_dns_web"]["proxied"] = False


def origin_outside_access(doc: Doc) -> None:
    app = doc["resource"]["cloudflare_zero_trust_access_application"]["edge_tunnel_access"]
    app["destinations"] = [d for d in app["destinations"]
                           if d["uri"] != "web-edge-2-origin.edgekit.example"]


def origin_access_lets_anyone_in(doc: Doc) -> None:
    policy = doc["resource"]["cloudflare_zero_trust_access_policy"]["edge_tunnel_access_policy"]
    policy.update(decision="allow", include=[{"everyone": {}}])
def mesh_open_hetzner(doc: Doc) -> None:
    doc["resource"]["hcloud_firewall"]["nodes_mesh_edge_1_firewall"]["rule"][0]["source_ips"] \
        .append("198.51.100.0/24")


def mesh_open_linode(doc: Doc) -> None:
    inbound = doc["resource"]["linode_firewall"]["nodes_edge_tokyo_firewall"]["inbound"]
    mesh = next(r for r in inbound if r["label"] == "wireguard-mesh")
    mesh["ipv4"].append("198.51.100.7/32")


def mesh_port_moved_vultr(doc: Doc) -> None:
    doc["resource"]["vultr_firewall_rule"]["nodes_mesh_pg_tokyo_rule_1"]["port"] = "5432"


CASES: list[tuple[Callable[[Doc], None], list[str]]] = [
    (world_open_hetzner, ["[firewall-closed] prod/nodes/edge-1/firewall"]),
    (world_open_linode, ["[firewall-closed] prod/nodes/edge-tokyo/firewall"]),
    # The Vultr node is the Postgres node: a world-open rule breaks both promises.
    (world_open_vultr, ["[firewall-closed] prod/nodes/pg-tokyo/firewall",
                        "[postgres-not-public] prod/nodes/pg-tokyo/firewall"]),
    (postgres_reachable_from_outside, ["[postgres-not-public] prod/nodes/pg-tokyo/firewall"]),
    (tunnel_without_catch_all, ["[tunnel-catch-all] prod/edge/tunnel/edge-2/config"]),
    (dns_not_proxied, ["[dns-proxied] prod/edge/tunnel/edge-1/dns-web"]),
    (origin_outside_access, ["[origins-behind-access] prod/edge/tunnel/access"]),
    (origin_access_lets_anyone_in, ["[origins-behind-access] prod/edge/tunnel/access"]),
    # ADR 0010: the mesh port is the one exception, open to the other nodes only.
    (mesh_open_hetzner, ["[mesh-peers-only] prod/nodes/mesh/edge-1-firewall"]),
    (mesh_open_linode, ["[mesh-peers-only] prod/nodes/edge-tokyo/firewall"]),
    (mesh_port_moved_vultr, ["[mesh-peers-only] prod/nodes/mesh/pg-tokyo-rule-0"]),
]


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cdktf.out"
    make_app(outdir=out).synth(["prod"])
    return out / "stacks" / "prod"


def test_every_assertion_name_has_a_breaking_case(prod: Path) -> None:
    """A new kind of assertion must get a case here."""
    test_file = json.loads((prod / "edgekit.tftest.json").read_text())
    names = {a["error_message"].split("]")[0] + "]"
             for a in test_file["run"]["step_2_apply"]["assert"]}
    assert names == {e.split(" ")[0] for _, expected in CASES for e in expected}


@pytest.mark.tools
@pytest.mark.parametrize("break_it, expected", CASES, ids=[c[0].__name__ for c in CASES])
def test_tofu_test_reports_the_broken_promise_by_name(
    break_it: Callable[[Doc], None], expected: list[str], prod: Path, tofu: Tofu,
    stack_dir_copy: Callable[[Path], Path],
) -> None:
    folder = stack_dir_copy(prod)
    path = folder / "cdk.tf.json"
    document = json.loads(path.read_text())
    break_it(document)
    path.write_text(json.dumps(document))
    assert tofu.init(folder).returncode == 0
    test = tofu(folder, "test")
    output = test.stdout + test.stderr
    assert test.returncode != 0, output
    assert "Test assertion failed" in output, output
    for promise in expected:
        assert promise in output, output
    failed = {line.strip().split(":")[0] for line in output.splitlines()
              if line.strip().startswith("[") and "] prod/" in line}
    assert failed == {e for e in expected}, output
