"""A deploy never replaces a server, and the provider facts the estate relies on hold.

Each test is named after the apply-time failure it prevents (issue 11).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgekit import App, ConstructError, LocalState, Stack
from edgekit.clouds import CATALOGS, CLOUDS
from edgekit.constructs.firewall import Firewall
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.cue.generate import placement_tfvars
from edgekit.cue.model import Estate
from stacks import make_app
from tests.conftest import ROOT, Tofu

SERVERS = {"hcloud_server": "hetzner", "linode_instance": "linode", "vultr_instance": "vultr"}
REF = re.compile(r"\b(var|local)\.([A-Za-z0-9_-]+)")


def documents(outdir: Path) -> dict[str, dict[str, Any]]:
    app = make_app(outdir=outdir)
    return {r.stack.name: r.document for r in app.synth_results()}


def user_data(server_type: str, body: dict[str, Any]) -> str:
    if server_type == "linode_instance":
        return str(body["metadata"]["user_data"])
    return str(body["user_data"])


def reads(document: dict[str, Any], text: str) -> set[str]:
    """Every variable and local `text` reads, following locals transitively."""
    seen: set[str] = set()
    todo = [f"{kind}.{name}" for kind, name in REF.findall(text)]
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        kind, name = ref.split(".", 1)
        if kind == "local":
            value = json.dumps(document.get("locals", {}).get(name))
            todo.extend(f"{k}.{n}" for k, n in REF.findall(value))
    return seen


def servers(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(t, name, body) for t in SERVERS
            for name, body in sorted(document.get("resource", {}).get(t, {}).items())]


def test_a_deploy_never_replaces_a_server(tmp_path: Path) -> None:
    """Every provider replaces a server whose user data changes. A deploy moves the
    deploy/<env> ref (ADR 0005): nothing a deploy or a placement change touches reaches
    user data, and later changes to it are ignored."""
    docs = documents(tmp_path / "out")
    checked = 0
    for stack in ("prod", "staging"):
        for server_type, name, body in servers(docs[stack]):
            read = reads(docs[stack], user_data(server_type, body))
            variables = sorted(r for r in read if r.startswith("var."))
            assert variables == [], f"{stack} {server_type}.{name} user data reads {variables}"
            ignored = body.get("lifecycle", {}).get("ignore_changes", [])
            assert CLOUDS[SERVERS[server_type]].first_boot_only[0] in ignored, (stack, name)
            boot = json.dumps(docs[stack]["locals"])
            assert "?rev=" not in boot and "deploy_revision" not in boot
            checked += 1
    assert checked == 5  # edge-1, edge-2, edge-tokyo, pg-tokyo, staging-1
    assert "deploy_revision" not in docs["prod"].get("variable", {})


def test_user_data_is_byte_identical_across_two_deploys(tmp_path: Path) -> None:
    """Two deploys (the same stacks synthesized again, placement moved) give every server
    the same user data, byte for byte."""
    first = documents(tmp_path / "one")
    second = documents(tmp_path / "two")
    for stack in ("prod", "staging"):
        one = {n: (user_data(t, b), reads(first[stack], user_data(t, b)))
               for t, n, b in servers(first[stack])}
        two = {n: (user_data(t, b), reads(second[stack], user_data(t, b)))
               for t, n, b in servers(second[stack])}
        assert one == two
        for _, read in one.values():
            for ref in read:
                if ref.startswith("local."):
                    local = ref.split(".", 1)[1]
                    assert (json.dumps(first[stack]["locals"][local], sort_keys=True)
                            == json.dumps(second[stack]["locals"][local], sort_keys=True))
    # placement is a variable of the stack, read by no server's user data
    estate = Estate.load(ROOT, "prod", check_fresh=False)
    assert "placement" in placement_tfvars(estate)
    for _, _, body in servers(first["prod"]):
        assert "var.placement" not in json.dumps(body)


def new_stack(tmp_path: Path) -> tuple[App, Stack]:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    return app, Stack(app, "prod", state=LocalState(), encryption=None)


def test_linode_node_never_boots_without_its_firewall(tmp_path: Path) -> None:
    """A linode_firewall_device attaches after the instance booted; `firewall_id` on the
    instance attaches it at creation."""
    app, stack = new_stack(tmp_path)
    net = PrivateNetwork(stack, "net", provider="linode", region="tokyo")
    VpsNode(stack, "edge-1", provider="linode", region="tokyo", size="small", networks=[net])
    (result,) = app.synth_results()
    resources = result.document["resource"]
    assert "linode_firewall_device" not in resources
    assert resources["linode_instance"]["edge_1"]["firewall_id"] == \
        "${linode_firewall.edge_1_firewall.id}"


def test_linode_firewall_rules_pass_the_providers_validators(tmp_path: Path) -> None:
    """linode 3.13.0: rule labels 3-32 characters, ipv4/ipv6 absent or non-empty
    (framework_schema_resource.go); `tofu validate` refused `r0` and `ipv6: []`."""
    app, stack = new_stack(tmp_path)
    Firewall(stack, "fw", provider="linode", admin_ssh_cidrs=["203.0.113.7/32"],
             private_cidrs=["10.0.0.0/16"], private_ports=[5432, 8080])
    (result,) = app.synth_results()
    rules = result.document["resource"]["linode_firewall"]["fw"]["inbound"]
    assert len(rules) == 3
    for rule in rules:
        assert 3 <= len(rule["label"]) <= 32, rule
        assert all(rule.get(k, ["x"]) for k in ("ipv4", "ipv6")), rule
    assert len({r["label"] for r in rules}) == 3


def test_vultr_firewall_port_range_is_colon_separated(tmp_path: Path) -> None:
    """vultr_firewall_rule.port takes `1:65535`; `1-65535` is refused by the API."""
    app, stack = new_stack(tmp_path)
    Firewall(stack, "fw", provider="vultr", private_cidrs=["10.0.0.0/16"])
    (result,) = app.synth_results()
    (rule,) = result.document["resource"]["vultr_firewall_rule"].values()
    assert rule["port"] == "1:65535"


@pytest.mark.parametrize(("size", "replacement"), [("cx22", "cx23"), ("cx32", "cx33"),
                                                   ("cx42", "cx43"), ("cpx11", "cpx22")])
def test_retired_hetzner_server_types_are_refused_naming_the_replacement(
        tmp_path: Path, size: str, replacement: str) -> None:
    _, stack = new_stack(tmp_path)
    with pytest.raises(ConstructError) as err:
        VpsNode(stack, "edge-1", provider="hetzner", region="fsn1", size=size)
    assert str(err.value).startswith(f"[prod/edge-1] hetzner size {size!r} cannot be used: "
                                     f"Hetzner deprecated {size} on 2025-10-16")
    assert str(err.value).endswith(f"use {replacement}")
    assert CATALOGS["hetzner"].size(replacement) == replacement


def test_linode_tokyo_is_the_region_with_vpc_and_metadata(tmp_path: Path) -> None:
    """ap-northeast (Tokyo 2) is legacy: no Metadata service, so cloud-init never gets the
    boot document; jp-tyo-3 has VPC and Metadata."""
    assert CATALOGS["linode"].region("tokyo") == "jp-tyo-3"
    _, stack = new_stack(tmp_path)
    with pytest.raises(ConstructError, match=r"legacy Linode region \(Tokyo 2\) without the "
                       r"Metadata service.*use jp-tyo-3"):
        VpsNode(stack, "edge-1", provider="linode", region="ap-northeast", size="small")


def test_every_catalog_fact_has_a_source() -> None:
    for name, cat in CATALOGS.items():
        assert set(cat.sources) == {"regions", "sizes", "images", "retired"}, name
        assert all(cat.sources.values()), name
        assert not set(cat.retired) & (set(cat.sizes) | set(cat.regions)), name
        for alias, target in [*cat.size_aliases.items(), *cat.region_aliases.items()]:
            assert target in cat.sizes or target in cat.regions, (name, alias)


def test_the_reference_estate_uses_only_orderable_types() -> None:
    for env in Estate.env_names(ROOT):
        for node in Estate.load(ROOT, env, check_fresh=False).env.nodes.values():
            cat = CATALOGS[node.provider]
            assert node.size not in cat.retired and node.region not in cat.retired, node


def deploy_twice(folder: Path, tofu: Tofu) -> subprocess.CompletedProcess[str]:
    """The real tofu, mocked clouds: apply once, then apply a second deploy with every
    non-credential input changed (placement moved) and assert each server's user data is
    the value the first apply gave it. (OpenTofu cannot mix `run.<x>` and resources in one
    assertion: the first value reaches the second run as a variable.) The servers'
    `lifecycle.ignore_changes` is taken out first, so what is compared is the configured
    user data itself, not only what the provider would keep."""
    document = json.loads((folder / "cdk.tf.json").read_text())
    for server_type, name, _ in servers(document):
        document["resource"][server_type][name].pop("lifecycle")
    (folder / "cdk.tf.json").write_text(json.dumps(document))
    generated = json.loads((folder / "edgekit.tftest.json").read_text())
    placement = json.loads((folder / "placement.auto.tfvars.json").read_text())["placement"]
    moved = {node: [*reversed(services), "moved"] for node, services in placement.items()}
    outputs: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    given: dict[str, Any] = {"placement": moved}
    asserts = []
    for server_type, name, _ in servers(document):
        attr = "metadata[0].user_data" if server_type == "linode_instance" else "user_data"
        outputs[f"user_data_{name}"] = {"value": f"${{{server_type}.{name}.{attr}}}",
                                        "sensitive": True}
        variables[f"first_user_data_{name}"] = {"type": "string", "default": "",
                                                "sensitive": True}
        given[f"first_user_data_{name}"] = f"${{run.step_1_first_deploy.user_data_{name}}}"
        asserts.append({
            "condition": f"${{{server_type}.{name}.{attr} == var.first_user_data_{name}}}",
            "error_message": f"{server_type}.{name}: user data changed between deploys"})
    (folder / "deploy_check.tf.json").write_text(
        json.dumps({"output": outputs, "variable": variables}))
    (folder / "deploy.tftest.json").write_text(json.dumps({
        "mock_provider": generated["mock_provider"],
        "variables": generated["variables"],
        "run": {
            "step_1_first_deploy": {"command": "apply"},
            "step_2_second_deploy": {"command": "apply", "variables": given,
                                     "assert": asserts},
        },
    }))
    assert tofu.init(folder).returncode == 0
    return tofu(folder, "test", "-filter=deploy.tftest.json")


@pytest.mark.tools
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_two_deploys_give_every_server_the_same_user_data_in_real_tofu(
        tmp_path: Path, stack: str, tofu: Tofu,
        stack_dir_copy: Callable[[Path], Path]) -> None:
    out = tmp_path / "out"
    make_app(outdir=out).synth([stack])
    folder = stack_dir_copy(out / "stacks" / stack)
    run = deploy_twice(folder, tofu)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed, 0 failed" in run.stdout


@pytest.mark.tools
def test_the_two_deploy_check_catches_user_data_that_reads_a_deploy_input(
        tmp_path: Path, tofu: Tofu, stack_dir_copy: Callable[[Path], Path]) -> None:
    """The check above can fail: with placement back in the boot document (as before
    issue 11), the second deploy changes the server's user data."""
    out = tmp_path / "out"
    make_app(outdir=out).synth(["staging"])
    folder = stack_dir_copy(out / "stacks" / "staging")
    document = json.loads((folder / "cdk.tf.json").read_text())
    document["locals"]["nodes_staging_1_boot"]["services"] = \
        '${lookup(var.placement, "staging-1", [])}'
    (folder / "cdk.tf.json").write_text(json.dumps(document))
    run = deploy_twice(folder, tofu)
    assert run.returncode != 0
    assert "hcloud_server.nodes_staging_1: user data changed between deploys" in run.stdout \
        + run.stderr
