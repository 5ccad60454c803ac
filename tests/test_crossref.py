"""Cross-stack references: remote state on the consumer, outputs on the producer, the
dependencies in manifest.json, cycles, stack order; and `import_id` → import blocks.

The same references resolve through real remote state in tests/test_ops.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgekit import App, DataSource, LocalState, Output, Resource, Stack, SynthError
from edgekit.core.crossref import stack_order
from edgekit.core.errors import ConstructError
from edgekit.core.stack import S3State, StateEncryption
from tests.conftest import Tofu

S3 = S3State(endpoint="http://127.0.0.1:9000", bucket="state")


def docs(app: App) -> dict[str, Any]:
    app.synth()
    out = app.outdir
    result = {p.parent.name: json.loads(p.read_text())
              for p in sorted((out / "stacks").glob("*/cdk.tf.json"))}
    result["manifest"] = json.loads((out / "manifest.json").read_text())
    return result


def problems(app: App) -> str:
    with pytest.raises(SynthError) as err:
        app.synth()
    return str(err.value)


def test_attribute_of_another_stack_becomes_remote_state_and_output(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=S3)
    rid = Resource(net, "id", type="random_id", config={"byte_length": 4})
    web = Stack(app, "web", state=S3)
    Resource(web, "use", type="terraform_data", config={"input": rid.attr("hex")})
    d = docs(app)
    assert d["web"]["resource"]["terraform_data"]["use"]["input"] == \
        "${data.terraform_remote_state.net.outputs.xref_random_id_id_hex}"
    remote = d["web"]["data"]["terraform_remote_state"]["net"]
    assert remote["backend"] == "s3"
    assert remote["config"]["key"] == "net/terraform.tfstate"
    assert remote["config"]["endpoints"] == {"s3": "http://127.0.0.1:9000"}
    assert "use_lockfile" not in remote["config"]
    assert d["net"]["output"]["xref_random_id_id_hex"]["value"] == "${random_id.id.hex}"
    # the consumer decrypts the producer's state with the shared method
    sources = d["web"]["terraform"]["encryption"]["remote_state_data_sources"]
    assert sources == {"remote_state_data_source": {"net": {"method": "method.aes_gcm.edgekit"}}}
    assert d["manifest"]["stacks"]["web"]["dependencies"] == ["net"]
    assert d["manifest"]["stacks"]["net"]["dependencies"] == []
    assert app.ordered_stacks() == ["net", "web"]


def test_reading_a_named_output_and_a_sensitive_attribute(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    web = Stack(app, "web", state=S3)  # declared first: the order still puts net first
    net = Stack(app, "net", state=S3)
    pw = Resource(net, "pw", type="random_password", config={"length": 20})
    Output(net, "region", value="eu")
    Resource(web, "a", type="terraform_data",
             config={"input": [net.output("region"), pw.attr("result")]})
    d = docs(app)
    assert d["web"]["resource"]["terraform_data"]["a"]["input"] == [
        "${data.terraform_remote_state.net.outputs.region}",
        "${sensitive(data.terraform_remote_state.net.outputs.xref_random_password_pw_result)}",
    ]
    assert d["net"]["output"]["xref_random_password_pw_result"]["sensitive"] is True
    assert app.ordered_stacks() == ["net", "web"]


def test_missing_output_is_a_problem_naming_the_stack(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=S3)
    Output(net, "region", value="eu")
    web = Stack(app, "web", state=S3)
    Resource(web, "a", type="terraform_data", config={"input": net.output("regoin")})
    text = problems(app)
    assert "another stack reads output 'regoin', which stack 'net' does not have " \
        "(outputs: region)" in text
    assert not (tmp_path / "out").exists()


def test_reading_own_output_is_refused(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=S3)
    Output(net, "region", value="eu")
    Resource(net, "a", type="terraform_data", config={"input": net.output("region")})
    assert "output.region is an output of this stack" in problems(app)


def test_cycle_is_an_error_naming_the_stacks(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    a = Stack(app, "a", state=S3)
    b = Stack(app, "b", state=S3)
    ra = Resource(a, "x", type="random_id", config={"byte_length": 4})
    rb = Resource(b, "y", type="random_id", config={"byte_length": 4, "keepers": {
        "k": ra.attr("hex")}})
    ra.config["keepers"] = {"k": rb.attr("hex")}
    text = problems(app)
    assert "stacks depend on each other in a cycle: a → b → a" in text
    assert not (tmp_path / "out").exists()


def test_explicit_dependencies_order_stacks_and_cycles_through_them(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    env = Stack(app, "env", state=S3)
    zone = Stack(app, "zone", state=S3)
    boot = Stack(app, "bootstrap", state=S3)
    for s in (env, zone, boot):
        Resource(s, "x", type="terraform_data", config={})
    env.add_dependency(zone)
    zone.add_dependency(boot)
    assert app.ordered_stacks() == ["bootstrap", "zone", "env"]
    assert docs(app)["manifest"]["stacks"]["env"]["dependencies"] == ["zone"]
    boot.add_dependency(env)
    assert "bootstrap → env → zone → bootstrap" in problems(app)
    with pytest.raises(ValueError, match="itself"):
        env.add_dependency(env)


def test_stack_order_is_stable_and_refuses_cycles() -> None:
    deps = {"c": ["a"], "b": [], "a": []}
    assert stack_order(["c", "b", "a"], deps) == ["b", "a", "c"]
    assert stack_order(["c"], deps) == ["c"]  # dependencies outside the selection ignored
    with pytest.raises(ValueError, match="cycle"):
        stack_order(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_encrypted_producer_needs_the_same_encryption(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=S3)
    rid = Resource(net, "id", type="random_id", config={"byte_length": 4})
    plain = Stack(app, "plain", state=S3, encryption=None)
    Resource(plain, "a", type="terraform_data", config={"input": rid.attr("hex")})
    other = Stack(app, "other", state=S3, encryption=StateEncryption(name="other"))
    Resource(other, "a", type="terraform_data", config={"input": rid.attr("hex")})
    text = problems(app)
    assert "[plain] reads the encrypted state of stack 'net' but has no state encryption" \
        in text
    assert "[other] reads the state of stack 'net', encrypted with other settings" in text


@pytest.mark.parametrize(("given", "seen"), [
    (None, "../../../.edgekit/state/net/terraform.tfstate"),  # the default, beside the output
    ("../../../keep/net.tfstate", "../../../keep/net.tfstate"),
    ("/srv/state/net.tfstate", "/srv/state/net.tfstate"),
])
def test_local_producer_is_read_where_it_keeps_its_state(tmp_path: Path, given: str | None,
                                                         seen: str) -> None:
    """A relative path is the producer's, seen from its folder: the consumer (a sibling
    folder) reads the same file."""
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=LocalState(path=given), encryption=None)
    rid = Resource(net, "id", type="random_id", config={"byte_length": 4})
    web = Stack(app, "web", state=LocalState(), encryption=None)
    Resource(web, "a", type="terraform_data", config={"input": rid.attr("hex")})
    remote = docs(app)["web"]["data"]["terraform_remote_state"]["net"]
    assert remote == {"backend": "local", "config": {"path": seen}}


def test_consumer_test_file_overrides_the_remote_state(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=S3)
    rid = Resource(net, "id", type="random_id", config={"byte_length": 4})
    web = Stack(app, "web", state=S3)
    Resource(web, "a", type="terraform_data", config={"input": rid.attr("hex")})
    app.synth()
    test = json.loads((tmp_path / "out/stacks/web/edgekit.tftest.json").read_text())
    assert test["override_data"] == [{
        "target": "data.terraform_remote_state.net",
        "values": {"outputs": {"xref_random_id_id_hex": "mock-xref_random_id_id_hex"}},
    }]
    assert "mock_provider" not in test  # terraform_data is built in, nothing to mock


def test_import_id_emits_an_import_block(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    s = Stack(app, "s", state=S3)
    Resource(s, "b", type="random_id", config={"byte_length": 4}, import_id="q83vEg")
    Resource(s, "a", type="random_id", config={"byte_length": 4}, import_id="AAAA")
    assert docs(app)["s"]["import"] == [
        {"id": "AAAA", "to": "random_id.a"}, {"id": "q83vEg", "to": "random_id.b"},
    ]
    with pytest.raises(ConstructError, match=r"\[s/c\] import_id must be a non-empty string"):
        Resource(s, "c", type="random_id", import_id="")
    DataSource(s, "d", type="random_id", import_id="x")
    assert "[s/d] data.random_id.d: a data source cannot be imported" in problems(app)


@pytest.mark.tools
def test_consumer_passes_tofu_test_without_the_producers_state(
    tmp_path: Path, tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    """The generated test overrides the remote state: no other stack's state is needed."""
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=S3)
    pw = Resource(net, "pw", type="random_password", config={"length": 20})
    web = Stack(app, "web", state=S3)
    Resource(web, "a", type="terraform_data", config={"input": pw.attr("result")})
    Resource(web, "b", type="random_id", config={"byte_length": 4})
    app.synth()
    folder = stack_dir_copy(tmp_path / "out/stacks/web")
    assert tofu.init(folder).returncode == 0
    validate = tofu(folder, "validate")
    assert validate.returncode == 0, validate.stderr
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "2 passed, 0 failed" in test.stdout


def test_a_foreign_read_inside_a_string_says_where_it_is(tmp_path: Path) -> None:
    app = App(outdir=tmp_path / "out")
    net = Stack(app, "net", state=S3)
    rid = Resource(net, "id", type="random_id", config={"byte_length": 4})
    web = Stack(app, "web", state=S3)
    Resource(web, "a", type="terraform_data", config={"input": f"id-{rid.attr('hex')}"})
    text = problems(app)
    assert ("[web/a] terraform_data.a: reference to random_id.id, which is not in stack "
            "'web'; it is in stack 'net': pass the Ref itself as the value (not inside a "
            "string) to read it through that stack's remote state @ $.input") in text
