"""The cloud seam (ADR 0018): one `VpsNode(...)` call (with its network, firewall, volume,
floating IP, snapshot and load balancer) on every supported cloud, each synthesized stack
passing the real `tofu validate` and `tofu test`; the L2 constructs name no cloud."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgekit import App, ConstructError, LocalState, Stack
from edgekit.clouds import CLOUDS, MODULES, PROVIDERS, CloudName
from edgekit.constructs.addresses import FloatingIp
from edgekit.constructs.firewall import Firewall
from edgekit.constructs.load_balancer import LoadBalancer
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.storage import Snapshot, Volume
from edgekit.providers.pins import PINS
from edgekit.schema.props import schema_for
from tests.conftest import ROOT, Tofu

EXPECTED = {
    "hetzner": {
        "hcloud_firewall": ["edge_1_firewall", "web_2_firewall"],
        "hcloud_floating_ip": ["ip"], "hcloud_floating_ip_assignment": ["ip_assignment"],
        "hcloud_load_balancer": ["lb"], "hcloud_load_balancer_network": ["lb_network"],
        "hcloud_load_balancer_service": ["lb_service"],
        "hcloud_load_balancer_target": ["lb_target_edge_1", "lb_target_web_2"],
        "hcloud_network": ["net"], "hcloud_network_subnet": ["net_subnet"],
        "hcloud_server": ["edge_1", "web_2"],
        "hcloud_server_network": ["edge_1_network_0", "web_2_network_0"],
        "hcloud_snapshot": ["snap"], "hcloud_volume": ["data"],
        "hcloud_volume_attachment": ["data_attachment"],
    },
    "linode": {
        "linode_firewall": ["edge_1_firewall", "web_2_firewall"],
        "linode_instance": ["edge_1", "web_2"], "linode_networking_ip": ["ip"],
        "linode_nodebalancer": ["lb"], "linode_nodebalancer_config": ["lb_config"],
        "linode_nodebalancer_node": ["lb_target_edge_1", "lb_target_web_2"],
        "linode_volume": ["data"], "linode_vpc": ["net"], "linode_vpc_subnet": ["net_subnet"],
    },
    "vultr": {
        "vultr_block_storage": ["data"],
        "vultr_firewall_group": ["edge_1_firewall", "web_2_firewall"],
        "vultr_firewall_rule": ["edge_1_firewall_rule_0_0", "edge_1_firewall_rule_1_0",
                                "web_2_firewall_rule_0_0"],
        "vultr_instance": ["edge_1", "web_2"], "vultr_load_balancer": ["lb"],
        "vultr_reserved_ip": ["ip"], "vultr_snapshot": ["snap"], "vultr_vpc": ["net"],
    },
    "digitalocean": {
        "digitalocean_droplet": ["edge_1", "web_2"],
        "digitalocean_droplet_snapshot": ["snap"],
        "digitalocean_firewall": ["edge_1_firewall", "web_2_firewall"],
        "digitalocean_loadbalancer": ["lb"],
        "digitalocean_reserved_ip": ["ip"],
        "digitalocean_reserved_ip_assignment": ["ip_assignment"],
        "digitalocean_tag": ["edge_1_firewall_tag", "web_2_firewall_tag"],
        "digitalocean_volume": ["data"], "digitalocean_volume_attachment": ["data_attachment"],
        "digitalocean_vpc": ["net"],
    },
}


def build(provider: CloudName, out: Path) -> App:
    """The same calls for every cloud; only `provider` changes."""
    app = App(outdir=out)
    stack = Stack(app, "prod", state=LocalState())
    net = PrivateNetwork(stack, "net", provider=provider, region="singapore")
    node = VpsNode(stack, "edge-1", provider=provider, region="singapore", size="small",
                   roles=["edge"], networks=[net], admin_ssh_cidrs=["203.0.113.0/24"],
                   repository="github:example/estate", ref="deploy/prod")
    other = VpsNode(stack, "web-2", provider=provider, region="singapore", size="small",
                    networks=[net])
    Volume(stack, "data", node=node, size_gb=20)
    FloatingIp(stack, "ip", node=node)
    Snapshot(stack, "snap", node=node)
    LoadBalancer(stack, "lb", provider=provider, region="singapore", network=net,
                 targets=[node, other], public_ingress_acknowledged=True)
    return app


def document(app: App) -> dict[str, Any]:
    (result,) = app.synth_results()
    return result.document


def test_every_cloud_is_registered_with_its_pin_and_cue_name() -> None:
    assert PROVIDERS == ("hetzner", "linode", "vultr", "digitalocean") == tuple(CLOUDS)
    assert set(EXPECTED) == set(CLOUDS)
    for name, (provider, module) in MODULES.items():  # what is known without loading it
        cloud = CLOUDS[name]
        assert (cloud.name, cloud.tofu_provider, cloud.pin.name) == (name, provider, provider)
        assert type(cloud).__module__ == module and PINS[provider] is cloud.pin
    for cloud in CLOUDS.values():
        assert cloud.tofu_provider in PINS, cloud.name
        assert cloud.catalog.provider == cloud.name
        assert {"regions", "sizes", "images"} <= set(cloud.catalog.sources), cloud.name
        assert "singapore" in cloud.catalog.region_aliases, cloud.name
    schema = schema_for("VpsNode")
    assert schema["properties"]["provider"] == {"$ref": "#/$defs/Provider"}
    assert sorted(schema["$defs"]["Provider"]["enum"]) == sorted(CLOUDS)  # CUE #Provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_call_gives_each_clouds_resources(provider: CloudName, tmp_path: Path) -> None:
    doc = document(build(provider, tmp_path / "out"))
    produced = {t: sorted(names) for t, names in doc["resource"].items()}
    assert produced == EXPECTED[provider]
    cloud = CLOUDS[provider]
    # the provider block and its token, once for the stack although two nodes use them
    assert list(doc["provider"]) == [cloud.tofu_provider]
    assert doc["variable"][cloud.token_variable]["sensitive"] is True
    (server_type,) = [t for t in produced if set(produced[t]) == {"edge_1", "web_2"}]
    server = doc["resource"][server_type]["edge_1"]
    assert server["lifecycle"]["ignore_changes"] == list(cloud.first_boot_only)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_resource_a_cloud_makes_is_one_its_adapter_describes(provider: CloudName,
                                                                   tmp_path: Path) -> None:
    """ADR 0030: the rules know every type an adapter emits (EK190 would name the rest)."""
    from edgekit import Mesh, Needs, Service
    from edgekit.constructs.managed_pg import ManagedPg
    from tests.test_managed_pg import SPECS

    app = build(provider, tmp_path / "out")
    stack = app.stacks[0]
    nodes = [c for c in stack.node.children if isinstance(c, VpsNode)]
    Mesh(stack, "mesh", nodes=nodes)
    if provider in SPECS:
        spec = SPECS[provider]
        ManagedPg(stack, "managed", provider=provider, region=spec.region, plan=spec.plan,
                  services={"api": Service(name="api", port=8080, needs=Needs(postgres="rw"))},
                  clients=nodes)
    made = set(app.synth_results()[0].document["resource"])
    kinds = CLOUDS[provider].kinds
    assert any(t in kinds and kinds[t].role == "database" for t in made) == (provider in SPECS)
    assert made - set(CLOUDS[provider].kinds) <= {"random_password"}
    assert [f for f in app.rule_findings if f.rule == "EK190"] == []


def test_digitalocean_droplet_is_protected_from_its_first_boot(tmp_path: Path) -> None:
    """The cloud firewall applies by tag and exists before the droplet; outbound is opened
    explicitly (a DigitalOcean firewall drops what no rule accepts, both ways)."""
    resources = document(build("digitalocean", tmp_path / "out"))["resource"]
    droplet = resources["digitalocean_droplet"]["edge_1"]
    firewall = resources["digitalocean_firewall"]["edge_1_firewall"]
    assert "${digitalocean_tag.edge_1_firewall_tag.name}" in droplet["tags"]
    assert firewall["tags"] == ["${digitalocean_tag.edge_1_firewall_tag.name}"]
    assert droplet["depends_on"] == ["digitalocean_firewall.edge_1_firewall"]
    assert droplet["region"] == "sgp1" and droplet["image"] == "debian-12-x64"
    assert droplet["vpc_uuid"] == "${digitalocean_vpc.net.id}"
    assert {r["protocol"] for r in firewall["outbound_rule"]} == {"tcp", "udp", "icmp"}
    assert all("0.0.0.0/0" not in r["source_addresses"] for r in firewall["inbound_rule"])
    assert resources["digitalocean_vpc"]["net"]["ip_range"] == "10.0.0.0/16"


def test_digitalocean_refuses_a_vpc_range_it_would_refuse(tmp_path: Path) -> None:
    stack = Stack(App(outdir=tmp_path), "prod", state=LocalState())
    with pytest.raises(ConstructError, match=r"\[prod/net\] a DigitalOcean VPC range must be "
                                             r"/16 to /24, got /8"):
        PrivateNetwork(stack, "net", provider="digitalocean", region="sgp1", cidr="10.0.0.0/8")


def test_a_droplet_joins_one_vpc(tmp_path: Path) -> None:
    stack = Stack(App(outdir=tmp_path), "prod", state=LocalState())
    nets = [PrivateNetwork(stack, f"net-{i}", provider="digitalocean", region="sgp1",
                           cidr=f"10.{i}.0.0/16") for i in (1, 2)]
    with pytest.raises(ConstructError, match=r"\[prod/n\] joins 2 private networks; a "
                                             "digitalocean server joins at most 1"):
        VpsNode(stack, "n", provider="digitalocean", region="sgp1", size="small",
                networks=nets)


def test_provider_declared_once_and_a_foreign_firewall_refused(tmp_path: Path) -> None:
    stack = Stack(App(outdir=tmp_path), "prod", state=LocalState())
    first = CLOUDS["vultr"].declare_provider(stack)
    assert CLOUDS["vultr"].declare_provider(stack) is first
    firewall = Firewall(stack, "fw", provider="linode")
    with pytest.raises(ConstructError, match=r"\[prod/n\] firewall prod/fw is a linode "
                                             "firewall; a vultr node needs one of its own"):
        VpsNode(stack, "n", provider="vultr", region="tokyo", size="small", firewall=firewall)


def test_a_node_without_the_deploy_settings_it_needs_is_refused(tmp_path: Path) -> None:
    stack = Stack(App(outdir=tmp_path), "prod", state=LocalState())
    with pytest.raises(ConstructError, match=r"\[prod/a\] node has roles \['edge'\] but no "
                                             "deploy settings"):
        VpsNode(stack, "a", provider="hetzner", region="nbg1", size="small", roles=["edge"])
    with pytest.raises(ConstructError, match=r"\[prod/b\] pull deployment needs both "
                                             "repository and ref; ref is missing"):
        VpsNode(stack, "b", provider="hetzner", region="nbg1", size="small",
                repository="github:example/estate")
    with pytest.raises(ConstructError, match=r"\[prod/c\] deploy is missing follow, convert"):
        VpsNode(stack, "c", provider="hetzner", region="nbg1", size="small", roles=["edge"],
                deploy={"mode": "pull", "flake": "github:example/estate#c"})
    assert stack.node.try_find_child("c") is None  # a refused node leaves nothing behind
    assert stack.node.try_find_child("hcloud") is None  # not even its provider block
    plain = VpsNode(stack, "d", provider="hetzner", region="nbg1", size="small")
    assert "deploy" not in plain.boot  # no roles: a plain node, nothing to become


def test_the_l2_constructs_name_no_cloud() -> None:
    """Done-when of issue 12: clouds live in edgekit/clouds/, not in the constructs."""
    folder = ROOT / "edgekit" / "constructs"
    named = subprocess.run(["grep", "-rniE", "hetzner|linode|vultr|digitalocean", str(folder)],
                           capture_output=True, text=True)
    assert named.stdout == "", named.stdout
    for path in folder.glob("*.py"):
        assert not re.search(r"\b(hcloud|droplet|nodebalancer)_", path.read_text()), path


@pytest.mark.tools
@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_cloud_passes_tofu_validate_and_test(
    provider: CloudName, tmp_path: Path, tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    build(provider, tmp_path / "out").synth()
    folder = stack_dir_copy(tmp_path / "out" / "stacks" / "prod")
    init = tofu.init(folder)
    assert init.returncode == 0, init.stderr
    validate = tofu(folder, "validate", "-json")
    report = json.loads(validate.stdout)
    messages = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')}"
                for d in report["diagnostics"]]
    assert report["valid"] is True, "\n".join(messages)
    assert report["warning_count"] == 0, "\n".join(messages)
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "1 passed, 0 failed" in test.stdout or "2 passed, 0 failed" in test.stdout, \
        test.stdout


def digitalocean_estate(out: Path) -> App:
    """A Postgres primary and a mesh on DigitalOcean: every promise its adapter writes."""
    from edgekit import Mesh, Needs, PgPrimary, Service

    app = build("digitalocean", out)
    stack = app.stacks[0]
    net = stack.node.find_child("net")
    assert isinstance(net, PrivateNetwork)
    db = VpsNode(stack, "db", provider="digitalocean", region="sgp1", size="medium",
                 roles=["postgres"], networks=[net], repository="github:example/estate",
                 ref="deploy/prod")
    PgPrimary(stack, "postgres", node=db,
              services={"api": Service(name="api", port=8080, needs=Needs(postgres="rw"))})
    edge = stack.node.find_child("edge-1")
    assert isinstance(edge, VpsNode)
    Mesh(stack, "mesh", nodes=[db, edge], cidr="10.99.0.0/24", hosts={"db": 1, "edge-1": 11})
    return app


def world_open(doc: dict[str, Any]) -> None:
    doc["resource"]["digitalocean_firewall"]["edge_1_firewall"]["inbound_rule"][0][
        "source_addresses"].append("0.0.0.0/0")


def postgres_public(doc: dict[str, Any]) -> None:
    doc["resource"]["digitalocean_firewall"]["db_firewall"]["inbound_rule"].append(
        {"protocol": "tcp", "port_range": "5432", "source_addresses": ["203.0.113.0/24"]})


def mesh_open_to_more(doc: dict[str, Any]) -> None:
    doc["resource"]["digitalocean_firewall"]["mesh_db_firewall"]["inbound_rule"][0][
        "source_addresses"].append("198.51.100.0/24")


@pytest.mark.tools
@pytest.mark.parametrize(("breaks", "promise"), [
    (None, None), (world_open, "[firewall-closed] prod/edge-1/firewall"),
    (postgres_public, "[postgres-not-public] prod/db/firewall"),
    (mesh_open_to_more, "[mesh-peers-only] prod/mesh/db-firewall"),
])
def test_digitalocean_promises_hold_and_can_fail(
    breaks: Callable[[dict[str, Any]], None] | None, promise: str | None, tmp_path: Path,
    tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    digitalocean_estate(tmp_path / "out").synth()
    folder = stack_dir_copy(tmp_path / "out" / "stacks" / "prod")
    if breaks is not None:
        path = folder / "cdk.tf.json"
        doc = json.loads(path.read_text())
        breaks(doc)
        path.write_text(json.dumps(doc))
    assert tofu.init(folder).returncode == 0
    test = tofu(folder, "test")
    if promise is None:
        assert test.returncode == 0, test.stdout + test.stderr
    else:
        assert test.returncode != 0
        assert promise in test.stdout + test.stderr, test.stdout + test.stderr


def estate_with_a_droplet() -> Any:
    """The reference staging estate, with a DigitalOcean node in Singapore running the web
    service (in the mesh, so it reaches the Postgres primary on Hetzner privately)."""
    import attrs

    from edgekit.cue.model import Estate, Node

    estate = Estate.load(ROOT, "staging", check_fresh=False)
    env = estate.env
    nodes = {**env.nodes, "edge-sgp": Node(name="edge-sgp", provider="digitalocean",
                                           region="sgp1", size="s-1vcpu-2gb",
                                           roles=("edge",), mesh_host=41)}
    placement: dict[str, tuple[str, ...]] = {"staging-1": ("api",), "edge-sgp": ("web",)}
    return attrs.evolve(estate, env=attrs.evolve(env, nodes=nodes, placement=placement))


def test_a_droplet_in_the_reference_estate(tmp_path: Path) -> None:
    from stacks.estate import EstateStack

    app = App(outdir=tmp_path / "out")
    EstateStack(app, estate_with_a_droplet())
    doc = document(app)
    droplet = doc["resource"]["digitalocean_droplet"]["nodes_edge_sgp"]
    assert droplet["vpc_uuid"] == "${digitalocean_vpc.nodes_net_digitalocean.id}"
    boot = doc["locals"]["nodes_edge_sgp_boot"]
    assert boot["provider"] == "digitalocean" and boot["deploy"]["convert"] == "nixos-infect"
    assert "pg_password_svc_web_ro" in boot["secrets"]
    assert boot["mesh"]["address"].endswith(".41")
    assert set(doc["provider"]) >= {"hcloud", "digitalocean", "cloudflare"}
    assert doc["variable"]["digitalocean_token"]["sensitive"] is True
    mesh = doc["resource"]["digitalocean_firewall"]["nodes_mesh_edge_sgp_firewall"]
    assert mesh["inbound_rule"] == [{"protocol": "udp", "port_range": "51820", "source_addresses": [
        "${hcloud_server.nodes_staging_1.ipv4_address}/32"]}]


@pytest.mark.tools
def test_the_estate_with_a_droplet_passes_tofu_validate_and_test(
    tmp_path: Path, tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    from stacks.estate import EstateStack

    app = App(outdir=tmp_path / "out")
    EstateStack(app, estate_with_a_droplet())
    app.synth()
    folder = stack_dir_copy(tmp_path / "out" / "stacks" / "staging")
    assert tofu.init(folder).returncode == 0
    report = json.loads(tofu(folder, "validate", "-json").stdout)
    assert report["valid"] is True and report["warning_count"] == 0, report
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr


@pytest.mark.tools
@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_cloud_has_a_nixos_disk_layout(provider: str) -> None:
    from edgekit.nix.evaluate import evaluate

    base = ROOT / "nix" / "base.nix"
    config = evaluate(f'(import {base} {{ name = "n"; provider = "{provider}"; }}) '
                      '{ modulesPath = "/modules"; }')
    assert config["boot"]["loader"]["grub"]["device"] in ("/dev/sda", "/dev/vda", "nodev")
    assert config["fileSystems"]["/"]["device"].startswith("/dev/")


def name_rules_table() -> str:
    """The README's table of provider-side names, made from the cloud modules' own tables
    (`Kind.names`, `Kind.unique`): what EK141 and EK142 hold a stack to, per cloud."""
    rows = ["| Cloud | Resource | Name | Length | Form | Unique |",
            "|---|---|---|---|---|---|"]
    for name, cloud in sorted(CLOUDS.items()):
        for type_name, kind in sorted(cloud.kinds.items()):
            for rule in kind.names:
                unique = kind.unique.scope if kind.unique else "—"
                rows.append(f"| {name} | `{type_name}` | `{'.'.join(rule.attribute)}` | "
                            f"{rule.min}-{rule.max} | {rule.expected} | {unique} |")
    return "\n".join(rows) + "\n"


def test_the_readme_lists_each_clouds_name_rules() -> None:
    """Issue 23: name rules "documented beside each cloud"; the table is the modules' own."""
    assert name_rules_table() in (ROOT / "README.md").read_text()
