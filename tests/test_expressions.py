"""The reference checker accepts every valid OpenTofu expression and still finds every
dangling reference: iterators of ``dynamic`` blocks, ``for`` expressions and ``%{ for }``
directives, and the built-in roots are not addresses.

Hypothesis writes expressions from a small grammar of OpenTofu's expression language,
knowing which addresses each one reads; for a sample, the real ``tofu validate`` judges
the same documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit import (
    App,
    Local,
    LocalState,
    Output,
    Provider,
    Resource,
    Stack,
    SynthError,
    Variable,
)
from edgekit.core.refs import referenced_addresses, template_addresses
from edgekit.core.render import find_reads, render
from tests.conftest import Tofu

# --- the cases the issue names -------------------------------------------------------------


def _stack(tmp_path: Path) -> tuple[App, Stack]:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    return app, Stack(app, "s", state=LocalState(), encryption=None)


def _problems(app: App) -> list[str]:
    with pytest.raises(SynthError) as err:
        app.synth_results()
    return [str(p) for p in err.value.problems]


FIREWALL_RULES = {"dynamic": {"rule": {
    "for_each": "${var.rules}",
    "content": {"direction": "in", "protocol": "tcp", "port": "${rule.value.port}",
                "source_ips": "${rule.value.cidrs}",
                "description": "${rule.key}: %{ for c in rule.value.cidrs }${c} %{ endfor }"},
}}}


def test_dynamic_block_iterator_is_not_a_reference(tmp_path: Path) -> None:
    app, stack = _stack(tmp_path)
    Variable(stack, "rules", type="any")
    Resource(stack, "fw", type="hcloud_firewall", config={"name": "fw", **FIREWALL_RULES})
    (result,) = app.synth_results()
    assert result.document["resource"]["hcloud_firewall"]["fw"]["dynamic"] == \
        FIREWALL_RULES["dynamic"]


def test_dynamic_block_with_own_iterator_and_nesting(tmp_path: Path) -> None:
    app, stack = _stack(tmp_path)
    Variable(stack, "groups", type="any")
    Resource(stack, "r", type="hcloud_load_balancer", config={"dynamic": [{"target": [{
        "for_each": "${var.groups}", "iterator": "grp",
        "content": {"type": "${grp.value.kind}", "dynamic": {"label": {
            "for_each": "${grp.value.labels}",
            "content": {"selector": "${label.value}-${grp.key}"}}}}}]}]})
    app.synth_results()


def test_iterators_do_not_leak_out_of_their_scope(tmp_path: Path) -> None:
    app, stack = _stack(tmp_path)
    Variable(stack, "rules", type="any")
    Resource(stack, "fw", type="hcloud_firewall", config={
        "name": "${rule.value}",  # outside the dynamic block: a dangling reference
        "dynamic": {"rule": {"for_each": "${rule.value}", "content": {"port": "${ruel.key}"}}},
    })
    assert _problems(app) == [
        "[s/fw] hcloud_firewall.fw: reference to ruel.key, which is not in stack 's' "
        "@ $.dynamic.rule.content.port",
        "[s/fw] hcloud_firewall.fw: reference to rule.value, which is not in stack 's' "
        "@ $.name",
        "[s/fw] hcloud_firewall.fw: reference to rule.value, which is not in stack 's' "
        "@ $.dynamic.rule.for_each",
    ]


def test_builtin_roots_and_for_names_are_not_addresses() -> None:
    expr = ('[for i, s in var.servers : "${s.name}-${i}-${each.key}-${count.index}" '
            'if s.enabled && self.id != path.module && terraform.workspace != ""]')
    assert sorted(referenced_addresses(expr)) == ["var.servers"]
    assert list(template_addresses("%{ for x in local.xs }${x.id}%{ endfor }${x.id}")) == \
        ["local.xs", "x.id"]  # the directive's name ends at endfor


# --- Hypothesis: expressions from a grammar, with the addresses they read -------------------

ADDRESSES = ["var.a", "var.b", "local.c", "terraform_data.d"]
ITERATORS = ["x", "item", "srv"]


@st.composite
def expressions(draw: st.DrawFn, names: frozenset[str] = frozenset(), depth: int = 0
                ) -> tuple[str, frozenset[str]]:
    """(expression, addresses it reads). Every value stays valid for `tofu validate`:
    collections come from variables (unknown, any type), branches are strings."""
    leaves = ["ref", "literal", "builtin"] + (["iterator"] if names else [])
    kinds = leaves if depth >= 3 else [*leaves, "call", "list", "object", "conditional",
                                       "for_list", "for_object", "template"]
    kind = draw(st.sampled_from(kinds))
    if kind == "ref":
        address = draw(st.sampled_from(ADDRESSES))
        suffix = ".output" if address.startswith("terraform_data") else draw(
            st.sampled_from(["", ".name", "[0]", '["k"]', ".a.b"]))
        return address + suffix, frozenset({address})
    if kind == "iterator":
        return draw(st.sampled_from(sorted(names))) + draw(
            st.sampled_from(["", ".id", ".value.port"])), frozenset()
    if kind == "literal":
        return draw(st.sampled_from(['"s"', "1", "true", "null", '"a.b"', '"${1}"'])), \
            frozenset()
    if kind == "builtin":
        return draw(st.sampled_from(["path.module", "terraform.workspace", "path.root"])), \
            frozenset()
    inner = expressions(names, depth + 1)
    if kind == "call":
        (a, ra), (b, rb) = draw(inner), draw(inner)
        return draw(st.sampled_from(["try({}, {})", "jsonencode([{}, {}])"])).format(a, b), \
            ra | rb
    if kind == "list":
        (a, ra), (b, rb) = draw(inner), draw(inner)
        return f"[{a}, {b}]", ra | rb
    if kind == "object":
        (a, ra) = draw(inner)
        return f"{{ key = {a}, \"q.r\" = 1 }}", ra
    if kind == "conditional":
        (a, ra), (b, rb), (c, rc) = draw(inner), draw(inner), draw(inner)
        return f"({a} == null ? jsonencode({b}) : jsonencode({c}))", ra | rb | rc
    if kind in ("for_list", "for_object"):
        collection = draw(st.sampled_from(["var.a", "var.b", "local.c"]))
        key, value = draw(st.sampled_from(ITERATORS)), draw(st.sampled_from(ITERATORS))
        if kind == "for_list":
            (body, rb) = draw(expressions(names | {value}, depth + 1))
            (cond, rc) = draw(expressions(names | {value}, depth + 1))
            return (f"[for {value} in {collection} : jsonencode({body}) "
                    f"if jsonencode({cond}) != \"\"]", rb | rc | {collection})
        if key == value:
            value = "other"
        (body, rb) = draw(expressions(names | {key, value}, depth + 1))
        return (f"{{for {key}, {value} in {collection} : jsonencode({key}) => {body}...}}",
                rb | {collection})
    (a, ra) = draw(inner)
    return f'"pre-${{jsonencode({a})}}-post"', ra


@st.composite
def templates(draw: st.DrawFn) -> tuple[str, frozenset[str]]:
    """A whole template string: interpolations, maybe inside a ``%{ for }`` directive."""
    (a, ra) = draw(expressions())
    if draw(st.booleans()):
        return f"a ${{jsonencode({a})}} $${{not.this}} b", ra
    name = draw(st.sampled_from(ITERATORS))
    (b, rb) = draw(expressions(frozenset({name})))
    return (f"%{{ for {name} in var.a ~}}${{jsonencode({b})}}%{{ endfor }}"
            f"${{jsonencode({a})}}", ra | rb | {"var.a"})


@settings(max_examples=400, deadline=None)
@given(expressions())
def test_generated_expressions_read_exactly_their_addresses(
        case: tuple[str, frozenset[str]]) -> None:
    expression, expected = case
    assert set(referenced_addresses(expression)) == expected, expression


@settings(max_examples=200, deadline=None)
@given(templates())
def test_generated_templates_read_exactly_their_addresses(
        case: tuple[str, frozenset[str]]) -> None:
    text, expected = case
    assert set(template_addresses(text)) == expected, text
    reads: set[str] = set()
    render({"dynamic": {"rule": {"for_each": "${var.b}", "content": {"v": text}}}}, reads)
    assert reads == expected | {"var.b"}
    for address in expected:
        assert list(find_reads({"v": text}, address)) == ["$.v"]


# --- the same documents through the real tofu validate ------------------------------------


def _document(tmp_path: Path, values: list[str]) -> Path:
    """A stack reading every address of ADDRESSES, with `values` as outputs and inside a
    dynamic block; synthesized by edgekit (which must accept it) into a folder."""
    app = App(outdir=tmp_path / "out")
    stack = Stack(app, "expr", state=LocalState(), encryption=None)
    Variable(stack, "a", type="any", default=[{"port": 22}])
    Variable(stack, "b", type="any", default=[])
    Local(stack, "c", value="${var.a}")
    Resource(stack, "d", type="terraform_data", config={"input": "${var.b}"})
    Variable(stack, "hcloud_token", type="string", sensitive=True, default="x" * 64)
    Provider(stack, "hcloud", type="hcloud", config={"token": "${var.hcloud_token}"})
    for i, value in enumerate(values):
        Output(stack, f"o{i}", value=value)
    Resource(stack, "fw", type="hcloud_firewall", config={"name": "fw", "dynamic": {"rule": {
        "for_each": "${var.a}",
        "content": {"direction": "in", "protocol": "tcp", "port": "${rule.value.port}",
                    "source_ips": ["0.0.0.0/0"],
                    "description": "${jsonencode([" + ", ".join(
                        [v[2:-1] if v.startswith("${") and v.endswith("}") else json.dumps(v)
                         for v in values[:3]]) + "])}"}}}})
    app.synth()
    return tmp_path / "out/stacks/expr"


def _validate(tofu: Tofu, folder: Path) -> dict[str, Any]:
    init = tofu.init(folder)
    assert init.returncode == 0, init.stderr
    report: dict[str, Any] = json.loads(tofu(folder, "validate", "-json").stdout)
    return report


@pytest.mark.tools
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(expressions().map(lambda c: "${" + c[0] + "}"),
                          templates().map(lambda c: c[0])), min_size=8, max_size=8))
def test_tofu_validate_accepts_what_edgekit_accepts(
        tofu: Tofu, tmp_path_factory: pytest.TempPathFactory, values: list[str]) -> None:
    folder = _document(tmp_path_factory.mktemp("expr"), values)
    report = _validate(tofu, folder)
    assert report["valid"] is True, json.dumps(report["diagnostics"], indent=1)


@pytest.mark.tools
@pytest.mark.parametrize("dangling", ["${var.nope}", "${[for x in var.a : y.id]}",
                                      "%{ for x in var.a }${x}%{ endfor }${x.id}"])
def test_tofu_validate_refuses_what_edgekit_refuses(
        tofu: Tofu, tmp_path: Path, dangling: str) -> None:
    folder = _document(tmp_path, ["${var.a}"])
    app, stack = _stack(tmp_path / "bad")
    Variable(stack, "a", type="any")
    Output(stack, "o", value=dangling)
    (problem,) = _problems(app)  # edgekit refuses it ...
    assert "which is not in stack" in problem
    path = folder / "cdk.tf.json"
    document = json.loads(path.read_text())
    document["output"]["dangling"] = {"value": dangling}
    path.write_text(json.dumps(document))
    report = _validate(tofu, folder)  # ... and so does tofu
    assert report["valid"] is False
    assert any("undeclared" in d["summary"] or "Reference" in d["summary"]
               for d in report["diagnostics"]), report["diagnostics"]
