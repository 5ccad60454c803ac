"""The VPS layer: one VpsNode API over Hetzner, Linode and Vultr, and its neighbours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgekit import App, ConstructError, LocalState, Stack
from edgekit.clouds import CLOUDS, CloudName
from edgekit.constructs.addresses import FloatingIp
from edgekit.constructs.firewall import Firewall
from edgekit.constructs.load_balancer import LoadBalancer
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.pg_primary import PgPrimary
from edgekit.constructs.storage import Snapshot, Volume
from edgekit.cue.model import Estate
from edgekit.schema.props import PropsError
from tests.conftest import ROOT, plain_services

REGION = {"hetzner": "fsn1", "linode": "tokyo", "vultr": "tokyo", "digitalocean": "singapore"}


def new_stack(tmp_path: Path) -> tuple[App, Stack]:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    return app, Stack(app, "prod", state=LocalState(), encryption=None)


def resources(app: App) -> dict[str, Any]:
    (result,) = app.synth_results()
    found: dict[str, Any] = result.document.get("resource", {})
    return found


@pytest.mark.parametrize("provider", ["hetzner", "linode", "vultr", "digitalocean"])
def test_one_vpsnode_call_gives_each_providers_resources(provider: CloudName,
                                                        tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    net = PrivateNetwork(stack, "net", provider=provider, region=REGION[provider])
    node = VpsNode(stack, "edge-1", provider=provider, region=REGION[provider], size="small",
                   networks=[net], admin_ssh_cidrs=["203.0.113.0/24"])
    Volume(stack, "data", node=node, size_gb=20)
    FloatingIp(stack, "ip", node=node)
    Snapshot(stack, "snap", node=node)
    produced = {t: sorted(names) for t, names in resources(app).items()}
    expected = {
        "hetzner": {
            "hcloud_firewall": ["edge_1_firewall"], "hcloud_floating_ip": ["ip"],
            "hcloud_floating_ip_assignment": ["ip_assignment"], "hcloud_network": ["net"],
            "hcloud_network_subnet": ["net_subnet"], "hcloud_server": ["edge_1"],
            "hcloud_server_network": ["edge_1_network_0"], "hcloud_snapshot": ["snap"],
            "hcloud_volume": ["data"], "hcloud_volume_attachment": ["data_attachment"],
        },
        "linode": {
            "linode_firewall": ["edge_1_firewall"],
            "linode_instance": ["edge_1"], "linode_networking_ip": ["ip"],
            "linode_volume": ["data"], "linode_vpc": ["net"], "linode_vpc_subnet": ["net_subnet"],
        },
        "vultr": {
            "vultr_firewall_group": ["edge_1_firewall"],
            "vultr_firewall_rule": ["edge_1_firewall_rule_0_0", "edge_1_firewall_rule_1_0"],
            "vultr_instance": ["edge_1"], "vultr_reserved_ip": ["ip"],
            "vultr_block_storage": ["data"], "vultr_snapshot": ["snap"], "vultr_vpc": ["net"],
        },
        "digitalocean": {
            "digitalocean_droplet": ["edge_1"], "digitalocean_droplet_snapshot": ["snap"],
            "digitalocean_firewall": ["edge_1_firewall"],
            "digitalocean_reserved_ip": ["ip"], "digitalocean_reserved_ip_assignment":
            ["ip_assignment"], "digitalocean_tag": ["edge_1_firewall_tag"],
            "digitalocean_volume": ["data"], "digitalocean_volume_attachment":
            ["data_attachment"], "digitalocean_vpc": ["net"],
        },
    }[provider]
    assert produced == expected


def test_portable_aliases_resolve_per_provider() -> None:
    assert CLOUDS["linode"].catalog.region("tokyo") == "jp-tyo-3"
    assert CLOUDS["vultr"].catalog.region("tokyo") == "nrt"
    assert CLOUDS["hetzner"].catalog.size("small") == "cx23"
    assert CLOUDS["vultr"].catalog.size("vc2-2c-4gb") == "vc2-2c-4gb"


def test_unknown_region_lists_the_providers_choices(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    with pytest.raises(ConstructError) as err:
        VpsNode(stack, "edge-1", provider="hetzner", region="tokyo", size="small")
    assert str(err.value) == (
        "[prod/edge-1] unknown region 'tokyo' for hetzner; expected one of: ash, fsn1, hel1, "
        "hil, nbg1, sin, falkenstein (=fsn1), finland (=hel1), germany (=fsn1), "
        "helsinki (=hel1), nuremberg (=nbg1), singapore (=sin), us-east (=ash), "
        "us-west (=hil)")


def test_unknown_size(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    with pytest.raises(ConstructError, match=r"^\[prod/pg\] unknown size 'huge' for vultr; "
                       r"expected one of: vc2-1c-2gb, vc2-2c-4gb, vc2-4c-8gb, large"):
        VpsNode(stack, "pg", provider="vultr", region="nrt", size="huge")


def test_unknown_provider_is_a_props_error_naming_the_path(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    with pytest.raises(PropsError) as err:
        VpsNode(stack, "edge-1", provider="aws", region="us-east-1",  # type: ignore[arg-type]
                size="t3.small")
    assert [str(p) for p in err.value.problems] == [
        '[prod/edge-1] #VpsNode: expected one of "hetzner", "linode", "vultr", '
        '"digitalocean", got "aws" @ $.provider']


def test_volume_in_another_region_than_its_node(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    node = VpsNode(stack, "pg", provider="vultr", region="tokyo", size="small")
    with pytest.raises(ConstructError) as err:
        Volume(stack, "data", node=node, size_gb=50, region="osaka")
    assert str(err.value) == ("[prod/data] volume in itm, but its node prod/pg is in nrt; a "
                              "volume can only attach to a node in its own region")


def test_node_in_networks_of_two_providers(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    h = PrivateNetwork(stack, "net-h", provider="hetzner", region="fsn1")
    v = PrivateNetwork(stack, "net-v", provider="vultr", region="nrt")
    with pytest.raises(ConstructError) as err:
        VpsNode(stack, "edge-1", provider="hetzner", region="fsn1", size="small",
                networks=[h, v])
    assert str(err.value) == (
        "[prod/edge-1] joins private networks of different providers: prod/net-h (hetzner), "
        "prod/net-v (vultr); a hetzner node can only join hetzner networks")


def test_public_postgres_is_an_error(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    net = PrivateNetwork(stack, "net", provider="vultr", region="nrt")
    node = VpsNode(stack, "pg", provider="vultr", region="nrt", size="small", networks=[net])
    with pytest.raises(ConstructError, match=r"^\[prod/postgres\] Postgres is never public: "
                       r"port 5432 is reachable only from the private network"):
        PgPrimary(stack, "postgres", node=node, services={}, public=True)


def test_postgres_needs_a_private_network(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    node = VpsNode(stack, "pg", provider="hetzner", region="fsn1", size="small")
    with pytest.raises(ConstructError, match=r"node prod/pg is in no private network"):
        PgPrimary(stack, "postgres", node=node, services={})


def test_duplicate_node_names_in_a_stack(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    VpsNode(stack, "edge-1", provider="hetzner", region="fsn1", size="small")
    from edgekit import Construct

    group = Construct(stack, "group")
    with pytest.raises(ConstructError) as err:
        VpsNode(group, "edge-1", provider="hetzner", region="fsn1", size="small")
    assert str(err.value).startswith(
        "[prod/group/edge-1] duplicate node name 'edge-1': prod/edge-1 already uses it")


def test_bad_input_writes_nothing_and_leaves_no_half_node(tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    with pytest.raises(ConstructError):
        VpsNode(stack, "edge-1", provider="hetzner", region="mars", size="small")
    assert not (tmp_path / "out").exists()
    assert stack.node.children == []
    VpsNode(stack, "edge-1", provider="hetzner", region="fsn1", size="small")  # name is free
    assert "hcloud_server" in resources(app)


def test_firewall_is_closed_to_the_internet(tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    Firewall(stack, "closed", provider="hetzner")
    Firewall(stack, "admin", provider="hetzner", admin_ssh_cidrs=["203.0.113.7/32"],
             private_cidrs=["10.0.0.0/16"], private_ports=[5432])
    Firewall(stack, "lin", provider="linode")
    found = resources(app)
    assert found["hcloud_firewall"]["closed"]["rule"] == []
    rules = found["hcloud_firewall"]["admin"]["rule"]
    assert [(r["port"], r["source_ips"]) for r in rules] == [
        ("22", ["203.0.113.7/32"]), ("5432", ["10.0.0.0/16"])]
    assert all(r["direction"] == "in" for r in rules)
    assert not any("0.0.0.0/0" in r["source_ips"] or "::/0" in r["source_ips"] for r in rules)
    linode = found["linode_firewall"]["lin"]
    assert (linode["inbound_policy"], linode["outbound_policy"], linode["inbound"]) == \
        ("DROP", "ACCEPT", [])


def test_linode_snapshot_means_managed_backups(tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    node = VpsNode(stack, "edge", provider="linode", region="tokyo", size="small")
    Snapshot(stack, "snap", node=node)
    assert resources(app)["linode_instance"]["edge"]["backups_enabled"] is True


def test_linode_user_data_is_base64(tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    VpsNode(stack, "edge", provider="linode", region="tokyo", size="small")
    user_data = resources(app)["linode_instance"]["edge"]["metadata"]["user_data"]
    assert user_data.startswith("${base64encode(")


def test_load_balancer_is_an_explicit_opt_in(tmp_path: Path) -> None:
    _, stack = new_stack(tmp_path)
    net = PrivateNetwork(stack, "net", provider="hetzner", region="fsn1")
    node = VpsNode(stack, "edge", provider="hetzner", region="fsn1", size="small",
                   networks=[net])
    with pytest.raises(ConstructError, match="public entry point beside Cloudflare"):
        LoadBalancer(stack, "lb", provider="hetzner", region="fsn1", network=net,
                     targets=[node])
    LoadBalancer(stack, "lb", provider="hetzner", region="fsn1", network=net, targets=[node],
                 public_ingress_acknowledged=True)


def test_postgres_passwords_never_appear_in_plain_text(tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    services = plain_services(Estate.load(ROOT, "staging", check_fresh=False).services)
    net = PrivateNetwork(stack, "net", provider="hetzner", region="nbg1")
    node = VpsNode(stack, "all", provider="hetzner", region="nbg1", size="small",
                   roles=["edge", "postgres"], networks=[net],
                   repository="github:example/estate", ref="deploy/prod")
    PgPrimary(stack, "postgres", node=node, services=services)
    (result,) = app.synth_results()
    document = result.document
    outputs = document["output"]
    for role in ("svc_api_rw", "svc_web_ro"):
        assert outputs[f"pg_password_{role}"]["sensitive"] is True
        assert document["locals"]["all_boot"]["secrets"][f"pg_password_{role}"].startswith(
            "${random_password.")
    assert "sensitive" not in outputs["pg_primary_private_ip"]
    passwords = document["resource"]["random_password"]
    assert set(passwords) == {"postgres_password_api", "postgres_password_web"}
    boot = document["locals"]["all_boot"]["postgres"]
    assert boot["listen_address"] == "10.0.1.10"
    assert "CREATE" in boot["bootstrap_sql"] and "PASSWORD '" not in boot["bootstrap_sql"]
    assert json.dumps(document).count("random_password.") >= 4


def test_private_addresses_are_fixed_and_distinct(tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    net = PrivateNetwork(stack, "net", provider="hetzner", region="fsn1")
    for name in ("a", "b"):
        VpsNode(stack, name, provider="hetzner", region="fsn1", size="small", networks=[net])
    found = resources(app)["hcloud_server_network"]
    assert [found[k]["ip"] for k in ("a_network_0", "b_network_0")] == ["10.0.1.10",
                                                                         "10.0.1.11"]


@pytest.mark.parametrize("provider", ["hetzner", "linode", "vultr", "digitalocean"])
def test_boot_document_never_references_its_own_node(provider: CloudName,
                                                    tmp_path: Path) -> None:
    """A node's user data that reads the node's own attributes would be a cycle."""
    app, stack = new_stack(tmp_path)
    services = plain_services(Estate.load(ROOT, "prod", check_fresh=False).services)
    net = PrivateNetwork(stack, "net", provider=provider, region=REGION[provider])
    node = VpsNode(stack, "pg", provider=provider, region=REGION[provider], size="small",
                   networks=[net])
    PgPrimary(stack, "postgres", node=node, services=services)
    (result,) = app.synth_results()
    boot = json.dumps(result.document["locals"])
    assert node.resource.address not in boot
    assert "network_0" not in boot


def test_push_deploy_is_an_opt_in_needing_explicit_ssh(tmp_path: Path) -> None:
    app, stack = new_stack(tmp_path)
    with pytest.raises(ConstructError, match=r"^\[prod/edge-1\] push_deploy installs NixOS over "
                       r"SSH from the deployer, so list the deployer's address in "
                       r"admin_ssh_cidrs"):
        VpsNode(stack, "edge-1", provider="hetzner", region="fsn1", size="small",
                push_deploy=True)
    VpsNode(stack, "edge-1", provider="hetzner", region="fsn1", size="small",
            push_deploy=True, admin_ssh_cidrs=["203.0.113.7/32"])
    VpsNode(stack, "edge-2", provider="hetzner", region="fsn1", size="small")
    (result,) = app.synth_results()
    modules = result.document["module"]
    assert list(modules) == ["edge_1_nixos_anywhere"]
    call = modules["edge_1_nixos_anywhere"]
    assert call["source"].startswith("github.com/nix-community/nixos-anywhere//terraform/"
                                     "all-in-one?ref=")
    assert call["nixos_system_attr"] == ".#nixosConfigurations.edge-1.config.system.build.toplevel"
    assert call["target_host"] == "${hcloud_server.edge_1.ipv4_address}"
    rules = result.document["resource"]["hcloud_firewall"]["edge_1_firewall"]["rule"]
    assert [(r["port"], r["source_ips"]) for r in rules] == [("22", ["203.0.113.7/32"])]
