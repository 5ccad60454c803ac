"""What keeps the construct path fast stays correct: the per-type provider schema index,
and the compiled JSON Schema predicate that stands in front of jsonschema."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from edgekit.providers.pins import PINS
from edgekit.schema import schema_index
from edgekit.schema.fastcheck import compile_schema
from edgekit.schema.props import schema_dir, schema_for
from tests.conftest import ROOT


@pytest.mark.parametrize("name", sorted(PINS))
def test_committed_index_matches_its_dump(name: str) -> None:
    pin = PINS[name]
    dump = schema_index.dump_path(pin.name, pin.version).read_bytes()
    raw = gzip.decompress(dump)  # every member, by the standard library's own reader
    committed = schema_index.index_path(pin.name, pin.version).read_bytes()
    assert committed == schema_index.render_index(schema_index.build_index(raw, dump)), (
        "stale index: run tools/dump_schemas.py (or rebuild it with build_index)")


@pytest.mark.parametrize("name", sorted(PINS))
def test_committed_dump_is_cut_into_members_at_type_ends(name: str) -> None:
    pin = PINS[name]
    dump = schema_index.dump_path(pin.name, pin.version).read_bytes()
    raw = gzip.decompress(dump)
    index = orjson.loads(schema_index.index_path(pin.name, pin.version).read_bytes())
    ends = {end for section in schema_index.SECTIONS for _, end in index[section].values()}
    starts = [start for start, _ in index["members"]]
    sizes = [b - a for a, b in zip(starts, [*starts[1:], len(raw)], strict=True)]
    assert starts[0] == 0 and all(start in ends | {index["provider"][1]} for start in starts[1:])
    assert all(size >= schema_index.MEMBER_BYTES for size in sizes[:-1]), sizes
    if len(raw) > 2 * schema_index.MEMBER_BYTES:
        assert len(starts) > 1, "a large dump is one gzip member: run tools/dump_schemas.py"


def test_a_type_inflates_only_its_own_member() -> None:
    pin = PINS["cloudflare"]
    loaded = schema_index.ProviderSchema(
        schema_index.dump_path(pin.name, pin.version).read_bytes(),
        orjson.loads(schema_index.index_path(pin.name, pin.version).read_bytes()))
    assert loaded.block("resource_schemas", "cloudflare_dns_record") is not None
    assert len(loaded._inflated) == 1
    assert len(loaded._members) > 10


def test_an_index_without_members_reads_the_whole_dump() -> None:
    pin = PINS["hcloud"]
    raw = gzip.decompress(schema_index.dump_path(pin.name, pin.version).read_bytes())
    index = schema_index.build_index(raw)  # no members: a dump written as one stream
    one_stream = gzip.compress(raw)
    assert zlib.decompress(one_stream, 31) == raw
    loaded = schema_index.ProviderSchema(one_stream, index)
    (full,) = orjson.loads(raw)["provider_schemas"].values()
    assert loaded.block("resource_schemas", "hcloud_server") == \
        full["resource_schemas"]["hcloud_server"]["block"]


def test_inflate_reads_every_member() -> None:
    two = gzip.compress(b'{"a":') + gzip.compress(b"1}")
    assert zlib.decompress(two, 31) == b'{"a":'  # why inflate exists
    assert schema_index.inflate(two) == b'{"a":1}'
    with pytest.raises(ValueError, match="truncated"):
        schema_index.inflate(two[:-3])


@pytest.mark.parametrize("name", sorted(PINS))
def test_each_indexed_type_parses_to_the_dump_entry(name: str) -> None:
    pin = PINS[name]
    loaded = schema_index.load(pin.name, pin.version)
    assert loaded is not None
    raw = gzip.decompress(schema_index.dump_path(pin.name, pin.version).read_bytes())
    (full,) = orjson.loads(raw)["provider_schemas"].values()
    assert loaded.provider_block() == full["provider"]["block"]
    for section in schema_index.SECTIONS:
        assert sorted(loaded.types(section)) == sorted(full.get(section, {}))
        for type_name, entry in full.get(section, {}).items():
            assert loaded.block(section, type_name) == entry["block"], type_name
    assert loaded.block("resource_schemas", f"{name}_no_such_type") is None


def test_a_synth_parses_only_the_types_it_uses(tmp_path: Path) -> None:
    code = """
import sys
from edgekit import App, LocalState, Resource, Stack
from edgekit.schema import schema_index
app = App(outdir=sys.argv[1])
stack = Stack(app, "s", state=LocalState(), encryption=None)
Resource(stack, "r", type="cloudflare_dns_record", config={
    "zone_id": "z", "name": "a.example.com", "type": "A", "content": "192.0.2.1", "ttl": 1})
parsed = []
original = schema_index.orjson.loads
def spy(data):
    value = original(data)
    if isinstance(value, dict) and "block" in value and len(data) < 10**6:
        parsed.append(sorted(value["block"].get("attributes", {}))[:3])
    return value
schema_index.orjson.loads = spy
app.synth()
print(parsed)
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    # one parse, of the one type the stack uses (cloudflare_dns_record's first attributes)
    assert out.stdout.strip() == "[['comment', 'comment_modified_on', 'content']]"


# --- the compiled JSON Schema predicate -------------------------------------------------

DEFINITIONS = sorted(p.stem for p in schema_dir().glob("*.json"))


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_exported_schemas_are_valid_and_compile_to_a_predicate(definition: str) -> None:
    schema = schema_for(definition)
    Draft202012Validator.check_schema(schema)  # no longer done at synth time
    assert compile_schema(schema) is not None, "uses a keyword the fast check does not know"


def test_unknown_keywords_fall_back_to_jsonschema() -> None:
    assert compile_schema({"type": "string", "format": "email"}) is None
    assert compile_schema({"$ref": "https://example.com/s.json"}) is None
    assert compile_schema({"if": {"type": "string"}}) is None


scalars = (
    st.none() | st.booleans()
    | st.sampled_from([-1, 0, 1, 2, 99, 100, 101, 0.0, 0.5, 1.0, -0.5, 100.0, 100.5])
    | st.integers()
    | st.sampled_from(["", "a", "ab", "abcd", "edge-1", "Edge_1", "hetzner", "10.0.0.0/8",
                       "api", "x" * 70, "2026-01-01", "0" * 32])
)
json_values = scalars | st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["name", "provider", "region", "size", "nodes",
                                        "weights", "edge-1", "port", "roles", "x", "kind"]),
                      inner, max_size=5),
    max_leaves=12,
)


def _mutations(definition: str) -> st.SearchStrategy[Any]:
    """Instances near valid ones: the committed example values with fields replaced."""
    examples = json.loads((ROOT / "cue/export/prod.json").read_text())
    base: list[Any] = []
    if definition == "Service":
        base = list(examples["services"].values())
    elif definition == "Env":
        base = [examples["env"]]
    elif definition == "Node":
        base = list(examples["env"]["nodes"].values())
    if not base:
        return json_values
    return st.sampled_from(base).flatmap(lambda b: st.one_of(
        st.just(b),
        st.builds(lambda k, v: {**b, k: v}, st.sampled_from(sorted(b)), json_values),
        st.builds(lambda k: {x: y for x, y in b.items() if x != k}, st.sampled_from(sorted(b))),
    ))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), definition=st.sampled_from(DEFINITIONS))
def test_predicate_agrees_with_jsonschema(data: st.DataObject, definition: str) -> None:
    schema = schema_for(definition)
    predicate = compile_schema(schema)
    assert predicate is not None
    instance = data.draw(st.one_of(json_values, _mutations(definition)))
    assert predicate(instance) == Draft202012Validator(schema).is_valid(instance), instance


KEYWORD_SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer", "minimum": 0, "maximum": 100},
    {"type": ["string", "null"], "minLength": 1, "maxLength": 3},
    {"enum": [1, "a", None, True, [1, 2], {"x": 1}]},
    {"const": 1},
    {"const": ""},
    {"const": None},
    {"const": False},
    {"not": {"const": ""}, "type": "string"},
    {"items": {"type": "number"}, "prefixItems": [{"type": "string"}], "minItems": 1},
    {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    {"oneOf": [{"type": "number"}, {"type": "integer"}]},
    {"allOf": [{"type": "number"}, {"exclusiveMinimum": 0, "exclusiveMaximum": 100}]},
    {"patternProperties": {"^e": {"type": "integer"}}, "additionalProperties": False},
    {"properties": {"name": {"type": "string"}}, "required": ["name"], "maxProperties": 2},
    {"type": "array", "uniqueItems": True, "maxItems": 3},
    {"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"},
]


@pytest.mark.parametrize("schema", KEYWORD_SCHEMAS, ids=lambda s: ",".join(sorted(s)))
@settings(max_examples=200, deadline=None)
@given(instance=json_values)
def test_predicate_agrees_with_jsonschema_on_every_keyword(schema: dict[str, Any],
                                                          instance: Any) -> None:
    predicate = compile_schema(schema)
    assert predicate is not None
    assert predicate(instance) == Draft202012Validator(schema).is_valid(instance), \
        (schema, instance)


# --- plain structuring, cattrs only to explain ------------------------------------------


def test_plain_structuring_equals_cattrs_on_the_committed_estate() -> None:
    import cattrs

    from edgekit.cue import model
    from edgekit.schema.props import _build

    converter = cattrs.Converter(forbid_extra_keys=True)
    for env_file in sorted((ROOT / "cue/export").glob("*.json")):
        data = json.loads(env_file.read_text())
        assert _build(model.Env, data["env"]) == converter.structure(data["env"], model.Env)
        for spec in data["services"].values():
            assert _build(model.Service, spec) == converter.structure(spec, model.Service)


def test_what_plain_structuring_refuses_cattrs_explains() -> None:
    from edgekit.constructs.props import SnapshotProps
    from edgekit.schema.props import PropsError, structure

    # Valid for #Tunnel, but built into a class without those fields: cattrs says why.
    with pytest.raises(PropsError) as err:
        structure("Tunnel", SnapshotProps, {"name": "t", "nodes": ["a"]}, "p/t")
    assert [str(p) for p in err.value.problems] == [
        "[p/t] #Tunnel: extra fields found (nodes) @ $"]
