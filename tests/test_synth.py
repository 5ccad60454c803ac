"""Stack → document: elements, addresses, references, overrides, aspects, moved, terraform."""

from __future__ import annotations

from typing import Any

import pytest

from edgekit import (
    DELETE,
    App,
    Construct,
    DataSource,
    Local,
    LocalState,
    Module,
    Output,
    Provider,
    R2State,
    Resource,
    Stack,
    SynthError,
    Variable,
)
from edgekit.core.synth import run_aspects
from tests.conftest import ACCOUNT


def doc(app: App, name: str = "test") -> dict[str, Any]:
    (result,) = [r for r in app.synth_results() if r.stack.name == name]
    return result.document


def problems(app: App) -> list[str]:
    with pytest.raises(SynthError) as err:
        app.synth_results()
    return [str(p) for p in err.value.problems]


class Server(Construct):
    """A tiny L2: its main resource is the child called Resource."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.resource = Resource(self, "Resource", type="hcloud_server",
                                 config={"name": id, "server_type": "cx23", "image": "debian-12"})
        self.ip = Resource(self, "ip", type="hcloud_primary_ip", config={"name": id})


def test_every_element_kind_lands_in_its_section(app: App, stack: Stack) -> None:
    token = Variable(stack, "token", type="string", sensitive=True)
    Provider(stack, "hcloud", type="hcloud", config={"token": token.ref()})
    Provider(stack, "hcloud-eu", type="hcloud", alias="eu", config={"token": token.ref()})
    image = DataSource(stack, "debian", type="hcloud_image", config={"name": "debian-12"})
    server = Resource(stack, "edge-1", type="hcloud_server",
                      config={"image": image.attr("id")}, provider=app.stacks[0].node
                      .find_child("hcloud-eu"))  # type: ignore[arg-type]
    Local(stack, "name", value=f"edge-{server.attr('id')}")
    Module(stack, "net", source="./modules/net", inputs={"cidr": "10.0.0.0/16"})
    Output(stack, "ip", value=server.attr("ipv4_address"))
    d = doc(app)
    assert d["resource"]["hcloud_server"]["edge_1"] == {
        "image": "${data.hcloud_image.debian.id}", "provider": "hcloud.eu",
    }
    assert d["data"]["hcloud_image"]["debian"] == {"name": "debian-12"}
    assert d["provider"]["hcloud"] == [{"token": "${var.token}"},
                                       {"token": "${var.token}", "alias": "eu"}]
    assert d["locals"] == {"name": "edge-${hcloud_server.edge_1.id}"}
    assert d["module"]["net"] == {"source": "./modules/net", "cidr": "10.0.0.0/16"}
    assert d["output"]["ip"] == {"value": "${hcloud_server.edge_1.ipv4_address}"}
    assert d["variable"]["token"] == {"type": "string", "sensitive": True}


def test_logical_ids_follow_the_path_and_hide_resource(app: App, stack: Stack) -> None:
    edge = Construct(stack, "edge")
    Server(edge, "node-1")
    d = doc(app)
    assert set(d["resource"]["hcloud_server"]) == {"edge_node_1"}
    assert set(d["resource"]["hcloud_primary_ip"]) == {"edge_node_1_ip"}


def test_address_collision_names_both_paths(app: App, stack: Stack) -> None:
    Resource(stack, "edge-1", type="random_id", config={"byte_length": 4})
    Resource(stack, "edge_1", type="random_id", config={"byte_length": 4})
    (line,) = problems(app)
    assert line.startswith("[test/edge_1] random_id.edge_1: address collides with test/edge-1")


def test_addresses_of_every_kind_are_told_apart_and_found_when_read_first(
        app: App, stack: Stack) -> None:
    # read before any of them exists in tree order: resolved at the end of the stack
    Output(stack, "early", value="${random_id.r_1.hex} ${data.random_id.r_1.id} ${var.v_1} "
                                 "${local.v_1} ${module.m.y} ${local.missing}")
    Resource(stack, "r-1", type="random_id", config={"byte_length": 4})
    DataSource(stack, "r_1", type="random_id", config={})  # data.random_id.r_1: another
    Variable(stack, "v-1", type="string")
    Local(stack, "v_1", value=1)  # local.v_1, not var.v_1
    Module(stack, "m", source="./m")
    Provider(stack, "p1", type="random")
    Provider(stack, "p2", type="random")  # the same address as p1: provider.random
    assert problems(app) == [
        "[test/p2] provider.random: address collides with test/p1; give one of them "
        "another id",
        "[test/early] output.early: reference to local.missing, which is not in stack "
        "'test' @ $.value"]


def test_dangling_reference_is_reported_with_its_pointer(app: App, stack: Stack) -> None:
    other = Stack(app, "other", state=LocalState(), encryption=None)
    foreign = Resource(other, "x", type="random_id", config={"byte_length": 4})
    Resource(stack, "a", type="random_id",
             config={"keepers": {"k": foreign.attr("hex"), "typo": "${random_id.b.hex}"}})
    lines = problems(app)
    assert "[test/a] random_id.a: reference to random_id.b, which is not in stack 'test' " \
        "@ $.keepers.typo" in lines
    # A Ref to another stack's element is a cross-stack reference (tests/test_crossref.py),
    # not a dangling one.
    assert not [line for line in lines if "random_id.x" in line]


def test_reference_hint_suggests_a_close_address(app: App, stack: Stack) -> None:
    Resource(stack, "edge", type="random_id", config={"byte_length": 4})
    Output(stack, "o", value="${random_id.egde.hex}")
    (line,) = problems(app)
    assert line.endswith("did you mean random_id.edge? @ $.value")


def test_depends_on_and_unknown_provider_alias_are_checked(app: App, stack: Stack) -> None:
    a = Resource(stack, "a", type="random_id", config={"byte_length": 4})
    Resource(stack, "b", type="random_id", config={"byte_length": 4}, depends_on=[a])
    d = doc(app)
    assert d["resource"]["random_id"]["b"]["depends_on"] == ["random_id.a"]
    c = Resource(stack, "c", type="random_id", config={"byte_length": 4})
    c.override("provider", "random.nowhere")
    c.override("depends_on", ["random_id.zzz"])
    lines = problems(app)
    assert any("reference to random_id.zzz" in line for line in lines)
    assert any("provider configuration 'random.nowhere' is not in the stack" in line
               for line in lines)


def test_every_problem_is_reported_at_once(app: App, stack: Stack) -> None:
    Output(stack, "a", value="${var.missing_a}")
    Output(stack, "b", value="${var.missing_b}")
    Resource(stack, "c", type="random_id", config={"bad": {1, 2}})
    assert len(problems(app)) == 3


def test_unrenderable_value_names_its_pointer(app: App, stack: Stack) -> None:
    Resource(stack, "c", type="random_id", config={"keepers": {"when": object()}})
    (line,) = problems(app)
    assert "cannot write a object as JSON" in line and line.endswith("@ $.keepers.when")


def test_override_sets_and_deletes_deep_paths(app: App, stack: Stack) -> None:
    r = Resource(stack, "r", type="random_id", config={"byte_length": 4, "keepers": {"a": "1"}})
    r.override("lifecycle.ignore_changes", ["keepers"])
    r.override("keepers.a", DELETE)
    r.override("keepers.b", "2")
    stack.override("terraform.backend.s3.key", "custom/state")
    d = doc(app)
    assert d["resource"]["random_id"]["r"] == {
        "byte_length": 4, "keepers": {"b": "2"}, "lifecycle": {"ignore_changes": ["keepers"]},
    }
    assert d["terraform"]["backend"]["s3"]["key"] == "custom/state"


def test_override_into_a_list_index(app: App, stack: Stack) -> None:
    r = Resource(stack, "r", type="hcloud_server", config={"network": [{"ip": "a"}]})
    r.override("network.0.ip", "10.0.0.5")
    assert doc(app)["resource"]["hcloud_server"]["r"]["network"] == [{"ip": "10.0.0.5"}]
    r.override("network.5.ip", "x")
    (line,) = problems(app)
    assert "override failed" in line and "'5' is not an index of a list of 1 items" in line


def test_overrides_do_not_mutate_the_callers_config(app: App, stack: Stack) -> None:
    shared = {"keepers": {"a": "1"}}
    r = Resource(stack, "r", type="random_id", config=shared)
    r.override("keepers.a", "2")
    doc(app)
    assert shared == {"keepers": {"a": "1"}}


def test_stack_overrides_and_testing_synth_leave_shared_config_alone(
    app: App, stack: Stack
) -> None:
    """Bodies share plain nested data with the elements' config (copy on write): a stack
    override copies what it changes, and `edgekit.testing.synth` returns its own copy."""
    from edgekit.testing import synth

    shared = {"keepers": {"a": "1"}, "list": [{"x": 1}]}
    Resource(stack, "r", type="random_id", config=shared)
    boot = {"secrets": {"t": "x"}}
    Local(stack, "boot", value=boot)
    stack.override("resource.random_id.r.keepers.a", "2")
    stack.override("resource.random_id.r.list.0.x", 2)
    stack.override("locals.boot.secrets.t", "y")
    document = doc(app)
    assert document["resource"]["random_id"]["r"]["keepers"] == {"a": "2"}
    assert document["resource"]["random_id"]["r"]["list"] == [{"x": 2}]
    assert document["locals"]["boot"] == {"secrets": {"t": "y"}}
    assert shared == {"keepers": {"a": "1"}, "list": [{"x": 1}]}
    assert boot == {"secrets": {"t": "x"}}
    copied = synth(stack)
    copied["locals"]["boot"]["secrets"]["t"] = "z"
    assert boot == {"secrets": {"t": "x"}}


def test_aspects_visit_every_construct_below_them_once(app: App, stack: Stack) -> None:
    seen: list[str] = []

    class Tagger:
        def visit(self, construct: Construct) -> None:
            seen.append(construct.node.path)
            if isinstance(construct, Resource) and construct.type == "hcloud_server":
                construct.config.setdefault("labels", {})["managed-by"] = "edgekit"

    Server(stack, "s1")
    stack.node.add_aspect(Tagger())
    d = doc(app)
    assert seen == ["test", "test/s1", "test/s1/Resource", "test/s1/ip"]
    assert d["resource"]["hcloud_server"]["s1"]["labels"] == {"managed-by": "edgekit"}
    doc(app)  # a second synth does not run aspects again
    assert len(seen) == 4


def test_an_aspect_deep_in_the_tree_runs_and_another_tree_has_none(app: App,
                                                                   stack: Stack) -> None:
    seen: list[str] = []

    class Seen:
        def visit(self, construct: Construct) -> None:
            seen.append(construct.node.path)

    other = App(outdir=app.outdir.parent / "other")
    Server(Stack(other, "elsewhere", state=LocalState()), "s")
    Server(stack, "s1")
    stack.node.find_child("s1").node.find_child("Resource").node.add_aspect(Seen())
    doc(app)
    assert seen == ["test/s1/Resource"]
    run_aspects(other)  # this tree has no aspect: nothing visits it
    assert seen == ["test/s1/Resource"]


def test_renamed_construct_emits_moved_blocks(app: App, stack: Stack) -> None:
    server = Server(stack, "edge-a")
    server.node.renamed_from("edge-1")
    Module(stack, "network", source="./m").node.renamed_from("net")
    d = doc(app)
    assert d["moved"] == [
        {"from": "hcloud_primary_ip.edge_1_ip", "to": "hcloud_primary_ip.edge_a_ip"},
        {"from": "hcloud_server.edge_1", "to": "hcloud_server.edge_a"},
        {"from": "module.net", "to": "module.network"},
    ]


def test_terraform_block_has_r2_backend_and_enforced_encryption(app: App, stack: Stack) -> None:
    Resource(stack, "r", type="random_id", config={"byte_length": 4})
    tf = doc(app)["terraform"]
    assert tf["required_version"] == ">= 1.10.0"
    assert tf["required_providers"] == {
        "random": {"source": "hashicorp/random", "version": "= 3.9.0"},
    }
    s3 = tf["backend"]["s3"]
    assert s3["endpoints"] == {"s3": f"https://{ACCOUNT}.r2.cloudflarestorage.com"}
    assert s3["region"] == "auto" and s3["use_lockfile"] is True and s3["use_path_style"] is True
    for flag in ("skip_credentials_validation", "skip_region_validation",
                 "skip_requesting_account_id", "skip_metadata_api_check", "skip_s3_checksum"):
        assert s3[flag] is True
    assert s3["key"] == "test/terraform.tfstate"
    enc = tf["encryption"]
    assert enc["key_provider"]["pbkdf2"]["edgekit"]["passphrase"] == "${var.state_passphrase}"
    assert enc["state"] == {"method": "method.aes_gcm.edgekit", "enforced": True}
    assert enc["plan"] == {"method": "method.aes_gcm.edgekit", "enforced": True}
    assert doc(app)["variable"]["state_passphrase"]["sensitive"] is True


def test_encryption_opt_out_is_explicit(app: App) -> None:
    Stack(app, "plain", state=R2State(account_id=ACCOUNT, bucket="edgekit-state"),
          encryption=None)
    d = doc(app, "plain")
    assert "encryption" not in d["terraform"]
    assert "variable" not in d


def test_reserved_passphrase_variable_is_an_error(app: App, stack: Stack) -> None:
    Variable(stack, "state_passphrase", type="string")
    (line,) = problems(app)
    assert "reserved for state encryption" in line


def test_unpinned_provider_is_an_error(app: App, stack: Stack) -> None:
    Resource(stack, "r", type="aws_instance", config={})
    (line,) = problems(app)
    assert "provider 'aws' is not pinned by edgekit" in line


def test_r2_state_rejects_a_bad_account_id() -> None:
    with pytest.raises(ValueError, match="account_id"):
        R2State(account_id="not-hex", bucket="edgekit-state")


def test_testing_helpers_fail_with_a_readable_diff(app: App, stack: Stack) -> None:
    from edgekit.testing import assert_resource, synth

    Resource(stack, "r", type="random_id", config={"byte_length": 4})
    document = synth(stack)
    assert_resource(document, "random_id", "r", {"byte_length": 4})
    with pytest.raises(AssertionError, match=r'-  "byte_length": 8'):
        assert_resource(document, "random_id", "r", {"byte_length": 8})
    with pytest.raises(AssertionError, match=r"no resource random_id\.x \(found: random_id\.r\)"):
        assert_resource(document, "random_id", "x", {})
