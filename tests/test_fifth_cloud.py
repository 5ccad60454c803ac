"""A fifth cloud is one module (issue 23): `tests/fake_cloud.py` is registered the way a new
module under `edgekit/clouds/` would be, and the same public constructs and the same check
rules work on it: its firewalls are checked (EK101, EK103), its names (EK141, EK142), its
lifecycle (EK171 and the node's ``ignore_changes``), and a resource type it does not
describe is reported (EK190), not skipped. Outside the module it needs only what the issue
allows: its name in CUE's ``#Provider`` (here: the exported JSON Schemas, copied with the
name added) and its provider schema (the provider schema check is off, as there is none)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgekit import App, LocalState, PrivateNetwork, Resource, Stack, SynthError, Variable, VpsNode
from edgekit.clouds import CLOUDS, kind_of, registered
from edgekit.ops.graph import build
from edgekit.providers.pins import PINS
from tests import fake_cloud
from tests.conftest import ROOT

FAKE: Any = "fakecloud"  # not a name the type checker knows: the point of the test


@pytest.fixture
def fakecloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    schemas = tmp_path / "schemas"
    shutil.copytree(ROOT / "edgekit/schema/cue", schemas)
    for path in schemas.glob("*.json"):  # as `cue def` exports #Provider with the new name
        data = json.loads(path.read_text())
        provider = data.get("$defs", {}).get("Provider")
        if provider is not None:
            provider["enum"].append(FAKE)
            path.write_text(json.dumps(data))
    monkeypatch.setenv("EDGEKIT_SCHEMA_DIR", str(schemas))
    with registered(fake_cloud.CLOUD):
        yield


def node(stack: Stack, name: str, net: PrivateNetwork | None = None) -> VpsNode:
    return VpsNode(stack, name, provider=FAKE, region="singapore", size="small",
                   networks=[net] if net else [], admin_ssh_cidrs=["203.0.113.7/32"],
                   repository="github:example/estate", ref="deploy/prod", roles=["edge"])


def test_a_node_on_the_fifth_cloud_synthesizes(fakecloud: None, tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    stack = Stack(app, "prod", state=LocalState())
    node(stack, "edge-1", PrivateNetwork(stack, "net", provider=FAKE, region="singapore"))
    (result,) = app.synth_results()
    doc = result.document
    server = doc["resource"]["fake_server"]["edge_1"]
    assert server["zone"] == "fk-sin" and server["flavor"] == "f1"
    assert server["lifecycle"]["ignore_changes"] == ["boot_script"]  # first boot only
    assert doc["provider"]["fake"] == [{"token": "${var.fake_token}"}]
    assert doc["terraform"]["required_providers"]["fake"] == {"source": "example/fake",
                                                              "version": "= 0.1.0"}
    assert PINS["fake"].version == "0.1.0"
    assert "firewall-closed" in json.dumps(app.synth_files()["stacks/prod/edgekit.tftest.json"]
                                           .decode())
    labels, _ = build({"prod": doc})
    assert labels["prod"]["prod/fake_server.edge_1"] == "node: edge_1"


def test_the_rules_check_the_fifth_cloud(fakecloud: None, tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    prod = Stack(app, "prod", state=LocalState())
    node(prod, "edge-1")
    revision = Variable(prod, "deploy_revision", type="string")
    Resource(prod, "rogue", type="fake_server", config={
        "name": "a-name-far-too-long", "zone": "fk-sin", "flavor": "f1",
        "boot_script": f"echo {revision.ref()}"})
    Resource(prod, "open", type="fake_firewall", config={
        "name": "open", "allow": [{"port": "1:2", "from": ["0.0.0.0/0"]}]})
    Resource(prod, "thing", type="fake_thing", config={})
    staging = Stack(app, "staging", state=LocalState())
    node(staging, "edge-1")
    with pytest.raises(SynthError) as raised:
        app.synth_results()
    found = {(p.address, p.message.split(" ", 1)[0]) for p in raised.value.problems}
    assert found == {
        ("fake_firewall.open", "EK101"),  # open to the internet: the kind's inbound rules
        ("fake_firewall.open", "EK103"),  # port not in the provider's format
        ("fake_server.rogue", "EK141"),  # name longer than the kind allows
        ("fake_server.rogue", "EK171"),  # replace-forcing argument on every deploy
        ("fake_server.edge_1", "EK142"),  # the same name in prod and staging, one project
    }
    messages = " | ".join(p.message for p in raised.value.problems)
    assert "names are unique per fakecloud project" in messages
    warnings = [(f.address, f.severity) for f in app.rule_findings if f.rule == "EK190"]
    assert warnings == [("fake_thing.thing", "warning")]  # a type it does not describe


def test_a_type_the_fifth_cloud_does_not_describe_is_reported(fakecloud: None,
                                                              tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    prod = Stack(app, "prod", state=LocalState())
    Resource(prod, "thing", type="fake_thing", config={})
    app.synth_results()
    (warning,) = [f for f in app.rule_findings if f.rule == "EK190"]
    assert warning.address == "fake_thing.thing" and warning.severity == "warning"
    assert "edgekit's fakecloud adapter does not describe" in warning.message
    assert kind_of("fake_server") is fake_cloud.KINDS["fake_server"]


def test_registration_ends_with_the_block(fakecloud: None) -> None:
    assert "fakecloud" in CLOUDS


def test_nothing_of_the_fifth_cloud_outlives_its_registration() -> None:
    assert "fakecloud" not in CLOUDS and "fake" not in PINS and kind_of("fake_server") is None
