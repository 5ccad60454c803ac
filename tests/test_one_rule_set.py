"""One rule set (issue 23): a stack on four clouds written from the public API alone
(`tests/four_cloud_shop.py`) gets, at synth, the same check rules as the CUE estate, with the
same EK ids and located messages, every problem at once.

Each fault is one change to the shop; the CUE side makes the same fault in the reference
estate (`cue/export/prod.json`) and runs what `edgekit synth` runs on it: the rules over
the CUE estate first (`preflight`), then the stacks built from it (`EstateStack`). A fault
CUE cannot express (the L3 wiring decides it) is made in the constructs built from the
estate instead, or, where even that cannot be, the test says so and shows the estate
passes the rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit import (
    App,
    CloudflareZone,
    LocalState,
    PrivateNetwork,
    Service,
    Stack,
    SynthError,
    Tunnel,
    VpsNode,
)
from edgekit.check.engine import Context, run
from edgekit.check.rules import catalogue
from edgekit.cue.layout import layout_of_estate
from edgekit.cue.model import Estate
from edgekit.project import preflight_findings
from tests.conftest import ROOT
from tests.four_cloud_shop import Shop, shop_root

Found = tuple[str, str, str, str]
"""(rule, construct path or stack, address, pointer) of a finding, and its message."""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return shop_root(tmp_path)


def python_findings(root: Path, fault: str, *, stacks: tuple[str, ...] = ("shop",),
                    ) -> list[Found]:
    app = App(outdir=root / "cdktf.out")
    for name in stacks:
        Shop(app, name, root=root, fault=fault)
    return synth_findings(app)


def synth_findings(app: App) -> list[Found]:
    """(rule, path, address, "pointer message") of every problem a synth reports."""
    try:
        app.synth_results()
    except SynthError as err:
        return [(p.message.split(" ", 1)[0], p.path, p.address,
                 p.pointer + " " + p.message.split(" ", 1)[1].rsplit(" (fix: ", 1)[0])
                for p in err.problems]
    return []


def cue_findings(estate: Estate, tmp_path: Path, *, tree: bool = True,
                 change: Callable[[App], None] | None = None) -> list[Found]:
    """What a synth of the CUE estate reports: the rules over CUE first (nothing is built
    while they find an error), then the stacks built from it (`tree`)."""
    from stacks.estate import EstateStack

    early = [f for f in run(Context(layouts=(layout_of_estate(estate),)), catalogue())
             if f.severity == "error"]
    if early or not tree:
        return [(f.rule, f.path, f.address, f"{f.pointer} {f.message}") for f in early]
    app = App(outdir=tmp_path / "cdktf.out")
    EstateStack(app, estate)
    if change is not None:
        change(app)
    return synth_findings(app)


@pytest.fixture(scope="module")
def prod() -> Estate:
    return Estate.load(ROOT, "prod", check_fresh=False)


def evolve(estate: Estate, *, services: dict[str, Service] | None = None,
           **env: Any) -> Estate:
    return attrs.evolve(estate, env=attrs.evolve(estate.env, **env),
                        services=services if services is not None else estate.services)


def only(found: list[Found], rule: str) -> list[Found]:
    assert {f[0] for f in found} == {rule}, found
    return found


# -- the stack itself ----------------------------------------------------------------------

def test_the_four_cloud_stack_is_clean(root: Path) -> None:
    assert python_findings(root, "") == []


def test_every_resource_an_adapter_makes_is_one_it_describes(root: Path) -> None:
    app = App(outdir=root / "cdktf.out")
    Shop(app, "shop", root=root)
    app.synth_results()
    assert [f for f in app.rule_findings if f.rule == "EK190"] == []


def test_every_problem_is_reported_at_once(root: Path) -> None:
    app = App(outdir=root / "cdktf.out")
    for name, fault in (("shop", "twice"), ("blog", "weights-replicas")):
        Shop(app, name, root=root, fault=fault)
    with pytest.raises(SynthError) as raised:
        app.synth_results()
    rules = {(p.path.split("/")[0], p.message.split(" ")[0]) for p in raised.value.problems}
    # each stack's own fault, and the provider names both stacks claim (one Hetzner project)
    assert rules == {("blog", "EK187"), ("shop", "EK122"), ("blog", "EK142"),
                     ("shop", "EK142")}


# -- one test per fault, both paths ---------------------------------------------------------

def test_overlapping_networks_of_one_cloud(root: Path, prod: Estate, tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "overlap"), "EK189")
    assert found[1:3] == ("shop/net-extra", "")
    assert "$.cidr private network shop/net-extra (10.1.128.0/17) overlaps shop/net-hetzner " \
        "(10.1.0.0/16), another hetzner network of the stack" in found[3]

    def overlap(app: App) -> None:  # CUE gives no ranges: L3 does; a network added to it
        PrivateNetwork(app.stacks[0], "net-extra", provider="hetzner", region="fsn1",
                       cidr="10.0.128.0/17")
    (cue,) = only(cue_findings(prod, tmp_path, change=overlap), "EK189")
    assert "overlaps prod/nodes/net-hetzner (10.0.0.0/16), another hetzner network" in cue[3]


def test_a_service_on_the_postgres_port_of_the_postgres_node(root: Path, prod: Estate,
                                                            tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "pg-port"), "EK121")
    assert found[1:3] == ("shop/flake-admin", "")
    assert found[3].startswith("$.placement.db[0] service 'admin' listens on port 5432 on "
                               "node 'db', already used by Postgres")
    api = attrs.evolve(prod.services["api"], port=5432)
    estate = evolve(prod, services={**prod.services, "api": api},
                    placement={**prod.env.placement, "pg-tokyo": ("api",)})
    cue = only(cue_findings(estate, tmp_path), "EK121")
    assert [f[1:] for f in cue] == [("prod", "cue/export/prod.json",
                                     "$.env.placement.pg-tokyo[0] service 'api' listens on "
                                     "port 5432 on node 'pg-tokyo', already used by Postgres "
                                     "(the node has the postgres role)")]


def test_the_same_service_twice_on_a_node(root: Path, prod: Estate, tmp_path: Path) -> None:
    found = only(python_findings(root, "twice"), "EK122")
    assert found[0][1:] == ("shop/flake-blog", "", "$.placement.web-1[2] service 'shop' is "
                            "placed twice on node 'web-1'")
    estate = evolve(prod, placement={**prod.env.placement,
                                     "edge-1": ("api", "web", "api")})
    (cue,) = only(cue_findings(estate, tmp_path), "EK122")
    assert cue[1:] == ("prod", "cue/export/prod.json", "$.env.placement.edge-1[2] service "
                       "'api' is placed twice on node 'edge-1'")


def test_placement_naming_an_unknown_node(root: Path, prod: Estate, tmp_path: Path) -> None:
    found = only(python_findings(root, "unknown-node"), "EK123")
    assert found[0][1:] == ("shop/flake-blog", "", "$.placement.web-9 placement names node "
                            "'web-9', which is not a node of environment 'shop' (nodes: db, "
                            "web-1, web-2, web-3)")
    estate = evolve(prod, placement={**prod.env.placement, "edge-9": ("api",)})
    (cue,) = only(cue_findings(estate, tmp_path), "EK123")
    assert cue[1:3] == ("prod", "cue/export/prod.json")
    assert cue[3].startswith("$.env.placement.edge-9 placement names node 'edge-9', which "
                             "is not a node of environment 'prod'")


def test_no_private_path_to_postgres(root: Path, prod: Estate, tmp_path: Path) -> None:
    found = only(python_findings(root, "no-path"), "EK181")
    assert {f[3].split(" ", 1)[0] for f in found} == {
        f"$.placement.web-{i}[{j}]" for i in (1, 2, 3) for j in (0, 1)}
    assert any("service 'shop' on node 'web-2' needs Postgres (rw) but has no private path "
               "to the primary 'db': web-2 and db not in the mesh, and web-2 (linode "
               "sg-sin-2) shares no private network with db (digitalocean sgp1)" in f[3]
               for f in found)
    nodes = {**prod.env.nodes, "edge-tokyo": attrs.evolve(prod.env.nodes["edge-tokyo"],
                                                          mesh_host=None)}
    cue = only(cue_findings(evolve(prod, nodes=nodes), tmp_path), "EK181")
    assert [f[3].split(" ", 1)[0] for f in cue] == ["$.env.placement.edge-tokyo[0]",
                                                    "$.env.placement.edge-tokyo[1]"]
    assert all(f[1:3] == ("prod", "cue/export/prod.json") for f in cue)


def test_a_node_in_two_tunnels(root: Path, prod: Estate, tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "two-tunnels"), "EK182")
    assert found[1:] == ("shop/tunnel-b", "", "$.nodes[0] node 'web-1' is in this tunnel and "
                         "in shop/tunnel: a node holds one tunnel token (only the last "
                         "tunnel's would reach it), so one of the tunnels would have no "
                         "connector there")

    def second_tunnel(app: App) -> None:  # L3 makes one tunnel; a second one given a node
        stack = app.stacks[0]
        node = stack.node.find_child("nodes").node.find_child("edge-1")
        assert isinstance(node, VpsNode)
        Tunnel(stack, "tunnel-b", zone=prod.env.zone, services={"api": prod.services["api"]},
               nodes=[node], placement={"edge-1": ["api"]})
    (cue,) = only(cue_findings(prod, tmp_path, change=second_tunnel), "EK182")
    assert cue[1:3] == ("prod/tunnel-b", "")
    assert "node 'edge-1' is in this tunnel and in prod/edge/tunnel" in cue[3]


def test_a_worker_in_front_of_two_tunnels(root: Path, prod: Estate, tmp_path: Path) -> None:
    found = only(python_findings(root, "worker-two-tunnels"), "EK183")
    assert [f[3].split(" ", 1)[0] for f in found] == ["$.origins.blog", "$.origins.shop"]
    assert all(f[1] == "shop/worker" for f in found)
    assert "the Worker sends 'shop' to shop-web-3-origin.example.com, behind tunnel " \
        "shop/tunnel-b, but holds the Access token of another tunnel" in found[1][3]
    # CUE cannot say it: the estate's Worker is given its environment's one tunnel (L3)
    assert cue_findings(prod, tmp_path) == []


def test_service_env_given_to_constructs_that_ignore_it(root: Path, prod: Estate,
                                                       tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "env"), "EK184")
    assert found[1:3] == ("shop/postgres", "")
    assert found[3].startswith("$.services.shop.env service 'shop' sets env (MODE), which "
                               "no construct it was given to delivers to its process")
    # the CUE estate delivers env (LOG_LEVEL) through the generated edgekit.json
    assert prod.services["api"].env and cue_findings(prod, tmp_path) == []


def test_a_worker_route_no_tunnel_serves(root: Path, prod: Estate, tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "route-no-origin"), "EK185")
    assert found[1:] == ("shop/worker", "", "$.routes.blog the Worker routes blog.example.com "
                         "to service 'blog', which no tunnel serves (no origin): every "
                         "request there gets an error")
    placement = {n: tuple(s for s in names if s != "web")
                 for n, names in prod.env.placement.items()}
    (cue,) = only(cue_findings(evolve(prod, placement=placement), tmp_path), "EK185")
    assert cue[1:3] == ("prod", "cue/export/prod.json")
    assert "to service 'web', which no tunnel serves (no origin)" in cue[3]


def test_a_worker_without_origins(root: Path, prod: Estate, tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "no-origins"), "EK186")
    assert found[1] == "shop/worker"
    assert "takes 2 hostname(s) (blog.example.com, shop.example.com) as custom domains but " \
        "has no origin to send any request to" in found[3]
    no_weights = attrs.evolve(prod.env.tunnel, weights={})
    cue = cue_findings(evolve(prod, placement={}, tunnel=no_weights), tmp_path)
    assert {f[0] for f in cue} == {"EK186"}, cue
    assert cue[0][1:3] == ("prod", "cue/export/prod.json")


def test_a_tunnel_placement_naming_a_node_it_was_not_given(root: Path, prod: Estate,
                                                           tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "tunnel-foreign-node"), "EK180")
    assert found[1:] == ("shop/tunnel", "", "$.placement.web-3 the tunnel's placement puts "
                         "shop, blog on node 'web-3', which the tunnel was not given (its "
                         "nodes: web-1, web-2): nothing would serve them there")
    # CUE cannot say it: L3 gives the tunnel every node that runs a service; a weight for
    # another node is EK125 on both paths
    tunnel = attrs.evolve(prod.env.tunnel, weights={**prod.env.tunnel.weights, "pg-tokyo": 5})
    (cue,) = only(cue_findings(evolve(prod, tunnel=tunnel), tmp_path), "EK125")
    assert cue[3].startswith("$.env.tunnel.weights.pg-tokyo tunnel weight for node "
                             "'pg-tokyo', which runs no service behind this tunnel")


def test_weights_with_the_replicas_strategy(root: Path, prod: Estate, tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "weights-replicas"), "EK187")
    assert found[1:] == ("shop/tunnel", "", "$.weights weights (web-1: 3, web-2: 1, web-3: 1) "
                         "with the replicas strategy, which has no weights: they would be "
                         "silently ignored")
    tunnel = attrs.evolve(prod.env.tunnel, strategy="replicas")
    (cue,) = only(cue_findings(evolve(prod, tunnel=tunnel), tmp_path), "EK187")
    assert cue[1:] == ("prod", "cue/export/prod.json", "$.env.tunnel.weights weights "
                       "(edge-1: 40, edge-2: 40, edge-tokyo: 20) with the replicas strategy, "
                       "which has no weights: they would be silently ignored")


def test_a_postgres_firewall_wider_than_its_network(root: Path, tmp_path: Path) -> None:
    (found,) = only(python_findings(root, "pg-firewall"), "EK188")
    assert found[1:3] == ("shop/db-firewall/Resource", "digitalocean_firewall.db_firewall")
    assert found[3] == ("$.inbound_rule[0].source_addresses the firewall of the Postgres "
                        "node 'db' admits 10.0.0.0/8 (port 5432), wider than its private "
                        "networks (10.0.0.0/16)")
    staging = Estate.load(ROOT, "staging", check_fresh=False)

    def widen(app: App) -> None:  # CUE gives no ranges: L3 does; the JSON overridden
        firewall = app.stacks[0].node.find_child("nodes").node.find_child("staging-1")
        resource = firewall.node.find_child("firewall").node.find_child("Resource")
        resource.override("rule.0.source_ips", ["10.0.0.0/8"])  # type: ignore[attr-defined]
    (cue,) = only(cue_findings(staging, tmp_path, change=widen), "EK188")
    assert cue[1:3] == ("staging/nodes/staging-1/firewall/Resource",
                        "hcloud_firewall.nodes_staging_1_firewall")
    assert "admits 10.0.0.0/8 (port 1-65535), wider than its private networks " \
        "(10.0.0.0/16)" in cue[3]


def test_provider_names_that_collide_between_environments(root: Path, prod: Estate,
                                                         tmp_path: Path) -> None:
    found = only(python_findings(root, "", stacks=("shop", "shop2")), "EK142")
    assert ("EK142", "shop/web-1/Resource", "hcloud_server.web_1",
            "$.name hcloud_server name 'web-1' (from shop/web-1/Resource) is also the name of "
            "shop2/web-1/Resource (shop2:hcloud_server.web_1); names are unique per Hetzner "
            "project") in found
    staging = Estate.load(ROOT, "staging", check_fresh=False)
    renamed = evolve(staging, nodes={"edge-1": attrs.evolve(staging.env.nodes["staging-1"],
                                                            name="edge-1")},
                     placement={"edge-1": staging.env.placement["staging-1"]})
    from stacks.estate import EstateStack

    app = App(outdir=tmp_path / "cdktf.out")
    EstateStack(app, prod)
    EstateStack(app, renamed)
    with pytest.raises(SynthError) as raised:
        app.synth_results()
    assert any(p.address == "hcloud_server.nodes_edge_1" and "EK142 hcloud_server name "
               "'edge-1'" in p.message and "names are unique per Hetzner project" in p.message
               and p.message.endswith("(fix: rename one of the constructs in cue/envs.cue "
                                      "(ids become provider names))")
               for p in raised.value.problems)


def test_provider_names_too_long_for_the_cloud(root: Path, prod: Estate,
                                              tmp_path: Path) -> None:
    long = "web-" + "x" * 46
    app = App(outdir=root / "cdktf.out")
    stack = Stack(app, "shop", state=LocalState())
    VpsNode(stack, long, provider="linode", region="singapore", size="small")
    with pytest.raises(SynthError) as raised:
        app.synth_results()
    instance, firewall = raised.value.problems  # the node's own firewall's label too
    assert instance.message.startswith(f"EK141 linode_instance label 'shop-{long}' is 55 "
                                       "characters; expected 3-50")
    assert "linode/instance/schema_resource.go" in instance.message  # the rule, its source
    assert instance.message.endswith("(fix: choose a shorter id or one with the allowed "
                                     "characters in tests/test_one_rule_set.py; edgekit "
                                     "never rewrites names silently)")
    assert firewall.message.startswith(f"EK141 linode_firewall label 'shop-{long}-firewall' "
                                       "is 64 characters; expected 3-32")
    name = "edge-tokyo-" + "x" * 40
    nodes = {**{n: s for n, s in prod.env.nodes.items() if n != "edge-tokyo"},
             name: attrs.evolve(prod.env.nodes["edge-tokyo"], name=name)}
    placement = {**{n: p for n, p in prod.env.placement.items() if n != "edge-tokyo"},
                 name: prod.env.placement["edge-tokyo"]}
    weights = {(name if n == "edge-tokyo" else n): w for n, w in prod.env.tunnel.weights.items()}
    estate = evolve(prod, nodes=nodes, placement=placement,
                    tunnel=attrs.evolve(prod.env.tunnel, weights=weights))
    cue = only(cue_findings(estate, tmp_path), "EK141")
    assert any(f"label 'prod-nodes-{name}' is 62 characters; expected 3-50" in f[3]
               for f in cue)


# -- what the findings say --------------------------------------------------------------------

def test_fix_hints_name_the_file_the_user_edits(root: Path, prod: Estate) -> None:
    app = App(outdir=root / "cdktf.out")
    Shop(app, "shop", root=root, fault="twice")
    with pytest.raises(SynthError) as raised:
        app.synth_results()
    (problem,) = raised.value.problems
    assert problem.message.endswith("(fix: remove the repeated name from the node's "
                                    "placement list in tests/four_cloud_shop.py)")
    estate = evolve(prod, placement={**prod.env.placement,
                                     "edge-1": ("api", "web", "api")})
    (cue,) = [f for f in run(Context(layouts=(layout_of_estate(estate),)), catalogue())
              if f.rule == "EK122"]
    assert cue.fix == "remove the repeated name from the node's placement list in cue/envs.cue"
    assert "cue/envs.cue" not in problem.message


def test_no_fix_hint_hard_codes_a_cue_file() -> None:
    """A hint names ``{file}``/``{services_file}``, which the finding fills with the file
    that built its stack; "cue/envs.cue" told a Python user to edit a file they do not
    have (EK126, EK131, EK201, EK202, EK222, ...)."""
    hard = [(r.id, r.fix) for r in catalogue()
            if "cue/envs.cue" in r.fix or "cue/services.cue" in r.fix]
    assert hard == []


def fixes_of(app: App, rule: str) -> list[str]:
    with pytest.raises(SynthError) as raised:
        app.synth_results()
    return [p.message.rsplit(" (fix: ", 1)[1] for p in raised.value.problems
            if p.message.startswith(f"{rule} ")]


def test_a_finding_on_a_stacks_documents_names_the_file_that_built_it(
        prod: Estate, tmp_path: Path) -> None:
    """EK126 judges the synthesized tunnel config, not a layout: its hint named
    cue/envs.cue for a Python stack too."""
    app = App(outdir=tmp_path / "py.out")
    stack = Stack(app, "shop", state=LocalState())
    node = VpsNode(stack, "web-1", provider="hetzner", region="nbg1", size="small")
    Tunnel(stack, "tunnel", zone=CloudflareZone(
        account_id="0" * 32, zone_id="f" * 32, zone="example.com", environment="shop"),
        services={"shop": Service(name="shop", port=8080, hostnames=("shop.example.com",))},
        nodes=[node], placement={})
    (python,) = fixes_of(app, "EK126")
    assert python == ("place at least one service on the tunnel's node(s) in "
                      "tests/test_one_rule_set.py, or drop the tunnel)")
    from stacks.estate import EstateStack

    cue_app = App(outdir=tmp_path / "cue.out")
    EstateStack(cue_app, prod)
    config = next(c for c in cue_app.node.walk() if getattr(c, "type", "") ==
                  "cloudflare_zero_trust_tunnel_cloudflared_config")
    config.override("config.ingress", [{"service": "http_status:404"}])  # type: ignore[attr-defined]
    (cue,) = set(fixes_of(cue_app, "EK126"))
    assert cue == ("place at least one service on the tunnel's node(s) in cue/envs.cue, "
                   "or drop the tunnel)")


def test_the_reference_estate_passes_every_rule() -> None:
    assert [f for f in preflight_findings(ROOT) if f.severity == "error"] == []


def test_the_proof_names_every_fault_of_the_issue() -> None:
    """Every fault the issue lists has its test here (a guard against dropping one)."""
    source = Path(__file__).read_text()
    faults = set(re.findall(r'fault="([a-z-]+)"', source)) | \
        set(re.findall(r'python_findings\(root, "([a-z-]+)"', source))
    assert faults >= {"overlap", "pg-port", "twice", "unknown-node", "no-path", "two-tunnels",
                      "worker-two-tunnels", "env", "route-no-origin", "no-origins",
                      "tunnel-foreign-node", "weights-replicas", "pg-firewall"}
    assert json.dumps(sorted(faults))
