"""Emitted blocks are checked against the committed provider schemas, in pure Python."""

from __future__ import annotations

import pytest

from edgekit import App, DataSource, LocalState, Provider, Resource, Stack, SynthError


@pytest.fixture
def checked(tmp_path: object) -> tuple[App, Stack]:
    app = App(outdir=f"{tmp_path}/out")
    return app, Stack(app, "s", state=LocalState(), encryption=None)


def lines(app: App) -> list[str]:
    with pytest.raises(SynthError) as err:
        app.synth()
    assert not (app.outdir).exists()
    return [str(p) for p in err.value.problems]


SERVER = {"name": "n", "server_type": "cx23", "image": "debian-12"}


def test_a_valid_server_passes(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "ok", type="hcloud_server",
             config={**SERVER, "public_net": {"ipv4_enabled": True}, "labels": {"a": "b"}})
    app.synth()
    assert (app.outdir / "stacks/s/cdk.tf.json").is_file()


def test_unknown_attribute_with_suggestion(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "edge-1", type="hcloud_server", config={**SERVER, "server_typ": "x"})
    assert lines(app) == [
        "[s/edge-1] hcloud_server.edge_1: unknown attribute 'server_typ'; did you mean "
        "'server_type'? @ $.server_typ"
    ]


def test_missing_required_attribute(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "edge-1", type="hcloud_server", config={"name": "n", "image": "debian-12"})
    assert lines(app) == [
        "[s/edge-1] hcloud_server.edge_1: missing required attribute 'server_type' (string) "
        "@ $.server_type"
    ]


def test_block_written_as_attribute(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "edge-1", type="hcloud_server", config={**SERVER, "public_net": "yes"})
    (line,) = lines(app)
    assert "'public_net' is a block: write it as an object or a list of objects, not string" \
        in line and line.endswith("@ $.public_net")


def test_attribute_written_as_block(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "edge-1", type="hcloud_server", config={**SERVER, "image": {"id": 1}})
    (line,) = lines(app)
    assert "'image' is a string attribute, not a block: got an object @ $.image" in line


def test_wrong_primitive_type_inside_a_block(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "edge-1", type="hcloud_server",
             config={**SERVER, "public_net": {"ipv4_enabled": "maybe"}})
    (line,) = lines(app)
    assert "expected bool, got string 'maybe' @ $.public_net.ipv4_enabled" in line


def test_numbers_and_bools_convert_like_tofu(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "pw", type="random_password",
             config={"length": "32", "special": "false", "override_special": 5})
    app.synth()


def test_expressions_are_not_type_checked(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    pw = Resource(stack, "pw", type="random_password", config={"length": 32})
    Resource(stack, "id", type="random_id", config={"byte_length": pw.attr("length")})
    app.synth()


def test_read_only_attribute_cannot_be_set(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "pw", type="random_password", config={"length": 32, "result": "x"})
    (line,) = lines(app)
    assert "'result' is read-only (computed by the provider)" in line


def test_unknown_resource_type_suggests_a_close_one(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "x", type="hcloud_servr", config={})
    (line,) = lines(app)
    assert "unknown resource type 'hcloud_servr' for provider hcloud 1.68.0; did you mean " \
        "'hcloud_server'?" in line


def test_data_sources_and_providers_are_checked(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Provider(stack, "hcloud", type="hcloud", config={"tokn": "x"})
    DataSource(stack, "img", type="hcloud_image", config={"nam": "debian-12"})
    found = lines(app)
    assert any("provider.hcloud: unknown attribute 'tokn'" in line for line in found)
    assert any("data.hcloud_image.img: unknown attribute 'nam'" in line for line in found)


def test_cloudflare_nested_attributes_are_objects_not_blocks(checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "t", type="cloudflare_zero_trust_tunnel_cloudflared_config", config={
        "account_id": "a", "tunnel_id": "t",
        "config": [{"ingress": [{"service": "http_status:404"}]}],
    })
    (line,) = lines(app)
    assert "'config' is a single nested attribute: write one object, not a list @ $.config" \
        in line


def test_dynamic_blocks_are_checked_against_the_block_they_generate(
        checked: tuple[App, Stack]) -> None:
    app, stack = checked
    Resource(stack, "ok", type="hcloud_firewall", config={"name": "ok", "dynamic": {"rule": {
        "for_each": "${[22]}", "iterator": "p",
        "content": {"direction": "in", "protocol": "tcp", "port": "${p.value}",
                    "source_ips": ["10.0.0.0/8"]}}}})
    Resource(stack, "bad", type="hcloud_firewall", config={"name": "bad", "dynamic": {
        "rules": {"for_each": "${[1]}", "content": {}},
        "rule": {"for_each": "${[1]}", "content": {"direction": "in", "protocl": "tcp"},
                 "iterater": "x"},
    }})
    assert lines(app) == [
        "[s/bad] hcloud_firewall.bad: no nested block type 'rules' to generate; did you mean "
        "'rule'? @ $.dynamic.rules",
        "[s/bad] hcloud_firewall.bad: unknown argument 'iterater' of a dynamic block "
        "(for_each, iterator, labels, content) @ $.dynamic.rule.iterater",
        "[s/bad] hcloud_firewall.bad: unknown attribute 'protocl'; did you mean 'protocol'? "
        "@ $.dynamic.rule.content.protocl",
        "[s/bad] hcloud_firewall.bad: missing required attribute 'protocol' (string) "
        "@ $.dynamic.rule.content.protocol",
    ]
