"""References render as interpolations and every address they name is found."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgekit import Ref
from edgekit.core.refs import (
    _scanned_addresses,
    interpolations,
    referenced_addresses,
    template_addresses,
)

IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


def test_ref_renders_and_embeds_in_strings() -> None:
    ip = Ref("hcloud_server.edge_1").attr("ipv4_address")
    assert str(ip) == "${hcloud_server.edge_1.ipv4_address}"
    assert f"ssh root@{ip}" == "ssh root@${hcloud_server.edge_1.ipv4_address}"
    assert str(Ref("hcloud_server.x").attr("network").at(0).attr("ip")) == \
        "${hcloud_server.x.network[0].ip}"
    assert str(Ref("var.labels").at("role")) == '${var.labels["role"]}'


def test_refs_are_frozen_values() -> None:
    assert Ref("var.a", ("b",)) == Ref("var.a").attr("b")
    assert len({Ref("var.a"), Ref("var.a")}) == 1


def test_interpolations_skip_escapes() -> None:
    text = "a ${var.x} $${literal} %{ if var.y }yes%{ endif } ${ {a = 1}.a }"
    assert list(interpolations(text)) == ["var.x", " if var.y ", " endif ", " {a = 1}.a "]


def test_referenced_addresses_by_kind() -> None:
    expr = 'format("%s", hcloud_server.a.name, data.hcloud_image.deb.id, var.t, local.l.x, ' \
           'module.net.id, each.key, count.index, path.module, "hcloud_server.quoted")'
    assert sorted(referenced_addresses(expr)) == [
        "data.hcloud_image.deb", "hcloud_server.a", "local.l", "module.net", "var.t",
    ]


def test_for_expression_names_are_not_addresses() -> None:
    expr = "[for s in var.servers : s.name if s.enabled]"
    assert list(referenced_addresses(expr)) == ["var.servers"]


@given(IDENT, IDENT, st.lists(IDENT, max_size=3))
def test_any_ref_round_trips_through_its_rendering(kind: str, name: str, attrs: list[str]) -> None:
    ref = Ref(f"{kind}_r.{name}")
    for a in attrs:
        ref = ref.attr(a)
    rendered = str(ref)
    (expression,) = interpolations(rendered)
    assert list(referenced_addresses(expression)) == [ref.address]


def test_templates_nested_in_string_literals_are_scanned() -> None:
    expr = 'base64encode("#cloud-config\\n${jsonencode(local.cloud)}")'
    assert list(referenced_addresses(expr)) == ["local.cloud"]


_TRAVERSALS = st.builds(lambda parts: ".".join(parts),
                        st.lists(st.sampled_from(["var", "data", "local", "module", "each",
                                                  "count", "x", "a-b", "hcloud_server",
                                                  "node_1", "id"]), min_size=1, max_size=4))
_FRAGMENTS = st.one_of(
    st.sampled_from(["", "plain ", ".cfargotunnel.com", "100%", "$", "$$", "{", "}", '"',
                     " ", "(", ")", "f(", "a.b", "[0]"]),
    _TRAVERSALS.map(lambda t: "${" + t + "}"),
    _TRAVERSALS.map(lambda t: "${sensitive(" + t + ")}"),
    _TRAVERSALS.map(lambda t: "$${" + t + "}"),
)


@given(st.lists(_FRAGMENTS, max_size=5).map("".join),
       st.frozensets(st.sampled_from(["x", "node_1", "var"]), max_size=2))
def test_the_fast_path_for_one_interpolation_finds_what_the_scan_finds(
        text: str, names: frozenset[str]) -> None:
    """A template with one plain ``${a.b}`` / ``${f(a.b)}`` skips the scanner; for any
    text (escapes, stray braces, several templates, local names) both say the same."""
    assert list(template_addresses(text, names)) == list(_scanned_addresses(text, names))
