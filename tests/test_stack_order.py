"""Stack order from references (ADR 0020): a value another stack establishes and that is
known at synth time (`Stack.known`) is written as the literal where it is used, and still
orders the stacks in manifest.json; the reference estate's order bootstrap → zone →
environments comes from such references, not from a hand-written list."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from edgekit import App, Resource, Stack, SynthError
from edgekit.core.refs import Known
from edgekit.core.stack import S3State
from stacks import make_app

ENDPOINT = "http://127.0.0.1:9000"


def manifest(app: App) -> dict[str, Any]:
    app.synth()
    data: dict[str, Any] = json.loads((app.outdir / "manifest.json").read_text())
    return data


def test_known_value_is_the_literal_and_a_dependency(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    web = Stack(app, "web", state=S3State(endpoint=ENDPOINT, bucket="state"))  # first
    dns = Stack(app, "dns", state=S3State(endpoint=ENDPOINT, bucket="state"))
    zone_id = dns.known("f" * 32)
    assert zone_id == "f" * 32 and isinstance(zone_id, str)
    Resource(web, "use", type="terraform_data", config={"input": {"zone": zone_id}})
    data = manifest(app)
    doc = json.loads((app.outdir / "stacks/web/cdk.tf.json").read_text())
    assert doc["resource"]["terraform_data"]["use"]["input"] == {"zone": "f" * 32}
    assert "data" not in doc  # nothing read from remote state
    assert "output" not in json.loads((app.outdir / "stacks/dns/cdk.tf.json").read_text())
    assert data["stacks"]["web"]["dependencies"] == ["dns"]
    assert app.ordered_stacks() == ["dns", "web"]


def test_known_bucket_in_the_state_settings_is_a_dependency(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    plain = Stack(app, "plain", state=S3State(endpoint=ENDPOINT, bucket="estate-state"))
    boot = Stack(app, "boot", state=S3State(endpoint=ENDPOINT, bucket="other"))
    Stack(app, "env", state=S3State(endpoint=ENDPOINT, bucket=boot.known("estate-state")))
    data = manifest(app)
    for name in ("plain", "env"):  # the same document either way
        doc = json.loads((app.outdir / f"stacks/{name}/cdk.tf.json").read_text())
        assert doc["terraform"]["backend"]["s3"]["bucket"] == "estate-state"
    assert data["stacks"]["env"]["dependencies"] == ["boot"]
    assert data["stacks"]["plain"]["dependencies"] == []
    assert plain.dependencies == []


def test_a_cycle_through_known_values_is_an_error_naming_the_stacks(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    a = Stack(app, "a", state=S3State(endpoint=ENDPOINT, bucket="state"))
    b = Stack(app, "b", state=S3State(endpoint=ENDPOINT, bucket=a.known("state-a")))
    Resource(a, "x", type="terraform_data", config={"input": b.known("value-of-b")})
    with pytest.raises(SynthError) as err:
        app.synth()
    assert "stacks depend on each other in a cycle: a → b → a" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written


def test_known_value_of_a_stack_not_in_the_app_is_refused(tmp_path: Path) -> None:
    other = App(outdir=tmp_path / "other")
    elsewhere = Stack(other, "elsewhere", state=S3State(endpoint=ENDPOINT, bucket="state"))
    app = App(outdir=tmp_path / "out")
    here = Stack(app, "here", state=S3State(endpoint=ENDPOINT, bucket="state"))
    Resource(here, "x", type="terraform_data", config={"input": elsewhere.known("v")})
    with pytest.raises(SynthError) as err:
        app.synth()
    assert "uses 'v' of stack 'elsewhere', which is not in the app (stacks: here)" \
        in str(err.value)


def test_own_known_value_is_no_dependency_and_survives_pickling(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    solo = Stack(app, "solo", state=S3State(endpoint=ENDPOINT, bucket="state"))
    Resource(solo, "x", type="terraform_data", config={"input": solo.known("mine")})
    assert manifest(app)["stacks"]["solo"]["dependencies"] == []
    copy = pickle.loads(pickle.dumps(Known("v", "solo")))
    assert (copy, copy.stack) == ("v", "solo")


def test_reference_estate_order_comes_from_references(tmp_path: Path) -> None:
    app = make_app(tmp_path / "out")
    # nothing hand-written: no stack was told what to come after
    assert all(stack.dependencies == [] for stack in app.stacks)
    data = manifest(app)
    deps = {name: entry["dependencies"] for name, entry in data["stacks"].items()}
    assert deps == {"bootstrap": [], "example": [], "zone": ["bootstrap"],
                    "prod": ["bootstrap", "zone"], "staging": ["bootstrap", "zone"]}
    order = app.ordered_stacks()
    assert order.index("bootstrap") < order.index("zone") < order.index("prod")
    assert order.index("zone") < order.index("staging")
    # the literals, not remote-state reads: plain `tofu init` still works per stack
    prod = json.loads((app.outdir / "stacks/prod/cdk.tf.json").read_text())
    assert prod["terraform"]["backend"]["s3"]["bucket"] == "edgekit-state"
    assert "terraform_remote_state" not in prod.get("data", {})
