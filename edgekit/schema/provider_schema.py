"""Check emitted blocks against the providers' own schemas, in pure Python.

The schemas are the committed output of ``tofu providers schema -json`` for the
pinned provider binaries (``edgekit/schema/data/<name>-<version>.json.gz``). Only the
types a stack uses are parsed, the first time it uses them (`schema_index`).

What is checked, for every resource, data source and provider block:
unknown attributes and blocks, missing required ones, read-only (computed)
attributes that were set, blocks written as attributes and the reverse, and
values of the wrong primitive type. Values that are expressions (``${...}``)
are only known at plan time and are not type-checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgekit.core.elements import DataSource, Provider, Resource
from edgekit.core.errors import Problem
from edgekit.core.jsonkind import OPENTOFU, value_kind
from edgekit.core.synth import ProviderPin, StackResult, provider_name, rendered_pairs
from edgekit.schema import schema_index

RESOURCE_META = frozenset(
    {"count", "for_each", "provider", "depends_on", "lifecycle", "connection", "provisioner", "//"}
)
PROVIDER_META = frozenset({"alias", "//"})


class SchemaCheck:
    """A synth check: every element against its provider's committed schema."""

    def __init__(self, pins: Mapping[str, ProviderPin]) -> None:
        self.pins = pins

    def __call__(self, result: StackResult) -> list[Problem]:
        problems: list[Problem] = []
        # per element class and type: its compiled check, or the problems of its type
        checks: dict[tuple[type, str], BlockCheck | list[tuple[str, str]]] = {}
        out: list[tuple[str, str]] = []
        for element, body in rendered_pairs(result.rendered):
            if isinstance(element, Resource):
                meta = RESOURCE_META
            elif isinstance(element, Provider):
                meta = PROVIDER_META
            else:
                continue
            found = checks.get((type(element), element.type))
            if found is None:
                if isinstance(element, Provider):
                    kind, name = "provider", element.type
                else:
                    kind = "data_source_schemas" if isinstance(element, DataSource) else \
                        "resource_schemas"
                    name = provider_name(element.type)
                found = checks[type(element), element.type] = \
                    self._compiled(kind, name, element.type)
            if isinstance(found, BlockCheck):
                found.check(body, "$", out, meta)
                found_problems = out
            else:
                found_problems = found  # the type's own problems, every element of it
            if found_problems:
                for pointer, message in found_problems:
                    problems.append(Problem(path=element.node.path, address=element.address,
                                            pointer=pointer, message=message))
                out = []
        return problems

    def _check_element(
        self, kind: str, name: str, type_name: str, body: Any, meta: frozenset[str]
    ) -> list[tuple[str, str]]:
        compiled = self._compiled(kind, name, type_name)
        if isinstance(compiled, list):
            return compiled
        out: list[tuple[str, str]] = []
        compiled.check(body, "$", out, meta)
        return out

    def _compiled(self, kind: str, name: str, type_name: str
                  ) -> BlockCheck | list[tuple[str, str]]:
        """The check of one type (compiled once per process), or the problems of the type
        itself (an unknown type, a provider without a committed schema)."""
        pin = self.pins.get(name)
        if pin is None:
            return []  # unpinned: reported by the terraform block
        key = (pin.name, pin.version, kind, type_name)
        compiled = _COMPILED.get(key)
        if compiled is None:
            schema = schema_index.load(pin.name, pin.version)
            if schema is None:
                return [("", f"no committed schema for provider {name} {pin.version}; run "
                         "`make schemas` to dump it from the built provider")]
            block = schema.provider_block() if kind == "provider" else \
                schema.block(kind, type_name)
            if block is None:
                what = "data source" if kind == "data_source_schemas" else "resource type"
                return [("", f"unknown {what} {type_name!r} for provider {name} {pin.version}"
                         + _suggest(type_name, schema.types(kind)))]
            compiled = _COMPILED[key] = BlockCheck(block)
        return compiled


_COMPILED: dict[tuple[str, str, str, str], BlockCheck] = {}
"""Each type's schema parsed from its committed dump and compiled once, when first used."""


def _suggest(name: str, options: Any) -> str:
    import difflib  # only for an unknown type

    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and ("${" in value or "%{" in value)


Out = list[tuple[str, str]]
FieldCheck = Callable[[Any, str, Out], None]
"""Checks one value; gets the pointer of the *value* (built only when needed)."""


class BlockCheck:
    """A schema block compiled once into per-key checks (synth checks thousands of bodies)."""

    __slots__ = ("blocks", "entries", "fields", "passing", "required", "required_blocks",
                 "required_keys")

    def __init__(self, block: dict[str, Any]) -> None:
        attributes: dict[str, Any] = block.get("attributes", {})
        blocks: dict[str, Any] = block.get("block_types", {})
        self.fields: dict[str, FieldCheck] = {}
        self.passing: dict[str, frozenset[type]] = {}
        """Per primitive attribute, the Python types whose values always pass its check
        (the common case is decided without a call or a pointer)."""
        for key, attribute in attributes.items():
            self.fields[key] = _attribute_check(key, attribute)
            fast = _passing_types(attribute)
            if fast is not None:
                self.passing[key] = fast
        self.blocks: dict[str, LazyBlock] = {}
        for key, nested in blocks.items():
            inner = self.blocks[key] = LazyBlock(nested["block"])
            self.fields[key] = _nested_block_check(key, nested, inner)
        self.required = tuple(
            (key, _describe_attribute(a)) for key, a in sorted(attributes.items())
            if a.get("required")
        )
        self.required_blocks = tuple(
            (key, n["min_items"]) for key, n in sorted(blocks.items()) if n.get("min_items", 0)
        )
        self.required_keys = frozenset(key for key, _ in (*self.required, *self.required_blocks))
        self.entries: dict[str, tuple[frozenset[type], FieldCheck]] = {
            key: (self.passing.get(key, _NO_TYPES), check) for key, check in self.fields.items()}
        """`fields` and `passing` in one lookup per key of a body."""

    def check(self, body: Any, pointer: str, out: Out,
              meta: frozenset[str] = frozenset({"//"})) -> None:
        if type(body) is not dict:
            out.append((pointer, f"expected an object (a block body), got {_kind(body)}"))
            return
        entries = self.entries
        dynamic: set[str] | frozenset[str] = _NO_TYPES
        for key, value in body.items():
            entry = entries.get(key)
            if entry is not None:
                if type(value) not in entry[0]:
                    entry[1](value, f"{pointer}.{key}", out)
            elif key == "dynamic" and self.blocks:
                dynamic = self._check_dynamic(value, f"{pointer}.dynamic", out)
            elif key not in meta:
                known = sorted(self.fields)
                hint = _suggest(key, known)
                out.append((f"{pointer}.{key}", f"unknown attribute {key!r}{hint}" if hint else
                            f"unknown attribute {key!r} (expected one of: "
                            f"{', '.join(known)})"))
        if body.keys() >= self.required_keys:
            return  # the common case: nothing required is missing
        for key, description in self.required:
            if key not in body:
                out.append((f"{pointer}.{key}",
                            f"missing required attribute {key!r} ({description})"))
        for key, minimum in self.required_blocks:
            if key not in body and key not in dynamic:
                out.append((f"{pointer}.{key}",
                            f"missing required block {key!r} (at least {minimum})"))


    def _check_dynamic(self, value: Any, pointer: str, out: Out) -> set[str]:
        """``dynamic "<block>" { for_each, iterator, labels, content }`` blocks: each label
        names a nested block type, `content` is checked as that block. Returns the labels."""
        specs = [(pointer, value)] if isinstance(value, dict) else \
            [(f"{pointer}[{i}]", v) for i, v in enumerate(value)] \
            if isinstance(value, list) else []
        if not specs or not all(isinstance(v, dict) for _, v in specs):
            out.append((pointer, "'dynamic' takes an object of blocks by type: "
                        '{"<block type>": {"for_each": ..., "content": {...}}}'))
            return set()
        labels: set[str] = set()
        for here, by_label in specs:
            for label, spec in by_label.items():
                at = f"{here}.{label}"
                inner = self.blocks.get(label)
                if inner is None:
                    out.append((at, f"no nested block type {label!r} to generate"
                                + (_suggest(label, self.blocks) or
                                   f" (block types: {', '.join(sorted(self.blocks))})")))
                    continue
                labels.add(label)
                for item_at, item in ([(at, spec)] if not isinstance(spec, list) else
                                      [(f"{at}[{i}]", x) for i, x in enumerate(spec)]):
                    if not isinstance(item, dict) or "for_each" not in item \
                            or "content" not in item:
                        out.append((item_at, "a dynamic block needs 'for_each' and 'content'"))
                        continue
                    for key in sorted(set(item) - _DYNAMIC_KEYS):
                        out.append((f"{item_at}.{key}", f"unknown argument {key!r} of a "
                                    "dynamic block (for_each, iterator, labels, content)"))
                    inner.compiled().check(item["content"], f"{item_at}.content", out)
        return labels


class LazyBlock:
    """A nested block's check, compiled when a body first uses the block (a stack uses a
    few of the dozens of nested blocks a cloudflare type declares)."""

    __slots__ = ("_check", "_raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw
        self._check: BlockCheck | None = None

    def compiled(self) -> BlockCheck:
        if self._check is None:
            self._check = BlockCheck(self._raw)
        return self._check


_DYNAMIC_KEYS = frozenset({"for_each", "iterator", "labels", "content", "//"})
_NO_TYPES: frozenset[Any] = frozenset()


def _attribute_check(key: str, attribute: dict[str, Any]) -> FieldCheck:
    if attribute.get("computed") and not attribute.get("optional") and \
            not attribute.get("required"):
        def read_only(value: Any, pointer: str, out: Out) -> None:
            out.append((pointer, f"{key!r} is read-only (computed by the provider); "
                        "remove it, or read it with a reference"))
        return read_only
    nested = attribute.get("nested_type")
    if nested is not None:
        return _nested_attribute_check(key, nested)
    type_expr = attribute.get("type", "dynamic")
    fast = _FAST_TYPES.get(type_expr) if isinstance(type_expr, str) else None
    # A list, set or map of a primitive type: items of these types pass `_check_type`.
    items_fast = _FAST_TYPES.get(type_expr[1]) if isinstance(type_expr, list) \
        and type_expr[0] in ("list", "set", "map") and isinstance(type_expr[1], str) else None
    is_map = isinstance(type_expr, list) and type_expr[0] == "map"

    def check(value: Any, pointer: str, out: Out) -> None:
        if value is None or (fast is not None and type(value) in fast):
            return
        if items_fast is not None and type(value) is (dict if is_map else list):
            items = value.values() if isinstance(value, dict) else value
            if all(type(item) in items_fast or _is_expression(item) for item in items):
                return
        if _is_expression(value):
            return
        if isinstance(value, dict | list) and type_expr in ("string", "number", "bool"):
            shape = "an object" if isinstance(value, dict) else "a list"
            out.append((pointer, f"{key!r} is a {type_expr} attribute, not a block: got {shape}"))
            return
        _check_type(value, type_expr, pointer, out)

    return check


def _passing_types(attribute: dict[str, Any]) -> frozenset[type] | None:
    """What `_attribute_check`'s check lets through at once for this attribute: None and
    the Python types of its primitive type (a string attribute: str, expressions too)."""
    if attribute.get("nested_type") is not None or (
            attribute.get("computed") and not attribute.get("optional")
            and not attribute.get("required")):
        return None
    type_expr = attribute.get("type", "dynamic")
    fast = _FAST_TYPES.get(type_expr) if isinstance(type_expr, str) else None
    return fast | {type(None)} if fast is not None else None


# Python types that always satisfy a primitive type; anything else takes the slow path.
_FAST_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "number": frozenset({int, float}),
    "bool": frozenset({bool}),
}


def _nested_attribute_check(key: str, nested: dict[str, Any]) -> FieldCheck:
    mode = nested.get("nesting_mode", "single")
    inner = LazyBlock({"attributes": nested.get("attributes", {})})

    def check(value: Any, pointer: str, out: Out) -> None:
        if value is None or _is_expression(value):
            return
        if mode == "single":
            if isinstance(value, list):
                out.append((pointer, f"{key!r} is a single nested attribute: write one "
                            "object, not a list"))
                return
            inner.compiled().check(value, pointer, out)
        elif mode in ("list", "set"):
            if not isinstance(value, list):
                out.append((pointer, f"{key!r} is a {mode} of objects: write a JSON array, "
                            f"got {_kind(value)}"))
                return
            for i, item in enumerate(value):
                if not _is_expression(item):
                    inner.compiled().check(item, f"{pointer}[{i}]", out)
        elif mode == "map":
            if not isinstance(value, dict):
                out.append((pointer, f"{key!r} is a map of objects, got {_kind(value)}"))
                return
            for name, item in value.items():
                if not _is_expression(item):
                    inner.compiled().check(item, f"{pointer}.{name}", out)

    return check


def _nested_block_check(key: str, nested: dict[str, Any], inner: LazyBlock) -> FieldCheck:
    mode = nested.get("nesting_mode", "single")
    max_items = nested.get("max_items")
    min_items = nested.get("min_items", 0)
    one_is_enough = not min_items or min_items <= 1

    def check(value: Any, pointer: str, out: Out) -> None:
        if not isinstance(value, dict | list):
            out.append((pointer, f"{key!r} is a block: write it as an object or a list of "
                        f"objects, not {_kind(value)}"))
            return
        if mode != "map" and isinstance(value, dict) and one_is_enough:
            inner.compiled().check(value, pointer, out)  # one block: no count to check
            return
        if mode == "map":
            items = [(f"{pointer}.{k}", v) for k, v in value.items()] \
                if isinstance(value, dict) else \
                [(f"{pointer}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, dict):
            items = [(pointer, value)]
        else:
            if mode in ("single", "group") and len(value) > 1:
                out.append((pointer, f"{key!r} is a single block; got {len(value)}"))
            items = [(f"{pointer}[{i}]", v) for i, v in enumerate(value)]
        if max_items and len(items) > max_items:
            out.append((pointer, f"{key!r} allows at most {max_items} block(s), "
                        f"got {len(items)}"))
        if min_items and len(items) < min_items:
            out.append((pointer, f"{key!r} needs at least {min_items} block(s), "
                        f"got {len(items)}"))
        for here, item in items:
            inner.compiled().check(item, here, out)

    return check


def _check_type(value: Any, type_expr: Any, pointer: str, out: Out) -> None:
    if value is None or _is_expression(value) or type_expr == "dynamic":
        return
    if isinstance(type_expr, str):
        if not _primitive_ok(value, type_expr):
            out.append((pointer, f"expected {type_expr}, got {_kind(value)} {_short(value)}"))
        return
    kind, inner = type_expr[0], type_expr[1]
    if kind in ("list", "set"):
        if not isinstance(value, list):
            out.append((pointer, f"expected a {kind} of {_type_name(inner)}, got {_kind(value)}"))
            return
        for i, item in enumerate(value):
            _check_type(item, inner, f"{pointer}[{i}]", out)
    elif kind == "map":
        if not isinstance(value, dict):
            out.append((pointer, f"expected a map of {_type_name(inner)}, got {_kind(value)}"))
            return
        for name, item in value.items():
            _check_type(item, inner, f"{pointer}.{name}", out)
    elif kind == "object":
        if not isinstance(value, dict):
            out.append((pointer, f"expected an object, got {_kind(value)}"))
            return
        for name, item in value.items():
            if name not in inner:
                out.append((f"{pointer}.{name}", f"unknown attribute {name!r} (expected one "
                            f"of: {', '.join(sorted(inner))})"))
            else:
                _check_type(item, inner[name], f"{pointer}.{name}", out)
    elif kind == "tuple":
        if not isinstance(value, list) or len(value) != len(inner):
            out.append((pointer, f"expected a tuple of {len(inner)} items, got {_kind(value)}"))
            return
        for i, (item, item_type) in enumerate(zip(value, inner, strict=True)):
            _check_type(item, item_type, f"{pointer}[{i}]", out)


def _primitive_ok(value: Any, type_name: str) -> bool:
    # OpenTofu converts between primitives where the text allows it; so do we.
    if type_name == "string":
        return isinstance(value, str | int | float | bool)
    if type_name == "number":
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float):
            return True
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return False
            return True
        return False
    if type_name == "bool":
        return isinstance(value, bool) or value in ("true", "false")
    return True


def _kind(value: Any) -> str:
    return value_kind(value, OPENTOFU)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(type_expr: Any) -> str:
    if isinstance(type_expr, str):
        return type_expr
    return f"{type_expr[0]}({_type_name(type_expr[1]) if type_expr[0] != 'object' else '...'})"


def _describe_attribute(attribute: dict[str, Any]) -> str:
    if "nested_type" in attribute:
        return f"nested {attribute['nested_type'].get('nesting_mode', 'single')} object"
    return _type_name(attribute.get("type", "dynamic"))
